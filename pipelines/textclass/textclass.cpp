// The text-classification pipeline (pipelines/textclass/textclass.h): data, vocabulary,
// bucketed training with early stopping, metrics, the model artefact, evaluate and predict.
#include "pipelines/textclass/textclass.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/math.h"
#include "host/core/model_file_checks.h"
#include "host/core/progress.h"
#include "host/core/run_dir.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/metrics/metrics.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/model/parameter_ops.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"
#include "pipelines/parameter_training.h"
#include "pipelines/task_run.h"
#include "pipelines/text_models.h"
#include "pipelines/textclass/classifier.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/textclass_config.h"

namespace tessera::textclass {

namespace {

using Clock = std::chrono::steady_clock;
using json::IntBounds;
using json::ObjectReader;

constexpr int64_t kEvalBatch = 256;

// Labelled rows -> examples; a label outside `classes` is an error naming file:line.
std::vector<Example> to_examples(const std::vector<LabelledText>& rows, const std::string& path,
                                 const std::map<std::string, int32_t>& class_ids,
                                 const Vocab& vocab, const TokenizerOptions& tok) {
  std::vector<Example> out;
  out.reserve(rows.size());
  for (const LabelledText& r : rows) {
    auto it = class_ids.find(r.label);
    if (it == class_ids.end()) {
      std::string names;
      for (const auto& [name, id] : class_ids) names += (names.empty() ? "'" : ", '") + name + "'";
      TESSERA_THROW(Data, path << ":" << r.line << ": label '" << r.label
                               << "' is not one of the classes " << names);
    }
    out.push_back({vocab.encode(tokenize(r.text, tok)), it->second});
  }
  return out;
}

struct EvalResult {
  ConfusionMatrix confusion;
  double loss = 0;  // mean cross-entropy (nats)
  explicit EvalResult(int classes) : confusion(classes) {}
};

// Row-wise softmax of host logits [B, C], in place.
void softmax_rows(Tensor& logits) {
  const int64_t b = logits.dim(0), c = logits.dim(1);
  float* z = logits.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    float* r = z + i * c;
    const float mx = *std::max_element(r, r + c);
    double s = 0;
    for (int64_t k = 0; k < c; ++k) s += r[k] = std::exp(r[k] - mx);
    for (int64_t k = 0; k < c; ++k) r[k] = static_cast<float>(r[k] / s);
  }
}

EvalResult evaluate_examples(TextClassifier& model, const std::vector<Example>& examples) {
  EvalResult r(static_cast<int>(model.shape().classes));
  double loss = 0;
  for (const Batch& batch : make_batches(examples, kEvalBatch, 0)) {
    const auto b = static_cast<int64_t>(batch.rows.size());
    Tensor p = model.logits(batch_ids(examples, batch), batch.t, b);
    softmax_rows(p);
    const Tensor labels = batch_labels(examples, batch);
    r.confusion.add_logits(p, labels);
    for (int64_t j = 0; j < b; ++j)
      loss -= std::log(std::max(1e-30f, p.data<float>()[j * p.dim(1) + labels.data<int32_t>()[j]]));
  }
  r.loss = loss / static_cast<double>(examples.size());
  return r;
}

void write_confusion(json::JsonWriter& w, const ConfusionMatrix& m) {
  const double f1 = m.macro_f1();
  w.field("accuracy", m.accuracy());
  w.field("macro_f1", std::isnan(f1) ? 0.0 : f1);
  w.key("confusion").begin_array();  // rows: true class, columns: predicted class
  for (int t = 0; t < m.num_classes(); ++t) {
    std::vector<int64_t> row;
    for (int p = 0; p < m.num_classes(); ++p) row.push_back(m.at(t, p));
    w.list(row);
  }
  w.end_array();
}

std::string confusion_text(const ConfusionMatrix& m, const std::vector<std::string>& classes) {
  std::string s = "confusion (rows: true, columns: predicted):\n";
  char buf[64];
  for (int t = 0; t < m.num_classes(); ++t) {
    std::snprintf(buf, sizeof buf, "  %-12s", classes[static_cast<size_t>(t)].c_str());
    s += buf;
    for (int p = 0; p < m.num_classes(); ++p) {
      std::snprintf(buf, sizeof buf, " %7lld", static_cast<long long>(m.at(t, p)));
      s += buf;
    }
    s += "\n";
  }
  return s;
}

// ---- the model artefact ------------------------------------------------------------------------

struct LoadedModel {
  std::string name;
  std::vector<std::string> classes;
  Vocab vocab;
  TokenizerOptions tokenizer;
  TextLayout layout;  // how training read its files
  ClassifierShape shape;
  std::vector<std::pair<std::string, Tensor>> tensors;
};

std::string model_meta(const TextclassConfig& c, const Vocab& vocab,
                       const std::vector<std::string>& classes, const ClassifierShape& s,
                       double val_accuracy) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "textclass").field("name", c.name);
  w.field("classes", classes);
  w.field("lowercase", c.data.tokenizer.lowercase)
      .field("fold_digits", c.data.tokenizer.fold_digits);
  w.field("max_tokens", c.data.tokenizer.max_tokens);
  // Written only when set: a model trained with the defaults has the file it had before.
  if (c.data.tokenizer.strip_markup) w.field("strip_markup", true);
  if (!(c.data.layout == TextLayout{})) {
    w.key("layout").begin_object();
    config::SectionWriter lw(w, /*identity=*/false);
    layout_fields(lw, const_cast<TextLayout&>(c.data.layout));
    w.end_object();
  }
  w.field("tokens", vocab.tokens());
  w.field("embedding_dim", s.embedding_dim).field("hidden_size", s.hidden_size);
  w.field("num_layers", s.num_layers).field("bidirectional", s.bidirectional);
  w.choice("pooling", s.pooling, pooling_choices());
  w.field("validation_accuracy", val_accuracy);
  w.end_object();
  return w.compact();
}

