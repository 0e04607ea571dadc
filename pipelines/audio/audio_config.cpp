// The audio task's config: the choice tables and the entry points over the declarations in
// audio_config.h.
#include "pipelines/audio/audio_config.h"

#include "host/config/choices.h"
#include "host/config/entry_points.h"

namespace tessera {

TESSERA_CHOICES(fit_choices, FitMode, {"center", FitMode::Center}, {"start", FitMode::Start});

TESSERA_CHOICES(normalize_choices, bool, {"utterance", true}, {"none", false});

void write_audio_features(json::JsonWriter& w, const AudioFeatureConfig& f) {
  config::SectionWriter(w, /*identity=*/false).write_object(const_cast<AudioFeatureConfig&>(f));
}

AudioFeatureConfig parse_audio_features(const std::string& text) {
  return config::read_config<AudioFeatureConfig>(text, "<audio features>");
}

TESSERA_CONFIG_IO(AudioConfig, parse_audio_config, load_audio_config, json::read_text_file);

AudioConfig example_audio_config() {
  AudioConfig c;
  c.data.dataset = "fsdd";
  c.layers = example_image_config().layers;
  return c;
}

TESSERA_CONFIG_DOCS(
    audio_config_example, audio_config_schema, "audio",
    "tessera config for \"task\": \"audio\": spoken-word classification. Each WAV file becomes "
    "a log-mel image (features) that a CNN (model.layers, as in the image task) classifies; "
    "the split comes from the file names {label}_{speaker}_{index}.wav. "
    "pipelines/audio/README.md describes every section.",
    example_audio_config(), example_audio_config());

}  // namespace tessera
