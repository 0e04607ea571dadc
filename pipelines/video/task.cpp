// The video task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one clip (a folder of frames or a .tclip file); the pipeline's stage
// kinds.
#include "pipelines/task_verbs.h"
#include "pipelines/video/stages.h"
#include "pipelines/video/video.h"
#include "pipelines/video/video_config.h"

namespace tessera::video {

namespace {

// predict MODEL CLIP: the top 3 classes of one clip; predict MODEL DATA OUTPUT: every clip of a
// folder of class folders scored into a TSV.
CommandResult predict_verb(const CliArgs& a) {
  if (a.positionals.size() == 3)
    return video::batch_predict(a.positionals[0], a.positionals[1], a.positionals[2],
                                image::verb_options(a));
  if (a.positionals.size() != 2)
    TESSERA_THROW(Usage,
                  "usage: tessera predict MODEL CLIP | tessera predict MODEL DATA OUTPUT "
                  "(a video model)");
  return video::predict(a.positionals[0], a.positionals[1], image::verb_options(a));
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t = task_with_train("video", "video frames: a CNN over clips (frame folders or .tclip)",
                           train, register_stages, video_config_example, video_config_schema);
  t.model_verbs["evaluate"] = model_data_verb(evaluate, image::verb_options);
  t.model_verbs["predict"] = predict_verb;
  registry.add(std::move(t));
}

}  // namespace tessera::video
