// The audio task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one recording (WAV); the pipeline's stage kinds.
#include "pipelines/audio/audio.h"
#include "pipelines/audio/audio_config.h"
#include "pipelines/audio/stages.h"
#include "pipelines/task_verbs.h"

namespace tessera::audio {

void register_task(TaskRegistry& registry) {
  Task t = task_with_train("audio", "audio classification: log-mel spectrograms and a CNN", train,
                           register_stages, audio_config_example, audio_config_schema);
  t.model_verbs["evaluate"] = model_data_verb(evaluate, image::verb_options);
  // predict MODEL FILE.wav: the top 3 classes of one recording.
  t.model_verbs["predict"] = model_data_verb(
      [](const std::string& model, const std::string& wav, const Options& o) {
        return audio::predict(model, wav, o);
      },
      image::verb_options, "usage: tessera predict MODEL FILE.wav (an audio model)");
  registry.add(std::move(t));
}

}  // namespace tessera::audio
