// The image task's config: the choice tables, the per-frame layer rule, and the entry points over
// the declarations in image_config.h.
#include "pipelines/image/image_config.h"

#include "host/config/choices.h"
#include "host/config/entry_points.h"

namespace tessera {

TESSERA_CHOICES(image_format_choices, ImageFormat, {"idx", ImageFormat::Idx},
                {"digits_csv", ImageFormat::DigitsCsv});

TESSERA_CHOICES(cnn_layer_choices, CnnLayerType, {"conv", CnnLayerType::Conv},
                {"maxpool", CnnLayerType::MaxPool}, {"avgpool", CnnLayerType::AvgPool},
                {"global_avgpool", CnnLayerType::GlobalAvgPool},
                {"batchnorm", CnnLayerType::BatchNorm}, {"relu", CnnLayerType::Relu},
                {"flatten", CnnLayerType::Flatten}, {"dense", CnnLayerType::Dense},
                {"dropout", CnnLayerType::Dropout},
                {"frames_to_batch", CnnLayerType::FramesToBatch},
                {"temporal_avgpool", CnnLayerType::TemporalAvgPool},
                {"temporal_maxpool", CnnLayerType::TemporalMaxPool});

TESSERA_CHOICES(cnn_activation_choices, Activation, {"none", Activation::None},
                {"relu", Activation::Relu}, {"tanh", Activation::Tanh},
                {"sigmoid", Activation::Sigmoid});

namespace config {

namespace {

// What is wrong with per-frame layer `i` given the fold and pool seen before it ("" if nothing).
std::string frame_layer_fault(size_t i, bool is_fold, int64_t fold, int64_t pool,
                              FrameLayers frames) {
  if (frames == FrameLayers::Refused)
    return "per-frame layers are for video clips (\"task\": \"video\") only; this task's input "
           "has no frames";
  if (is_fold)
    return i == 0 ? ""
                  : "frames_to_batch must be the first layer: it reads the clip's frames "
                    "from the input channels";
  if (fold < 0)
    return "a temporal pool needs \"frames_to_batch\" as the first layer (the frames it pools)";
  if (pool >= 0) return "the frames are already pooled by layers[" + std::to_string(pool) + "]";
  return "";
}

}  // namespace

void check_frame_layers(json::ObjectReader& model, const std::vector<CnnLayerSpec>& layers,
                        FrameLayers frames) {
  const std::string list = model.path_of("layers");
  auto type_path = [&](size_t i) { return json::child_path(json::element_path(list, i), "type"); };
  int64_t fold = -1, pool = -1;  // indices of the frames_to_batch and its temporal pool
  for (size_t i = 0; i < layers.size(); ++i) {
    const CnnLayerType t = layers[i].type;
    const bool is_fold = t == CnnLayerType::FramesToBatch;
    const bool is_pool = t == CnnLayerType::TemporalAvgPool || t == CnnLayerType::TemporalMaxPool;
    if (!is_fold && !is_pool) continue;
    const std::string fault = frame_layer_fault(i, is_fold, fold, pool, frames);
    if (!fault.empty()) {
      model.errors().add(type_path(i), fault);
    } else if (is_fold) {
      fold = 0;
    } else {
      pool = static_cast<int64_t>(i);
    }
  }
  if (fold == 0 && pool < 0)
    model.errors().add(type_path(0),
                       "frames_to_batch needs a later \"temporal_avgpool\" or \"temporal_maxpool\" "
                       "layer (one feature vector per clip for the output layer)");
}

}  // namespace config

void write_layers(json::JsonWriter& w, const std::vector<CnnLayerSpec>& layers) {
  config::SectionWriter v(w, /*identity=*/false);
  w.begin_array();
  for (const CnnLayerSpec& l : layers) v.write_object(const_cast<CnnLayerSpec&>(l));
  w.end_array();
}

std::vector<CnnLayerSpec> parse_layers(const std::string& json_array_text) {
  const std::string wrapped = "{\"layers\": " + json_array_text + "}";
  return json::read_document<std::vector<CnnLayerSpec>>(
      wrapped, "<model layers>", [](json::ObjectReader& root, std::vector<CnnLayerSpec>& layers) {
        // The model checks their order again.
        CnnModelSection model{&layers, FrameLayers::Allowed};
        config::SectionReader v(root);
        fields(v, model);
      });
}

TESSERA_CONFIG_IO(ImageConfig, parse_image_config, load_image_config, json::read_text_file);

ImageConfig example_image_config() {
  ImageConfig c;
  c.data.dir = "/usr/share/datasets/fashion-mnist";
  c.data.train_images = "train-images-idx3-ubyte.gz";
  c.data.train_labels = "train-labels-idx1-ubyte.gz";
  c.data.test_images = "t10k-images-idx3-ubyte.gz";
  c.data.test_labels = "t10k-labels-idx1-ubyte.gz";
  CnnLayerSpec conv;
  conv.units = 16;
  conv.padding = 1;
  conv.activation = Activation::Relu;
  CnnLayerSpec pool;
  pool.type = CnnLayerType::MaxPool;
  pool.kernel = pool.stride = 2;
  CnnLayerSpec flatten;
  flatten.type = CnnLayerType::Flatten;
  c.layers = {conv, pool, flatten};
  return c;
}

TESSERA_CONFIG_DOCS(
    image_config_example, image_config_schema, "image",
    "tessera config for \"task\": \"image\": a CNN classifier of grey images (Fashion-MNIST's "
    "IDX files or the sklearn digits CSV), trained with softmax cross-entropy; the best epoch "
    "by validation accuracy is kept and scored on the test split. pipelines/image/README.md "
    "describes every section.",
    example_image_config(), example_image_config());

}  // namespace tessera
