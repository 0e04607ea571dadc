// Reading, validating and writing the behaviour task's config.
#include "host/config/behaviour_config.h"

#include <cctype>
#include <map>
#include <tuple>

#include "host/config/json_writer.h"
#include "host/core/path_name.h"
#include "host/data/libsvm.h"

namespace tessera {

const json::Choices<BehaviourModelType>& behaviour_model_choices() {
  static const json::Choices<BehaviourModelType> choices = {{"mlp", BehaviourModelType::Mlp},
                                                            {"dlrm", BehaviourModelType::Dlrm}};
  return choices;
}

const json::Choices<SparseOptimizerType>& sparse_optimizer_choices() {
  static const json::Choices<SparseOptimizerType> choices = {
      {"sgd", SparseOptimizerType::Sgd},
      {"adagrad", SparseOptimizerType::Adagrad},
      {"rowwise_adagrad", SparseOptimizerType::RowwiseAdagrad},
      {"lazy_adam", SparseOptimizerType::LazyAdam}};
  return choices;
}

const json::Choices<TablePlacement>& table_placement_choices() {
  static const json::Choices<TablePlacement> choices = {{"auto", TablePlacement::Auto},
                                                        {"table", TablePlacement::Table},
                                                        {"row", TablePlacement::Row},
                                                        {"column", TablePlacement::Column}};
  return choices;
}

const json::Choices<Activation>& activation_choices() {
  static const json::Choices<Activation> choices = {
      {"relu", Activation::Relu}, {"tanh", Activation::Tanh}, {"sigmoid", Activation::Sigmoid}};
  return choices;
}

const json::Choices<EarlyStoppingMetric>& early_stopping_metric_choices() {
  static const json::Choices<EarlyStoppingMetric> choices = {
      {"auc", EarlyStoppingMetric::Auc}, {"logloss", EarlyStoppingMetric::Logloss}};
  return choices;
}

const json::Choices<TableFormat>& table_format_choices() {
  static const json::Choices<TableFormat> choices = {
      {"csv", TableFormat::Csv}, {"criteo", TableFormat::Criteo}, {"libsvm", TableFormat::LibSvm}};
  return choices;
}

const json::Choices<ColumnType>& column_type_choices() {
  static const json::Choices<ColumnType> choices = {{"numeric", ColumnType::Numeric},
                                                    {"categorical", ColumnType::Categorical},
                                                    {"label", ColumnType::Label},
                                                    {"ignore", ColumnType::Ignore}};
  return choices;
}

const json::Choices<NumericTransform>& numeric_transform_choices() {
  static const json::Choices<NumericTransform> choices = {{"none", NumericTransform::None},
                                                          {"log1p", NumericTransform::Log1p}};
  return choices;
}

const json::Choices<BinEdges>& bin_edges_choices() {
  static const json::Choices<BinEdges> c = {{"distinct_quantile", BinEdges::DistinctQuantile},
                                            {"quantile", BinEdges::Quantile}};
  return c;
}

const json::Choices<Normalization>& normalization_choices() {
  static const json::Choices<Normalization> choices = {{"standard", Normalization::Standard},
                                                       {"minmax", Normalization::MinMax},
                                                       {"none", Normalization::None}};
  return choices;
}

const json::Choices<BadRowPolicy>& bad_row_policy_choices() {
  static const json::Choices<BadRowPolicy> choices = {{"error", BadRowPolicy::Error},
                                                      {"skip", BadRowPolicy::Skip}};
  return choices;
}

namespace {

using config::Presence;
using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

// ---- equality of the schema structs (host/data owns them; we compare them here) --------------

bool same(const FileSpec& a, const FileSpec& b) {
  return a.path == b.path && a.skip_lines == b.skip_lines;
}
bool same(const std::optional<FileSpec>& a, const std::optional<FileSpec>& b) {
  return a.has_value() == b.has_value() && (!a || same(*a, *b));
}
bool same(const ColumnSpec& a, const ColumnSpec& b) {
  return std::tie(a.name, a.type, a.transform, a.positive, a.negative) ==
         std::tie(b.name, b.type, b.transform, b.positive, b.negative);
}
bool same(const TableSchema& a, const TableSchema& b) {
  if (a.columns.size() != b.columns.size()) return false;
  for (size_t i = 0; i < a.columns.size(); ++i) {
    if (!same(a.columns[i], b.columns[i])) return false;
  }
  return std::tie(a.format, a.delimiter, a.header, a.trim, a.missing_tokens, a.on_error,
                  a.libsvm_features) == std::tie(b.format, b.delimiter, b.header, b.trim,
                                                 b.missing_tokens, b.on_error, b.libsvm_features);
}

const char* name_of(ColumnType t) {
  return json::choice_name(t, column_type_choices());
}
const char* name_of(TableFormat f) {
  return json::choice_name(f, table_format_choices());
}

// ---- reading ----------------------------------------------------------------------------------

char read_delimiter(ObjectReader& r) {
  if (r.kind("delimiter") != json::JsonKind::String) {
    r.string("delimiter", ",");  // absent: the default; another type: reported there
    return ',';
  }
  const std::string d = r.string("delimiter", ",");
  if (d == "\\t") return '\t';  // the two characters backslash-t, as people often write it
  if (d.size() != 1 || d[0] == '\n' || d[0] == '\r' || d[0] == '"') {
    r.error("delimiter",
            "expected a single character such as \",\" or \"\\t\" (tab), got \"" + d + "\"");
    return ',';
  }
  return d[0];
}

void read_columns(ObjectReader& data, TableFormat format, bool format_ok, TableSchema& schema) {
  json::ErrorList& errors = data.errors();
  if (format != TableFormat::Csv && format_ok) {
    if (data.has("columns")) {
      data.allow("columns");
      const char* layout = format == TableFormat::Criteo
                               ? "label, 13 integer features I1-I13, 26 categorical C1-C26"
                               : "a label, then index:value pairs";
      data.error("columns", std::string("columns are implied by the \"") + name_of(format) +
                                "\" format (" + layout + "); remove \"columns\"");
    }
    return;
  }
  std::vector<ObjectReader> columns =
      format_ok ? data.required_object_list("columns", IntBounds::at_least(1))
                : data.object_list("columns", IntBounds::at_least(1));

  std::map<std::string, std::string> first_with_name;  // name -> path of that column
  std::vector<std::string> label_paths;
  size_t features = 0;
  bool all_types_ok = true;
  for (ObjectReader& col : columns) {
    ColumnSpec s;
    s.name = col.required_string("name", Text::NonEmpty);
    const size_t before_type = errors.size();
    s.type = col.required_choice("type", column_type_choices(), ColumnType::Ignore);
    const bool type_ok = errors.size() == before_type;
    all_types_ok = all_types_ok && type_ok;
    s.transform = col.choice("transform", NumericTransform::None, numeric_transform_choices());
    s.positive = col.string_list("positive", {});
    s.negative = col.string_list("negative", {});

    if (!s.name.empty()) {
      auto [it, inserted] = first_with_name.emplace(s.name, col.path());
      if (!inserted) {
        col.error("name", "duplicate column name \"" + s.name + "\" (also " + it->second + ")");
      }
    }
    if (type_ok) {
      const std::string this_one = std::string(" (this column is \"") + name_of(s.type) + "\")";
      if (s.type != ColumnType::Numeric && col.has("transform")) {
        col.error("transform", "only applies to numeric columns" + this_one);
      }
      if (s.type != ColumnType::Label) {
        for (const char* k : {"positive", "negative"}) {
          if (col.has(k)) col.error(k, "only applies to the label column" + this_one);
        }
      } else {
        label_paths.push_back(col.path());
        if (s.positive.empty() != s.negative.empty()) {
          col.error(s.positive.empty() ? "positive" : "negative",
                    "give both \"positive\" and \"negative\" label tokens, or neither (then the "
                    "label is read as a number, positive when > 0.5)");
        }
        for (const std::string& token : s.negative) {
          for (const std::string& p : s.positive) {
            if (token == p) {
              col.error("negative", "token \"" + token + "\" is both positive and negative");
            }
          }
        }
      }
      if (s.type == ColumnType::Numeric || s.type == ColumnType::Categorical) ++features;
    }
    col.finish();
    schema.columns.push_back(std::move(s));
  }

  // Counting checks only make sense when every column's type is known.
  if (columns.empty() || !all_types_ok) return;
  if (label_paths.empty()) {
    data.error("columns", "no label column: exactly one column needs \"type\": \"label\"");
  }
  for (size_t i = 1; i < label_paths.size(); ++i) {
    errors.add(json::child_path(label_paths[i], "type"), "a second label column (the first is " +
                                                             label_paths[0] +
                                                             "); exactly one column is the label");
  }
  if (features == 0) {
    data.error("columns",
               "no feature columns: at least one column must be \"numeric\" or "
               "\"categorical\"");
  }
}

void read_data(ObjectReader& d, BehaviourDataConfig& c) {
  json::ErrorList& errors = d.errors();
  c.dataset = d.string("dataset", "", Text::NonEmpty);
  c.derive = d.string("derive", "", Text::NonEmpty);
  if (!c.derive.empty() && c.derive != "movielens_clicks")
    d.error("derive", "expected one of: movielens_clicks");
  else if (!c.derive.empty() && c.dataset != "ml-latest-small")
    d.error("derive", "\"movielens_clicks\" derives from the dataset \"ml-latest-small\"");
  if (auto train = config::read_file_spec(d, "train", Presence::Required)) c.train = *train;
  c.test = config::read_file_spec(d, "test", Presence::Optional);
  c.validation = config::read_file_spec(d, "validation", Presence::Optional);
  c.validation_fraction = d.number("validation_fraction", 0.1, Bounds::closed(0, 0.9));
  if (d.has("validation") && d.has("validation_fraction")) {
    d.error("validation_fraction",
            "give either a \"validation\" file or \"validation_fraction\" (a share of train), not "
            "both");
  }
  if (c.validation) c.validation_fraction = 0.0;

  TableSchema& s = c.schema;
  const size_t before_format = errors.size();
  s.format = d.choice("format", TableFormat::Csv, table_format_choices());
  const bool format_ok = errors.size() == before_format;
  s.delimiter = read_delimiter(d);
  if (format_ok && s.format == TableFormat::LibSvm && d.has("delimiter")) {
    d.error("delimiter", "libsvm data is whitespace separated; remove \"delimiter\"");
  }
  s.header = d.boolean("header", s.header);
  s.trim = d.boolean("trim", s.trim);
  s.missing_tokens = d.string_list("missing", s.missing_tokens);
  s.on_error = d.choice("on_error", s.on_error, bad_row_policy_choices());
  // The densified width: no wider than the feature indices a libSVM file may hold.
  s.libsvm_features = d.integer<int>("libsvm_features", 0,
                                     IntBounds::closed(0, static_cast<int>(kLibSvmMaxFeatures)));
  if (format_ok && s.format != TableFormat::LibSvm && d.has("libsvm_features")) {
    d.error("libsvm_features",
            std::string("only applies to the \"libsvm\" format (this data is \"") +
                name_of(s.format) + "\")");
  }
  read_columns(d, s.format, format_ok, s);

  {
    ObjectReader cat = d.object("categorical");
    c.categorical.min_count =
        cat.integer<int64_t>("min_count", 1, IntBounds::closed(1, 1000000000));
    c.categorical.hash_buckets =
        cat.integer<int64_t>("hash_buckets", 0, IntBounds::closed(0, int64_t{1} << 40));
    if (c.categorical.hash_buckets > 0 && c.categorical.min_count > 1) {
      cat.error("hash_buckets",
                "hash_buckets > 0 and min_count > 1 exclude each other: hashing keeps every token, "
                "so there is no vocabulary to prune (set min_count to 1, or hash_buckets to 0)");
    }
    cat.finish();
  }
  {
    ObjectReader num = d.object("numeric");
    c.numeric.normalization =
        num.choice("normalization", Normalization::Standard, normalization_choices());
    c.numeric.bins = num.integer<int>("bins", 0, json::IntBounds::closed(0, 1024));
    c.numeric.bin_edges = num.choice("bin_edges", BinEdges::DistinctQuantile, bin_edges_choices());
    num.finish();
  }
}

void read_model(ObjectReader& m, BehaviourModelConfig& c) {
  c.type = m.choice("type", c.type, behaviour_model_choices());
  c.embedding_dim = m.integer<int>("embedding_dim", c.embedding_dim, IntBounds::closed(1, 1024));
  c.hidden = m.integer_list<int>("hidden", c.hidden, IntBounds::closed(1, 65536),
                                 IntBounds::closed(0, 64));
  c.dropout = m.number("dropout", c.dropout, Bounds::closed(0, 0.95));
  c.activation = m.choice("activation", c.activation, activation_choices());
  if (c.type != BehaviourModelType::Dlrm) {
    for (const char* k : {"bottom", "sparse_optimizer", "shards", "placement", "remote_shards"})
      if (m.has(k)) {
        m.allow(k);
        m.error(k, "only a \"dlrm\" model has this key (model.type is not \"dlrm\")");
      }
    return;
  }
  c.bottom = m.integer_list<int>("bottom", c.bottom, IntBounds::closed(1, 65536),
                                 IntBounds::closed(0, 64));
  c.shards = m.integer<int>("shards", c.shards, IntBounds::closed(1, 64));
  c.placement = m.choice("placement", c.placement, table_placement_choices());
  c.remote_shards = m.boolean("remote_shards", c.remote_shards);
  ObjectReader so = m.object("sparse_optimizer");
  SparseOptimizerSpec& o = c.sparse_optimizer;
  o.type = so.choice("type", o.type, sparse_optimizer_choices());
  if (c.shards > 1 && c.placement == TablePlacement::Column &&
      o.type == SparseOptimizerType::RowwiseAdagrad)
    m.error("placement",
            "column-wise sharding cannot train with rowwise_adagrad (its per-row state is a mean "
            "over all of a row's columns); use \"table\" or \"row\", or another sparse "
            "optimizer");
  o.lr = so.number("lr", o.lr, Bounds::open_closed(0, 1e3));
  if (o.type != SparseOptimizerType::Sgd)
    o.eps = so.number("eps", o.eps, Bounds::open_closed(0, 1));
  if (o.type == SparseOptimizerType::LazyAdam) {
    o.beta1 = so.number("beta1", o.beta1, Bounds::closed_open(0, 1));
    o.beta2 = so.number("beta2", o.beta2, Bounds::closed_open(0, 1));
  }
  so.finish();
}

void read_train(ObjectReader& t, BehaviourTrainConfig& c) {
  c.epochs = t.integer<int>("epochs", c.epochs, IntBounds::closed(1, 100000));
  c.batch_size = t.integer<int>("batch_size", c.batch_size, IntBounds::closed(1, 1 << 20));
  c.eval_batch_size =
      t.integer<int>("eval_batch_size", c.eval_batch_size, IntBounds::closed(1, 1 << 22));
  c.optimizer = config::read_optimizer(t, "optimizer", c.optimizer);
  c.lr_schedule = config::read_lr_schedule(t, "lr_schedule", c.optimizer.lr, c.lr_schedule);
  {
    ObjectReader es = t.object("early_stopping");
    c.early_stopping.metric =
        es.choice("metric", c.early_stopping.metric, early_stopping_metric_choices());
    c.early_stopping.patience =
        es.integer<int>("patience", c.early_stopping.patience, IntBounds::closed(0, 100000));
    es.finish();
  }
  c.log_every = t.integer<int>("log_every", c.log_every, IntBounds::closed(1, 1000000000));
  c.runs_dir = t.string("runs_dir", c.runs_dir, Text::NonEmpty);
  c.prefetch = t.integer<int>("prefetch", c.prefetch, IntBounds::closed(0, 64));
  c.on_nonfinite = t.choice(kOnNonFiniteKey, c.on_nonfinite, nonfinite_policy_choices());
}

// A DLRM's bottom MLP takes the numeric columns and its tables the categorical ones: a schema
// that has none of either is refused here, at the config's model.type, rather than after the
// data is read. (Criteo has both; a registered dataset's columns are checked when it is read.)
void check_dlrm_inputs(json::ErrorList& errors, const TableSchema& schema) {
  if (schema.format == TableFormat::LibSvm) {
    errors.add("$.model.type",
               "a \"dlrm\" model needs categorical columns, and libSVM input "
               "(data.format \"libsvm\") has none: use \"mlp\"");
    return;
  }
  if (schema.format != TableFormat::Csv || schema.columns.empty()) return;
  bool numeric = false, categorical = false;
  for (const ColumnSpec& col : schema.columns) {
    numeric = numeric || col.type == ColumnType::Numeric;
    categorical = categorical || col.type == ColumnType::Categorical;
  }
  if (!numeric)
    errors.add("$.model.type",
               "a \"dlrm\" model needs at least one numeric column (its bottom "
               "MLP's input), and data.columns has none");
  if (!categorical)
    errors.add("$.model.type",
               "a \"dlrm\" model needs at least one categorical column (its "
               "embedding tables), and data.columns has none");
}

void read_config(ObjectReader& root, BehaviourConfig& c) {
  static const json::Choices<int> kTask = {{"behaviour", 0}};
  root.required_choice("task", kTask, 0);
  c.name = config::read_run_name(root, "name", c.name);
  c.seed = root.integer<int64_t>("seed", c.seed, IntBounds::at_least(0));
  c.device = config::read_device(root, "device", c.device);
  {
    ObjectReader data = root.required_object("data");
    read_data(data, c.data);
    data.finish();
  }
  {
    ObjectReader model = root.object("model");
    read_model(model, c.model);
    model.finish();
  }
  {
    ObjectReader train = root.object("train");
    read_train(train, c.train);
    train.finish();
  }
  // Across sections.
  if (c.model.type == BehaviourModelType::Dlrm) check_dlrm_inputs(root.errors(), c.data.schema);
  if (c.train.early_stopping.patience > 0 && !c.data.validation &&
      c.data.validation_fraction == 0.0) {
    root.errors().add("$.train.early_stopping.patience",
                      "early stopping needs validation data: set \"data.validation\" or "
                      "\"data.validation_fraction\" > 0");
  }
}

// ---- writing ----------------------------------------------------------------------------------

void write_data(json::JsonWriter& w, const BehaviourDataConfig& c) {
  const TableSchema& s = c.schema;
  w.begin_object();
  if (!c.dataset.empty()) w.field("dataset", c.dataset);
  if (!c.derive.empty()) w.field("derive", c.derive);
  w.key("train");
  config::write_file_spec(w, c.train);
  if (c.test) {
    w.key("test");
    config::write_file_spec(w, *c.test);
  }
  if (c.validation) {
    w.key("validation");
    config::write_file_spec(w, *c.validation);
  } else {
    w.field("validation_fraction", c.validation_fraction);
  }
  w.choice("format", s.format, table_format_choices());
  if (s.format != TableFormat::LibSvm) w.field("delimiter", std::string(1, s.delimiter));
  w.field("header", s.header).field("trim", s.trim).field("missing", s.missing_tokens);
  w.choice("on_error", s.on_error, bad_row_policy_choices());
  if (s.format == TableFormat::LibSvm) w.field("libsvm_features", s.libsvm_features);
  if (s.format == TableFormat::Csv) {
    w.key("columns").begin_array();
    for (const ColumnSpec& col : s.columns) {
      w.begin_object().field("name", col.name);
      w.choice("type", col.type, column_type_choices());
      if (col.type == ColumnType::Numeric) {
        w.choice("transform", col.transform, numeric_transform_choices());
      }
      if (col.type == ColumnType::Label && !col.positive.empty()) {
        w.field("positive", col.positive).field("negative", col.negative);
      }
      w.end_object();
    }
    w.end_array();
  }
  w.key("categorical").begin_object();
  w.field("min_count", c.categorical.min_count).field("hash_buckets", c.categorical.hash_buckets);
  w.end_object();
  w.key("numeric").begin_object();
  w.choice("normalization", c.numeric.normalization, normalization_choices());
  w.field("bins", c.numeric.bins);
  if (c.numeric.bins > 0) w.choice("bin_edges", c.numeric.bin_edges, bin_edges_choices());
  w.end_object();
  w.end_object();
}

void write_model(json::JsonWriter& w, const BehaviourModelConfig& c) {
  w.begin_object();
  w.choice("type", c.type, behaviour_model_choices());
  w.field("embedding_dim", c.embedding_dim).field("hidden", c.hidden).field("dropout", c.dropout);
  w.choice("activation", c.activation, activation_choices());
  if (c.type == BehaviourModelType::Dlrm) {
    w.field("bottom", c.bottom).field("shards", c.shards);
    w.choice("placement", c.placement, table_placement_choices());
    // Written only when set: configs (and checkpoint tags) from before the key stay the same.
    if (c.remote_shards) w.field("remote_shards", true);
    const SparseOptimizerSpec& o = c.sparse_optimizer;
    w.key("sparse_optimizer").begin_object();
    w.choice("type", o.type, sparse_optimizer_choices());
    w.field("lr", o.lr);
    if (o.type != SparseOptimizerType::Sgd) w.field("eps", o.eps);
    if (o.type == SparseOptimizerType::LazyAdam) w.field("beta1", o.beta1).field("beta2", o.beta2);
    w.end_object();
  }
  w.end_object();
}

void write_train(json::JsonWriter& w, const BehaviourTrainConfig& c) {
  w.begin_object();
  w.field("epochs", c.epochs).field("batch_size", c.batch_size);
  w.field("eval_batch_size", c.eval_batch_size);
  w.key("optimizer");
  config::write_optimizer(w, c.optimizer);
  w.key("lr_schedule");
  config::write_lr_schedule(w, c.lr_schedule);
  w.key("early_stopping").begin_object();
  w.choice("metric", c.early_stopping.metric, early_stopping_metric_choices());
  w.field("patience", c.early_stopping.patience);
  w.end_object();
  w.field("log_every", c.log_every).field("runs_dir", c.runs_dir).field("prefetch", c.prefetch);
  w.choice(kOnNonFiniteKey, c.on_nonfinite, nonfinite_policy_choices());
  w.end_object();
}

}  // namespace

bool operator==(const BehaviourConfig& a, const BehaviourConfig& b) {
  const BehaviourDataConfig& ad = a.data;
  const BehaviourDataConfig& bd = b.data;
  const bool data_equal =
      ad.dataset == bd.dataset && ad.derive == bd.derive && same(ad.train, bd.train) &&
      same(ad.test, bd.test) && same(ad.validation, bd.validation) &&
      ad.validation_fraction == bd.validation_fraction && same(ad.schema, bd.schema) &&
      ad.categorical.min_count == bd.categorical.min_count &&
      ad.categorical.hash_buckets == bd.categorical.hash_buckets &&
      ad.numeric.normalization == bd.numeric.normalization && ad.numeric.bins == bd.numeric.bins &&
      ad.numeric.bin_edges == bd.numeric.bin_edges;
  const BehaviourModelConfig& am = a.model;
  const BehaviourModelConfig& bm = b.model;
  const bool model_equal =
      std::tie(am.type, am.embedding_dim, am.hidden, am.dropout, am.activation) ==
          std::tie(bm.type, bm.embedding_dim, bm.hidden, bm.dropout, bm.activation) &&
      (am.type != BehaviourModelType::Dlrm ||
       (am.bottom == bm.bottom && am.sparse_optimizer.type == bm.sparse_optimizer.type &&
        am.sparse_optimizer.lr == bm.sparse_optimizer.lr &&
        am.sparse_optimizer.eps == bm.sparse_optimizer.eps &&
        am.sparse_optimizer.beta1 == bm.sparse_optimizer.beta1 &&
        am.sparse_optimizer.beta2 == bm.sparse_optimizer.beta2));
  const BehaviourTrainConfig& at = a.train;
  const BehaviourTrainConfig& bt = b.train;
  const bool train_equal =
      std::tie(at.epochs, at.batch_size, at.eval_batch_size, at.optimizer, at.lr_schedule,
               at.early_stopping.metric, at.early_stopping.patience, at.log_every, at.runs_dir,
               at.prefetch, at.on_nonfinite) ==
      std::tie(bt.epochs, bt.batch_size, bt.eval_batch_size, bt.optimizer, bt.lr_schedule,
               bt.early_stopping.metric, bt.early_stopping.patience, bt.log_every, bt.runs_dir,
               bt.prefetch, bt.on_nonfinite);
  return a.name == b.name && a.seed == b.seed && a.device == b.device && data_equal &&
         model_equal && train_equal;
}

BehaviourConfig parse_behaviour_config(const std::string& json_text,
                                       const std::string& source_path) {
  return json::read_document<BehaviourConfig>(json_text, source_path, read_config);
}

BehaviourConfig load_behaviour_config(const std::string& path) {
  return parse_behaviour_config(json::read_text_file(path), path);
}

std::string to_json(const BehaviourConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "behaviour")
      .field("name", c.name)
      .field("seed", c.seed)
      .field("device", c.device);
  w.key("data");
  write_data(w, c.data);
  w.key("model");
  write_model(w, c.model);
  w.key("train");
  write_train(w, c.train);
  w.end_object();
  return w.pretty();
}

}  // namespace tessera
