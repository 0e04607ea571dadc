// The audio task's config: the choice tables and the entry points over the declarations in
// audio_config.h.
#include "pipelines/audio/audio_config.h"

namespace tessera {

const json::Choices<FitMode>& fit_choices() {
  static const json::Choices<FitMode> c = {{"center", FitMode::Center}, {"start", FitMode::Start}};
  return c;
}

const json::Choices<bool>& normalize_choices() {
  static const json::Choices<bool> c = {{"utterance", true}, {"none", false}};
  return c;
}

void write_audio_features(json::JsonWriter& w, const AudioFeatureConfig& f) {
  config::SectionWriter(w, /*identity=*/false).write_object(const_cast<AudioFeatureConfig&>(f));
}

AudioFeatureConfig parse_audio_features(const std::string& text) {
  return config::read_config<AudioFeatureConfig>(text, "<audio features>");
}

AudioConfig parse_audio_config(const std::string& json_text, const std::string& source_path) {
  return config::read_config<AudioConfig>(json_text, source_path);
}

AudioConfig load_audio_config(const std::string& path) {
  return parse_audio_config(json::read_text_file(path), path);
}

std::string to_json(const AudioConfig& c) {
  return config::write_config(c);
}

bool operator==(const AudioConfig& a, const AudioConfig& b) {
  return config::same_config(a, b);
}

AudioConfig example_audio_config() {
  AudioConfig c;
  c.data.dataset = "fsdd";
  c.layers = example_image_config().layers;
  return c;
}

std::string audio_config_example() {
  return config::example_config(
      "tessera config for \"task\": \"audio\": spoken-word classification. Each WAV file becomes "
      "a log-mel image (features) that a CNN (model.layers, as in the image task) classifies; "
      "the split comes from the file names {label}_{speaker}_{index}.wav. "
      "pipelines/audio/README.md describes every section.",
      example_audio_config());
}

std::string audio_config_schema() {
  return config::schema_config("audio", example_audio_config());
}

bool is_audio_config_file(const std::string& path) {
  return json::file_has_task(path, "audio");
}

}  // namespace tessera
