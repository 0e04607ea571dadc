// The text-classification task's registration (pipelines/task.h): train a config; a model
// file's evaluation and batch classification; the pipeline's stage kinds.
#include "pipelines/task_verbs.h"
#include "pipelines/textclass/stages.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textclass/textclass_config.h"

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
  Task t = task_with_train("textclass", "text classification: a (bi)LSTM over tokens", train,
                           register_stages, textclass_config_example, textclass_config_schema);
  t.model_verbs["evaluate"] = model_data_verb(evaluate, verb_options);
  t.model_verbs["predict"] = model_input_output_verb(
      predict, verb_options, "usage: tessera predict MODEL INPUT OUTPUT (a textclass model)");
  registry.add(std::move(t));
}

}  // namespace tessera::textclass
