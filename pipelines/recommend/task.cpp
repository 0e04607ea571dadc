// The recommendation task's registration (pipelines/task.h): train a config; a model file's
// top-K lists, scores for the (user, item) pairs or users of a file, embedding export and
// held-out evaluation; the pipeline's stage kinds.
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/predict.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/recommend/stages.h"
#include "pipelines/task_verbs.h"

namespace tessera::recommend {

namespace {

PredictOptions predict_options(const CliArgs& a) {
  PredictOptions o;
  o.k = a.count("--k", o.k);
  const std::string on_error = a.text("--on-error", "error");
  if (on_error != "error" && on_error != "skip")
    TESSERA_THROW(Usage, "--on-error must be one of: error, skip (got '" << on_error << "')");
  o.skip_bad_rows = on_error == "skip";
  return o;
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t =
      task_with_train("recommend", "personalised recommendation: biased MF or two-tower on ratings",
                      train, register_stages, recommend_config_example, recommend_config_schema);
  t.model_verbs["recommend"] = [](const CliArgs& a) {
    RecommendOptions o;
    o.k = a.count("--k", 10);
    o.quiet = a.quiet();
    return recommend(a.positionals.at(0), a.positionals.at(1), o);
  };
  t.model_verbs["export"] = [](const CliArgs& a) {
    return export_model(a.positionals.at(0), parse_export_format(a.text("--format", "npy")),
                        a.positionals.at(1));
  };
  // DATA: for an mf model trained with data.test, a test file measured directly; otherwise the
  // ratings the model was trained on, whose held-out split is rebuilt and measured.
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return evaluate_held_out(a.positionals.at(0), a.positionals.at(1));
  };
  // predict MODEL INPUT OUTPUT: scores of INPUT's (user, item) rows, or top-K of its users.
  t.model_verbs["predict"] =
      model_input_output_verb(predict, predict_options,
                              "usage: tessera predict MODEL INPUT OUTPUT (a recommendation model)");
  registry.add(std::move(t));
}

}  // namespace tessera::recommend