// A model file's header errors (read by the config reader) are the file's fault: Io errors.
LoadedModel read_model_header(const Archive& a, const std::string& path) {
  std::unique_ptr<json::Document> doc = json::parse(a.meta_json, path + " (metadata)");
  ObjectReader r = doc->root();
  static const json::Choices<int> kTask = {{"textclass", 0}};
  r.required_choice("task", kTask, 0);
  LoadedModel m;
  m.name = r.string("name", "");
  m.classes = r.string_list("classes", {}, json::Text::NonEmpty, IntBounds::at_least(2));
  m.tokenizer.lowercase = r.boolean("lowercase", true);
  m.tokenizer.fold_digits = r.boolean("fold_digits", false);
  m.tokenizer.max_tokens = r.integer<int64_t>("max_tokens", 0, IntBounds::closed(0, 100000));
  m.tokenizer.strip_markup = r.boolean("strip_markup", false);
  {
    ObjectReader lr = r.object("layout");
    config::SectionReader lv(lr);
    layout_fields(lv, m.layout);
    lr.finish();
  }
  std::vector<std::string> tokens = r.string_list("tokens", {});
  // The bounds of the config that trained it.
  m.shape.embedding_dim = r.required_integer<int64_t>("embedding_dim", IntBounds::closed(1, 4096));
  m.shape.hidden_size = r.required_integer<int64_t>("hidden_size", IntBounds::closed(1, 8192));
  m.shape.num_layers = r.required_integer<int64_t>("num_layers", IntBounds::closed(1, 16));
  m.shape.bidirectional = r.boolean("bidirectional", true);
  m.shape.pooling = r.choice("pooling", Pooling::Max, pooling_choices());
  r.number("validation_accuracy", 0);
  r.finish();
  doc->errors.throw_if_any();
  m.vocab = Vocab::from_tokens(std::move(tokens));
  return m;
}

LoadedModel load_model(const std::string& path) {
  Archive a = load_archive(path);
  LoadedModel m = read_model_header_as_io([&] { return read_model_header(a, path); });
  if (m.classes.size() < 2) TESSERA_THROW(Io, path << ": model lists fewer than 2 classes");
  m.shape.vocab = m.vocab.size();
  m.shape.classes = static_cast<int64_t>(m.classes.size());
  // The weights the header implies are all stored, before the model is built from it.
  m.tensors = checked_model_tensors(a, path, TextClassifier::parameter_shapes(m.shape));
  return m;
}

