// The video task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one clip (a folder of frames or a .tclip file); the pipeline's stage kinds.
#include "host/core/error.h"
#include "pipelines/video/video.h"
#include "pipelines/video/stages.h"
#include "pipelines/task.h"

namespace tessera::video {

namespace {

// predict MODEL CLIP: the top 3 classes of one clip; predict MODEL DATA OUTPUT: every clip of a
// folder of class folders scored into a TSV.
CommandResult predict_verb(const CliArgs& a) {
  if (a.positionals.size() == 3)
    return video::batch_predict(a.positionals[0], a.positionals[1], a.positionals[2],
                         image::verb_options(a));
  if (a.positionals.size() != 2)
    TESSERA_THROW(Usage, "usage: tessera predict MODEL CLIP | tessera predict MODEL DATA OUTPUT "
                         "(a video model)");
  return video::predict(a.positionals[0], a.positionals[1], image::verb_options(a));
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "video";
  t.about = "video frames: a CNN over clips (frame folders or .tclip)";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return video::evaluate(a.positionals.at(0), a.positionals.at(1), image::verb_options(a));
  };
  t.model_verbs["predict"] = [](const CliArgs& a) { return predict_verb(a); };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::video
