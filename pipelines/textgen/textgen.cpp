// The text-generation pipeline (pipelines/textgen/textgen.h): config, tokenisation,
// TBPTT training (on the shared Trainer) with clipping and schedule, validation, the model
// artefact, sampling.
#include "pipelines/textgen/textgen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/math.h"
#include "host/core/model_file_checks.h"
#include "host/core/progress.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/model/parameter_ops.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"
#include "pipelines/parameter_training.h"
#include "pipelines/task_run.h"
#include "pipelines/text_models.h"
#include "pipelines/textgen/lm_model.h"
#include "pipelines/textgen/textgen_config.h"
#include "pipelines/textgen/tokenizer.h"

namespace tessera::textgen {

namespace {

using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

// ---- batching: B contiguous streams, TBPTT segments of T ---------------------------------------

// Stream b is ids[b * stream_len, (b + 1) * stream_len); segment k covers positions
// [k T, (k + 1) T) of every stream, targets one further.
struct Streams {
  const std::vector<int32_t>* ids = nullptr;
  int64_t b = 0, t = 0, stream_len = 0;
  int64_t segments() const { return stream_len > 1 ? (stream_len - 1 + t - 1) / t : 0; }
  // Segment k's length (the last may be shorter), and its inputs/targets, time-major.
  int64_t fill(int64_t k, Tensor& in, Tensor& tgt) const {
    const int64_t start = k * t;
    const int64_t len = std::min(t, stream_len - 1 - start);
    in = Tensor::host({len * b}, DType::I64);
    tgt = Tensor::host({len * b}, DType::I32);
    for (int64_t s = 0; s < len; ++s)
      for (int64_t j = 0; j < b; ++j) {
        const int64_t at = j * stream_len + start + s;
        in.data<int64_t>()[s * b + j] = (*ids)[at];
        tgt.data<int32_t>()[s * b + j] = (*ids)[at + 1];
      }
    return len;
  }
};

Streams make_streams(const std::vector<int32_t>& ids, int64_t b, int64_t t) {
  Streams s;
  s.ids = &ids;
  s.b = std::max<int64_t>(1, std::min<int64_t>(b, static_cast<int64_t>(ids.size()) / 2));
  s.t = t;
  s.stream_len = static_cast<int64_t>(ids.size()) / s.b;
  return s;
}

// The segment length a text file is scored in (one stream: perplexity, evaluate, the test file).
constexpr int64_t kScoreSegment = 256;

// Mean loss (nats per token) over every target of `ids`, state carried across segments.
double evaluate_ids(LanguageModel& model, const std::vector<int32_t>& ids, int64_t b, int64_t t) {
  const Streams s = make_streams(ids, b, t);
  LmState state = model.zero_state(s.b);
  double total = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < s.segments(); ++k) {
    Tensor in, tgt;
    const int64_t len = s.fill(k, in, tgt);
    total += model.eval_segment(in, tgt, len, s.b, state);
    count += len * s.b;
  }
  TESSERA_CHECK(count > 0, "no targets to evaluate (" << ids.size() << " tokens)");
  return total / static_cast<double>(count);
}

std::string model_meta(const TextgenConfig& c, const Tokenizer& tok, double val_loss) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "textgen").field("name", c.name);
  w.field("tokenizer", json::choice_name(tok.kind(), tokenizer_choices()));
  if (tok.kind() == TokenizerKind::Char) {
    std::vector<int64_t> codes;  // bytes as numbers: any byte survives JSON
    for (const std::string& t : tok.tokens()) codes.push_back(static_cast<unsigned char>(t[0]));
    w.key("vocab").list(codes);
  } else {
    w.key("tokens").list(tok.tokens());
  }
  w.field("embedding_dim", c.model.embedding_dim).field("hidden_size", c.model.hidden_size);
  w.field("num_layers", c.model.num_layers).field("dropout", c.model.dropout);
  w.field("output_dropout", c.model.output_dropout);
  w.field("validation_nats_per_char", val_loss);
  w.end_object();
  return w.compact();
}

