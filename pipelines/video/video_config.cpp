// The video task's config: the choice tables and the entry points over the declarations in
// video_config.h.
#include "pipelines/video/video_config.h"

namespace tessera {

const json::Choices<VideoGenerator>& video_generator_choices() {
  static const json::Choices<VideoGenerator> c = {
      {"moving-fashion-mnist", VideoGenerator::MovingFashionMnist}};
  return c;
}

const json::Choices<VideoGenLabel>& video_label_choices() {
  static const json::Choices<VideoGenLabel> c = {{"class", VideoGenLabel::ItemClass},
                                                 {"direction", VideoGenLabel::Direction}};
  return c;
}

VideoConfig parse_video_config(const std::string& json_text, const std::string& source_path) {
  return config::read_config<VideoConfig>(json_text, source_path);
}

VideoConfig load_video_config(const std::string& path) {
  return parse_video_config(json::read_text_file(path), path);
}

std::string to_json(const VideoConfig& c) {
  return config::write_config(c);
}

bool operator==(const VideoConfig& a, const VideoConfig& b) {
  return config::same_config(a, b);
}

VideoConfig example_video_config() {
  VideoConfig c;
  c.data.generated = true;
  c.data.classes = 4;  // the "direction" label's
  c.layers = example_image_config().layers;
  return c;
}

std::string video_config_example() {
  return config::example_config(
      "tessera config for \"task\": \"video\": clip classification. A clip's frames are the "
      "CNN's input channels, or (a layer list starting with \"frames_to_batch\" and pooling with "
      "a temporal pool) each frame goes through the CNN alone. Clips come from a folder of class "
      "subfolders (dir) or are generated (generate). pipelines/video/README.md describes every "
      "section.",
      example_video_config());
}

std::string video_config_schema() {
  return config::schema_config("video", example_video_config());
}

bool is_video_config_file(const std::string& path) {
  return json::file_has_task(path, "video");
}

}  // namespace tessera
