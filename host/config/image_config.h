#pragma once
// The image-classification task's config ("task": "image"): data (IDX pair or the sklearn digits
// CSV), optional augmentation, the CNN's layer list, and training. Parsed and validated
// completely before anything is allocated; every error names the file, line:column and JSON
// path. Defaults: pipelines/image/*.json. to_json() writes the resolved config.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "host/model/cnn.h"

namespace tessera {

enum class ImageFormat : uint8_t { Idx, DigitsCsv };

struct ImageDataConfig {
  // Relative file names are looked up in `dir` when set, else through the dataset registry
  // (host/data/registry.h) when `dataset` is set, else used as given.
  std::string dataset;
  std::string dir;
  ImageFormat format = ImageFormat::Idx;
  // idx: four files; digits_csv: `train` alone (the test split is `test_fraction` of it).
  std::string train_images, train_labels, test_images, test_labels;
  std::string train;
  double test_fraction = 0.2;        // digits_csv only
  double validation_fraction = 0.1;  // of the training images, held out per epoch
  int64_t max_train_images = 0;      // > 0: use only the first this many (benchmarks, smoke runs)
  std::vector<std::string> class_names;  // optional; else "0".."C-1"
  int64_t classes = 10;
};

struct AugmentConfig {
  int crop_padding = 0;          // random crop: shift by up to this many pixels, zero-filled
  bool horizontal_flip = false;  // mirror half the images
};

struct ImageTrainConfig {
  int epochs = 10;
  int batch_size = 128;
  int eval_batch_size = 256;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  std::string runs_dir = "runs";
  // A NaN or Inf in the loss or a gradient: stop (default) or skip the batch (divergence.h).
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
};

struct ImageConfig {
  std::string name = "image";
  int64_t seed = 42;
  std::string device = "auto";
  ImageDataConfig data;
  AugmentConfig augment;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

const json::Choices<CnnLayerType>& cnn_layer_choices();
ImageConfig parse_image_config(const std::string& json_text, const std::string& source_path);
ImageConfig load_image_config(const std::string& path);
std::string to_json(const ImageConfig& config);
// The layer list alone (also stored in model artefacts).
void write_layers(json::JsonWriter& w, const std::vector<CnnLayerSpec>& layers);
std::vector<CnnLayerSpec> parse_layers(const std::string& json_array_text);

// Shared with the tasks built on the CNN (host/config/audio_config.h): the "layers" list of a
// model object, the "train" section of a root object (absent: `t` unchanged), run names.
// Per-frame layers (frames_to_batch, temporal_*pool) are errors naming their path unless
// `frames` is Allowed (video); then the fold must be the first layer and be followed by exactly
// one temporal pool.
enum class FrameLayers : uint8_t { Refused, Allowed };
std::vector<CnnLayerSpec> read_layers(json::ObjectReader& model,
                                      FrameLayers frames = FrameLayers::Refused);
void read_cnn_train(json::ObjectReader& root, ImageTrainConfig& t);
void write_cnn_train(json::JsonWriter& w, const ImageTrainConfig& t);

// Whether a config file declares "task": "image" (for the CLI's dispatch; false on anything
// unreadable, which the behaviour parser then reports).
bool is_image_config_file(const std::string& path);

}  // namespace tessera