struct LoadedModel {
  Tokenizer tok;
  LmShape shape;
  std::vector<std::pair<std::string, Tensor>> tensors;
};

// A model file's header errors (read by the config reader) are the file's fault: Io errors.
LoadedModel read_model_header(const Archive& a, const std::string& path) {
  std::unique_ptr<json::Document> doc = json::parse(a.meta_json, path + " (metadata)");
  ObjectReader r = doc->root();
  static const json::Choices<int> kTask = {{"textgen", 0}};
  r.required_choice("task", kTask, 0);
  const TokenizerKind kind = r.choice("tokenizer", TokenizerKind::Char, tokenizer_choices());
  r.string("name", "");
  LoadedModel m;
  std::vector<std::string> tokens;
  if (kind == TokenizerKind::Char) {
    for (int64_t code : r.integer_list<int64_t>("vocab", {}, IntBounds::closed(0, 255)))
      tokens.emplace_back(1, static_cast<char>(code));
  } else {
    tokens = r.string_list("tokens", {});
  }
  // The bounds of the config that trained it.
  m.shape.embedding_dim = r.required_integer<int64_t>("embedding_dim", IntBounds::closed(1, 4096));
  m.shape.hidden_size = r.required_integer<int64_t>("hidden_size", IntBounds::closed(1, 8192));
  m.shape.num_layers = r.required_integer<int64_t>("num_layers", IntBounds::closed(1, 16));
  r.number("dropout", 0);
  r.number("output_dropout", 0);  // training only, like dropout: kept for the record
  r.number("validation_nats_per_char", 0);
  r.finish();
  doc->errors.throw_if_any();
  m.tok = Tokenizer::from_tokens(kind, std::move(tokens));
  return m;
}

LoadedModel load_model(const std::string& path) {
  Archive a = load_archive(path);
  LoadedModel m = read_model_header_as_io([&] { return read_model_header(a, path); });
  m.shape.vocab = m.tok.size();
  if (m.shape.vocab < 2) TESSERA_THROW(Io, path << ": model vocabulary has fewer than 2 tokens");
  // The weights the header implies are all stored, before the model is built from it.
  m.tensors = checked_model_tensors(a, path, LanguageModel::parameter_shapes(m.shape));
  return m;
}

// The text a run trains on, tokenised: train, validation (a file, or the last
// validation_fraction of train's characters) and the test file when there is one.
struct Prepared {
  std::string path;  // the training text's
  Tokenizer tok;
  std::vector<int32_t> train, validation, test;
  double tokens_per_char = 1;  // of the validation text: nats/char = nats/token * this
  std::string test_path;       // "" without a test file
  double test_tokens_per_char = 1;
};

// A data file's path: inside the dataset when there is one, else as given.
std::string data_path(const TextgenData& d, const FileSpec& f) {
  return d.dataset.empty() ? f.path : resolve_dataset_file(d.dataset, f.path);
}

double tokens_per_char(const std::vector<int32_t>& ids, const std::string& text) {
  return static_cast<double>(ids.size()) / static_cast<double>(text.size());
}

