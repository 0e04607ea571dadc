#pragma once
// What the tasks' train functions take from their configs alike: the overrides a run's options
// (`tessera train --seed/--epochs/--runs-dir/--device/--time-budget`) make, what the Trainer is
// told of the config (train::TaskRun), and the optimizer its train section describes.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/optimizer.h"
#include "host/train/run_options.h"

namespace tessera::train {

// Sets the config's fields that `o` overrides: the seed (when >= 0), the epochs (when > 0), the
// runs directory (when given) and, for a config that has them (non-null), the device (when
// given) and the time budget (when >= 0).
inline void apply_run_overrides(const RunOptions& o, int64_t& seed, int64_t& epochs,
                                std::string& runs_dir, std::string* device, double* time_budget_s) {
  if (o.seed >= 0) seed = o.seed;
  if (o.epochs > 0) epochs = o.epochs;
  if (!o.runs_dir.empty()) runs_dir = o.runs_dir;
  if (device != nullptr && !o.device.empty()) *device = o.device;
  if (time_budget_s != nullptr && o.time_budget_s >= 0) *time_budget_s = o.time_budget_s;
}

// The TaskRun of `task` for a config with a name and a `train` section holding runs_dir, epochs
// and on_nonfinite; `config_json` is the resolved config, `resume_tag` what a checkpoint of it
// must carry.
template <typename Config>
TaskRun task_run(std::string task, const Config& cfg, std::string config_json,
                 std::string resume_tag) {
  return {std::move(task),       cfg.name,         cfg.train.runs_dir,    std::move(config_json),
          std::move(resume_tag), cfg.train.epochs, cfg.train.on_nonfinite};
}

// The optimizer of a config's `train` section (optimizer, lr_schedule, epochs), its schedule over
// the epochs at `steps_per_epoch` steps each, with `params` attached as its dense group.
template <typename TrainSection>
Optimizer epoch_optimizer(Backend& backend, const TrainSection& t, int64_t steps_per_epoch,
                          const std::vector<Parameter*>& params) {
  Optimizer opt(backend, t.optimizer,
                LrSchedule::over_epochs(t.lr_schedule, steps_per_epoch, t.epochs));
  opt.attach(params);
  return opt;
}

}  // namespace tessera::train
