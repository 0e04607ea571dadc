// Reading, validating and writing the image task's config.
#include "host/config/image_config.h"

#include <cctype>

#include "host/config/json_writer.h"

namespace tessera {

const json::Choices<CnnLayerType>& cnn_layer_choices() {
  static const json::Choices<CnnLayerType> c = {
      {"conv", CnnLayerType::Conv},
      {"maxpool", CnnLayerType::MaxPool},
      {"avgpool", CnnLayerType::AvgPool},
      {"global_avgpool", CnnLayerType::GlobalAvgPool},
      {"batchnorm", CnnLayerType::BatchNorm},
      {"relu", CnnLayerType::Relu},
      {"flatten", CnnLayerType::Flatten},
      {"dense", CnnLayerType::Dense},
      {"dropout", CnnLayerType::Dropout},
      {"frames_to_batch", CnnLayerType::FramesToBatch},
      {"temporal_avgpool", CnnLayerType::TemporalAvgPool},
      {"temporal_maxpool", CnnLayerType::TemporalMaxPool}};
  return c;
}

namespace {

using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

const json::Choices<ImageFormat>& format_choices() {
  static const json::Choices<ImageFormat> c = {{"idx", ImageFormat::Idx},
                                               {"digits_csv", ImageFormat::DigitsCsv}};
  return c;
}

const json::Choices<Activation>& layer_activation_choices() {
  static const json::Choices<Activation> c = {{"none", Activation::None},
                                              {"relu", Activation::Relu},
                                              {"tanh", Activation::Tanh},
                                              {"sigmoid", Activation::Sigmoid}};
  return c;
}

}  // namespace

namespace {

CnnLayerSpec read_layer(ObjectReader& r) {
  CnnLayerSpec l;
  l.type = r.required_choice("type", cnn_layer_choices(), CnnLayerType::Relu);
  switch (l.type) {
    case CnnLayerType::Conv:
      l.units = r.required_integer<int64_t>("filters", IntBounds::closed(1, 65536));
      l.kernel = r.integer<int64_t>("kernel", 3, IntBounds::closed(1, 64));
      l.stride = r.integer<int64_t>("stride", 1, IntBounds::closed(1, 64));
      l.padding = r.integer<int64_t>("padding", 0, IntBounds::closed(0, 64));
      l.dilation = r.integer<int64_t>("dilation", 1, IntBounds::closed(1, 64));
      l.groups = r.integer<int64_t>("groups", 1, IntBounds::closed(1, 65536));
      l.bias = r.boolean("bias", true);
      l.activation = r.choice("activation", Activation::None, layer_activation_choices());
      if (l.units % l.groups != 0)
        r.error("groups", std::to_string(l.groups) + " groups do not divide " +
                              std::to_string(l.units) + " filters");
      break;
    case CnnLayerType::Dense:
      l.units = r.required_integer<int64_t>("units", IntBounds::closed(1, 1 << 20));
      l.bias = r.boolean("bias", true);
      l.activation = r.choice("activation", Activation::None, layer_activation_choices());
      break;
    case CnnLayerType::MaxPool:
    case CnnLayerType::AvgPool:
      l.kernel = r.integer<int64_t>("kernel", 2, IntBounds::closed(1, 64));
      l.stride = r.integer<int64_t>("stride", l.kernel, IntBounds::closed(1, 64));
      l.padding = r.integer<int64_t>("padding", 0, IntBounds::closed(0, 63));
      if (l.padding >= l.kernel)
        r.error("padding", "must be smaller than the kernel (" + std::to_string(l.kernel) + ")");
      break;
    case CnnLayerType::Dropout:
      l.p = static_cast<float>(r.number("p", 0.5, Bounds::closed_open(0.0, 1.0)));
      break;
    default:
      break;
  }
  return l;
}

}  // namespace

std::vector<CnnLayerSpec> read_layers(ObjectReader& model, FrameLayers frames) {
  std::vector<CnnLayerSpec> layers;
  std::vector<ObjectReader> list = model.required_object_list("layers", IntBounds::closed(0, 256));
  int64_t fold = -1, pool = -1;  // indices of the frames_to_batch and its temporal pool
  for (size_t i = 0; i < list.size(); ++i) {
    ObjectReader& lr = list[i];
    layers.push_back(read_layer(lr));
    lr.finish();
    const CnnLayerType t = layers.back().type;
    const bool is_fold = t == CnnLayerType::FramesToBatch;
    const bool is_pool = t == CnnLayerType::TemporalAvgPool || t == CnnLayerType::TemporalMaxPool;
    if (!is_fold && !is_pool) continue;
    if (frames == FrameLayers::Refused) {
      lr.error("type",
               "per-frame layers are for video clips (\"task\": \"video\") only; "
               "this task's input has no frames");
    } else if (is_fold) {
      if (i != 0)
        lr.error("type",
                 "frames_to_batch must be the first layer: it reads the clip's frames "
                 "from the input channels");
      else
        fold = 0;
    } else if (fold < 0) {
      lr.error("type",
               "a temporal pool needs \"frames_to_batch\" as the first layer (the "
               "frames it pools)");
    } else if (pool >= 0) {
      lr.error("type", "the frames are already pooled by layers[" + std::to_string(pool) + "]");
    } else {
      pool = static_cast<int64_t>(i);
    }
  }
  if (fold == 0 && pool < 0)
    list[0].error("type",
                  "frames_to_batch needs a later \"temporal_avgpool\" or "
                  "\"temporal_maxpool\" layer (one feature vector per clip for the output "
                  "layer)");
  return layers;
}

void read_cnn_train(ObjectReader& root, ImageTrainConfig& tc) {
  ObjectReader t = root.object("train");
  tc.epochs = t.integer<int>("epochs", tc.epochs, IntBounds::closed(1, 100000));
  tc.batch_size = t.integer<int>("batch_size", tc.batch_size, IntBounds::closed(2, 1 << 16));
  tc.eval_batch_size =
      t.integer<int>("eval_batch_size", tc.eval_batch_size, IntBounds::closed(1, 1 << 16));
  tc.optimizer = config::read_optimizer(t, "optimizer", tc.optimizer);
  tc.lr_schedule = config::read_lr_schedule(t, "lr_schedule", tc.optimizer.lr, tc.lr_schedule);
  tc.runs_dir = t.string("runs_dir", tc.runs_dir, Text::NonEmpty);
  tc.on_nonfinite = t.choice(kOnNonFiniteKey, tc.on_nonfinite, nonfinite_policy_choices());
  t.finish();
}

void write_cnn_train(json::JsonWriter& w, const ImageTrainConfig& t) {
  w.key("train").begin_object();
  w.field("epochs", t.epochs).field("batch_size", t.batch_size);
  w.field("eval_batch_size", t.eval_batch_size);
  w.key("optimizer");
  config::write_optimizer(w, t.optimizer);
  w.key("lr_schedule");
  config::write_lr_schedule(w, t.lr_schedule);
  w.field("runs_dir", t.runs_dir);
  w.choice(kOnNonFiniteKey, t.on_nonfinite, nonfinite_policy_choices());
  w.end_object();
}

namespace {

void read_config(ObjectReader& root, ImageConfig& c) {
  static const json::Choices<int> kTask = {{"image", 0}};
  root.required_choice("task", kTask, 0);
  c.name = config::read_run_name(root, "name", c.name);
  c.seed = root.integer<int64_t>("seed", c.seed, IntBounds::at_least(0));
  c.device = config::read_device(root, "device", c.device);
  {
    ObjectReader d = root.required_object("data");
    ImageDataConfig& dc = c.data;
    dc.dataset = d.string("dataset", "");
    dc.dir = d.string("dir", "");
    dc.format = d.required_choice("format", format_choices(), ImageFormat::Idx);
    if (dc.format == ImageFormat::Idx) {
      dc.train_images = d.required_string("train_images");
      dc.train_labels = d.required_string("train_labels");
      dc.test_images = d.string("test_images", "");
      dc.test_labels = d.string("test_labels", "");
      if (dc.test_images.empty() != dc.test_labels.empty())
        d.error(dc.test_images.empty() ? "test_labels" : "test_images",
                "test_images and test_labels go together");
    } else {
      dc.train = d.required_string("train");
      dc.test_fraction = d.number("test_fraction", dc.test_fraction, Bounds::closed_open(0.0, 0.9));
    }
    dc.validation_fraction =
        d.number("validation_fraction", dc.validation_fraction, Bounds::closed(0.0, 0.9));
    dc.max_train_images = d.integer<int64_t>("max_train_images", 0, IntBounds::at_least(0));
    dc.classes = d.integer<int64_t>("classes", dc.classes, IntBounds::closed(2, 100000));
    dc.class_names = d.string_list("class_names", {});
    if (!dc.class_names.empty() && static_cast<int64_t>(dc.class_names.size()) != dc.classes)
      d.error("class_names", std::to_string(dc.class_names.size()) + " names for " +
                                 std::to_string(dc.classes) + " classes");
    d.finish();
  }
  {
    ObjectReader a = root.object("augment");
    c.augment.crop_padding = a.integer<int>("crop_padding", 0, IntBounds::closed(0, 16));
    c.augment.horizontal_flip = a.boolean("horizontal_flip", false);
    a.finish();
  }
  {
    ObjectReader m = root.required_object("model");
    c.layers = read_layers(m);
    m.finish();
  }
  read_cnn_train(root, c.train);
}

}  // namespace

void write_layers(json::JsonWriter& w, const std::vector<CnnLayerSpec>& layers) {
  w.begin_array();
  for (const CnnLayerSpec& l : layers) {
    w.begin_object();
    w.choice("type", l.type, cnn_layer_choices());
    switch (l.type) {
      case CnnLayerType::Conv:
        w.field("filters", l.units).field("kernel", l.kernel).field("stride", l.stride);
        w.field("padding", l.padding).field("dilation", l.dilation).field("groups", l.groups);
        w.field("bias", l.bias).choice("activation", l.activation, layer_activation_choices());
        break;
      case CnnLayerType::Dense:
        w.field("units", l.units).field("bias", l.bias);
        w.choice("activation", l.activation, layer_activation_choices());
        break;
      case CnnLayerType::MaxPool:
      case CnnLayerType::AvgPool:
        w.field("kernel", l.kernel).field("stride", l.stride).field("padding", l.padding);
        break;
      case CnnLayerType::Dropout:
        w.field("p", static_cast<double>(l.p));
        break;
      default:
        break;
    }
    w.end_object();
  }
  w.end_array();
}

std::vector<CnnLayerSpec> parse_layers(const std::string& json_array_text) {
  const std::string wrapped = "{\"layers\": " + json_array_text + "}";
  std::unique_ptr<json::Document> doc = json::parse(wrapped, "<model layers>");
  std::vector<CnnLayerSpec> layers;
  {
    ObjectReader root = doc->root();
    layers = read_layers(root, FrameLayers::Allowed);  // the model checks their order again
    root.finish();
  }
  doc->errors.throw_if_any();
  return layers;
}

ImageConfig parse_image_config(const std::string& json_text, const std::string& source_path) {
  return json::read_document<ImageConfig>(json_text, source_path, read_config);
}

ImageConfig load_image_config(const std::string& path) {
  return parse_image_config(json::read_text_file(path), path);
}

std::string to_json(const ImageConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "image").field("name", c.name).field("seed", c.seed).field("device", c.device);
  w.key("data").begin_object();
  const ImageDataConfig& d = c.data;
  if (!d.dataset.empty()) w.field("dataset", d.dataset);
  if (!d.dir.empty()) w.field("dir", d.dir);
  w.choice("format", d.format, format_choices());
  if (d.format == ImageFormat::Idx) {
    w.field("train_images", d.train_images).field("train_labels", d.train_labels);
    if (!d.test_images.empty())
      w.field("test_images", d.test_images).field("test_labels", d.test_labels);
  } else {
    w.field("train", d.train).field("test_fraction", d.test_fraction);
  }
  w.field("validation_fraction", d.validation_fraction).field("classes", d.classes);
  if (d.max_train_images > 0) w.field("max_train_images", d.max_train_images);
  if (!d.class_names.empty()) w.field("class_names", d.class_names);
  w.end_object();
  w.key("augment").begin_object();
  w.field("crop_padding", c.augment.crop_padding)
      .field("horizontal_flip", c.augment.horizontal_flip);
  w.end_object();
  w.key("model").begin_object().key("layers");
  write_layers(w, c.layers);
  w.end_object();
  write_cnn_train(w, c.train);
  w.end_object();
  return w.pretty();
}

bool is_image_config_file(const std::string& path) {
  return json::file_has_task(path, "image");
}

}  // namespace tessera