Prepared prepare(const TextgenConfig& cfg) {
  const TextgenData& d = cfg.data;
  Prepared p;
  p.path = data_path(d, d.train);
  std::string train_text = read_text(p.path, d.train, d.max_chars);
  const std::string val_path = d.validation ? data_path(d, *d.validation) : p.path;
  std::string val_text;
  if (d.validation) {
    val_text = read_text(val_path, *d.validation, d.max_chars);
  } else {
    const auto val_chars =
        static_cast<size_t>(std::llround(train_text.size() * d.validation_fraction));
    val_text = train_text.substr(train_text.size() - val_chars);
    train_text.resize(train_text.size() - val_chars);
  }
  std::string test_text;
  if (d.test) {
    p.test_path = data_path(d, *d.test);
    test_text = read_text(p.test_path, *d.test, d.max_chars);
  }
  // The character vocabulary covers every text (a character model has no unknown token); the
  // word vocabulary is the training text's.
  p.tok = Tokenizer::build(
      d.tokenizer,
      d.tokenizer == TokenizerKind::Char ? train_text + val_text + test_text : train_text,
      d.min_count);
  p.train = p.tok.encode(train_text, p.path);
  p.validation = p.tok.encode(val_text, val_path);
  p.test = p.tok.encode(test_text, p.test_path);
  if (p.train.size() < 2 * static_cast<size_t>(cfg.train.batch_size))
    TESSERA_THROW(Data, p.path << ": " << train_text.size() << " characters of training text are "
                               << "too few for batch " << cfg.train.batch_size);
  if (p.validation.size() < 2)
    TESSERA_THROW(Data, val_path << ": " << val_text.size()
                                 << " characters of validation text: fewer than 2 tokens");
  if (d.test && p.test.size() < 2)
    TESSERA_THROW(Data, p.test_path << ": " << test_text.size()
                                    << " characters of test text: fewer than 2 tokens");
  p.tokens_per_char = tokens_per_char(p.validation, val_text);
  if (d.test) p.test_tokens_per_char = tokens_per_char(p.test, test_text);
  return p;
}

// What must match for a checkpoint to be resumed: the config, less what may change on resume.
// The epoch count stays: it shapes the learning-rate schedule.
std::string resume_tag(TextgenConfig c) {
  c.train.runs_dir = "-";
  c.train.time_budget_s = 0;
  c.train.log_every = 1;
  c.train.on_nonfinite = NonFinitePolicy::Stop;
  c.device = "-";
  return sha256_hex(to_json(c));
}

double metric_or(const train::Metrics& m, const std::string& name, double fallback) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  return fallback;
}

// The language model's part of the Trainer's loop: each epoch runs the B streams' TBPTT
// segments in order, the LSTM state carried from one segment into the next (from zeros at the
// epoch's start, and again after a dropped segment); clipping, the optimizer's schedule, and
// validation in nats per token and per character.
class TextgenTraining : public train::ParameterTraining<LanguageModel> {
 public:
  TextgenTraining(const TextgenConfig& cfg, const Prepared& data, Backend& be, LanguageModel& model,
                  Optimizer& opt, bool quiet)
      : ParameterTraining(be, model, opt, "textgen checkpoint"),
        cfg_(cfg),
        data_(data),
        streams_(make_streams(data.train, cfg.train.batch_size, cfg.train.seq_len)),
        step_log_(cfg.train.log_every, quiet) {}

  int64_t streams() const { return streams_.b; }
  int64_t batches_per_epoch() override { return streams_.segments(); }

  void start_epoch(int64_t) override {
    state_ = model_.zero_state(streams_.b);
    step_log_.start_epoch();
  }

  train::StepResult step(train::StepContext& ctx) override {
    Tensor in, tgt;
    const int64_t len = streams_.fill(ctx.batch, in, tgt);
    const double l = model_.train_step(in, tgt, len, streams_.b, state_,
                                       math::mix64(static_cast<uint64_t>(cfg_.seed) + ctx.step));
    const double norm = clip_global_norm(be_, model_.parameters(), cfg_.train.clip_norm);
    train::StepResult r;
    // The loss and the gradients' norm are on the host already: a NaN or Inf in either stops
    // here, or drops the segment before the optimizer step (divergence.h); the state carried
    // into the next segment then starts again from zeros.
    r.applied = ctx.guard.loss_ok(l) && ctx.guard.grad_norm_ok(norm, be_, model_.parameters());
    if (r.applied) {
      opt_.step();
      r.examples = r.units = len * streams_.b;  // tokens; l is their summed loss
      r.loss_sum = l;
      step_log_.add(l, r.examples);
    } else {
      state_ = model_.zero_state(streams_.b);
    }
    step_log_.after_batch(ctx.epoch, ctx.batch, streams_.segments(), norm, opt_.current_lr());
    return r;
  }

  train::Metrics validate(DivergenceGuard& guard) override {
    const double nats =
        evaluate_ids(model_, data_.validation, cfg_.train.batch_size, cfg_.train.seq_len);
    guard.check_value("validation loss", nats);
    return {{"validation_nats_per_token", nats},
            {"validation_nats_per_char", nats * data_.tokens_per_char},
            {"validation_perplexity", std::exp(nats)}};
  }

