#pragma once
// The image pipeline's CNN training, evaluation and artefact code, open to the tasks built on
// it (pipelines/audio: log-mel images; video clips: frames as channels). A task turns its data
// into ImageSets (float [N, C, H, W] + labels), fills an ImageConfig (layers, train, classes),
// and may add members to the model artefact's header (its front end) and a per-batch
// augmentation hook. Training runs in the shared Trainer (host/train/trainer.h).
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "host/core/tensor.h"
#include "host/data/image_data.h"
#include "host/metrics/metrics.h"
#include "host/model/cnn.h"
#include "pipelines/image/image.h"
#include "pipelines/image/image_config.h"

namespace tessera::image {

struct Splits {
  ImageSet train, validation, test;
};

struct TaskHooks {
  std::string task = "image";  // the artefact's, the result JSON's and the checkpoint's "task"
  // The task's own config (audio, video) as resumable_json() writes it: a checkpoint resumes
  // only under the same; "" where the ImageConfig is the whole config (image).
  std::string resume_config;
  // Extra header members, `"key":value[,...]` (already JSON), stored in the model artefact.
  std::string meta_members;
  // Applied to each training batch after it is filled: x host [B, C, H, W].
  std::function<void(Tensor& x, std::mt19937_64& rng)> augment;
};

// A config of the image family (image, audio, video) as JSON, with what may change when a run is
// resumed left out: runs_dir, device and on_nonfinite (the epoch count stays: it sets the
// learning-rate schedule).
template <typename Config>
std::string resumable_json(Config c) {
  c.train.runs_dir = "-";
  c.train.on_nonfinite = NonFinitePolicy::Stop;
  c.device = "-";
  return to_json(c);
}

// Trains on already loaded splits (the body of train()); `config_json` is the resolved config
// written to the run directory.
Result train_on(ImageConfig cfg, const Splits& data, double load_seconds,
                const std::string& config_json, const TrainOptions& options,
                const TaskHooks& hooks);

struct LoadedModel {
  CnnSpec spec;
  std::vector<std::string> class_names;
  int64_t eval_batch_size = 256;
  std::map<std::string, Tensor> weights;
  std::string header_json;  // the artefact's whole header (task-specific members included)
};
// Error(Io) unless `path` is a tessera CNN model of task `task`.
LoadedModel load_model(const std::string& path, const std::string& task);
// Whether `path` is a model artefact of `task`.
bool is_model_file(const std::string& path, const std::string& task);
// A seeded split of [0, n): (the first n - k, the last k) of a permutation drawn from `seed`, with
// k = round(fraction * n). How the image family holds out test and validation items.
std::pair<std::vector<int64_t>, std::vector<int64_t>> seeded_split(int64_t n, double fraction,
                                                                   uint64_t seed);

// A model instantiated on a backend with its weights.
struct ReadyModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<CnnModel> model;
};
ReadyModel instantiate(const LoadedModel& m, const std::string& device, int64_t max_batch);

ConfusionMatrix evaluate_set(CnnModel& model, const ImageSet& set, int64_t batch, int classes);
// Class probabilities (softmax of the logits) of one input x [C, H, W].
std::vector<double> class_probabilities(CnnModel& model, const std::vector<float>& x);
// Indices of the k largest probabilities, largest first.
std::vector<int64_t> top_k(const std::vector<double>& p, int k);

void write_confusion(json::JsonWriter& w, const std::string& key, const ConfusionMatrix& cm);
std::string per_class_lines(const ConfusionMatrix& cm, const std::vector<std::string>& names);
std::string fmt(double v, int digits = 4);

// `tessera evaluate` on a model of the image family: `n` `items` ("images", "recordings",
// "clips") of `data`, measured on `device` in `seconds`.
struct EvaluationRun {
  std::string task, model_path, data, device, items;
  int64_t n = 0;
  double seconds = 0;
};
// Its result: {"command": "evaluate", "task", "model", "data", "device", <items>: n,
// "<items>_per_sec", "metrics": {accuracy, macro-F1, per class, confusion}}, and the summary
// line with the per-class lines.
Result evaluation_result(const EvaluationRun& run, const ConfusionMatrix& cm,
                         const std::vector<std::string>& class_names);
// `tessera predict` on one input: {"command": "predict", "task", "model", the input's own
// fields (`input_fields` writes them), "top": [{"class", "index", "probability"}...]} for the
// `top_k` most probable classes of `p`, and one line per class ("1. name  0.9876").
Result top_classes_result(const std::string& task, const std::string& model_path,
                          const std::function<void(json::JsonWriter&)>& input_fields,
                          const std::vector<double>& p, int top_k,
                          const std::vector<std::string>& class_names);

}  // namespace tessera::image
