// The behaviour task's registration (pipelines/task.h): train a config, evaluate and batch-score
// a model file, and the pipeline's stage kinds.
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/stages.h"
#include "pipelines/task.h"

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

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "behaviour";
  t.about = "behaviour prediction: MLP or DLRM on tabular rows (CSV/TSV, Criteo, libSVM)";
  t.train = [](const CliArgs& a) {
    TrainOptions o;
    static_cast<train::RunOptions&>(o) = run_options_of(a);
    return train(a.positionals.at(0), o);
  };
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return evaluate(a.positionals.at(0), a.positionals.at(1), common_options(a));
  };
  t.model_verbs["predict"] = [](const CliArgs& a) {
    if (a.positionals.size() != 3)
      TESSERA_THROW(Usage, "usage: tessera predict MODEL INPUT OUTPUT (a behaviour model)");
    PredictOptions o;
    static_cast<CommonOptions&>(o) = common_options(a);
    o.batch_size = a.count("--batch-size", 4096);
    return predict(a.positionals[0], a.positionals[1], a.positionals[2], o);
  };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::behaviour