  void finish(train::FinishContext& ctx) override {
    const NamedTensors weights = model_.snapshot();
    ctx.guard.check_weights(be_, weights);
    const double nats = metric_or(ctx.best_validation, "validation_nats_per_token", NAN);
    const double per_char = metric_or(ctx.best_validation, "validation_nats_per_char", NAN);
    const double perplexity = metric_or(ctx.best_validation, "validation_perplexity", NAN);
    const std::string model_path = ctx.run_dir + "/model.tsm";
    save_archive(model_path, model_meta(cfg_, data_.tok, per_char), weights);
    ctx.result.field("model", model_path);
    ctx.result.field("tokenizer", json::choice_name(cfg_.data.tokenizer, tokenizer_choices()));
    ctx.result.field("validation_nats_per_token", nats)
        .field("validation_nats_per_char", per_char)
        .field("validation_perplexity", perplexity);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "validation %.4f nats/token (%.4f nats/char), perplexity %.3f\nmodel: %s\n", nats,
                  per_char, perplexity, model_path.c_str());
    ctx.summary += buf;
    if (!data_.test_path.empty()) score_test(ctx);
  }

 private:
  // The test file, once, with the model's weights, read as `perplexity` reads a file.
  void score_test(train::FinishContext& ctx) {
    const double nats = evaluate_ids(model_, data_.test, 1, kScoreSegment);
    const double per_char = nats * data_.test_tokens_per_char;
    ctx.result.field("test", data_.test_path)
        .field("test_nats_per_token", nats)
        .field("test_nats_per_char", per_char)
        .field("test_perplexity", std::exp(nats));
    char buf[512];
    std::snprintf(buf, sizeof buf, "test %.4f nats/token (%.4f nats/char), perplexity %.3f: %s\n",
                  nats, per_char, std::exp(nats), data_.test_path.c_str());
    ctx.summary += buf;
  }

  const TextgenConfig& cfg_;
  const Prepared& data_;
  const Streams streams_;
  LmState state_;  // carried from segment to segment within an epoch
  StepLossLog step_log_;
};

train::TrainerOptions trainer_options(const TextgenConfig& cfg, const TrainOptions& options,
                                      const std::string& device) {
  train::TrainerOptions t = train::trainer_options(
      options, train::task_run("textgen", cfg, to_json(cfg), resume_tag(cfg)), device);
  t.selection.metric = "validation_nats_per_token";
  t.selection.goal = train::Goal::Minimize;
  t.checkpoint_every = 1;
  t.time_budget_s = cfg.train.time_budget_s;
  t.loss_field = "train_nats_per_token";
  t.throughput_field = "train_tokens_per_s";
  return t;
}

}  // namespace

bool is_textgen_config(const std::string& path) {
  return json::file_has_task(path, "textgen");
}

Result train(const std::string& config_path, const TrainOptions& options) {
  TextgenConfig cfg = read_textgen_config(config_path);
  // The device overrides the config's for this run only: the resolved config keeps the config's.
  train::apply_run_overrides(options, cfg.seed, cfg.train.epochs, cfg.train.runs_dir, nullptr,
                             &cfg.train.time_budget_s);
  const Prepared data = prepare(cfg);

  std::unique_ptr<Backend> backend =
      make_backend(options.device.empty() ? cfg.device : options.device);
  const LmShape shape = lm_shape(cfg.model, data.tok.size());
  LanguageModel model(*backend, shape);
  model.init(static_cast<uint64_t>(cfg.seed));
  const int64_t steps_per_epoch =
      make_streams(data.train, cfg.train.batch_size, cfg.train.seq_len).segments();
  Optimizer opt = train::epoch_optimizer(*backend, cfg.train, steps_per_epoch, model.parameters());
  TextgenTraining task(cfg, data, *backend, model, opt, options.quiet);
  if (!options.quiet)
    std::fprintf(
        stderr,
        "tessera train: textgen on %s; %zu train / %zu validation tokens, vocabulary %lld; "
        "%lld steps/epoch of %lld x %lld\n",
        backend->name().c_str(), data.train.size(), data.validation.size(),
        static_cast<long long>(shape.vocab), static_cast<long long>(steps_per_epoch),
        static_cast<long long>(cfg.train.seq_len), static_cast<long long>(task.streams()));
  train::TrainResult tr = train::Trainer(trainer_options(cfg, options, backend->name())).fit(task);
  return {tr.summary, tr.json};
}