std::string resolve(const DataConfig& d, const FileSpec& file) {
  return d.dataset.empty() ? file.path : resolve_dataset_file(d.dataset, file.path);
}

// A file of the config read with its layout: its own skip_lines add to data.skip_lines (auto
// counting as none); bad rows skipped under on_error "skip" are added to `bad_rows`.
std::vector<LabelledText> read_rows(const DataConfig& d, const FileSpec& file,
                                    const std::string& path, BadRowReport& bad_rows) {
  const int64_t skip =
      file.skip_lines > 0 ? std::max<int64_t>(d.skip_lines, 0) + file.skip_lines : d.skip_lines;
  ReadStats stats;
  std::vector<LabelledText> rows = read_labelled_file(path, d.layout, skip, d.max_rows, &stats);
  bad_rows.merge(stats.bad_rows);
  return rows;
}

}  // namespace

bool is_textclass_model(const std::string& path) {
  try {
    return json::text_has_task(load_archive(path).meta_json, "textclass");
  } catch (const Error&) {
    return false;
  }
}

namespace {

// The data a training run needs, prepared before the model: rows, split, classes, vocabulary
// (training rows only), examples.
struct Prepared {
  std::vector<std::string> classes;
  Vocab vocab;
  std::vector<Example> train, validation, test;
  BadRowReport bad_rows;  // rows skipped under data.on_error "skip"
};

Prepared prepare(const TextclassConfig& cfg) {
  const DataConfig& dc = cfg.data;
  const auto seed = static_cast<uint64_t>(cfg.seed);
  BadRowReport bad_rows;
  const std::string train_path = resolve(dc, dc.train);
  std::vector<LabelledText> train_rows = read_rows(dc, dc.train, train_path, bad_rows);
  std::vector<LabelledText> val_rows, test_rows;
  std::string val_path = train_path, test_path = train_path;
  if (dc.validation_fraction > 0 || dc.test_fraction > 0) {
    Split s =
        stratified_split(std::move(train_rows), dc.validation_fraction, dc.test_fraction, seed);
    train_rows = std::move(s.train);
    val_rows = std::move(s.validation);
    test_rows = std::move(s.test);
  }
  if (dc.validation) {
    val_path = resolve(dc, *dc.validation);
    val_rows = read_rows(dc, *dc.validation, val_path, bad_rows);
  }
  if (dc.test) {
    test_path = resolve(dc, *dc.test);
    test_rows = read_rows(dc, *dc.test, test_path, bad_rows);
  }
  if (train_rows.empty() || val_rows.empty())
    TESSERA_THROW(Data, train_path << ": " << train_rows.size() << " training and "
                                   << val_rows.size()
                                   << " validation rows: need at least one each");
  Prepared p;
  p.bad_rows = bad_rows;
  p.classes = dc.classes;
  if (p.classes.empty()) {
    std::set<std::string> seen;
    for (const auto& r : train_rows) seen.insert(r.label);
    p.classes.assign(seen.begin(), seen.end());
  }
  if (p.classes.size() < 2)
    TESSERA_THROW(Data, train_path << ": the training rows hold " << p.classes.size()
                                   << " distinct label(s); classification needs at least 2");
  std::map<std::string, int32_t> class_ids;
  for (size_t i = 0; i < p.classes.size(); ++i) class_ids[p.classes[i]] = static_cast<int32_t>(i);
  std::vector<std::vector<std::string>> train_tokens;
  train_tokens.reserve(train_rows.size());
  for (const auto& r : train_rows) train_tokens.push_back(tokenize(r.text, dc.tokenizer));
  p.vocab = Vocab::build(train_tokens, dc.min_count, dc.max_vocab);
  train_tokens.clear();
  p.train = to_examples(train_rows, train_path, class_ids, p.vocab, dc.tokenizer);
  p.validation = to_examples(val_rows, val_path, class_ids, p.vocab, dc.tokenizer);
  p.test = to_examples(test_rows, test_path, class_ids, p.vocab, dc.tokenizer);
  return p;
}

// What must match for a checkpoint to be resumed: the config, less what may change on resume.
std::string resume_tag(TextclassConfig c) {
  c.train.epochs = 1;
  c.train.runs_dir = "-";
  c.train.time_budget_s = 0;
  c.train.on_nonfinite = NonFinitePolicy::Stop;
  c.device = "-";
  return sha256_hex(to_json(c));
}

// The classifier's part of the Trainer's loop: length-bucketed batches of the training examples
// (a new seeded order every epoch), one train step with clipping, validation accuracy, loss and
// macro-F1, and the model file.
class TextclassTraining : public train::ParameterTraining<TextClassifier> {
 public:
  TextclassTraining(const TextclassConfig& cfg, const Prepared& data, Backend& be,
                    TextClassifier& model, Optimizer& opt, bool quiet)
      : ParameterTraining(be, model, opt, "textclass checkpoint"),
        cfg_(cfg),
        data_(data),
        step_log_(cfg.train.log_every, quiet) {
    batches_per_epoch_ =
        static_cast<int64_t>(make_batches(data.train, cfg.train.batch_size, 1).size());
  }

