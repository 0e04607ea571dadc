// The recommendation task's registration (pipelines/task.h): train a config; a model file's
// top-K lists, embedding export and held-out evaluation; the pipeline's stage kinds.
#include "pipelines/task.h"
#include "host/core/error.h"
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/stages.h"

namespace tessera::recommend {

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "recommend";
  t.about = "personalised recommendation: biased MF or two-tower on ratings";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
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
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::recommend
