#include "pipelines/behaviour/table_net.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "pipelines/behaviour/dcn_model.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/behaviour/wide_deep_model.h"

namespace tessera::behaviour {

namespace {

// One table per categorical column, or on libSVM rows per table of their layout (field).
std::vector<int64_t> column_rows(const BehaviourConfig& config, const Preprocessor& pre) {
  if (is_libsvm(config)) return sparse_layout(config).table_rows;
  std::vector<int64_t> rows;
  for (const CategoricalColumnModel& c : pre.categorical_columns()) rows.push_back(c.size);
  return rows;
}

std::vector<std::string> column_names(const BehaviourConfig& config, const Preprocessor& pre) {
  std::vector<std::string> names;
  if (is_libsvm(config)) {
    const SparseLayout l = sparse_layout(config);
    for (int64_t t = 0; t < l.tables(); ++t)
      names.push_back(l.fields ? "field " + std::to_string(t) : "features");
    return names;
  }
  for (const CategoricalColumnModel& c : pre.categorical_columns()) names.push_back(c.name);
  return names;
}

// libSVM rows have no numeric features (their values weigh the ids).
void fill_spec(TableModelSpec& s, const BehaviourConfig& config, const Preprocessor& pre,
               int64_t n_dense) {
  const BehaviourModelConfig& m = config.model;
  s.n_dense = is_libsvm(config) ? 0 : n_dense;
  s.table_rows = column_rows(config, pre);
  s.embedding_dim = m.embedding_dim;
  s.top.assign(m.hidden.begin(), m.hidden.end());
  s.dropout = static_cast<float>(m.dropout);
  s.activation = m.activation;
  s.sparse = sparse_config(m.sparse_optimizer);
  s.table_dtype = table_dtype_of(m.table_dtype);
  s.stochastic_rounding = m.stochastic_rounding;
  s.shards = m.shards;
  s.placement = m.placement;
  s.remote_shards = m.remote_shards;
  s.rank_placement = m.tables_across_ranks;
}

DcnSpec dcn_spec(const BehaviourConfig& config, const Preprocessor& pre, int64_t n_dense) {
  DcnSpec s;
  fill_spec(s, config, pre, n_dense);
  s.bottom.assign(config.model.bottom.begin(), config.model.bottom.end());
  s.cross_layers = config.model.cross.layers;
  s.low_rank = config.model.cross.low_rank;
  s.parallel = config.model.cross.structure == CrossStructure::Parallel;
  return s;
}

WideDeepSpec wide_deep_spec(const BehaviourConfig& config, const Preprocessor& pre,
                            int64_t n_dense) {
  WideDeepSpec s;
  fill_spec(s, config, pre, n_dense);
  return s;
}

// The preprocessor numbers the rows of all columns in one flat table (column c at offset_c); the
// models' tables are per column, so ids are made local before the lookup.
class TableNet final : public BehaviourNet {
 public:
  TableNet(std::unique_ptr<TableModel> model, std::vector<int64_t> offsets,
           std::vector<std::string> table_names, std::vector<int64_t> table_dims,
           std::optional<SparseLayout> sparse)
      : model_(std::move(model)),
        offsets_(std::move(offsets)),
        names_(std::move(table_names)),
        dims_(std::move(table_dims)),
        sparse_(std::move(sparse)) {}
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) override {
    if (sparse_) {  // libSVM slots: weighted bags of the layout's tables
      bags_ = slot_bags(model_->backend(), dense, cat, *sparse_, /*one_table=*/false);
      return model_->forward_bags(Tensor(), bags_, mode, seed);
    }
    return model_->forward(dense, table_local_rows(model_->backend(), cat, offsets_, local_), mode,
                           seed);
  }
  void backward(const Tensor& dlogits) override { model_->backward(dlogits); }
  SparseGroup* sparse_group() override { return &model_->sparse_group(); }
  NamedTensors sparse_gradients() override {
    // [B, sum of dims]: each table's columns in order, split per table.
    const Tensor g = model_->backend().to_host(model_->sparse_gradient());
    const int64_t b = g.dim(0), w = g.dim(1);
    NamedTensors out;
    int64_t col = 0;
    for (size_t t = 0; t < names_.size(); ++t) {
      const int64_t d = dims_[t];
      Tensor part = Tensor::host({b, d});
      for (int64_t s = 0; s < b; ++s)
        std::copy_n(g.data<float>() + s * w + col, d, part.data<float>() + s * d);
      out.emplace_back(names_[t], part);
      col += d;
    }
    return out;
  }
  void visit_tables(const std::function<void(const std::string&, const Tensor&)>& f) override {
    for (size_t t = 0; t < names_.size(); ++t)
      f(names_[t], model_->tables().table_to_host(static_cast<int64_t>(t)));
  }
  std::vector<Parameter*> parameters() override { return model_->parameters(); }
  std::map<std::string, Tensor> snapshot() override { return model_->snapshot(); }
  void restore(const std::map<std::string, Tensor>& w) override { model_->restore(w); }
  int64_t parameter_count() const override { return model_->parameter_count(); }
  Backend& backend() override { return model_->backend(); }
  std::string shard_plan() const override { return model_->tables().shard_plan(); }
  emb::AllToAllTables* split_tables() override { return model_->tables().split_tables(); }

