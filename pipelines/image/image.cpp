#include "pipelines/image/image.h"

#include "pipelines/image/cnn_task.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "host/backend/backend.h"
#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/json_fields.h"
#include "host/core/math.h"
#include "host/core/model_file_checks.h"
#include "host/data/image_data.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/metrics/metrics.h"
#include "host/model/cnn.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"
#include "pipelines/image/image_config.h"
#include "pipelines/json_nullable.h"
#include "pipelines/task_run.h"

namespace tessera::image {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr const char* kFormat = "tessera.model";
constexpr int kVersion = 1;

// ---- data --------------------------------------------------------------------------------------

std::string resolve(const ImageDataConfig& d, const std::string& file) {
  if (file.empty() || file[0] == '/') return file;
  if (!d.dir.empty()) return d.dir + "/" + file;
  if (!d.dataset.empty()) return resolve_dataset_file(d.dataset, file);
  return file;
}

// A seeded permutation of [0, n).
std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  return idx;
}

// Splits `set` into (first `n - k`, last `k`) of a seeded permutation, k = round(fraction n).
std::pair<ImageSet, ImageSet> split(const ImageSet& set, double fraction, uint64_t seed) {
  const auto [a, b] = seeded_split(set.n, fraction, seed);
  return {take_images(set, a), take_images(set, b)};
}

Splits load_splits(const ImageConfig& c) {
  const ImageDataConfig& d = c.data;
  Splits s;
  ImageSet train;
  if (d.format == ImageFormat::Idx) {
    train = read_idx(resolve(d, d.train_images), resolve(d, d.train_labels));
    if (!d.test_images.empty())
      s.test = read_idx(resolve(d, d.test_images), resolve(d, d.test_labels));
  } else {
    ImageSet all = read_digits_csv(resolve(d, d.train));
    if (!d.test.empty()) {
      train = std::move(all);
      s.test = read_digits_csv(resolve(d, d.test));
    } else {
      auto [tr, te] = split(all, d.test_fraction, static_cast<uint64_t>(c.seed) ^ 0x7e57ull);
      train = std::move(tr);
      s.test = std::move(te);
    }
  }
  if (d.max_train_images > 0 && d.max_train_images < train.n) {
    std::vector<int64_t> first(static_cast<size_t>(d.max_train_images));
    std::iota(first.begin(), first.end(), 0);
    train = take_images(train, first);
  }
  auto [tr, va] = split(train, d.validation_fraction, static_cast<uint64_t>(c.seed) ^ 0x5a1dull);
  s.train = std::move(tr);
  s.validation = std::move(va);
  for (const ImageSet* set : {&s.train, &s.validation, &s.test})
    for (int64_t i = 0; i < set->n; ++i)
      if (set->labels[i] < 0 || set->labels[i] >= d.classes)
        TESSERA_THROW(Data, "image " << i << " has label " << set->labels[i] << ", outside the "
                                     << d.classes << " classes of the config");
  return s;
}

// Copies images `idx[begin, end)` of `set` into host x [B, C, H, W] and labels [B], with the
// config's augmentation when `rng` is given (random shift by up to crop_padding pixels with zero
// fill, i.e. a random crop of the zero-padded image, and a horizontal mirror half the time).
void fill_batch(const ImageSet& set, const std::vector<int64_t>& idx, int64_t begin, int64_t end,
                const AugmentConfig& aug, std::mt19937_64* rng, Tensor& x, Tensor& labels) {
  const int64_t c = set.channels, h = set.height, w = set.width, sz = set.image_size();
  float* xp = x.data<float>();
  int32_t* lp = labels.data<int32_t>();
  for (int64_t i = begin; i < end; ++i) {
    const int64_t r = idx[i];
    const float* src = set.pixels.data() + r * sz;
    float* dst = xp + (i - begin) * sz;
    lp[i - begin] = set.labels[r];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (rng) {
      const int p = aug.crop_padding;
      if (p > 0) {
        std::uniform_int_distribution<int> u(-p, p);
        dy = u(*rng);
        dx = u(*rng);
      }
      if (aug.horizontal_flip) flip = ((*rng)() & 1) != 0;
    }
    if (dy == 0 && dx == 0 && !flip) {
      std::copy_n(src, sz, dst);
      continue;
    }
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          const int64_t sy = y + dy, sx0 = flip ? w - 1 - xx : xx;
          const int64_t sx = sx0 + dx;
          dst[(ch * h + y) * w + xx] =
              (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[(ch * h + sy) * w + sx] : 0.f;
        }
  }
}

}  // namespace

