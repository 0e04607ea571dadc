// The behaviour task's registration (pipelines/task.h): train a config, evaluate and batch-score
// a model file, and the pipeline's stage kinds.
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/behaviour/stages.h"
#include "pipelines/task_verbs.h"

namespace tessera::behaviour {

namespace {

CommonOptions common_options(const CliArgs& a) {
  CommonOptions o;
  o.device = a.device();
  o.json = a.flag("--json");
  o.quiet = a.quiet();
  o.skip_lines = static_cast<int>(a.count("--skip-lines", -1));
  o.on_error = a.text("--on-error", "");
  return o;
}

PredictOptions predict_options(const CliArgs& a) {
  PredictOptions o;
  static_cast<CommonOptions&>(o) = common_options(a);
  o.batch_size = a.count("--batch-size", 4096);
  return o;
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t = task_with_train(
      "behaviour", "behaviour prediction: MLP or DLRM on tabular rows (CSV/TSV, Criteo, libSVM)",
      train_on_run_options, register_stages, behaviour_config_example, behaviour_config_schema);
  t.model_verbs["evaluate"] = model_data_verb(evaluate, common_options);
  t.model_verbs["predict"] = model_input_output_verb(
      predict, predict_options, "usage: tessera predict MODEL INPUT OUTPUT (a behaviour model)");
  registry.add(std::move(t));
}

}  // namespace tessera::behaviour