  int64_t batches_per_epoch() override { return batches_per_epoch_; }

  void start_epoch(int64_t epoch) override {
    const auto seed = static_cast<uint64_t>(cfg_.seed);
    batches_ = make_batches(data_.train, cfg_.train.batch_size,
                            math::mix64(seed * 1000003ull + static_cast<uint64_t>(epoch)));
    step_log_.start_epoch();
  }

  train::StepResult step(train::StepContext& ctx) override {
    const Batch& batch = batches_[static_cast<size_t>(ctx.batch)];
    const auto b = static_cast<int64_t>(batch.rows.size());
    const Tensor labels = batch_labels(data_.train, batch);
    Tensor logits;
    const double l = model_.train_step(
        batch_ids(data_.train, batch), labels, batch.t, b, 1.f / static_cast<float>(b),
        math::mix64(static_cast<uint64_t>(cfg_.seed) + static_cast<uint64_t>(ctx.step)), &logits);
    const double norm = clip_global_norm(be_, model_.parameters(), cfg_.train.clip_norm);
    train::StepResult r;
    // The loss and the gradients' norm are on the host already: a NaN or Inf in either stops
    // here, or drops the batch before the optimizer step (divergence.h).
    r.applied = ctx.guard.loss_ok(l) && ctx.guard.grad_norm_ok(norm, be_, model_.parameters());
    if (r.applied) {
      opt_.step();
      const std::vector<int32_t> pred = argmax_rows(logits);
      int64_t correct = 0;
      for (int64_t j = 0; j < b; ++j)
        correct += pred[static_cast<size_t>(j)] == labels.data<int32_t>()[j];
      r.examples = b;
      r.loss_sum = l;
      r.units = b * batch.t;  // tokens
      r.sums = {{"accuracy", static_cast<double>(correct)}};
      step_log_.add(l, b);
    }
    step_log_.after_batch(ctx.epoch, ctx.batch, batches_per_epoch_, norm, opt_.current_lr());
    return r;
  }

  train::Metrics validate(DivergenceGuard& guard) override {
    const EvalResult v = evaluate_examples(model_, data_.validation);
    guard.check_value("validation loss", v.loss);
    const double f1 = v.confusion.macro_f1();
    return {{"validation_loss", v.loss},
            {"validation_accuracy", v.confusion.accuracy()},
            {"validation_macro_f1", std::isnan(f1) ? 0.0 : f1}};
  }

  void finish(train::FinishContext& ctx) override {
    const NamedTensors weights = model_.snapshot();
    ctx.guard.check_weights(weights_map(weights));
    const double best_acc = metric_or(ctx.best_validation, "validation_accuracy", 0);
    const std::string model_path = ctx.run_dir + "/model.tsm";
    save_archive(model_path, model_meta(cfg_, data_.vocab, data_.classes, model_.shape(), best_acc),
                 weights);
    json::JsonWriter& w = ctx.result;
    w.field("model", model_path);
    w.field("vocabulary", data_.vocab.size()).field("classes", data_.classes);
    if (data_.bad_rows.skipped > 0) {
      w.field("bad_rows_skipped", data_.bad_rows.skipped);
      ctx.summary += "bad rows: " + data_.bad_rows.summary() + "\n";
    }
    w.field("validation_accuracy", best_acc)
        .field("validation_loss", metric_or(ctx.best_validation, "validation_loss", 0));
    char buf[256];
    std::snprintf(buf, sizeof buf, "validation accuracy %.4f\n", best_acc);
    ctx.summary += buf;
    if (!data_.test.empty()) {
      const EvalResult t = evaluate_examples(model_, data_.test);
      w.key("test").begin_object();
      w.field("rows", static_cast<int64_t>(data_.test.size())).field("loss", t.loss);
      write_confusion(w, t.confusion);
      w.end_object();
      std::snprintf(buf, sizeof buf, "test accuracy %.4f, macro-F1 %.4f (%zu rows)\n",
                    t.confusion.accuracy(), t.confusion.macro_f1(), data_.test.size());
      ctx.summary += buf;
      ctx.summary += confusion_text(t.confusion, data_.classes);
    }
    ctx.summary += "model: " + model_path + "\n";
  }