 private:
  std::unique_ptr<TableModel> model_;
  std::vector<int64_t> offsets_;
  std::vector<std::string> names_;  // table t's name in messages
  std::vector<int64_t> dims_;
  std::optional<SparseLayout> sparse_;
  Tensor local_;
  emb::Bags bags_;  // the last sparse batch's (the tables read them until the sparse step)
};

}  // namespace

std::unique_ptr<BehaviourNet> make_table_net(Backend& backend, const BehaviourConfig& config,
                                             const Preprocessor& pre, const MlpSpec& spec,
                                             uint64_t seed, int64_t max_batch) {
  const BehaviourModelType type = config.model.type;
  TESSERA_CHECK(type == BehaviourModelType::DcnV2 || type == BehaviourModelType::WideDeep,
                "make_table_net for model type " << static_cast<int>(type));
  std::optional<SparseLayout> sparse;
  if (is_libsvm(config)) sparse = sparse_layout(config);
  std::vector<int64_t> offsets, dims;
  std::vector<std::string> names, columns = column_names(config, pre);
  if (sparse) offsets = sparse->offsets();
  for (const CategoricalColumnModel& c : pre.categorical_columns()) offsets.push_back(c.offset);
  for (const std::string& c : columns) {
    names.push_back("embedding table '" + c + "'");
    dims.push_back(config.model.embedding_dim);
  }
  std::unique_ptr<TableModel> model;
  if (type == BehaviourModelType::DcnV2) {
    model =
        std::make_unique<DcnModel>(backend, dcn_spec(config, pre, spec.n_dense), seed, max_batch);
  } else {
    model = std::make_unique<WideDeepModel>(backend, wide_deep_spec(config, pre, spec.n_dense),
                                            seed, max_batch);
    for (const std::string& c : columns) {
      names.push_back("wide table '" + c + "'");
      dims.push_back(1);
    }
  }
  return std::make_unique<TableNet>(std::move(model), std::move(offsets), std::move(names),
                                    std::move(dims), std::move(sparse));
}

std::vector<std::pair<std::string, Shape>> table_net_weight_shapes(const BehaviourConfig& config,
                                                                   const Preprocessor& pre,
                                                                   int64_t n_dense,
                                                                   const std::string& path) {
  // The tables' flat size, in checked arithmetic (a corrupt header must not overflow it).
  const int64_t d = config.model.embedding_dim;
  const bool wide = config.model.type == BehaviourModelType::WideDeep;
  const int64_t per_row = d + (wide ? 1 : 0);
  int64_t elements = 0;
  for (const int64_t rows : column_rows(config, pre)) {
    if (rows < 1 || rows > (std::numeric_limits<int64_t>::max() - elements) / per_row)
      TESSERA_THROW(Io, "'" << path << "': the model's table size overflows");
    elements += rows * per_row;
  }
  std::vector<std::pair<std::string, Shape>> out =
      wide ? WideDeepModel::weight_shapes(wide_deep_spec(config, pre, n_dense))
           : DcnModel::weight_shapes(dcn_spec(config, pre, n_dense));
  out.emplace_back("embedding.tables", Shape{elements});
  return out;
}

}  // namespace tessera::behaviour
