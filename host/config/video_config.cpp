// Reading, validating and writing the video task's config.
#include "host/config/video_config.h"

#include "host/config/json_writer.h"

namespace tessera {

namespace {

using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

const json::Choices<VideoGenerator>& generator_choices() {
  static const json::Choices<VideoGenerator> c = {
      {"moving-fashion-mnist", VideoGenerator::MovingFashionMnist}};
  return c;
}
const json::Choices<VideoGenLabel>& label_choices() {
  static const json::Choices<VideoGenLabel> c = {{"class", VideoGenLabel::ItemClass},
                                                 {"direction", VideoGenLabel::Direction}};
  return c;
}

void read_generate(ObjectReader& g, VideoDataConfig& dc) {
  VideoGenerateConfig& gc = dc.generate;
  gc.kind = g.required_choice("kind", generator_choices(), gc.kind);
  gc.label = g.choice("label", gc.label, label_choices());
  gc.clips = g.integer<int64_t>("clips", gc.clips, IntBounds::closed(2, 1 << 22));
  gc.test_clips = g.integer<int64_t>("test_clips", gc.test_clips, IntBounds::closed(0, 1 << 22));
  gc.items = g.integer<int>("items", gc.items, IntBounds::closed(1, 16));
  gc.min_speed = g.number("min_speed", gc.min_speed, Bounds::closed(0.0, 64.0));
  gc.max_speed = g.number("max_speed", gc.max_speed, Bounds::closed(0.0, 64.0));
  if (gc.max_speed < gc.min_speed)
    g.error("max_speed", "must not be below min_speed (" + json::format_number(gc.min_speed) + ")");
  gc.source_dir = g.string("source_dir", gc.source_dir, Text::NonEmpty);
}

void read_config(ObjectReader& root, VideoConfig& c) {
  static const json::Choices<int> kTask = {{"video", 0}};
  root.required_choice("task", kTask, 0);
  c.name = config::read_run_name(root, "name", c.name);
  c.seed = root.integer<int64_t>("seed", c.seed, IntBounds::at_least(0));
  c.device = config::read_device(root, "device", c.device);
  {
    ObjectReader d = root.required_object("data");
    VideoDataConfig& dc = c.data;
    dc.dir = d.string("dir", "", Text::NonEmpty);
    dc.generated = d.has("generate");
    if (dc.generated) {
      ObjectReader g = d.object("generate");
      read_generate(g, dc);
      g.finish();
    } else {
      d.allow("generate");
    }
    if (dc.dir.empty() == !dc.generated)
      d.error(dc.generated ? "dir" : "", dc.generated ? "give \"dir\" or \"generate\", not both"
                                                      : "give \"dir\" (a folder of class "
                                                        "subfolders) or \"generate\"");
    dc.test_dir = d.string("test_dir", "", Text::NonEmpty);
    dc.test_fraction = d.number("test_fraction", dc.test_fraction, Bounds::closed_open(0.0, 0.9));
    if (dc.generated && d.has("test_dir"))
      d.error("test_dir", "applies to \"dir\" only (generated data has \"test_clips\")");
    if (d.has("test_fraction") && (dc.generated || d.has("test_dir")))
      d.error("test_fraction", "applies to \"dir\" without \"test_dir\" only");
    dc.validation_fraction =
        d.number("validation_fraction", dc.validation_fraction, Bounds::closed(0.0, 0.9));
    dc.frames = d.integer<int>("frames", dc.frames, IntBounds::closed(1, 4096));
    dc.height = d.integer<int64_t>("height", dc.height, IntBounds::closed(1, 4096));
    dc.width = d.integer<int64_t>("width", dc.width, IntBounds::closed(1, 4096));
    if (dc.generated) {
      // Fashion-MNIST items are 28x28 and move inside a square canvas.
      if (dc.height != dc.width)
        d.error("width", "generated clips are square: width must equal height (" +
                             std::to_string(dc.height) + ")");
      if (dc.height < 28) d.error("height", "generated clips need a canvas of at least 28 pixels");
    }
    dc.classes = d.integer<int64_t>("classes", 0, IntBounds::closed(2, 100000));
    dc.class_names = d.string_list("class_names", {}, Text::NonEmpty);
    if (!dc.class_names.empty() && dc.classes > 0 &&
        static_cast<int64_t>(dc.class_names.size()) != dc.classes)
      d.error("class_names", std::to_string(dc.class_names.size()) + " names for " +
                                 std::to_string(dc.classes) + " classes");
    if (dc.generated) {
      const int64_t n = dc.generate.label == VideoGenLabel::Direction ? 4 : 10;
      const char* what = dc.generate.label == VideoGenLabel::Direction
                             ? "label \"direction\" has 4 classes"
                             : "label \"class\" has Fashion-MNIST's 10 classes";
      if (dc.classes > 0 && dc.classes != n) d.error("classes", what);
      if (!dc.class_names.empty() && static_cast<int64_t>(dc.class_names.size()) != n)
        d.error("class_names", what);
    }
    d.finish();
  }
  {
    ObjectReader m = root.required_object("model");
    c.layers = read_layers(m, FrameLayers::Allowed);
    m.finish();
  }
  read_cnn_train(root, c.train);
}

}  // namespace

VideoConfig parse_video_config(const std::string& json_text, const std::string& source_path) {
  return json::read_document<VideoConfig>(json_text, source_path, read_config);
}

VideoConfig load_video_config(const std::string& path) {
  return parse_video_config(json::read_text_file(path), path);
}

std::string to_json(const VideoConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "video").field("name", c.name).field("seed", c.seed).field("device", c.device);
  w.key("data").begin_object();
  const VideoDataConfig& d = c.data;
  if (d.generated) {
    const VideoGenerateConfig& g = d.generate;
    w.key("generate").begin_object();
    w.choice("kind", g.kind, generator_choices()).choice("label", g.label, label_choices());
    w.field("clips", g.clips).field("test_clips", g.test_clips).field("items", g.items);
    w.field("min_speed", g.min_speed).field("max_speed", g.max_speed);
    w.field("source_dir", g.source_dir);
    w.end_object();
  } else {
    w.field("dir", d.dir);
    if (!d.test_dir.empty())
      w.field("test_dir", d.test_dir);
    else
      w.field("test_fraction", d.test_fraction);
  }
  w.field("validation_fraction", d.validation_fraction).field("frames", d.frames);
  w.field("height", d.height).field("width", d.width);
  if (d.classes > 0) w.field("classes", d.classes);
  if (!d.class_names.empty()) w.field("class_names", d.class_names);
  w.end_object();
  w.key("model").begin_object().key("layers");
  write_layers(w, c.layers);
  w.end_object();
  write_cnn_train(w, c.train);
  w.end_object();
  return w.pretty();
}

bool is_video_config_file(const std::string& path) {
  return json::file_has_task(path, "video");
}

}  // namespace tessera
