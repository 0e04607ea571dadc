// The audio task's registration (pipelines/task.h): train a config; a model file's evaluation
// and top-3 prediction for one recording (WAV); the pipeline's stage kinds.
#include "host/core/error.h"
#include "pipelines/audio/audio.h"
#include "pipelines/audio/stages.h"
#include "pipelines/task.h"

namespace tessera::audio {

namespace {

// predict MODEL FILE.wav: the top 3 classes of one recording.
CommandResult predict_verb(const CliArgs& a) {
  if (a.positionals.size() != 2)
    TESSERA_THROW(Usage, "usage: tessera predict MODEL FILE.wav (an audio model)");
  return audio::predict(a.positionals[0], a.positionals[1], image::verb_options(a));
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "audio";
  t.about = "audio classification: log-mel spectrograms and a CNN";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.model_verbs["evaluate"] = [](const CliArgs& a) {
    return audio::evaluate(a.positionals.at(0), a.positionals.at(1), image::verb_options(a));
  };
  t.model_verbs["predict"] = [](const CliArgs& a) { return predict_verb(a); };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::audio