Result generate(const std::string& model_path, const GenerateOptions& o,
                const std::function<void(const std::string&)>& emit) {
  if (!(o.temperature > 0))
    TESSERA_THROW(Usage, "--temperature must be > 0, got " << o.temperature);
  LoadedModel m = load_model(model_path);
  if (o.top_k < 0 || o.top_k > m.shape.vocab)
    TESSERA_THROW(Usage, "--top-k must be in [0, " << m.shape.vocab << "], got " << o.top_k);
  std::unique_ptr<Backend> backend = make_backend(o.device);
  LanguageModel model(*backend, m.shape);
  model.restore(m.tensors);

  // The prompt primes the state; an empty prompt starts from a newline (or token 0).
  std::vector<int32_t> prompt = m.tok.encode(o.prompt, "--prompt");
  if (prompt.empty()) prompt.push_back(std::max(0, m.tok.id_of("\n")));
  LmState state = model.zero_state(1);
  Tensor ids = Tensor::host({static_cast<int64_t>(prompt.size())}, DType::I64);
  for (size_t i = 0; i < prompt.size(); ++i) ids.data<int64_t>()[i] = prompt[i];
  Tensor logits = model.next_logits(ids, static_cast<int64_t>(prompt.size()), 1, state);

  const int64_t v = m.shape.vocab;
  const int64_t k = o.top_k == 0 ? v : o.top_k;
  std::string produced;
  std::vector<int64_t> order(static_cast<size_t>(v));
  std::vector<double> p(static_cast<size_t>(v));
  for (int64_t step = 0; step < o.length; ++step) {
    const float* z = logits.data<float>();
    // Top-k by logit, ties to the lower id (deterministic).
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
    double mx = z[order[0]] / o.temperature, sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += p[i] = std::exp(z[order[i]] / o.temperature - mx);
    // A counter-based uniform draw per step: the same seed gives the same text everywhere.
    const double u = math::hash_uniform(o.seed, static_cast<uint64_t>(step)) * sum;
    int64_t pick = order[k - 1];
    double acc = 0;
    for (int64_t i = 0; i < k; ++i) {
      acc += p[i];
      if (u < acc) {
        pick = order[i];
        break;
      }
    }
    const std::string& piece = m.tok.token(static_cast<int32_t>(pick));
    produced += piece;
    emit(piece);
    Tensor next = Tensor::host({1}, DType::I64);
    next.data<int64_t>()[0] = pick;
    logits = model.next_logits(next, 1, 1, state);
  }
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "generate").field("model", model_path).field("seed", o.seed);
  w.field("temperature", o.temperature).field("top_k", o.top_k).field("length", o.length);
  w.field("text", produced).end_object();
  Result r;
  r.json = w.compact();
  return r;
}

namespace {

// A model's loss on one text file, read as one stream: every token after the first is predicted
// from all before it.
struct TextMeasure {
  int64_t chars = 0, tokens = 0;
  double nats_per_token = 0, nats_per_char = 0;
};

TextMeasure measure_text(const std::string& model_path, const std::string& text_path,
                         const std::string& device) {
  LoadedModel m = load_model(model_path);
  RestoredTextModel<LanguageModel> restored(m, device);
  LanguageModel& model = restored.model;
  const std::string text = read_file(text_path);
  const std::vector<int32_t> ids = m.tok.encode(text, text_path);
  if (ids.size() < 2) TESSERA_THROW(Data, text_path << ": fewer than 2 tokens");
  TextMeasure t;
  t.chars = static_cast<int64_t>(text.size());
  t.tokens = static_cast<int64_t>(ids.size());
  t.nats_per_token = evaluate_ids(model, ids, 1, kScoreSegment);
  t.nats_per_char =
      t.nats_per_token * static_cast<double>(ids.size()) / static_cast<double>(text.size());
  return t;
}

}  // namespace

