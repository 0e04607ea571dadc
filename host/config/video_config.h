#pragma once
// The video-clip classification task's config ("task": "video"): data (a directory of clips, one
// subfolder per class, or generated Moving Fashion-MNIST clips), the clip shape (T frames of
// H x W, fed to the CNN as T input channels, or one frame at a time when the layer list starts
// with "frames_to_batch" and pools with "temporal_avgpool" / "temporal_maxpool": the only task
// whose layer list may hold them), the CNN's layer list and training (the image
// task's sections, host/config/image_config.h). Validated completely before anything is
// allocated; errors name file, line:column and JSON path. Defaults:
// pipelines/video/moving-fashion-mnist.json.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/image_config.h"

namespace tessera {

enum class VideoGenerator : uint8_t { MovingFashionMnist };
enum class VideoGenLabel : uint8_t { ItemClass, Direction };

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

struct VideoConfig {
  std::string name = "video";
  int64_t seed = 42;
  std::string device = "auto";
  VideoDataConfig data;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

VideoConfig parse_video_config(const std::string& json_text, const std::string& source_path);
VideoConfig load_video_config(const std::string& path);
std::string to_json(const VideoConfig& config);

// Whether a config file declares "task": "video" (for the CLI's dispatch).
bool is_video_config_file(const std::string& path);

}  // namespace tessera