ConfusionMatrix evaluate_set(CnnModel& model, const ImageSet& set, int64_t batch, int classes) {
  ConfusionMatrix cm(classes);
  std::vector<int64_t> idx(static_cast<size_t>(set.n));
  std::iota(idx.begin(), idx.end(), 0);
  Backend& be = model.backend();
  for (int64_t b0 = 0; b0 < set.n; b0 += batch) {
    const int64_t b1 = std::min(set.n, b0 + batch);
    Tensor x = Tensor::host({b1 - b0, set.channels, set.height, set.width});
    Tensor y = Tensor::host({b1 - b0}, DType::I32);
    fill_batch(set, idx, b0, b1, {}, nullptr, x, y);
    Tensor logits = be.to_host(model.forward(x, CnnMode::Eval));
    cm.add_logits(logits, y);
  }
  return cm;
}

namespace {

std::vector<std::string> class_names(const ImageDataConfig& d) {
  if (!d.class_names.empty()) return d.class_names;
  std::vector<std::string> names;
  for (int64_t i = 0; i < d.classes; ++i) names.push_back(std::to_string(i));
  return names;
}

// ---- the model artefact ------------------------------------------------------------------------

CnnSpec spec_of(const ImageConfig& c, const ImageSet& like) {
  CnnSpec s;
  s.channels = like.channels;
  s.height = like.height;
  s.width = like.width;
  s.classes = c.data.classes;
  s.layers = c.layers;
  return s;
}

// Every tensor of the model (weights, biases, batch-norm statistics) by name, where it lives.
NamedTensors state_tensors(CnnModel& model) {
  NamedTensors out;
  for (auto& [name, t] : model.state()) out.emplace_back(name, *t);
  return out;
}

std::map<std::string, Tensor> snapshot(CnnModel& model) {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : model.state()) out[name] = model.backend().to_host(*t);
  return out;
}

void restore(CnnModel& model, const std::map<std::string, Tensor>& weights,
             const std::string& from) {
  for (auto& [name, t] : model.state()) {
    auto it = weights.find(name);
    if (it == weights.end())
      TESSERA_THROW(Io, "'" << from << "' lacks the tensor '" << name << "' the model needs");
    if (it->second.shape() != t->shape() || it->second.dtype() != t->dtype())
      TESSERA_THROW(Io, "'" << from << "': tensor '" << name << "' is " << it->second.describe()
                            << ", the model needs " << dtype_name(t->dtype())
                            << shape_str(t->shape()));
    model.backend().copy(it->second, *t);
  }
}

void save_model(const std::string& path, const ImageConfig& c, const CnnSpec& spec, CnnModel& model,
                const std::string& metrics_json, const TaskHooks& hooks) {
  json::JsonWriter w;
  w.begin_object();
  w.field("format", kFormat).field("version", kVersion).field("task", hooks.task);
  w.field("name", c.name);
  w.key("input").list(std::vector<int64_t>{spec.channels, spec.height, spec.width});
  w.field("classes", spec.classes).field("class_names", class_names(c.data));
  w.key("layers");
  write_layers(w, spec.layers);
  w.field("eval_batch_size", c.train.eval_batch_size);
  w.end_object();
  // The metrics object is spliced in whole (it is already JSON).
  std::string meta = w.compact();
  meta.insert(meta.size() - 1, ",\"metrics\":" + metrics_json +
                                   (hooks.meta_members.empty() ? "" : "," + hooks.meta_members));
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : snapshot(model)) tensors.emplace_back(name, t);
  save_archive(path, meta, tensors);
}

}  // namespace

