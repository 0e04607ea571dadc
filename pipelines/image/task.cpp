// The image task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one image (PNG or PGM); the pipeline's stage kinds.
#include "host/core/error.h"
#include "pipelines/image/image.h"
#include "pipelines/image/stages.h"
#include "pipelines/task.h"

namespace tessera::image {

namespace {

// predict MODEL IMAGE: the top 3 classes of one image.
CommandResult predict_verb(const CliArgs& a) {
  if (a.positionals.size() != 2)
    TESSERA_THROW(Usage, "usage: tessera predict MODEL IMAGE (an image model: one PNG or PGM)");
  return predict(a.positionals[0], a.positionals[1], verb_options(a));
}

}  // namespace

Options verb_options(const CliArgs& a) {
  Options o;
  o.device = a.device();
  o.json = a.flag("--json");
  o.quiet = a.quiet();
  return o;
}

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "image";
  t.about = "image recognition: a CNN on IDX, PNG, PGM or digits CSV images";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return evaluate(a.positionals.at(0), a.positionals.at(1), verb_options(a));
  };
  t.model_verbs["predict"] = [](const CliArgs& a) { return predict_verb(a); };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::image
