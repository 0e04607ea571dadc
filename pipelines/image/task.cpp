// The image task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one image (PNG or PGM); the pipeline's stage kinds.
#include "pipelines/image/image.h"
#include "pipelines/image/image_config.h"
#include "pipelines/image/stages.h"
#include "pipelines/task_verbs.h"

namespace tessera::image {

Options verb_options(const CliArgs& a) {
  Options o;
  o.device = a.device();
  o.json = a.flag("--json");
  o.quiet = a.quiet();
  return o;
}

void register_task(TaskRegistry& registry) {
  Task t =
      task_with_train("image", "image recognition: a CNN on IDX, PNG, PGM or digits CSV images",
                      train, register_stages, image_config_example, image_config_schema);
  t.model_verbs["evaluate"] = model_data_verb(evaluate, verb_options);
  // predict MODEL IMAGE: the top 3 classes of one image.
  t.model_verbs["predict"] = model_data_verb(
      [](const std::string& model, const std::string& path, const Options& o) {
        return predict(model, path, o);
      },
      verb_options, "usage: tessera predict MODEL IMAGE (an image model: one PNG or PGM)");
  registry.add(std::move(t));
}

}  // namespace tessera::image