LoadedModel load_model(const std::string& path, const std::string& task) {
  ModelFileHeader file(path, task);
  Archive& ar = file.archive;
  const JsonFields& h = file.fields;
  if (h.string("format") != kFormat) file.refuse("unknown format");
  if (h.string("task") != task) file.refuse("it is a '" + h.string("task") + "' model");
  LoadedModel m;
  // Bounds as an image config's; the layers are read by the config's own layer reader.
  const std::vector<int64_t> input = h.integers("input", 1, kCnnMaxLayerValues);
  if (input.size() != 3) h.fail("input", "is not [channels, height, width]");
  m.spec.channels = input[0];
  m.spec.height = input[1];
  m.spec.width = input[2];
  m.spec.classes = h.integer("classes", 2, 100000);
  h.array("layers");
  try {
    m.spec.layers = parse_layers(h.json("layers"));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Config) throw;
    h.fail("layers", std::string("is not a valid layer list: ") + e.what());
  }
  if (h.has("eval_batch_size")) m.eval_batch_size = h.integer("eval_batch_size", 1, 1 << 16);
  // Every tensor the model will hold is stored, f32, of the shape the header implies, before the
  // model is built from the header (CnnModel::state_shapes works it out without allocating).
  std::vector<std::pair<std::string, Shape>> shapes;
  try {
    shapes = CnnModel::state_shapes(m.spec);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Config) throw;
    file.refuse(e.what());
  }
  for (const auto& [name, shape] : shapes) {
    auto it = ar.tensors.find(name);
    if (it == ar.tensors.end())
      file.refuse("it lacks the tensor '" + name + "' its header implies");
    if (it->second.dtype() != DType::F32 || it->second.shape() != shape)
      file.refuse("tensor '" + name + "' is " + it->second.describe() + ", its header implies f32" +
                  shape_str(shape));
  }
  if (h.has("class_names")) {
    m.class_names = h.strings("class_names");
    if (static_cast<int64_t>(m.class_names.size()) != m.spec.classes)
      h.fail("class_names", "does not name " + std::to_string(m.spec.classes) + " classes");
  } else {
    for (int64_t i = 0; i < m.spec.classes; ++i) m.class_names.push_back(std::to_string(i));
  }
  check_finite(ar.tensors, path);
  m.weights = std::move(ar.tensors);
  m.header_json = std::move(ar.meta_json);
  return m;
}

ReadyModel instantiate(const LoadedModel& m, const std::string& device, int64_t max_batch) {
  ReadyModel r;
  r.backend = make_backend(device.empty() ? "auto" : device);
  r.model = std::make_unique<CnnModel>(*r.backend, m.spec, 0, max_batch);
  restore(*r.model, m.weights, "the model file");
  return r;
}

std::vector<double> class_probabilities(CnnModel& model, const std::vector<float>& x) {
  const CnnSpec& sp = model.spec();
  Tensor xt = Tensor::host({1, sp.channels, sp.height, sp.width});
  TESSERA_CHECK(static_cast<int64_t>(x.size()) == xt.numel(),
                "an input of " << x.size() << " values for a model taking " << xt.describe());
  std::copy(x.begin(), x.end(), xt.data<float>());
  Tensor logits = model.backend().to_host(model.forward(xt, CnnMode::Eval));
  const float* z = logits.data<float>();
  const int64_t c = sp.classes;
  // Finite weights can still overflow (a model file is outside input too): no garbage ranking.
  for (int64_t i = 0; i < c; ++i)
    if (!std::isfinite(z[i]))
      TESSERA_THROW(Data, "the model's score for class " << i << " of this input is " << z[i]
                                                         << " (its weights overflow)");
  const float mx = *std::max_element(z, z + c);
  std::vector<double> p(static_cast<size_t>(c));
  double sum = 0;
  for (int64_t i = 0; i < c; ++i) sum += p[i] = std::exp(static_cast<double>(z[i]) - mx);
  for (double& v : p) v /= sum;
  return p;
}

