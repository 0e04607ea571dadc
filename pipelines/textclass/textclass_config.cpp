#include "pipelines/textclass/textclass_config.h"

#include <cstdio>
#include <cstdlib>

#include "host/config/json_writer.h"
#include "host/config/sections.h"
#include "host/core/atomic_file.h"

namespace tessera::textclass {

using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

const json::Choices<Pooling>& pooling_choices() {
  static const json::Choices<Pooling> c = {
      {"mean", Pooling::Mean}, {"max", Pooling::Max}, {"last", Pooling::Last}};
  return c;
}

TextclassConfig read_textclass_config(const std::string& path) {
  const std::string text = read_file(path);
  std::unique_ptr<json::Document> doc = json::parse(text, path);
  TextclassConfig c;
  ObjectReader root = doc->root();
  static const json::Choices<int> kTask = {{"textclass", 0}};
  root.required_choice("task", kTask, 0);
  c.name = config::read_run_name(root, "name", c.name);
  c.seed = root.integer<int64_t>("seed", c.seed, IntBounds::at_least(0));
  c.device = config::read_device(root, "device", c.device);
  {
    ObjectReader d = root.required_object("data");
    DataConfig& dc = c.data;
    dc.dataset = d.string("dataset", "", Text::Any);
    dc.train = d.required_string("train", Text::NonEmpty);
    dc.validation = d.string("validation", "", Text::NonEmpty);
    dc.test = d.string("test", "", Text::NonEmpty);
    dc.validation_fraction = d.number("validation_fraction", 0, Bounds::closed_open(0, 0.5));
    dc.test_fraction = d.number("test_fraction", 0, Bounds::closed_open(0, 0.5));
    if (d.has("validation") && d.has("validation_fraction"))
      d.error("validation_fraction", "give either a validation file or validation_fraction");
    if (!d.has("validation") && !(dc.validation_fraction > 0))
      d.error("", "needs \"validation\" (a file) or \"validation_fraction\" > 0 (early stopping)");
    if (d.has("test") && d.has("test_fraction"))
      d.error("test_fraction", "give either a test file or test_fraction");
    dc.skip_lines = d.integer<int64_t>("skip_lines", DataConfig::kAutoHeaderConfig,
                                       IntBounds::closed(-1, 1000000));
    dc.max_rows = d.integer<int64_t>("max_rows", 0, IntBounds::at_least(0));
    dc.classes = d.string_list("classes", {}, Text::NonEmpty, IntBounds::closed(2, 100000));
    for (size_t i = 0; i < dc.classes.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (dc.classes[i] == dc.classes[j])
          d.error("classes", "class '" + dc.classes[i] + "' is listed twice");
    dc.tokenizer.lowercase = d.boolean("lowercase", true);
    dc.tokenizer.fold_digits = d.boolean("fold_digits", false);
    dc.tokenizer.max_tokens = d.integer<int64_t>("max_tokens", 0, IntBounds::closed(0, 100000));
    dc.min_count = d.integer<int64_t>("min_count", 1, IntBounds::at_least(1));
    dc.max_vocab = d.integer<int64_t>("max_vocab", 0, IntBounds::closed(0, 100000000));
    if (dc.max_vocab > 0 && dc.max_vocab < 3) d.error("max_vocab", "expected 0 (no limit) or >= 3");
    d.finish();
  }
  {
    ObjectReader m = root.object("model");
    ClassifierShape& s = c.model;
    s.embedding_dim =
        m.integer<int64_t>("embedding_dim", s.embedding_dim, IntBounds::closed(1, 4096));
    s.hidden_size = m.integer<int64_t>("hidden_size", s.hidden_size, IntBounds::closed(1, 8192));
    s.num_layers = m.integer<int64_t>("num_layers", s.num_layers, IntBounds::closed(1, 16));
    s.bidirectional = m.boolean("bidirectional", s.bidirectional);
    s.pooling = m.choice("pooling", s.pooling, pooling_choices());
    s.embedding_dropout =
        static_cast<float>(m.number("embedding_dropout", 0.0, Bounds::closed_open(0, 1)));
    s.lstm_dropout = static_cast<float>(m.number("lstm_dropout", 0.0, Bounds::closed_open(0, 1)));
    s.dropout = static_cast<float>(m.number("dropout", 0.0, Bounds::closed_open(0, 1)));
    if (m.has("lstm_dropout") && s.num_layers == 1 && s.lstm_dropout > 0)
      m.error("lstm_dropout", "applies between LSTM layers: needs num_layers >= 2");
    m.finish();
  }
  {
    ObjectReader t = root.required_object("train");
    TrainConfig& tc = c.train;
    tc.epochs = t.integer<int64_t>("epochs", tc.epochs, IntBounds::closed(1, 100000));
    tc.batch_size = t.integer<int64_t>("batch_size", tc.batch_size, IntBounds::closed(1, 65536));
    tc.patience = t.integer<int64_t>("patience", tc.patience, IntBounds::closed(0, 100000));
    tc.clip_norm = t.number("clip_norm", tc.clip_norm, Bounds::at_least(0));
    tc.time_budget_s = t.number("time_budget_s", 0.0, Bounds::at_least(0));
    tc.log_every = t.integer<int64_t>("log_every", tc.log_every, IntBounds::closed(1, 1000000000));
    tc.runs_dir = t.string("runs_dir", tc.runs_dir, Text::NonEmpty);
    tc.optimizer = config::read_optimizer(t, "optimizer", tc.optimizer);
    tc.lr_schedule = config::read_lr_schedule(t, "lr_schedule", tc.optimizer.lr, tc.lr_schedule);
    tc.on_nonfinite = t.choice(kOnNonFiniteKey, tc.on_nonfinite, nonfinite_policy_choices());
    t.finish();
  }
  root.finish();
  doc->errors.throw_if_any();
  return c;
}

namespace {
// The float a config number was read into, back as the short decimal it came from (0.1, not
// 0.10000000149011612).
double as_written(float v) {
  char buf[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}
}  // namespace

std::string to_json(const TextclassConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "textclass")
      .field("name", c.name)
      .field("seed", c.seed)
      .field("device", c.device);
  const DataConfig& d = c.data;
  w.key("data").begin_object();
  if (!d.dataset.empty()) w.field("dataset", d.dataset);
  w.field("train", d.train);
  if (!d.validation.empty())
    w.field("validation", d.validation);
  else
    w.field("validation_fraction", d.validation_fraction);
  if (!d.test.empty())
    w.field("test", d.test);
  else
    w.field("test_fraction", d.test_fraction);
  w.field("skip_lines", d.skip_lines).field("max_rows", d.max_rows);
  if (!d.classes.empty()) w.field("classes", d.classes);
  w.field("lowercase", d.tokenizer.lowercase).field("fold_digits", d.tokenizer.fold_digits);
  w.field("max_tokens", d.tokenizer.max_tokens).field("min_count", d.min_count);
  w.field("max_vocab", d.max_vocab);
  w.end_object();
  const ClassifierShape& m = c.model;
  w.key("model").begin_object();
  w.field("embedding_dim", m.embedding_dim).field("hidden_size", m.hidden_size);
  w.field("num_layers", m.num_layers).field("bidirectional", m.bidirectional);
  w.choice("pooling", m.pooling, pooling_choices());
  w.field("embedding_dropout", as_written(m.embedding_dropout));
  if (m.num_layers > 1) w.field("lstm_dropout", as_written(m.lstm_dropout));
  w.field("dropout", as_written(m.dropout));
  w.end_object();
  const TrainConfig& t = c.train;
  w.key("train").begin_object();
  w.field("epochs", t.epochs).field("batch_size", t.batch_size).field("patience", t.patience);
  w.field("clip_norm", t.clip_norm).field("time_budget_s", t.time_budget_s);
  w.field("log_every", t.log_every).field("runs_dir", t.runs_dir);
  w.key("optimizer");
  config::write_optimizer(w, t.optimizer);
  w.key("lr_schedule");
  config::write_lr_schedule(w, t.lr_schedule);
  w.choice(kOnNonFiniteKey, t.on_nonfinite, nonfinite_policy_choices());
  w.end_object();
  w.end_object();
  return w.pretty();
}

bool is_textclass_config(const std::string& path) {
  return json::file_has_task(path, "textclass");
}

}  // namespace tessera::textclass
