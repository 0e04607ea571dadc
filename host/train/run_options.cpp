#include "host/train/run_options.h"

#include "host/core/error.h"

namespace tessera::train {

TrainerOptions trainer_options(const RunOptions& run, const TaskRun& config,
                               const std::string& device) {
  if (!run.resume.empty() && !run.run_dir.empty())
    TESSERA_THROW(Usage, "--resume continues its own run directory; drop --run-dir");
  TrainerOptions t;
  t.task = config.task;
  t.name = config.name;
  t.runs_dir = run.runs_dir.empty() ? config.runs_dir : run.runs_dir;
  t.run_dir = run.resume.empty() ? run.run_dir : run.resume;
  t.resumable = !run.resume.empty();
  t.config_json = config.config_json;
  t.resume_tag = config.resume_tag;
  t.device = device;
  t.epochs = config.epochs;
  if (run.time_budget_s >= 0) t.time_budget_s = run.time_budget_s;  // a task may set its own
  t.stop_after_epochs = run.stop_after_epochs;
  t.on_nonfinite = config.on_nonfinite;
  t.quiet = run.quiet;
  t.after_checkpoint = run.after_checkpoint;
  t.on_epoch = run.on_epoch;
  if (run.loss_read_every > 0) t.loss_read_every = run.loss_read_every;
  t.after_step = run.after_step;
  return t;
}

}  // namespace tessera::train