std::vector<int64_t> top_k(const std::vector<double>& p, int k) {
  std::vector<int64_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  order.resize(std::min<size_t>(order.size(), static_cast<size_t>(std::max(k, 0))));
  return order;
}

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

namespace {

// JSON has no NaN: an undefined figure (a class absent from the data) is written as null.
void number_or_null(json::JsonWriter& w, double v) {
  json::value_or_null(w, v, std::isfinite(v));
}

}  // namespace

void write_confusion(json::JsonWriter& w, const std::string& key, const ConfusionMatrix& cm) {
  w.key(key).begin_object();
  w.field("count", cm.total());
  w.key("accuracy");
  number_or_null(w, cm.accuracy());
  w.key("macro_f1");
  number_or_null(w, cm.macro_f1());
  w.key("per_class_accuracy").begin_array();
  for (double v : cm.per_class_accuracy()) number_or_null(w, v);
  w.end_array();
  w.key("confusion_matrix").begin_array();
  for (int t = 0; t < cm.num_classes(); ++t) {
    std::vector<int64_t> row;
    for (int p = 0; p < cm.num_classes(); ++p) row.push_back(cm.at(t, p));
    w.list(row);
  }
  w.end_array();
  w.end_object();
}

std::string per_class_lines(const ConfusionMatrix& cm, const std::vector<std::string>& names) {
  std::ostringstream s;
  const std::vector<double> acc = cm.per_class_accuracy();
  for (int i = 0; i < cm.num_classes(); ++i) {
    s << "    " << names[i] << ": " << fmt(acc[i]) << " (" << cm.support(i) << ")\n";
  }
  return s.str();
}

namespace {

// Batches in an epoch of `images`: a final batch of one image cannot be batch-normalised, so it
// is dropped (at most one image an epoch).
int64_t train_batches(int64_t images, int64_t batch) {
  return images / batch + (images % batch >= 2 ? 1 : 0);
}

// What must match for a checkpoint to be resumed: the config, less what may change on resume,
// and the task's own config (audio, video) likewise.
std::string resume_tag(const ImageConfig& cfg, const TaskHooks& hooks) {
  return sha256_hex(resumable_json(cfg) + "\n" + hooks.resume_config);
}

// The CNN's part of the Trainer's loop: a new seeded order of the training images every epoch,
// augmented by a generator carried across epochs (checkpointed as text), one step with softmax
// cross-entropy and the guard's checks, validation accuracy, and the model file with the
// validation and test confusion matrices.
class CnnTraining : public train::TrainTask {
 public:
  CnnTraining(const ImageConfig& cfg, const Splits& data, double load_seconds,
              const TaskHooks& hooks, Backend& be, CnnModel& model, Optimizer& opt)
      : cfg_(cfg),
        data_(data),
        load_seconds_(load_seconds),
        hooks_(hooks),
        be_(be),
        model_(model),
        opt_(opt),
        batch_(cfg.train.batch_size),
        batches_(train_batches(data.train.n, batch_)),
        augment_(cfg.augment.crop_padding > 0 || cfg.augment.horizontal_flip),
        xb_(Tensor::host({batch_, model.spec().channels, model.spec().height, model.spec().width})),
        yb_(Tensor::host({batch_}, DType::I32)),
        loss_dev_(be.empty({batch_})),
        dlogits_dev_(be.empty({batch_, model.spec().classes})),
        aug_rng_(static_cast<uint64_t>(cfg.seed) ^ 0xa06ull) {
    std::map<std::string, bool> is_param;
    for (Parameter* p : model.parameters()) is_param[p->name] = true;
    for (auto& [name, t] : model.state())
      if (!is_param.count(name)) running_[name] = t;
    // Batch normalisation updates its running statistics in the training forward: under
    // "skip_batch" they are kept from before each batch, to be put back when it is dropped.
    if (cfg.train.on_nonfinite == NonFinitePolicy::SkipBatch)
      for (auto& [name, t] : running_) running_before_[name] = be.empty(t->shape());
  }