 private:
  static std::map<std::string, Tensor> weights_map(const NamedTensors& t) {
    return std::map<std::string, Tensor>(t.begin(), t.end());
  }
  static double metric_or(const train::Metrics& m, const std::string& name, double fallback) {
    for (const auto& [k, v] : m)
      if (k == name) return v;
    return fallback;
  }

  const TextclassConfig& cfg_;
  const Prepared& data_;
  int64_t batches_per_epoch_ = 0;
  std::vector<Batch> batches_;
  StepLossLog step_log_;
};

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  TextclassConfig cfg = read_textclass_config(config_path);
  train::apply_run_overrides(options, cfg.seed, cfg.train.epochs, cfg.train.runs_dir, &cfg.device,
                             &cfg.train.time_budget_s);
  const Prepared data = prepare(cfg);

  std::unique_ptr<Backend> backend = make_backend(cfg.device);
  ClassifierShape shape = cfg.model;
  shape.vocab = data.vocab.size();
  shape.classes = static_cast<int64_t>(data.classes.size());
  TextClassifier model(*backend, shape);
  model.init(static_cast<uint64_t>(cfg.seed));
  const auto steps_per_epoch =
      static_cast<int64_t>(make_batches(data.train, cfg.train.batch_size, 1).size());
  Optimizer opt = train::epoch_optimizer(*backend, cfg.train, steps_per_epoch, model.parameters());
  if (!options.quiet)
    std::fprintf(stderr,
                 "tessera train: textclass on %s; %zu train / %zu validation / %zu test rows, "
                 "%zu classes, vocabulary %lld; %lld length-bucketed steps/epoch\n",
                 backend->name().c_str(), data.train.size(), data.validation.size(),
                 data.test.size(), data.classes.size(), static_cast<long long>(data.vocab.size()),
                 static_cast<long long>(steps_per_epoch));

  train::TrainerOptions t = train::trainer_options(
      options, train::task_run("textclass", cfg, to_json(cfg), resume_tag(cfg)), backend->name());
  t.selection = {"validation_accuracy", train::Goal::Maximize, "validation_loss",
                 train::Goal::Minimize, cfg.train.patience};
  t.checkpoint_every = 1;
  t.time_budget_s = cfg.train.time_budget_s;
  t.throughput_field = "train_tokens_per_s";
  TextclassTraining task(cfg, data, *backend, model, opt, options.quiet);
  train::TrainResult tr = train::Trainer(t).fit(task);
  return {tr.summary, tr.json};
}

