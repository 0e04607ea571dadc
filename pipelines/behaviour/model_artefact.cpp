#include "pipelines/behaviour/model_artefact.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <vector>

#include "host/core/archive.h"
#include "host/core/checked_size.h"
#include "host/core/json_fields.h"
#include "host/core/model_file_checks.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/behaviour/table_net.h"

namespace tessera::behaviour {

namespace {
constexpr const char* kFormat = "tessera.model";
constexpr int kVersion = 1;

std::string spec_json(const MlpSpec& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("type");
  w.String("mlp");
  w.Key("n_dense");
  w.Int64(s.n_dense);
  w.Key("n_cat");
  w.Int64(s.n_cat);
  w.Key("embedding_rows");
  w.Int64(s.embedding_rows);
  w.Key("embedding_dim");
  w.Int64(s.embedding_dim);
  w.Key("hidden");
  w.StartArray();
  for (int64_t h : s.hidden) w.Int64(h);
  w.EndArray();
  w.Key("dropout");
  w.Double(s.dropout);
  w.Key("activation");
  w.Int(static_cast<int>(s.activation));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

bool is_libsvm(const BehaviourConfig& c) {
  return c.data.schema.format == TableFormat::LibSvm;
}

void save_model(const std::string& path, const ModelArtefact& a) {
  save_model(path, ModelArtefactRef{a.config, a.preprocessor, a.spec, a.weights, a.metrics_json});
}

void save_model(const std::string& path, const ModelArtefactRef& a) {
  // The preprocessor is written straight onto the metadata: one copy of its text and no document
  // (a rapidjson document held ~110 bytes a vocabulary token, ~0.8 GB at 7.1M tokens).
  std::string meta = std::string("{\"format\":\"") + kFormat +
                     "\",\"version\":" + std::to_string(kVersion) +
                     ",\"task\":\"behaviour\",\"spec\":" + spec_json(a.spec) +
                     ",\"config\":" + to_json(a.config) + ",\"preprocessor\":";
  if (is_libsvm(a.config))
    meta += "null";
  else
    a.preprocessor.append_json(meta);
  meta += ",\"metrics\":";
  meta += a.metrics_json;
  meta += "}";
  std::vector<std::pair<std::string, Tensor>> tensors(a.weights.begin(), a.weights.end());
  save_archive(path, meta, tensors);
}

namespace {

using NamedShapes = std::vector<std::pair<std::string, Shape>>;

// A dense tower's weights ("<prefix><i>.weight" [in, out], ".bias" [out]) as the models build it.
void add_tower(NamedShapes& out, const std::string& prefix, int64_t in,
               const std::vector<int64_t>& widths) {
  for (size_t i = 0; i < widths.size(); ++i) {
    out.emplace_back(prefix + std::to_string(i) + ".weight", Shape{in, widths[i]});
    out.emplace_back(prefix + std::to_string(i) + ".bias", Shape{widths[i]});
    in = widths[i];
  }
}

// The table models' tables, one per categorical column (on libSVM rows: per table of the
// layout), as make_net builds them (net.cpp, table_net.cpp).
struct ColumnTables {
  std::vector<std::string> names;
  std::vector<int64_t> rows;
};

ColumnTables column_tables(const ModelArtefact& a) {
  ColumnTables out;
  if (is_libsvm(a.config)) {
    // An MLP of the densified reader records no layout: one table of its input width.
    const SparseLayout l = sparse_layout(
        a.config, a.config.model.type == BehaviourModelType::Mlp ? a.spec.n_dense : 0);
    for (int64_t t = 0; t < l.tables(); ++t)
      out.names.push_back(l.fields ? "field " + std::to_string(t) : "features");
    out.rows = l.table_rows;
    return out;
  }
  for (const CategoricalColumnModel& c : a.preprocessor.categorical_columns()) {
    out.names.push_back(c.name);
    out.rows.push_back(c.size);
  }
  return out;
}

// The weights make_net builds for `a`, by name and shape; sizes in checked arithmetic (an Io
// error naming `path` when they overflow).
NamedShapes expected_weights(const ModelArtefact& a, const std::string& path) {
  auto overflow = [&](const std::string& what) {
    TESSERA_THROW(Io, "'" << path << "': the model's " << what << " overflows");
  };
  NamedShapes out;
  const MlpSpec& s = a.spec;
  if (a.config.model.type == BehaviourModelType::Mlp) {
    if (s.n_cat > 0) out.emplace_back("embedding.table", Shape{s.embedding_rows, s.embedding_dim});
    const std::optional<uint64_t> cat = checked_product({s.n_cat, s.embedding_dim});
    const std::optional<uint64_t> in = cat ? checked_add(*cat, s.n_dense) : std::nullopt;
    if (!in || *in > static_cast<uint64_t>(INT64_MAX)) overflow("input width");
    std::vector<int64_t> widths = s.hidden;
    widths.push_back(1);
    add_tower(out, "dense", static_cast<int64_t>(*in), widths);
    return out;
  }
  if (a.config.model.type == BehaviourModelType::DcnV2 ||
      a.config.model.type == BehaviourModelType::WideDeep)
    return table_net_weight_shapes(a.config, a.preprocessor, s.n_dense, path);
  const int64_t d = a.config.model.embedding_dim;
  // On libSVM rows: the layout's tables, no numeric features and so no bottom MLP.
  const bool sparse = is_libsvm(a.config);
  const std::vector<int64_t> table_rows = column_tables(a).rows;
  const int64_t n_dense = sparse ? 0 : s.n_dense;
  std::vector<int64_t> bottom(a.config.model.bottom.begin(), a.config.model.bottom.end());
  bottom.push_back(d);
  if (n_dense > 0) add_tower(out, "bottom", n_dense, bottom);
  uint64_t rows = 0;
  for (const int64_t size : table_rows) {
    const std::optional<uint64_t> sum = checked_add(rows, static_cast<uint64_t>(size));
    if (!sum) overflow("table rows");
    rows = *sum;
  }
  const std::optional<uint64_t> elements = checked_product({static_cast<int64_t>(rows), d});
  if (!elements) overflow("table size");
  out.emplace_back("embedding.tables", Shape{static_cast<int64_t>(*elements)});
  DlrmSpec ds;  // only for its interaction width
  ds.embedding_dim = d;
  ds.n_dense = n_dense;
  ds.table_rows.resize(table_rows.size());
  std::vector<int64_t> top(a.config.model.hidden.begin(), a.config.model.hidden.end());
  top.push_back(1);
  add_tower(out, "top", ds.interaction_width(), top);
  return out;
}

// Before anything is built from the header: every weight the model will have is stored, f32, of
// the shape the header implies, and the header agrees with the fitted preprocessor (whose
// encoded ids index the embedding rows).
void check_weights_fit(const ModelArtefact& a, const std::string& path) {
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Io, "'" << path << "' does not hold the model its header describes: " << why);
  };
  const MlpSpec& s = a.spec;
  if (s.n_dense + s.n_cat == 0) bad("the model has no input features");
  if (!is_libsvm(a.config)) {
    const Preprocessor& p = a.preprocessor;
    if (s.n_dense != p.n_dense() || s.n_cat != p.n_cat() ||
        (s.n_cat > 0 && s.embedding_rows != p.total_embedding_rows()))
      bad("spec n_dense " + std::to_string(s.n_dense) + ", n_cat " + std::to_string(s.n_cat) +
          ", embedding_rows " + std::to_string(s.embedding_rows) + " against the preprocessor's " +
          std::to_string(p.n_dense()) + ", " + std::to_string(p.n_cat()) + ", " +
          std::to_string(p.total_embedding_rows()));
  } else if (s.n_cat != 0) {
    bad("a libSVM model with categorical columns");
  } else if (a.config.model.type != BehaviourModelType::Mlp || has_sparse_layout(a.config)) {
    // (An MLP of the densified reader records no layout: its width is spec.n_dense.)
    const SparseLayout layout = read_model_header_as_io([&] { return sparse_layout(a.config); });
    if (a.config.model.type == BehaviourModelType::Mlp && s.n_dense != layout.total_rows())
      bad("spec n_dense " + std::to_string(s.n_dense) + " against the " +
          std::to_string(layout.total_rows()) + " feature rows of its libSVM input");
  }
  if (s.n_cat > 0 && s.embedding_rows < 1) bad("categorical columns without embedding rows");
  for (const auto& [name, shape] : expected_weights(a, path)) {
    auto it = a.weights.find(name);
    if (it == a.weights.end()) bad("weight '" + name + "' is missing");
    if (it->second.dtype() != DType::F32 || it->second.shape() != shape)
      bad("weight '" + name + "' is " + it->second.describe() + ", the header implies f32" +
          shape_str(shape));
  }
}

}  // namespace

ModelArtefact load_model(const std::string& path) {
  ModelFileHeader file(path, "behaviour");
  const JsonFields& h = file.fields;
  if (h.string("format") != kFormat) file.refuse("wrong format tag");
  if (h.integer("version") != kVersion)
    file.refuse("unsupported version (this build reads version " + std::to_string(kVersion) + ")");
  if (h.string("task") != "behaviour") file.refuse("it is a model of another task");
  // A config or preprocessor error inside a model file is the file's fault: an Io error, with the
  // reader's message (it names the member).
  ModelArtefact a;
  a.config = read_model_header_as_io(
      [&] { return parse_behaviour_config(h.json("config"), path + " (embedded config)"); });
  // The artefact holds whole tables: scoring runs in this process (on the config's local shards,
  // if any), not in the MPI job that trained it.
  a.config.model.remote_shards = false;
  if (!is_libsvm(a.config))
    a.preprocessor =
        read_model_header_as_io([&] { return Preprocessor::from_json(h.get("preprocessor")); });
  const JsonFields s = h.object("spec");
  // Bounds as a config's; the sizes themselves are checked against the stored weights below.
  constexpr int64_t kMaxCount = int64_t{1} << 40;
  a.spec.n_dense = s.integer("n_dense", 0, kMaxCount);
  a.spec.n_cat = s.integer("n_cat", 0, kMaxCount);
  a.spec.embedding_rows = s.integer("embedding_rows", 0, kMaxCount * 1024);
  a.spec.embedding_dim = s.integer("embedding_dim", 1, 1024);
  a.spec.hidden = s.integers("hidden", 1, 65536);
  a.spec.dropout = static_cast<float>(s.number("dropout"));
  if (!(a.spec.dropout >= 0.f && a.spec.dropout < 1.f)) s.fail("spec.dropout", "is not in [0, 1)");
  a.spec.activation = static_cast<Activation>(s.integer("activation", 0, 3));
  a.metrics_json = h.has("metrics") ? h.json("metrics") : "{}";
  a.weights = std::move(file.archive.tensors);
  check_weights_fit(a, path);
  check_finite(a.weights, path);
  return a;
}

namespace {

// The MLP's tables: its one embedding table's rows per column (each column's rows at the offset
// the preprocessor numbers them from), or on libSVM rows the first layer's weight [features, H0],
// whose rows the features' ids pick (sparse_mlp.h).
std::vector<TableView> mlp_views(const ModelArtefact& a) {
  std::vector<TableView> out;
  if (is_libsvm(a.config)) {
    const ColumnTables t = column_tables(a);
    const int64_t h0 = a.weights.at("dense0.weight").dim(1);
    int64_t row = 0;
    for (size_t i = 0; i < t.names.size(); ++i) {
      out.push_back({t.names[i], "dense0.weight", row * h0, t.rows[i], h0});
      row += t.rows[i];
    }
    return out;
  }
  const int64_t d = a.spec.embedding_dim;
  for (const CategoricalColumnModel& c : a.preprocessor.categorical_columns())
    out.push_back({c.name, "embedding.table", c.offset * d, c.size, d});
  return out;
}

// DLRM, DCN-v2, Wide & Deep: the flat buffer in the collection's table order (table t at the sum
// of the tables' rows * dim before it; embeddings/table_spec.h), Wide & Deep's wide tables after
// the deep ones (wide_deep_model.h).
std::vector<TableView> flat_views(const ModelArtefact& a) {
  const ColumnTables t = column_tables(a);
  std::vector<TableView> out;
  int64_t at = 0;
  auto add = [&](const std::string& name, int64_t rows, int64_t dim) {
    out.push_back({name, "embedding.tables", at, rows, dim});
    at += rows * dim;  // bounded: load_model checked the flat size in checked arithmetic
  };
  for (size_t i = 0; i < t.names.size(); ++i)
    add(t.names[i], t.rows[i], a.config.model.embedding_dim);
  if (a.config.model.type == BehaviourModelType::WideDeep)
    for (size_t i = 0; i < t.names.size(); ++i) add("wide:" + t.names[i], t.rows[i], 1);
  return out;
}

}  // namespace

std::vector<TableView> table_views(const ModelArtefact& a) {
  const bool mlp = a.config.model.type == BehaviourModelType::Mlp;
  if (mlp && !is_libsvm(a.config) && a.spec.n_cat == 0) return {};
  std::vector<TableView> views = mlp ? mlp_views(a) : flat_views(a);
  std::map<std::string, int64_t> seen;
  for (const TableView& v : views) {
    auto w = a.weights.find(v.weight);
    if (w == a.weights.end() || w->second.dtype() != DType::F32 || v.offset < 0 || v.rows < 0 ||
        v.dim < 1 || v.rows > (w->second.numel() - v.offset) / v.dim)
      TESSERA_THROW(Io, "table '" << v.name << "' (" << v.rows << " x " << v.dim << " from element "
                                  << v.offset << " of '" << v.weight
                                  << "') does not fit the model's weights");
    if (!seen.emplace(v.name, v.offset).second)
      TESSERA_THROW(Usage, "two of the model's tables are named '"
                               << v.name << "' (a column named like a wide table)");
  }
  return views;
}

std::map<std::string, Tensor> snapshot_weights(MlpModel& model) {
  std::map<std::string, Tensor> w;
  for (Parameter* p : model.parameters()) w[p->name] = model.backend().to_host(p->value);
  return w;
}

void restore_weights(MlpModel& model, const std::map<std::string, Tensor>& weights) {
  for (Parameter* p : model.parameters()) {
    auto it = weights.find(p->name);
    if (it == weights.end()) TESSERA_THROW(Io, "model weights lack parameter '" << p->name << "'");
    if (it->second.shape() != p->value.shape() || it->second.dtype() != p->value.dtype())
      TESSERA_THROW(Io, "parameter '" << p->name << "' is " << it->second.describe()
                                      << ", the model expects " << dtype_name(p->value.dtype())
                                      << shape_str(p->value.shape()));
    model.backend().copy(it->second, p->value);
  }
}

}  // namespace tessera::behaviour