  int64_t batches_per_epoch() override { return batches_; }

  void start_epoch(int64_t epoch) override {
    order_ = permutation(data_.train.n, static_cast<uint64_t>(cfg_.seed) +
                                            1000003ull * static_cast<uint64_t>(epoch));
  }

  train::StepResult step(train::StepContext& ctx) override {
    const int64_t b0 = ctx.batch * batch_, b1 = std::min(data_.train.n, b0 + batch_), n = b1 - b0;
    Tensor x = xb_.rows(0, n), y = yb_.rows(0, n);
    fill_batch(data_.train, order_, b0, b1, cfg_.augment, augment_ ? &aug_rng_ : nullptr, x, y);
    if (hooks_.augment) hooks_.augment(x, aug_rng_);
    // The batch goes up through the backend's stager (on CUDA pinned slots and an async copy the
    // compute stream waits for, no host wait; on the host the buffers themselves).
    if (!stager_)
      stager_ =
          be_.make_batch_stager(kStagingSlots, {{xb_.shape(), DType::F32}, {{batch_}, DType::I32}});
    const BatchStager::Staged staged = stager_->stage({x, y}, n);
    const Tensor& labels = staged.tensors[1];
    for (auto& [name, t] : running_before_) be_.copy(*running_.at(name), t);
    const uint64_t dropout_seed =
        math::mix64(static_cast<uint64_t>(cfg_.seed) ^ (0xd0ull + static_cast<uint64_t>(ctx.step)));
    Tensor logits = model_.forward(staged.tensors[0], CnnMode::Train, dropout_seed);
    Tensor loss = loss_dev_.rows(0, n), dl = dlogits_dev_.rows(0, n);
    be_.softmax_xent(logits, labels, 1.f / static_cast<float>(n), loss, dl);
    // Under "stop" the per-sample losses stay on the device (the Trainer sums and checks them
    // at its next read, without a wait per step). Under "skip_batch" they are read back (B
    // floats) and checked before the backward, and every gradient before the optimizer step.
    train::StepResult r;
    r.examples = n;
    Tensor lh;
    if (ctx.guard.policy() == NonFinitePolicy::SkipBatch) {
      lh = be_.to_host(loss);
      r.applied = ctx.guard.loss_ok(lh);
    } else {
      r.device_loss = loss;
    }
    if (r.applied) {
      model_.backward(dl);
      r.applied = ctx.guard.gradients_ok(be_, model_.parameters());
    }
    // Nothing queued after this reads the staged batch (the model copied the images in, the loss
    // read the labels).
    stager_->release(staged);
    if (!r.applied) {
      for (auto& [name, t] : running_before_) be_.copy(t, *running_.at(name));
      return r;
    }
    opt_.step();
    if (lh.defined())
      for (int64_t i = 0; i < n; ++i) r.loss_sum += lh.data<float>()[i];
    r.units = n;
    return r;
  }
  // The optimizer is the task's own (stepped above): the Trainer learns the backend here.
  Backend* backend() override { return &be_; }

  double learning_rate() override { return opt_.current_lr(); }

  // Every weight and batch-norm statistic, before validation, the best snapshot and the
  // checkpoint read them.
  void check_weights(DivergenceGuard& guard) override {
    guard.check_weights(be_, state_tensors(model_));
  }

  train::Metrics validate(DivergenceGuard&) override {
    if (data_.validation.n == 0) return {};
    return {{"validation_accuracy", evaluate(data_.validation).accuracy()}};
  }