Result evaluate(const std::string& model_path, const std::string& data_path,
                const RunOptions& options) {
  LoadedModel m = load_model(model_path);
  RestoredTextModel<TextClassifier> restored(m, options.device);
  TextClassifier& model = restored.model;
  ReadStats stats;
  // The model's layout (columns, delimiter, header, bad rows), unless the file is plain
  // label<TAB>text rows (a pipeline's prep output).
  const TextLayout layout = options.plain_rows ? TextLayout{} : m.layout;
  const std::vector<LabelledText> rows =
      read_labelled_file(data_path, layout, options.skip_lines, 0, &stats);
  std::map<std::string, int32_t> class_ids;
  for (size_t i = 0; i < m.classes.size(); ++i) class_ids[m.classes[i]] = static_cast<int32_t>(i);
  const std::vector<Example> ex = to_examples(rows, data_path, class_ids, m.vocab, m.tokenizer);
  const auto t0 = Clock::now();
  const EvalResult e = evaluate_examples(model, ex);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("task", "textclass").field("model", model_path);
  w.field("data", data_path).field("rows", static_cast<int64_t>(ex.size()));
  w.field("header_skipped", stats.header_skipped).field("empty_lines_skipped", stats.empty_lines);
  if (stats.bad_rows.skipped > 0) w.field("bad_rows_skipped", stats.bad_rows.skipped);
  w.field("classes", m.classes).field("loss", e.loss);
  write_confusion(w, e.confusion);
  w.field("seconds", secs);
  w.end_object();
  Result r;
  r.json = w.compact();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %zu rows, accuracy %.4f, macro-F1 %.4f, loss %.4f\n",
                data_path.c_str(), ex.size(), e.confusion.accuracy(), e.confusion.macro_f1(),
                e.loss);
  r.summary = std::string(buf) + confusion_text(e.confusion, m.classes);
  if (stats.bad_rows.skipped > 0) r.summary += "bad rows: " + stats.bad_rows.summary() + "\n";
  return r;
}

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const RunOptions& options) {
  if (options.batch_size < 1) TESSERA_THROW(Usage, "--batch-size must be >= 1");
  LoadedModel m = load_model(model_path);
  RestoredTextModel<TextClassifier> restored(m, options.device);
  TextClassifier& model = restored.model;
  std::ifstream in = open_text_input(input_path);
  AtomicFileWriter out(output_path);
  std::string header = "line\tlabel";
  for (const auto& c : m.classes) header += "\tp_" + c;
  out.write(header + "\n");
  const auto c = static_cast<int64_t>(m.classes.size());
  std::vector<int64_t> counts(static_cast<size_t>(c), 0);
  int64_t line_no = 0, empty = 0;
  const auto t0 = Clock::now();
  // One chunk of lines at a time: bounded memory whatever the input size; each chunk is
  // bucketed by length, scored, and written back in input order.
  std::vector<Example> chunk;
  std::string line;
  auto flush = [&] {
    if (chunk.empty()) return;
    std::vector<float> probs(chunk.size() * static_cast<size_t>(c));
    for (const Batch& batch : make_batches(chunk, kEvalBatch, 0)) {
      const auto b = static_cast<int64_t>(batch.rows.size());
      Tensor p = model.logits(batch_ids(chunk, batch), batch.t, b);
      softmax_rows(p);
      for (int64_t j = 0; j < b; ++j)
        std::copy(p.data<float>() + j * c, p.data<float>() + (j + 1) * c,
                  probs.begin() + batch.rows[static_cast<size_t>(j)] * c);
    }
    const int64_t first = line_no - static_cast<int64_t>(chunk.size()) + 1;
    std::string text;
    char buf[32];
    for (size_t i = 0; i < chunk.size(); ++i) {
      const float* p = probs.data() + i * static_cast<size_t>(c);
      const auto best = static_cast<size_t>(std::max_element(p, p + c) - p);
      ++counts[best];
      text += std::to_string(first + static_cast<int64_t>(i)) + "\t" + m.classes[best];
      for (int64_t k = 0; k < c; ++k) {
        std::snprintf(buf, sizeof buf, "\t%.6g", p[k]);
        text += buf;
      }
      text += "\n";
    }
    out.write(text);
    chunk.clear();
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::vector<std::string> toks = tokenize(line, m.tokenizer);
    if (toks.empty()) ++empty;
    chunk.push_back({m.vocab.encode(toks), -1});
    if (static_cast<int64_t>(chunk.size()) >= options.batch_size) flush();
  }
  if (in.bad()) TESSERA_THROW(Io, input_path << ": read error after line " << line_no);
  flush();
  out.commit();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("task", "textclass").field("model", model_path);
  w.field("input", input_path).field("output", output_path).field("rows", line_no);
  w.field("empty_lines", empty).field("classes", m.classes).field("predicted_counts", counts);
  w.field("seconds", secs).field("rows_per_s", secs > 0 ? line_no / secs : 0.0);
  w.end_object();
  Result r;
  r.json = w.compact();
  r.summary = "scored " + std::to_string(line_no) + " lines into " + output_path + "\n";
  return r;
}

}  // namespace tessera::textclass
