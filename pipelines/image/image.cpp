#include "pipelines/image/image.h"

#include "pipelines/image/cnn_task.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <sstream>

#include "host/backend/backend.h"
#include "host/core/progress.h"
#include "host/config/image_config.h"
#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/json_fields.h"
#include "host/core/run_dir.h"
#include "host/data/image_data.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/metrics/metrics.h"
#include "host/model/cnn.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/scheduler/checkpoint.h"

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
    auto [tr, te] = split(all, d.test_fraction, static_cast<uint64_t>(c.seed) ^ 0x7e57ull);
    train = std::move(tr);
    s.test = std::move(te);
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
  Archive ar = load_archive(path);
  const std::string source = "'" + path + "' header";
  rapidjson::Document doc;
  parse_json_object(doc, ar.meta_json, source);
  const JsonFields h(doc, source);
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Io, "'" << path << "' is not a tessera " << task << " model: " << why);
  };
  if (h.string("format") != kFormat) bad("unknown format");
  if (h.string("task") != task) bad("it is a '" + h.string("task") + "' model");
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
    bad(e.what());
  }
  for (const auto& [name, shape] : shapes) {
    auto it = ar.tensors.find(name);
    if (it == ar.tensors.end()) bad("it lacks the tensor '" + name + "' its header implies");
    if (it->second.dtype() != DType::F32 || it->second.shape() != shape)
      bad("tensor '" + name + "' is " + it->second.describe() + ", its header implies f32" +
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
  if (std::isfinite(v))
    w.value(v);
  else
    w.null();
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

Result train(const std::string& config_path, const TrainOptions& options) {
  ImageConfig cfg = load_image_config(config_path);  // validated before any allocation
  if (!options.device.empty()) cfg.device = options.device;
  if (options.epochs >= 0) cfg.train.epochs = static_cast<int>(options.epochs);
  if (!options.runs_dir.empty()) cfg.train.runs_dir = options.runs_dir;
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
  const uint64_t seed = static_cast<uint64_t>(cfg.seed);
  if (data.train.n < 2) TESSERA_THROW(Data, "fewer than 2 training examples");
  const CnnSpec spec = spec_of(cfg, data.train);
  auto backend = make_backend(cfg.device);
  const int64_t batch = cfg.train.batch_size, eval_batch = cfg.train.eval_batch_size;
  CnnModel model(*backend, spec, seed, std::max(batch, eval_batch));  // checks the layer list
  const bool resumable = options.checkpoints == Checkpoints::EveryEpochAndResume;
  if (resumable && options.run_dir.empty())
    TESSERA_THROW(Usage, "resumable training needs an explicit run directory");
  // A resumable run reopens its directory; any other run gets a fresh one (mkdir fails if taken).
  if (resumable) make_directories(options.run_dir);
  const std::string run_path = resumable ? options.run_dir
                               : options.run_dir.empty()
                                   ? RunDir::create(cfg.train.runs_dir, cfg.name).path()
                                   : RunDir::create_exact(options.run_dir).path();
  const std::string metrics_path = run_path + "/metrics.jsonl";
  write_file_atomic(run_path + "/config.json", config_json.empty() ? to_json(cfg) : config_json);

  // A final batch of one image cannot be batch-normalised; it is dropped (<= 1 image an epoch).
  const int64_t steps_per_epoch = data.train.n / batch + (data.train.n % batch >= 2 ? 1 : 0);
  const int64_t total_steps = steps_per_epoch * cfg.train.epochs;
  Optimizer opt(*backend, cfg.train.optimizer,
                LrSchedule::from_config(cfg.train.lr_schedule, steps_per_epoch, total_steps));
  opt.attach(model.parameters());
  const std::vector<std::string> names = class_names(cfg.data);
  if (!options.quiet)
    std::fprintf(stderr,
                 "tessera train: %s on %s; %lld train / %lld validation / %lld test images of "
                 "%lldx%lldx%lld; %lld parameters; run dir %s\n",
                 cfg.name.c_str(), backend->name().c_str(), (long long)data.train.n,
                 (long long)data.validation.n, (long long)data.test.n, (long long)spec.channels,
                 (long long)spec.height, (long long)spec.width, (long long)model.parameter_count(),
                 run_path.c_str());

  // The model's tensors that are not parameters (batch-norm running statistics): checkpointed
  // beside the parameters so evaluation after a resume sees the same statistics.
  std::map<std::string, Tensor*> running;
  {
    std::map<std::string, bool> is_param;
    for (Parameter* p : model.parameters()) is_param[p->name] = true;
    for (auto& [name, t] : model.state())
      if (!is_param.count(name)) running[name] = t;
  }

  Tensor xb = Tensor::host({batch, spec.channels, spec.height, spec.width});
  Tensor yb = Tensor::host({batch}, DType::I32);
  Tensor labels_dev = backend->empty({batch}, DType::I32);
  Tensor loss_dev = backend->empty({batch});
  Tensor dlogits_dev = backend->empty({batch, spec.classes});
  Progress progress("train", total_steps * batch, hooks.unit, options.quiet);
  std::mt19937_64 aug_rng(seed ^ 0xa06ull);
  const bool augment = cfg.augment.crop_padding > 0 || cfg.augment.horizontal_flip;
  double train_seconds = 0, best_acc = -1;
  int64_t images = 0, step = 0, best_epoch = 0;
  std::map<std::string, Tensor> best;
  double last_val_acc = NAN;
  DivergenceGuard guard(cfg.train.on_nonfinite, {hooks.task, cfg.name, run_path, options.quiet});
  // Batch normalisation updates its running statistics in the training forward: under
  // "skip_batch" they are kept from before each batch, to be put back when it is dropped.
  std::map<std::string, Tensor> running_before;
  if (cfg.train.on_nonfinite == NonFinitePolicy::SkipBatch)
    for (auto& [name, t] : running) running_before[name] = backend->empty(t->shape());

  // ---- resume from the last epoch checkpoint -------------------------------------------------
  // Exact at an epoch boundary: the order of epoch e is a function of (seed, e), dropout is
  // seeded by the step, the LR by the optimizer's step count, and the augmentation generator's
  // state travels in the checkpoint.
  const std::string checkpoint_path = run_path + "/checkpoint.tsc";
  const std::string checkpoint_tag = sha256_hex(to_json(cfg) + "\n" + config_json);
  int64_t first_epoch = 0;
  if (resumable && ::access(checkpoint_path.c_str(), F_OK) == 0) {
    scheduler::TrainingState st;
    std::map<std::string, Tensor> extra;
    scheduler::load_checkpoint(checkpoint_path, *backend, model.parameters(), checkpoint_tag, &st,
                               &best, &extra);
    for (auto& [name, t] : running) {
      auto it = extra.find(name);
      if (it == extra.end() || it->second.shape() != t->shape())
        TESSERA_THROW(Io, "checkpoint '" << checkpoint_path << "' cannot be resumed: tensor '"
                                         << name << "' missing or of another shape");
      backend->copy(it->second, *t);
    }
    first_epoch = st.epochs_done;
    step = st.step;
    images = st.samples;
    train_seconds = st.train_seconds;
    best_acc = st.best_score;
    best_epoch = st.best_epoch;
    std::istringstream(st.rng) >> aug_rng;
    opt.set_steps_taken(step);
    // Lines logged after the checkpoint (a kill between the two writes) are redone.
    scheduler::truncate_lines(metrics_path, first_epoch);
    guard.resumed(checkpoint_path, first_epoch, metrics_path);
    if (!options.quiet)
      std::fprintf(stderr, "tessera train: resuming %s after epoch %lld (step %lld)\n",
                   run_path.c_str(), (long long)first_epoch, (long long)step);
  } else if (resumable) {
    scheduler::truncate_lines(metrics_path, 0);  // killed before the first checkpoint
  }
  for (int epoch = static_cast<int>(first_epoch); epoch < cfg.train.epochs; ++epoch) {
    const std::vector<int64_t> order = permutation(data.train.n, seed + 1000003ull * (epoch + 1));
    auto t_epoch = Clock::now();
    double loss_sum = 0;
    int64_t loss_n = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const int64_t b0 = s * batch, b1 = std::min(data.train.n, b0 + batch), n = b1 - b0;
      Tensor x = xb.rows(0, n), y = yb.rows(0, n);
      fill_batch(data.train, order, b0, b1, cfg.augment, augment ? &aug_rng : nullptr, x, y);
      if (hooks.augment) hooks.augment(x, aug_rng);
      Tensor labels = labels_dev.rows(0, n);
      backend->copy(y, labels);
      guard.at_batch(epoch + 1, s + 1, steps_per_epoch, step + 1);
      for (auto& [name, t] : running_before) backend->copy(*running.at(name), t);
      Tensor logits = model.forward(x, CnnMode::Train, math::mix64(seed ^ (0xd0ull + step)));
      Tensor loss = loss_dev.rows(0, n), dl = dlogits_dev.rows(0, n);
      backend->softmax_xent(logits, labels, 1.f / static_cast<float>(n), loss, dl);
      // The per-sample losses are read back every step (B floats) and checked before the
      // backward; under "skip_batch" every gradient is checked before the optimizer step too.
      const Tensor lh = backend->to_host(loss);
      bool ok = guard.loss_ok(lh);
      if (ok) {
        model.backward(dl);
        ok = guard.gradients_ok(*backend, model.parameters());
      }
      images += n;
      if (!ok) {
        for (auto& [name, t] : running_before) backend->copy(t, *running.at(name));
        progress.update(images, "loss " + fmt(loss_n ? loss_sum / loss_n : 0.0));
        continue;
      }
      opt.step();
      ++step;
      if (s % 20 == 0 || s + 1 == steps_per_epoch) {
        for (int64_t i = 0; i < n; ++i) loss_sum += lh.data<float>()[i];
        loss_n += n;
      }
      progress.update(images, "loss " + fmt(loss_n ? loss_sum / loss_n : 0.0));
    }
    backend->synchronize();
    const double epoch_seconds = seconds_since(t_epoch);
    train_seconds += epoch_seconds;
    // Every weight and batch-norm statistic, before validation, the best snapshot and the
    // checkpoint read them.
    guard.at_epoch_end(epoch + 1, step);
    guard.check_weights(*backend, state_tensors(model));
    json::JsonWriter w;
    w.begin_object();
    w.field("epoch", epoch + 1)
        .field("step", step)
        .field("train_loss", loss_n ? loss_sum / loss_n : 0.0);
    w.field("lr", static_cast<double>(opt.current_lr()));
    w.field("train_images_per_sec",
            epoch_seconds > 0 ? steps_per_epoch * batch / epoch_seconds : 0.0);
    w.field("epoch_seconds", epoch_seconds);
    guard.write_epoch_fields(w);
    bool improved = false;
    if (data.validation.n > 0) {
      const ConfusionMatrix cm =
          evaluate_set(model, data.validation, eval_batch, static_cast<int>(spec.classes));
      last_val_acc = cm.accuracy();
      w.field("validation_accuracy", last_val_acc);
      if (last_val_acc > best_acc) {
        best_acc = last_val_acc;
        best_epoch = epoch + 1;
        best = snapshot(model);
        improved = true;
      }
    }
    w.end_object();
    scheduler::append_line(metrics_path, w.compact());
    if (resumable) {
      scheduler::TrainingState st;
      st.epochs_done = epoch + 1;
      st.step = step;
      st.samples = images;
      st.train_seconds = train_seconds;
      st.best_score = best_acc;
      st.best_epoch = best_epoch;
      st.tag = checkpoint_tag;
      std::ostringstream rng;
      rng << aug_rng;
      st.rng = rng.str();
      std::map<std::string, Tensor> extra;
      for (auto& [name, t] : running) extra[name] = backend->to_host(*t);
      scheduler::save_checkpoint(checkpoint_path, *backend, model.parameters(), st, best, extra);
      guard.checkpoint_saved(checkpoint_path, epoch + 1);
      if (options.after_checkpoint) options.after_checkpoint(epoch + 1);
    }
    if (!options.quiet)
      std::fprintf(
          stderr, "%sepoch %d: train loss %s%s, %s images/s%s\n", ::isatty(2) ? "\r\033[K" : "",
          epoch + 1, fmt(loss_n ? loss_sum / loss_n : 0.0).c_str(),
          data.validation.n ? (", validation accuracy " + fmt(last_val_acc)).c_str() : "",
          fmt(epoch_seconds > 0 ? steps_per_epoch * batch / epoch_seconds : 0.0, 0).c_str(),
          improved ? " (best)" : "");
  }
  progress.finish();
  if (!best.empty()) restore(model, best, "the best epoch's snapshot");

  ConfusionMatrix val_cm(static_cast<int>(spec.classes)), test_cm(static_cast<int>(spec.classes));
  if (data.validation.n > 0)
    val_cm = evaluate_set(model, data.validation, eval_batch, static_cast<int>(spec.classes));
  if (data.test.n > 0)
    test_cm = evaluate_set(model, data.test, eval_batch, static_cast<int>(spec.classes));

  json::JsonWriter mw;
  mw.begin_object();
  if (data.validation.n > 0) mw.field("validation_accuracy", val_cm.accuracy());
  if (data.test.n > 0) mw.field("test_accuracy", test_cm.accuracy());
  mw.end_object();
  const std::string model_path = run_path + "/model.tsm";
  guard.at_model_write();
  guard.check_weights(*backend, state_tensors(model));
  save_model(model_path, cfg, spec, model, mw.compact(), hooks);

  json::JsonWriter w;
  w.begin_object();
  w.field("command", "train").field("task", hooks.task).field("name", cfg.name);
  w.field("device", backend->name()).field("run_dir", run_path).field("model", model_path);
  w.field("epochs", cfg.train.epochs).field("best_epoch", best_epoch).field("steps", step);
  w.field("resumed_from_epoch", first_epoch);
  guard.write_result_fields(w);
  w.field("batch_size", batch).field("parameters", model.parameter_count());
  w.field("train_images", data.train.n).field("validation_images", data.validation.n);
  w.field("test_images", data.test.n);
  w.field("load_seconds", load_seconds).field("train_seconds", train_seconds);
  w.field("train_images_per_sec", train_seconds > 0 ? images / train_seconds : 0.0);
  if (data.validation.n > 0) write_confusion(w, "validation", val_cm);
  if (data.test.n > 0) write_confusion(w, "test", test_cm);
  w.end_object();
  const std::string result_json = w.compact();
  write_file_atomic(run_path + "/result.json", result_json + "\n");

  std::ostringstream s;
  s << "trained " << cfg.name << " on " << backend->name() << ": " << cfg.train.epochs
    << " epochs in " << fmt(train_seconds, 1) << " s, "
    << fmt(train_seconds > 0 ? images / train_seconds : 0, 0) << " images/s\n";
  if (data.validation.n > 0)
    s << "  validation accuracy " << fmt(val_cm.accuracy()) << " (best epoch " << best_epoch
      << ")\n";
  if (data.test.n > 0)
    s << "  test accuracy " << fmt(test_cm.accuracy()) << ", macro-F1 " << fmt(test_cm.macro_f1())
      << "; per class:\n"
      << per_class_lines(test_cm, names);
  s << "  model: " << model_path << "\n";
  return {s.str(), result_json};
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
  const double secs = seconds_since(t0);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("task", "image").field("model", model_path);
  w.field("data", images).field("device", backend->name()).field("images", set.n);
  w.field("images_per_sec", secs > 0 ? set.n / secs : 0.0);
  write_confusion(w, "metrics", cm);
  w.end_object();
  std::ostringstream s;
  s << "evaluated " << set.n << " images of " << images << " on " << backend->name()
    << ": accuracy " << fmt(cm.accuracy()) << ", macro-F1 " << fmt(cm.macro_f1())
    << "; per class:\n"
    << per_class_lines(cm, m.class_names);
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
  const std::vector<int64_t> order = image::top_k(p, top_k);
  const int64_t k = static_cast<int64_t>(order.size());
  std::ostringstream s;
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("task", "image").field("model", model_path);
  w.field("image", image_path).key("top").begin_array();
  for (int64_t i = 0; i < k; ++i) {
    const int64_t cls = order[i];
    s << i + 1 << ". " << m.class_names[cls] << "  " << fmt(p[cls]) << "\n";
    w.begin_object()
        .field("class", m.class_names[cls])
        .field("index", cls)
        .field("probability", p[cls])
        .end_object();
  }
  w.end_array().end_object();
  return {s.str(), w.compact()};
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