  // Parameters with their optimizer state, and the batch-norm running statistics, so that
  // evaluation after a resume sees the same statistics.
  NamedTensors training_state() override {
    NamedTensors s = train::parameter_state(be_, model_.parameters());
    for (auto& [name, t] : running_) s.emplace_back("running/" + name, be_.to_host(*t));
    return s;
  }
  void restore_training_state(const NamedTensors& state, int64_t steps) override {
    const NamedTensors running = train::with_prefix(state, "running/");
    std::map<std::string, const Tensor*> stored;
    for (const auto& [name, t] : running) stored[name] = &t;
    for (auto& [name, t] : running_) {  // every tensor checked before the first copy
      auto it = stored.find(name);
      if (it == stored.end() || it->second->shape() != t->shape() ||
          it->second->dtype() != t->dtype())
        TESSERA_THROW(
            Io, "tensor 'running/"
                    << name << "' is " << (it == stored.end() ? "missing" : it->second->describe())
                    << ", the model has " << dtype_name(t->dtype()) << shape_str(t->shape()));
    }
    train::restore_parameter_state(be_, model_.parameters(), state, "image checkpoint");
    for (auto& [name, t] : running_) be_.copy(*stored.at(name), *t);
    opt_.set_steps_taken(steps);
  }

  std::string random_state() override {
    std::ostringstream s;
    s << aug_rng_;
    return s.str();
  }
  void restore_random_state(const std::string& text) override {
    std::istringstream s(text);
    std::mt19937_64 rng;
    if (!(s >> rng)) TESSERA_THROW(Io, "the augmentation generator's state is not readable");
    aug_rng_ = rng;
  }

  NamedTensors snapshot() override {
    const std::map<std::string, Tensor> m = image::snapshot(model_);
    return NamedTensors(m.begin(), m.end());
  }
  void restore_snapshot(const NamedTensors& weights) override {
    restore(model_, std::map<std::string, Tensor>(weights.begin(), weights.end()),
            "the best epoch's snapshot");
  }

  void finish(train::FinishContext& ctx) override;

 private:
  ConfusionMatrix evaluate(const ImageSet& set) {
    return evaluate_set(model_, set, cfg_.train.eval_batch_size,
                        static_cast<int>(model_.spec().classes));
  }

  const ImageConfig& cfg_;
  const Splits& data_;
  const double load_seconds_;
  const TaskHooks& hooks_;
  Backend& be_;
  CnnModel& model_;
  Optimizer& opt_;
  const int64_t batch_, batches_;
  const bool augment_;  // the config's crop / flip
  // Slots of the batch stager: one computing, one uploading, one the host may fill.
  static constexpr int kStagingSlots = 3;
  Tensor xb_, yb_, loss_dev_, dlogits_dev_;  // one batch's buffers
  std::unique_ptr<BatchStager> stager_;      // made at the first step
  std::mt19937_64 aug_rng_;
  std::vector<int64_t> order_;  // this epoch's order of the training images
  // The model's tensors that are not parameters (batch-norm running statistics), and their
  // copies from before the batch under "skip_batch".
  std::map<std::string, Tensor*> running_;
  std::map<std::string, Tensor> running_before_;
};

void CnnTraining::finish(train::FinishContext& ctx) {
  const int classes = static_cast<int>(model_.spec().classes);
  ConfusionMatrix val_cm(classes), test_cm(classes);
  if (data_.validation.n > 0) val_cm = evaluate(data_.validation);
  if (data_.test.n > 0) test_cm = evaluate(data_.test);
  json::JsonWriter mw;
  mw.begin_object();
  if (data_.validation.n > 0) mw.field("validation_accuracy", val_cm.accuracy());
  if (data_.test.n > 0) mw.field("test_accuracy", test_cm.accuracy());
  mw.end_object();
  const std::string model_path = ctx.run_dir + "/model.tsm";
  ctx.guard.check_weights(be_, state_tensors(model_));
  save_model(model_path, cfg_, model_.spec(), model_, mw.compact(), hooks_);

  json::JsonWriter& w = ctx.result;
  w.field("model", model_path);
  w.field("batch_size", batch_).field("parameters", model_.parameter_count());
  w.field("train_images", data_.train.n).field("validation_images", data_.validation.n);
  w.field("test_images", data_.test.n).field("load_seconds", load_seconds_);
  const double per_s =
      ctx.train_seconds > 0 ? static_cast<double>(ctx.samples) / ctx.train_seconds : 0.0;
  w.field("train_images_per_sec", per_s);
  w.field("class_names", class_names(cfg_.data));  // the report's confusion table labels
  if (data_.validation.n > 0) write_confusion(w, "validation", val_cm);
  if (data_.test.n > 0) write_confusion(w, "test", test_cm);

  std::ostringstream s;
  if (data_.validation.n > 0) s << "  validation accuracy " << fmt(val_cm.accuracy()) << "\n";
  if (data_.test.n > 0)
    s << "  test accuracy " << fmt(test_cm.accuracy()) << ", macro-F1 " << fmt(test_cm.macro_f1())
      << "; per class:\n"
      << per_class_lines(test_cm, class_names(cfg_.data));
  s << "  model: " << model_path << "\n";
  ctx.summary += s.str();
}

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  ImageConfig cfg = load_image_config(config_path);  // validated before any allocation
  if (options.seed >= 0) cfg.seed = options.seed;
  auto t_load = Clock::now();
  Splits data = load_splits(cfg);
  const double load_seconds = seconds_since(t_load);
  if (data.train.n < 2) TESSERA_THROW(Data, "fewer than 2 training images in " << config_path);
  return train_on(std::move(cfg), data, load_seconds, "", options, TaskHooks{});
}

