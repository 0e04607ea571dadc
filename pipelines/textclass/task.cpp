// The text-classification task's registration (pipelines/task.h): train a config; a model
// file's evaluation and batch classification; the pipeline's stage kinds.
#include "host/core/error.h"
#include "pipelines/task.h"
#include "pipelines/textclass/stages.h"
#include "pipelines/textclass/textclass.h"

namespace tessera::textclass {

namespace {

RunOptions verb_options(const CliArgs& a) {
  RunOptions o;
  o.device = a.text("--device", "cpu");
  o.quiet = a.quiet();
  o.skip_lines = a.count("--skip-lines", -1);
  o.batch_size = a.count("--batch-size", 4096);
  return o;
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "textclass";
  t.about = "text classification: a (bi)LSTM over tokens";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return evaluate(a.positionals.at(0), a.positionals.at(1), verb_options(a));
  };
  t.model_verbs["predict"] = [](const CliArgs& a) {
    if (a.positionals.size() != 3)
      TESSERA_THROW(Usage, "usage: tessera predict MODEL INPUT OUTPUT (a textclass model)");
    return predict(a.positionals[0], a.positionals[1], a.positionals[2], verb_options(a));
  };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::textclass
