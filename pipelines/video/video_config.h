#pragma once
// The video-clip classification task's config ("task": "video"): data (a directory of clips, one
// subfolder per class, or generated Moving Fashion-MNIST clips), the clip shape (T frames of
// H x W, fed to the CNN as T input channels, or one frame at a time when the layer list starts
// with "frames_to_batch" and pools with "temporal_avgpool" / "temporal_maxpool": the only task
// whose layer list may hold them), the CNN's layer list and training (the image task's sections,
// pipelines/image/image_config.h). Each section is declared once (host/config/declare.h):
// validated completely before anything is allocated, errors naming file, line:column and JSON
// path. Defaults: pipelines/video/moving-fashion-mnist.json.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/entry_points.h"
#include "pipelines/image/image_config.h"

namespace tessera {

enum class VideoGenerator : uint8_t { MovingFashionMnist };
enum class VideoGenLabel : uint8_t { ItemClass, Direction };

const json::Choices<VideoGenerator>& video_generator_choices();  // "moving-fashion-mnist"
const json::Choices<VideoGenLabel>& video_label_choices();       // "class", "direction"

// Clips generated the Moving-MNIST way (host/data/moving_clips.h) from Fashion-MNIST items:
// training clips from the train images, test clips from the t10k images (unseen items).
struct VideoGenerateConfig {
  VideoGenerator kind = VideoGenerator::MovingFashionMnist;
  VideoGenLabel label = VideoGenLabel::Direction;
  int64_t clips = 2000;                 // training clips (validation is held out of these)
  int64_t test_clips = 500;             // 0: no test split
  int items = 1;                        // items per clip (combined by maximum)
  double min_speed = 2, max_speed = 4;  // pixels per frame
  std::string source_dir = "/usr/share/datasets/fashion-mnist";  // the four IDX .gz files
};

// The data is folders of clips (or generated), not named files, so the DataFiles keys
// (train/validation/test files) do not apply: `dir` and `test_dir` are its train and test.
struct VideoDataConfig {
  // Exactly one of `dir` and `generate`.
  std::string dir;       // DIR/<class>/<clip folder of frames | clip.tclip>
  std::string test_dir;  // same layout; empty: `test_fraction` of `dir`'s clips
  bool generated = false;
  VideoGenerateConfig generate;
  double test_fraction = 0.2;            // dir without test_dir only
  double validation_fraction = 0.1;      // of the training clips, held out per epoch
  int frames = 10;                       // T: every clip must have exactly this many frames
  int64_t height = 64, width = 64;       // frames of another size are resized (bilinear)
  int64_t classes = 0;                   // > 0: checked against the data's class count
  std::vector<std::string> class_names;  // dir: the class subfolders to use, in this order
};

// RunSettings: name (default "video"), seed (default 42), device.
struct VideoConfig : RunSettings {
  VideoConfig() : RunSettings("video", 42) {}
  VideoDataConfig data;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

// parse_video_config (every error at once, with file:line:col and JSON path), load_video_config,
// to_json (the resolved config) and equality of resolved configs.
TESSERA_DECLARE_CONFIG_IO(VideoConfig, parse_video_config, load_video_config);

// `tessera config video --example` and --schema; the example shows example_video_config() (the
// defaults, generating Moving Fashion-MNIST clips, with a small layer list).
std::string video_config_example();
std::string video_config_schema();
VideoConfig example_video_config();

// ---- declarations (host/config/declare.h) ---------------------------------------------------

template <typename V>
void fields(V& v, VideoGenerateConfig& c) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  v.choice(F("kind", "the generator").required(), c.kind, video_generator_choices());
  v.choice(F("label", "what a clip's class is: its item's class or its initial heading"), c.label,
           video_label_choices());
  v.integer(F("clips", "training clips (validation is held out of these)"), c.clips,
            IntBounds::closed(2, 1 << 22));
  v.integer(F("test_clips", "test clips (0: no test split)"), c.test_clips,
            IntBounds::closed(0, 1 << 22));
  v.integer(F("items", "items per clip"), c.items, IntBounds::closed(1, 16));
  v.number(F("min_speed", "pixels per frame"), c.min_speed, Bounds::closed(0, 64));
  v.number(F("max_speed", "pixels per frame (>= min_speed)"), c.max_speed, Bounds::closed(0, 64));
  v.check(c.max_speed >= c.min_speed, "max_speed",
          "must not be below min_speed (" + json::format_number(c.min_speed) + ")");
  v.string(F("source_dir", "the folder of Fashion-MNIST's four IDX .gz files"), c.source_dir,
           json::Text::NonEmpty);
}

// The checks generated clips add: a square canvas an item fits in, and the label's classes.
template <typename V>
void generated_clip_checks(V& v, const VideoDataConfig& c) {
  if (!c.generated) return;
  // Fashion-MNIST items are 28x28 and move inside a square canvas.
  v.check(c.height == c.width, "width",
          "generated clips are square: width must equal height (" + std::to_string(c.height) + ")");
  v.check(c.height >= 28, "height", "generated clips need a canvas of at least 28 pixels");
  const bool direction = c.generate.label == VideoGenLabel::Direction;
  const int64_t n = direction ? 4 : 10;
  const char* what = direction ? "label \"direction\" has 4 classes"
                               : "label \"class\" has Fashion-MNIST's 10 classes";
  v.check(c.classes <= 0 || c.classes == n, "classes", what);
  v.check(c.class_names.empty() || static_cast<int64_t>(c.class_names.size()) == n, "class_names",
          what);
}

template <typename V>
void fields(V& v, VideoDataConfig& c) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  using json::Text;
  v.validate([&](json::ObjectReader& r) { c.generated = r.has("generate"); });
  v.when(!c.generated, "give \"dir\" or \"generate\", not both", [&] {
    v.string(F("dir", "a folder of class subfolders of clips"), c.dir, Text::NonEmpty);
  });
  v.when(c.generated, "clips are generated instead of read from \"dir\"",
         [&] { v.section(F("generate", "generated clips"), c.generate); });
  v.check(c.generated || !c.dir.empty(), "",
          "give \"dir\" (a folder of class subfolders) or \"generate\"");
  v.when(!c.generated, "applies to \"dir\" only (generated data has \"test_clips\")", [&] {
    v.string(F("test_dir", "test clips, laid out as dir").written_if(!c.test_dir.empty()),
             c.test_dir, Text::NonEmpty);
  });
  v.when(!c.generated && c.test_dir.empty(), "applies to \"dir\" without \"test_dir\" only", [&] {
    v.number(F("test_fraction", "the share of dir's clips held out as the test split"),
             c.test_fraction, Bounds::closed_open(0, 0.9));
  });
  v.number(F("validation_fraction", "the share of the training clips held out per epoch"),
           c.validation_fraction, Bounds::closed(0, 0.9));
  v.integer(F("frames", "frames per clip"), c.frames, IntBounds::closed(1, 4096));
  v.integer(F("height", "frame height (others are resized)"), c.height, IntBounds::closed(1, 4096));
  v.integer(F("width", "frame width (others are resized)"), c.width, IntBounds::closed(1, 4096));
  classes_field(v, c.classes, 1);
  class_names_field(v, c.class_names, c.classes, 1, Text::NonEmpty);
  generated_clip_checks(v, c);
}

template <typename V>
void fields(V& v, VideoConfig& c) {
  cnn_task_fields(v, "video", c);
  v.section(config::F("data", "the clips").required(), c.data);
  cnn_model_and_train(v, c.layers, FrameLayers::Allowed, c.train);
}

}  // namespace tessera