Result train_on(ImageConfig cfg, const Splits& data, double load_seconds,
                const std::string& config_json, const TrainOptions& options,
                const TaskHooks& hooks) {
  if (!options.device.empty()) cfg.device = options.device;
  if (options.epochs >= 0) cfg.train.epochs = static_cast<int>(options.epochs);
  if (!options.runs_dir.empty()) cfg.train.runs_dir = options.runs_dir;
  if (data.train.n < 2) TESSERA_THROW(Data, "fewer than 2 training examples");
  const CnnSpec spec = spec_of(cfg, data.train);
  auto backend = make_backend(cfg.device);
  CnnModel model(*backend, spec, static_cast<uint64_t>(cfg.seed),
                 std::max(cfg.train.batch_size, cfg.train.eval_batch_size));  // checks the layers
  const int64_t steps_per_epoch = train_batches(data.train.n, cfg.train.batch_size);
  Optimizer opt = train::epoch_optimizer(*backend, cfg.train, steps_per_epoch, model.parameters());
  if (!options.quiet)
    std::fprintf(stderr,
                 "tessera train: %s on %s; %lld train / %lld validation / %lld test images of "
                 "%lldx%lldx%lld; %lld parameters\n",
                 cfg.name.c_str(), backend->name().c_str(), (long long)data.train.n,
                 (long long)data.validation.n, (long long)data.test.n, (long long)spec.channels,
                 (long long)spec.height, (long long)spec.width, (long long)model.parameter_count());

  CnnTraining task(cfg, data, load_seconds, hooks, *backend, model, opt);
  train::TrainerOptions t = train::trainer_options(
      options,
      train::task_run(hooks.task, cfg, config_json.empty() ? to_json(cfg) : config_json,
                      resume_tag(cfg, hooks)),
      backend->name());
  t.selection = {"validation_accuracy", train::Goal::Maximize, "", train::Goal::Minimize, 0};
  t.checkpoint_every = 1;
  t.throughput_field = "train_images_per_sec";
  train::TrainResult tr = train::Trainer(t).fit(task);
  return {tr.summary, tr.json};
}

