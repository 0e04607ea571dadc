#pragma once
// The image-classification task's config ("task": "image"): data (IDX pair or the sklearn digits
// CSV), optional augmentation, the CNN's layer list, and training. Every section is declared once
// (a fields() list, host/config/declare.h) from which the validating reader (file, line:column,
// JSON path, closest key), the resolved writer, equality, the commented example and the JSON
// Schema come. The CNN sections (model layers, train) are shared with the audio and video tasks
// (pipelines/audio/audio_config.h, pipelines/video/video_config.h). Defaults:
// pipelines/image/*.json.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/declare.h"
#include "host/config/entry_points.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "host/model/cnn.h"

namespace tessera {

enum class ImageFormat : uint8_t { Idx, DigitsCsv };

const json::Choices<ImageFormat>& image_format_choices();  // "idx", "digits_csv"
const json::Choices<CnnLayerType>& cnn_layer_choices();
const json::Choices<Activation>& cnn_activation_choices();  // "none", "relu", "tanh", "sigmoid"

struct ImageDataConfig {
  // Relative file names are looked up in `dir` when set, else through the dataset registry
  // (host/data/registry.h) when `dataset` is set, else used as given.
  std::string dataset;
  std::string dir;
  ImageFormat format = ImageFormat::Idx;
  // idx: four files; digits_csv: `train`, and `test` or else `test_fraction` of train.
  std::string train_images, train_labels, test_images, test_labels;
  std::string train, test;
  double test_fraction = 0.2;        // digits_csv without `test` only
  double validation_fraction = 0.1;  // of the training images, held out per epoch
  int64_t max_train_images = 0;      // > 0: use only the first this many (benchmarks, smoke runs)
  std::vector<std::string> class_names;  // optional; else "0".."C-1"
  int64_t classes = 10;
};

struct AugmentConfig {
  int crop_padding = 0;          // random crop: shift by up to this many pixels, zero-filled
  bool horizontal_flip = false;  // mirror half the images
};

// Besides TrainLoop's keys (optimizer, lr_schedule, runs_dir, on_nonfinite):
struct ImageTrainConfig : TrainLoop {
  int epochs = 10;
  int batch_size = 128;
  int eval_batch_size = 256;
};

// RunSettings: name (default "image"), seed (default 42), device.
struct ImageConfig : RunSettings {
  ImageConfig() : RunSettings("image", 42) {}
  ImageDataConfig data;
  AugmentConfig augment;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

// parse_image_config (every error at once, with file:line:col and JSON path), load_image_config,
// to_json (the resolved config) and equality of resolved configs.
TESSERA_DECLARE_CONFIG_IO(ImageConfig, parse_image_config, load_image_config);
// The layer list alone (also stored in model artefacts).
void write_layers(json::JsonWriter& w, const std::vector<CnnLayerSpec>& layers);
std::vector<CnnLayerSpec> parse_layers(const std::string& json_array_text);

// `tessera config image --example` (every field with its default, documented) and --schema.
// The example's values are example_image_config(): the defaults, with the required fields (data
// files, layers) filled in.
std::string image_config_example();
std::string image_config_schema();
ImageConfig example_image_config();

// ---- declarations (host/config/declare.h) ---------------------------------------------------

// Per-frame layers (frames_to_batch, temporal_*pool) are errors naming their path unless
// `frames` is Allowed (video); then the fold must be the first layer and be followed by exactly
// one temporal pool.
enum class FrameLayers : uint8_t { Refused, Allowed };

// The "model" object of the CNN tasks: {"layers": [...]}.
struct CnnModelSection {
  std::vector<CnnLayerSpec>* layers;
  FrameLayers frames;
};

namespace config {
// Reports misplaced per-frame layers of `model.layers` (the reader of CnnModelSection).
void check_frame_layers(json::ObjectReader& model, const std::vector<CnnLayerSpec>& layers,
                        FrameLayers frames);
}  // namespace config

template <typename V>
void fields(V& v, CnnLayerSpec& c) {
  using config::F;
  using json::IntBounds;
  // A layer's type has no default: one that does not read is taken as "relu" (no fields), so
  // the type is the one error reported.
  if (v.reading()) c.type = CnnLayerType::Relu;
  v.choice(F("type", "the layer").required(), c.type, cnn_layer_choices());
  const bool conv = c.type == CnnLayerType::Conv, dense = c.type == CnnLayerType::Dense;
  const bool pool = c.type == CnnLayerType::MaxPool || c.type == CnnLayerType::AvgPool;
  if (v.reading() && pool) c.kernel = 2;
  if (v.reading() && c.type == CnnLayerType::Dropout) c.p = 0.5f;
  // Keys of another layer type are unknown keys here (the reader's closest-key message).
  v.when(conv, "", [&] {
    v.integer(F("filters", "output channels").required(), c.units, IntBounds::closed(1, 65536));
    v.integer(F("kernel", "square kernel size"), c.kernel, IntBounds::closed(1, 64));
    v.integer(F("stride", "stride"), c.stride, IntBounds::closed(1, 64));
    v.integer(F("padding", "zero padding on each side"), c.padding, IntBounds::closed(0, 64));
    v.integer(F("dilation", "kernel dilation"), c.dilation, IntBounds::closed(1, 64));
    v.integer(F("groups", "grouped convolution (divides filters)"), c.groups,
              IntBounds::closed(1, 65536));
    v.check(
        c.units % c.groups == 0, "groups",
        std::to_string(c.groups) + " groups do not divide " + std::to_string(c.units) + " filters");
  });
  v.when(dense, "", [&] {
    v.integer(F("units", "output features").required(), c.units, IntBounds::closed(1, 1 << 20));
  });
  v.when(conv || dense, "", [&] {
    v.boolean(F("bias", "add a bias"), c.bias);
    v.choice(F("activation", "fused after the layer"), c.activation, cnn_activation_choices());
  });
  v.when(pool, "", [&] {
    v.integer(F("kernel", "window size"), c.kernel, IntBounds::closed(1, 64));
    if (v.reading() && pool) c.stride = c.kernel;  // the stride defaults to the window
    v.integer(F("stride", "stride (default: the window)"), c.stride, IntBounds::closed(1, 64));
    v.integer(F("padding", "padding on each side (< kernel)"), c.padding, IntBounds::closed(0, 63));
    v.check(c.padding < c.kernel, "padding",
            "must be smaller than the kernel (" + std::to_string(c.kernel) + ")");
  });
  v.when(c.type == CnnLayerType::Dropout, "", [&] {
    double p = c.p;
    v.number(F("p", "the probability of dropping a value"), p, json::Bounds::closed_open(0, 1));
    if (v.reading()) c.p = static_cast<float>(p);
  });
}

template <typename V>
void fields(V& v, CnnModelSection& c) {
  v.section_list(
      config::F("layers", "the layers in order; a dense layer to `classes` logits is appended")
          .required(),
      *c.layers, json::IntBounds::closed(0, 256));
  v.validate([&](json::ObjectReader& r) { config::check_frame_layers(r, *c.layers, c.frames); });
}

template <typename V>
void fields(V& v, ImageTrainConfig& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("epochs", "passes over the training images"), c.epochs, IntBounds::closed(1, 100000));
  v.integer(F("batch_size", "training batch size"), c.batch_size, IntBounds::closed(2, 1 << 16));
  v.integer(F("eval_batch_size", "evaluation batch size"), c.eval_batch_size,
            IntBounds::closed(1, 1 << 16));
  config::optimizer_fields(v, c.optimizer, c.lr_schedule, "the update rule");
  config::runs_dir_field(v, c.runs_dir);
  config::on_nonfinite_field(v, c.on_nonfinite);
}

// The root fields every CNN task starts with: "task", the run's name, seed and device.
template <typename V>
void cnn_task_fields(V& v, const char* task, RunSettings& c) {
  config::run_settings_fields(v, task, "the task", c,
                              "seeds the splits, the initial weights and the batch order");
}

// The "model" and "train" sections every CNN task ends with.
template <typename V>
void cnn_model_and_train(V& v, std::vector<CnnLayerSpec>& layers, FrameLayers frames,
                         ImageTrainConfig& train) {
  CnnModelSection model{&layers, frames};
  v.section(config::F("model", "the CNN").required(), model);
  v.section(config::F("train", "training"), train);
}

// "classes" (written when >= `min_classes`) and "class_names" (checked against it then).
template <typename V>
void classes_field(V& v, int64_t& classes, int64_t min_classes) {
  v.integer(config::F("classes", "the number of classes").written_if(classes >= min_classes),
            classes, json::IntBounds::closed(2, 100000));
}
template <typename V>
void class_names_field(V& v, std::vector<std::string>& names, int64_t classes, int64_t min_classes,
                       json::Text rule = json::Text::Any) {
  v.string_list(config::F("class_names", "a name per class (default \"0\"..\"C-1\")")
                    .written_if(!names.empty()),
                names, rule);
  v.check(names.empty() || classes < min_classes || static_cast<int64_t>(names.size()) == classes,
          "class_names",
          std::to_string(names.size()) + " names for " + std::to_string(classes) + " classes");
}

template <typename V>
void fields(V& v, ImageDataConfig& c) {
  using config::F;
  using json::Bounds;
  using json::Text;
  v.string(F("dataset", "a data registry name; relative file names are its files")
               .written_if(!c.dataset.empty()),
           c.dataset);
  v.string(F("dir", "a folder that relative file names are in").written_if(!c.dir.empty()), c.dir);
  v.choice(F("format", "idx: image/label file pairs; digits_csv: one CSV").required(), c.format,
           image_format_choices());
  v.when(c.format == ImageFormat::Idx, "only applies to format \"idx\"", [&] {
    v.string(F("train_images", "IDX images, gzipped or not").required(), c.train_images,
             Text::NonEmpty);
    v.string(F("train_labels", "IDX labels").required(), c.train_labels, Text::NonEmpty);
    const bool test = !c.test_images.empty();
    v.string(F("test_images", "IDX test images (with test_labels)").written_if(test),
             c.test_images);
    v.string(F("test_labels", "IDX test labels (with test_images)").written_if(test),
             c.test_labels);
    v.check(c.test_images.empty() == c.test_labels.empty(),
            c.test_images.empty() ? "test_labels" : "test_images",
            "test_images and test_labels go together");
  });
  v.when(c.format == ImageFormat::DigitsCsv, "only applies to format \"digits_csv\"", [&] {
    v.string(F("train", "the digits CSV (64 pixels and a label per row)").required(), c.train,
             Text::NonEmpty);
    v.string(F("test", "a digits CSV for the test split (else test_fraction of train)")
                 .written_if(!c.test.empty()),
             c.test);
    v.when(c.test.empty(), "only applies without a \"test\" file", [&] {
      v.number(F("test_fraction", "the share of train held out as the test split"), c.test_fraction,
               Bounds::closed_open(0, 0.9));
    });
  });
  v.number(F("validation_fraction", "the share of the training images held out per epoch"),
           c.validation_fraction, Bounds::closed(0, 0.9));
  classes_field(v, c.classes, 0);
  v.integer(F("max_train_images", "> 0: use only the first this many training images")
                .written_if(c.max_train_images > 0),
            c.max_train_images, json::IntBounds::at_least(0));
  class_names_field(v, c.class_names, c.classes, 0);
}

template <typename V>
void fields(V& v, AugmentConfig& c) {
  using config::F;
  v.integer(F("crop_padding", "random crop: shift by up to this many pixels, zero-filled"),
            c.crop_padding, json::IntBounds::closed(0, 16));
  v.boolean(F("horizontal_flip", "mirror half the images"), c.horizontal_flip);
}

template <typename V>
void fields(V& v, ImageConfig& c) {
  using config::F;
  cnn_task_fields(v, "image", c);
  v.section(F("data", "the images").required(), c.data);
  v.section(F("augment", "training-time augmentation"), c.augment);
  cnn_model_and_train(v, c.layers, FrameLayers::Refused, c.train);
}

}  // namespace tessera
