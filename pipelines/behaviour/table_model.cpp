#include "pipelines/behaviour/table_model.h"

#include "host/core/error.h"
#include "host/model/parameter_ops.h"

namespace tessera {

TableFeaturesSpec TableModelSpec::features(const std::vector<FeatureTable>& extra) const {
  TableFeaturesSpec f;
  for (size_t t = 0; t < table_rows.size(); ++t)
    f.tables.push_back({static_cast<int64_t>(t), table_rows[t], embedding_dim, false});
  f.tables.insert(f.tables.end(), extra.begin(), extra.end());
  f.sparse = sparse;
  f.table_dtype = table_dtype;
  f.stochastic_rounding = stochastic_rounding;
  f.shards = shards;
  f.placement = placement;
  f.remote_shards = remote_shards;
  f.rank_placement = rank_placement;
  return f;
}

TableModel::TableModel(Backend& backend, const TableModelSpec& spec,
                       const TableFeaturesSpec& features, std::vector<int64_t> parts,
                       std::vector<ColumnPick> picks, int64_t pooled_part, uint64_t seed,
                       int64_t max_batch)
    : backend_(backend),
      spec_(spec),
      max_batch_(max_batch),
      tables_(backend, features, seed),
      concat_(backend, std::move(parts), std::move(picks), max_batch),
      pooled_part_(pooled_part) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  TESSERA_CHECK(spec.n_dense >= 0, "n_dense " << spec.n_dense);
  if (spec.n_dense > 0) dense_in_ = backend.empty({max_batch, spec.n_dense});
}

Tensor TableModel::begin_forward(const Tensor& dense, int64_t b, Mode mode) {
  TESSERA_CHECK(b >= 1 && b <= max_batch_,
                "a batch of " << b << " rows for a max batch of " << max_batch_);
  TESSERA_CHECK(
      spec_.n_dense == 0 ||
          (dense.rank() == 2 && dense.dim(0) == b && dense.dim(1) == spec_.n_dense),
      "dense input " << dense.describe() << ", expected [" << b << ", " << spec_.n_dense << "]");
  batch_ = b;
  mode_ = mode;
  if (spec_.n_dense > 0) {
    Tensor xd = dense_in(b);
    backend_.copy(dense, xd);
  }
  return concat_.part(b, pooled_part_);
}

Tensor TableModel::forward(const Tensor& dense, const Tensor& cat, Mode mode,
                           uint64_t dropout_seed) {
  const int64_t b = cat.rank() == 2 ? cat.dim(0) : -1;
  TESSERA_CHECK(b >= 1 && b <= max_batch_, "a batch of " << cat.describe()
                                                         << " categorical ids for a max batch of "
                                                         << max_batch_);
  Tensor pooled = begin_forward(dense, b, mode);
  tables_.forward(cat, pooled);
  return forward_layers(b, mode, dropout_seed);
}

Tensor TableModel::forward_bags(const Tensor& dense, const emb::Bags& column_bags, Mode mode,
                                uint64_t dropout_seed) {
  Tensor pooled = begin_forward(dense, column_bags.batch, mode);
  tables_.forward_bags(column_bags, pooled);
  return forward_layers(column_bags.batch, mode, dropout_seed);
}

void TableModel::backward(const Tensor& dlogits) {
  TESSERA_CHECK(mode_ == Mode::Train, "backward after an evaluation-mode forward");
  TESSERA_CHECK(dlogits.numel() == batch_,
                "dlogits " << dlogits.describe() << " for batch " << batch_);
  backward_layers(dlogits.reshape({batch_, 1}));
  tables_.set_gradient(concat_.dpart(batch_, pooled_part_));
}

std::map<std::string, Tensor> TableModel::snapshot() {
  std::map<std::string, Tensor> w;
  for (Parameter* p : parameters()) w[p->name] = backend_.to_host(p->value);
  w["embedding.tables"] = tables_.weights_to_host();
  return w;
}

void TableModel::restore(const std::map<std::string, Tensor>& weights) {
  auto get = [&](const std::string& name, const Shape& shape) -> const Tensor& {
    return named_f32_weight(weights, name, shape);
  };
  // Every name and shape first, so a bad map changes nothing.
  for (Parameter* p : parameters()) get(p->name, p->value.shape());
  const Tensor& flat = get("embedding.tables", Shape{tables_.total_elements()});
  for (Parameter* p : parameters()) backend_.copy(get(p->name, p->value.shape()), p->value);
  tables_.set_weights(flat);
}

int64_t TableModel::parameter_count() {
  int64_t n = tables_.total_elements();
  for (Parameter* p : parameters()) n += p->value.numel();
  return n;
}

}  // namespace tessera