Result perplexity(const std::string& model_path, const std::string& text_path,
                  const std::string& device) {
  const TextMeasure t = measure_text(model_path, text_path, device);
  const double nats = t.nats_per_token, per_char = t.nats_per_char;
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "perplexity").field("model", model_path).field("text", text_path);
  w.field("chars", t.chars).field("tokens", t.tokens);
  w.field("nats_per_token", nats).field("nats_per_char", per_char);
  w.field("perplexity", std::exp(nats)).end_object();
  Result r;
  r.json = w.compact();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s: %.4f nats/token, %.4f nats/char, perplexity %.3f\n",
                text_path.c_str(), nats, per_char, std::exp(nats));
  r.summary = buf;
  return r;
}

Result evaluate(const std::string& model_path, const std::string& text_path,
                const std::string& device) {
  const TextMeasure t = measure_text(model_path, text_path, device);
  const double bits_per_char = t.nats_per_char / std::log(2.0);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("task", "textgen").field("model", model_path);
  w.field("data", text_path).field("chars", t.chars).field("tokens", t.tokens);
  w.field("nats_per_token", t.nats_per_token).field("nats_per_char", t.nats_per_char);
  w.field("bits_per_char", bits_per_char).field("perplexity", std::exp(t.nats_per_token));
  w.end_object();
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s: %lld characters, %lld tokens: perplexity %.3f, %.4f bits/char (%.4f "
                "nats/char, %.4f nats/token)\n",
                text_path.c_str(), static_cast<long long>(t.chars),
                static_cast<long long>(t.tokens), std::exp(t.nats_per_token), bits_per_char,
                t.nats_per_char, t.nats_per_token);
  return {buf, w.compact()};
}