Result evaluate(const std::string& model_path, const std::string& data, const Options& options) {
  LoadedModel m = load_model(model_path, "image");
  std::string images = data, labels;
  const auto comma = data.find(',');
  if (comma != std::string::npos) {
    images = data.substr(0, comma);
    labels = data.substr(comma + 1);
  }
  ImageSet set;
  const bool csv = images.find(".csv") != std::string::npos;
  if (csv) {
    set = read_digits_csv(images);
  } else {
    if (labels.empty()) {
      labels = images;
      const auto at = labels.rfind("images-idx3");
      if (at == std::string::npos)
        TESSERA_THROW(
            Usage, "cannot tell the labels file of '" << images << "': pass DATA as IMAGES,LABELS");
      labels.replace(at, 11, "labels-idx1");
    }
    set = read_idx(images, labels);
  }
  if (set.channels != m.spec.channels || set.height != m.spec.height || set.width != m.spec.width)
    TESSERA_THROW(Data, "'" << images << "' holds " << set.channels << "x" << set.height << "x"
                            << set.width << " images; the model takes " << m.spec.channels << "x"
                            << m.spec.height << "x" << m.spec.width);
  auto backend = make_backend(options.device.empty() ? "auto" : options.device);
  CnnModel model(*backend, m.spec, 0, m.eval_batch_size);
  restore(model, m.weights, model_path);
  auto t0 = Clock::now();
  const ConfusionMatrix cm =
      evaluate_set(model, set, m.eval_batch_size, static_cast<int>(m.spec.classes));
  return evaluation_result(
      {"image", model_path, images, backend->name(), "images", set.n, seconds_since(t0)}, cm,
      m.class_names);
}

Result evaluation_result(const EvaluationRun& run, const ConfusionMatrix& cm,
                         const std::vector<std::string>& class_names) {
  const double secs = run.seconds;
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("task", run.task).field("model", run.model_path);
  w.field("data", run.data).field("device", run.device).field(run.items, run.n);
  w.field(run.items + "_per_sec", secs > 0 ? run.n / secs : 0.0);
  write_confusion(w, "metrics", cm);
  w.end_object();
  std::ostringstream s;
  s << "evaluated " << run.n << " " << run.items << " of " << run.data << " on " << run.device
    << ": accuracy " << fmt(cm.accuracy()) << ", macro-F1 " << fmt(cm.macro_f1())
    << "; per class:\n"
    << per_class_lines(cm, class_names);
  return {s.str(), w.compact()};
}

Result top_classes_result(const std::string& task, const std::string& model_path,
                          const std::function<void(json::JsonWriter&)>& input_fields,
                          const std::vector<double>& p, int top_k,
                          const std::vector<std::string>& class_names) {
  std::ostringstream s;
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("task", task).field("model", model_path);
  input_fields(w);
  w.key("top").begin_array();
  int rank = 0;
  for (int64_t cls : image::top_k(p, top_k)) {
    s << ++rank << ". " << class_names[cls] << "  " << fmt(p[cls]) << "\n";
    w.begin_object()
        .field("class", class_names[cls])
        .field("index", cls)
        .field("probability", p[cls])
        .end_object();
  }
  w.end_array().end_object();
  return {s.str(), w.compact()};
}

Result predict(const std::string& model_path, const std::string& image_path, const Options& options,
               int top_k) {
  LoadedModel m = load_model(model_path, "image");
  if (m.spec.channels != 1)
    TESSERA_THROW(Usage, "the model takes " << m.spec.channels << "-channel images; predict reads "
                                            << "grey images only");
  const GrayImage img = resize_bilinear(read_image_file(image_path), m.spec.height, m.spec.width);
  ReadyModel ready = instantiate(m, options.device, 1);
  const std::vector<double> p = class_probabilities(*ready.model, img.pixels);
  return top_classes_result(
      "image", model_path, [&](json::JsonWriter& w) { w.field("image", image_path); }, p, top_k,
      m.class_names);
}

bool is_image_model_file(const std::string& path) {
  return is_model_file(path, "image");
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> seeded_split(int64_t n, double fraction,
                                                                   uint64_t seed) {
  const std::vector<int64_t> idx = permutation(n, seed);
  const auto k = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  return {std::vector<int64_t>(idx.begin(), idx.end() - k),
          std::vector<int64_t>(idx.end() - k, idx.end())};
}

bool is_model_file(const std::string& path, const std::string& task) {
  try {
    return json::text_has_task(load_archive(path).meta_json, task);
  } catch (const Error&) {
    return false;
  }
}

}  // namespace tessera::image
