#pragma once
// What every task's `train` takes beside its config, from `tessera train`, a pipeline's train
// stage or the Python package: where the run goes, the overrides, resumption, and the hooks. A
// task adds its own fields by deriving (behaviour: how its test file is encoded).
#include <cstdint>
#include <functional>
#include <string>

#include "host/config/on_nonfinite.h"
#include "host/train/trainer.h"

namespace tessera::train {

struct RunOptions {
  std::string device;    // empty: the config's
  std::string runs_dir;  // empty: the config's
  std::string run_dir;   // an exact new run directory (must not exist); empty: one under runs_dir
  // A run directory to train in, resumably: a directory holding checkpoint.tsc continues exactly
  // where it stopped, ending bit-identical to an uninterrupted run (the same config, but for what
  // the task lets change on resume), one without a checkpoint starts there from the beginning.
  std::string resume;
  int64_t epochs = -1;             // -1: the config's
  int64_t seed = -1;               // -1: the config's (`--seed`, and each run of `--seeds`)
  double time_budget_s = -1;       // -1: the config's (textgen, textclass) or none; 0 = none
  int64_t stop_after_epochs = -1;  // >= 0: stop as if killed after so many epochs (tests)
  bool quiet = false;
  // Called with the finished epochs once that epoch's checkpoint is on disk (tests kill there).
  std::function<void(int64_t epochs_done)> after_checkpoint;
  // Called with each epoch's metrics line (a Python callback); false stops after the epoch.
  std::function<bool(const std::string& epoch_json)> on_epoch;
  // Steps between the Trainer's reads of the device loss (TrainerOptions::loss_read_every);
  // <= 0: the Trainer's default.
  int64_t loss_read_every = 0;
  // Called after every batch (TrainerOptions::after_step: tests count what steps do between
  // the loss reads).
  std::function<void(int64_t step, bool loss_read)> after_step;
};

// What a task's config says about its run.
struct TaskRun {
  std::string task;         // "behaviour", ...
  std::string name;         // the config's name
  std::string runs_dir;     // the config's runs directory (RunOptions::runs_dir overrides it)
  std::string config_json;  // the resolved config
  std::string resume_tag;   // what a checkpoint must have been written under to be resumed
  int64_t epochs = 1;       // the config's (RunOptions::epochs already applied)
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
};

// The Trainer's options for one run: `config`'s, the run directory and resumption of `run`
// (Usage error when both --run-dir and --resume are given), the device the run trains on, the
// hooks. The task then sets what only it knows (its selection metric, field names, policies).
TrainerOptions trainer_options(const RunOptions& run, const TaskRun& config,
                               const std::string& device);

}  // namespace tessera::train