namespace {

constexpr size_t kMaxPredictLine = size_t{1} << 20;  // bytes of one input line
constexpr int64_t kPrimeSegment = 256;               // prompt tokens run at a time

// The ids of one input line; a character the model's vocabulary lacks is a Data error naming
// path:line:column.
std::vector<int32_t> encode_line(const Tokenizer& tok, const std::string& text,
                                 const std::string& path, int64_t line_no) {
  if (tok.kind() == TokenizerKind::Char)
    for (size_t i = 0; i < text.size(); ++i) {
      if (tok.id_of(std::string(1, text[i])) >= 0) continue;
      std::ostringstream m;
      m << path << ":" << line_no << ":" << i + 1 << ": character 0x" << std::hex
        << static_cast<int>(static_cast<unsigned char>(text[i])) << std::dec
        << " is not in the model's vocabulary of " << tok.size() << " characters";
      throw Error(ErrorKind::Data, m.str(),
                  ErrorLocation{path, line_no, static_cast<int64_t>(i) + 1, ""});
    }
  std::vector<int32_t> ids = tok.encode(text, path);
  if (ids.empty()) ids.push_back(std::max(0, tok.id_of("\n")));  // as generate's empty prompt
  return ids;
}

// Runs `ids` through the model from a zero state, kPrimeSegment tokens at a time (bounded
// memory whatever the line's length); returns the logits after the last, host [1, V].
Tensor prime(LanguageModel& model, const std::vector<int32_t>& ids, LmState& state) {
  state = model.zero_state(1);
  Tensor logits;
  for (size_t lo = 0; lo < ids.size(); lo += kPrimeSegment) {
    const auto len = static_cast<int64_t>(std::min<size_t>(kPrimeSegment, ids.size() - lo));
    Tensor seg = Tensor::host({len}, DType::I64);
    for (int64_t i = 0; i < len; ++i) seg.data<int64_t>()[i] = ids[lo + static_cast<size_t>(i)];
    logits = model.next_logits(seg, len, 1, state);
  }
  return logits;
}

// A token as a TSV field: tab, newline, carriage return and backslash escaped.
std::string tsv_escaped(const std::string& s) {
  static const std::pair<char, const char*> kEscapes[] = {
      {'\t', "\\t"}, {'\n', "\\n"}, {'\r', "\\r"}, {'\\', "\\\\"}};
  std::string out;
  for (char c : s) {
    const auto* e = std::find_if(std::begin(kEscapes), std::end(kEscapes),
                                 [c](const auto& x) { return x.first == c; });
    if (e == std::end(kEscapes))
      out += c;
    else
      out += e->second;
  }
  return out;
}

// One input line's row: the most likely next token, its probability, the greedy continuation.
std::string predict_row(LanguageModel& model, const Tokenizer& tok, const std::vector<int32_t>& ids,
                        int64_t length, int64_t line_no) {
  LmState state;
  Tensor logits = prime(model, ids, state);
  const int64_t v = tok.size();
  std::string first, continuation;
  double first_p = 0;
  for (int64_t step = 0; step < length; ++step) {
    const float* z = logits.data<float>();
    const int64_t pick = std::max_element(z, z + v) - z;  // ties to the lower id, as generate's
    if (step == 0) {
      double sum = 0;
      for (int64_t k = 0; k < v; ++k) sum += std::exp(static_cast<double>(z[k] - z[pick]));
      first_p = 1.0 / sum;
      first = tok.token(static_cast<int32_t>(pick));
    }
    continuation += tok.token(static_cast<int32_t>(pick));
    if (step + 1 == length) break;
    Tensor next = Tensor::host({1}, DType::I64);
    next.data<int64_t>()[0] = pick;
    logits = model.next_logits(next, 1, 1, state);
  }
  char p[32];
  std::snprintf(p, sizeof p, "%.6g", first_p);
  return std::to_string(line_no) + "\t" + tsv_escaped(first) + "\t" + p + "\t" +
         tsv_escaped(continuation) + "\n";
}

}  // namespace

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& o) {
  if (o.length < 1) TESSERA_THROW(Usage, "--length must be at least 1, got " << o.length);
  LoadedModel m = load_model(model_path);
  RestoredTextModel<LanguageModel> restored(m, o.device);
  LanguageModel& model = restored.model;
  std::ifstream in = open_text_input(input_path);
  AtomicFileWriter out(output_path);
  out.write("line\tnext\tprobability\tcontinuation\n");
  int64_t line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.size() > kMaxPredictLine)
      throw Error(ErrorKind::Data,
                  input_path + ":" + std::to_string(line_no) + ": line of " +
                      std::to_string(line.size()) + " bytes; predict reads lines of at most " +
                      std::to_string(kMaxPredictLine),
                  ErrorLocation{input_path, line_no, 0, ""});
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.write(predict_row(model, m.tok, encode_line(m.tok, line, input_path, line_no), o.length,
                          line_no));
  }
  if (in.bad()) TESSERA_THROW(Io, input_path << ": read error after line " << line_no);
  out.commit();
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("task", "textgen").field("model", model_path);
  w.field("input", input_path).field("output", output_path).field("rows", line_no);
  w.field("length", o.length).end_object();
  return {"predicted the next " + std::to_string(o.length) + " tokens of " +
              std::to_string(line_no) + " lines into " + output_path + "\n",
          w.compact()};
}

std::string read_text(const std::string& path, const FileSpec& file, int64_t max_chars) {
  std::string text = read_file(path);
  size_t at = 0;
  for (int i = 0; i < file.skip_lines && at < text.size(); ++i) {
    const size_t nl = text.find('\n', at);
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  text.erase(0, at);
  if (max_chars > 0 && static_cast<int64_t>(text.size()) > max_chars)
    text.resize(static_cast<size_t>(max_chars));
  return text;
}

std::string resolved_config(const std::string& json_text, const std::string& source) {
  return to_json(parse_textgen_config(json_text, source));
}

}  // namespace tessera::textgen
