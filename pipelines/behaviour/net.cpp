#include "pipelines/behaviour/net.h"

#include <algorithm>
#include <optional>

#include "host/model/parameter_ops.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/behaviour/sparse_mlp.h"
#include "pipelines/behaviour/table_net.h"

namespace tessera::behaviour {

namespace {

class MlpNet final : public BehaviourNet {
 public:
  MlpNet(Backend& backend, const MlpSpec& spec, uint64_t seed, int64_t max_batch)
      : model_(backend, spec, seed, max_batch) {}
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) override {
    return model_.forward(dense, cat, mode, seed);
  }
  void backward(const Tensor& dlogits) override { model_.backward(dlogits); }
  std::vector<Parameter*> parameters() override { return model_.parameters(); }
  std::map<std::string, Tensor> snapshot() override { return snapshot_weights(model_); }
  void restore(const std::map<std::string, Tensor>& w) override { restore_weights(model_, w); }
  int64_t parameter_count() const override { return model_.parameter_count(); }
  Backend& backend() override { return model_.backend(); }

 private:
  MlpModel model_;
};

// The MLP on libSVM rows (sparse_mlp.h): the batch's slots (dense: values, cat: feature rows)
// become one weighted bag per sample.
class SparseMlpNet final : public BehaviourNet {
 public:
  SparseMlpNet(Backend& backend, const MlpSpec& spec, SparseLayout layout, uint64_t seed,
               int64_t max_batch)
      : model_(backend, spec, seed, max_batch), layout_(std::move(layout)) {}
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) override {
    if (cat.rank() == 2 && cat.dim(1) == 0 && dense.rank() == 2 &&
        dense.dim(1) == layout_.total_rows()) {
      densified_slots(dense);  // rows densified by a caller: feature j in column j
      bags_ = slot_bags(model_.backend(), values_, ids_, layout_, /*one_table=*/true);
    } else {
      bags_ = slot_bags(model_.backend(), dense, cat, layout_, /*one_table=*/true);
    }
    return model_.forward(bags_, mode, seed);
  }
  void backward(const Tensor& dlogits) override { model_.backward(dlogits); }
  std::vector<Parameter*> parameters() override { return model_.parameters(); }
  std::map<std::string, Tensor> snapshot() override {
    std::map<std::string, Tensor> w;
    for (Parameter* p : model_.parameters()) w[p->name] = model_.backend().to_host(p->value);
    return w;
  }
  void restore(const std::map<std::string, Tensor>& w) override {
    for (Parameter* p : model_.parameters())
      model_.backend().copy(named_f32_weight(w, p->name, p->value.shape()), p->value);
  }
  int64_t parameter_count() const override { return model_.parameter_count(); }
  Backend& backend() override { return model_.backend(); }

 private:
  void densified_slots(const Tensor& dense) {
    const Tensor x = dense.is_host() ? dense : model_.backend().to_host(dense);
    const int64_t b = x.dim(0), w = x.dim(1);
    values_ = Tensor::host({b, w});
    ids_ = Tensor::host({b, w}, DType::I64);
    std::copy_n(x.data<float>(), b * w, values_.data<float>());
    for (int64_t i = 0; i < b * w; ++i) ids_.data<int64_t>()[i] = i % w;
  }
  SparseMlp model_;
  SparseLayout layout_;
  emb::Bags bags_;
  Tensor values_, ids_;
};

// The preprocessor numbers the rows of all columns in one flat table (column c at offset_c);
// the DLRM's tables are per column, so ids are made local before the lookup. On libSVM rows
// (`sparse`: their layout) a batch's slots become weighted bags of the layout's tables.
class DlrmNet final : public BehaviourNet {
 public:
  DlrmNet(Backend& backend, const DlrmSpec& spec, std::vector<int64_t> offsets,
          std::vector<std::string> columns, uint64_t seed, int64_t max_batch,
          std::optional<SparseLayout> sparse = std::nullopt)
      : model_(backend, spec, seed, max_batch),
        offsets_(std::move(offsets)),
        columns_(std::move(columns)),
        sparse_(std::move(sparse)) {}
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) override {
    if (sparse_) {
      bags_ = slot_bags(model_.backend(), dense, cat, *sparse_, /*one_table=*/false);
      return model_.forward_bags(Tensor(), bags_, mode, seed);
    }
    return model_.forward(dense, table_local_rows(model_.backend(), cat, offsets_, local_), mode,
                          seed);
  }
  void backward(const Tensor& dlogits) override {
    model_.backward(dlogits, DlrmModel::SparseStep::Deferred);
  }
  SparseGroup* sparse_group() override { return &model_.sparse_group(); }
  NamedTensors sparse_gradients() override {
    // [B, T*d]: table t's gradient in columns [t*d, (t+1)*d), split per table.
    const Tensor g = model_.backend().to_host(model_.sparse_gradient());
    const int64_t b = g.dim(0), d = model_.spec().embedding_dim;
    const int64_t nt = static_cast<int64_t>(columns_.size());
    NamedTensors out;
    for (int64_t t = 0; t < nt; ++t) {
      Tensor part = Tensor::host({b, d});
      for (int64_t s = 0; s < b; ++s)
        std::copy_n(g.data<float>() + s * nt * d + t * d, d, part.data<float>() + s * d);
      out.emplace_back(table_name(t), part);
    }
    return out;
  }
  void visit_tables(const std::function<void(const std::string&, const Tensor&)>& f) override {
    for (int64_t t = 0; t < static_cast<int64_t>(columns_.size()); ++t)
      f(table_name(t), model_.table_to_host(t));
  }
  std::vector<Parameter*> parameters() override { return model_.parameters(); }
  std::map<std::string, Tensor> snapshot() override { return model_.snapshot(); }
  void restore(const std::map<std::string, Tensor>& w) override { model_.restore(w); }
  int64_t parameter_count() const override { return model_.parameter_count(); }
  Backend& backend() override { return model_.backend(); }
  std::string shard_plan() const override { return model_.shard_plan(); }
  emb::AllToAllTables* split_tables() override { return model_.split_tables(); }

 private:
  std::string table_name(int64_t t) const {
    return "embedding table '" + columns_[static_cast<size_t>(t)] + "'";
  }
  DlrmModel model_;
  std::vector<int64_t> offsets_;
  std::vector<std::string> columns_;  // table t's categorical column
  std::optional<SparseLayout> sparse_;
  Tensor local_;
  emb::Bags bags_;  // the last sparse batch's (the tables read them until the sparse step)
};

std::unique_ptr<BehaviourNet> make_sparse_dlrm(Backend& backend, const BehaviourConfig& config,
                                               DlrmSpec d, uint64_t seed, int64_t max_batch) {
  const SparseLayout layout = sparse_layout(config);
  d.n_dense = 0;  // the values weigh the ids: no numeric features, no bottom MLP
  d.table_rows = layout.table_rows;
  std::vector<std::string> names;
  for (int64_t t = 0; t < layout.tables(); ++t)
    names.push_back(layout.fields ? "field " + std::to_string(t) : "features");
  return std::make_unique<DlrmNet>(backend, d, layout.offsets(), std::move(names), seed, max_batch,
                                   layout);
}

}  // namespace

emb::TableDType table_dtype_of(TableStorage s) {
  switch (s) {
    case TableStorage::BF16:
      return emb::TableDType::BF16;
    case TableStorage::F16:
      return emb::TableDType::F16;
    case TableStorage::F32:
      break;
  }
  return emb::TableDType::F32;
}

emb::SparseOptimizerConfig sparse_config(const SparseOptimizerSpec& s) {
  emb::SparseOptimizerConfig c;
  c.kind = s.type;
  c.lr = static_cast<float>(s.lr);
  c.eps = static_cast<float>(s.eps);
  c.beta1 = static_cast<float>(s.beta1);
  c.beta2 = static_cast<float>(s.beta2);
  return c;
}

Tensor table_local_rows(Backend& backend, const Tensor& cat, const std::vector<int64_t>& offsets,
                        Tensor& scratch) {
  Tensor c = cat.is_host() ? cat : backend.to_host(cat);
  const int64_t b = c.dim(0), n = c.dim(1);
  TESSERA_CHECK(n == static_cast<int64_t>(offsets.size()),
                "categorical input " << c.describe() << " for " << offsets.size() << " tables");
  if (scratch.numel() < b * n) scratch = Tensor::host({b * n}, DType::I64);
  Tensor l = scratch.rows(0, b * n).reshape({b, n});
  const int64_t* src = c.data<int64_t>();
  int64_t* dst = l.data<int64_t>();
  for (int64_t s = 0; s < b; ++s)
    for (int64_t t = 0; t < n; ++t) dst[s * n + t] = src[s * n + t] - offsets[t];
  return l;
}

std::unique_ptr<BehaviourNet> make_net(Backend& backend, const BehaviourConfig& config,
                                       const Preprocessor& pre, const MlpSpec& spec, uint64_t seed,
                                       int64_t max_batch) {
  if (config.model.type == BehaviourModelType::Mlp && is_libsvm(config)) {
    // A model file of the densified reader records no layout: its width is the spec's.
    const SparseLayout layout = sparse_layout(config, spec.n_dense);
    if (spec.n_dense != layout.total_rows())
      TESSERA_THROW(Config, "a libSVM MLP of " << spec.n_dense << " input features for data of "
                                               << layout.total_rows() << " feature rows");
    return std::make_unique<SparseMlpNet>(backend, spec, layout, seed, max_batch);
  }
  if (config.model.type == BehaviourModelType::Mlp)
    return std::make_unique<MlpNet>(backend, spec, seed, max_batch);
  if (config.model.type == BehaviourModelType::DcnV2 ||
      config.model.type == BehaviourModelType::WideDeep)
    return make_table_net(backend, config, pre, spec, seed, max_batch);
  DlrmSpec d;
  d.n_dense = spec.n_dense;
  std::vector<int64_t> offsets;
  std::vector<std::string> columns;
  for (const CategoricalColumnModel& c : pre.categorical_columns()) {
    d.table_rows.push_back(c.size);
    offsets.push_back(c.offset);
    columns.push_back(c.name);
  }
  d.embedding_dim = config.model.embedding_dim;
  d.bottom.assign(config.model.bottom.begin(), config.model.bottom.end());
  d.top.assign(config.model.hidden.begin(), config.model.hidden.end());
  d.dropout = static_cast<float>(config.model.dropout);
  d.activation = config.model.activation;
  d.sparse = sparse_config(config.model.sparse_optimizer);
  d.table_dtype = table_dtype_of(config.model.table_dtype);
  d.stochastic_rounding = config.model.stochastic_rounding;
  d.shards = config.model.shards;
  d.remote_shards = config.model.remote_shards;
  d.rank_placement = config.model.tables_across_ranks;
  d.placement = config.model.placement;
  if (is_libsvm(config)) return make_sparse_dlrm(backend, config, d, seed, max_batch);
  return std::make_unique<DlrmNet>(backend, d, std::move(offsets), std::move(columns), seed,
                                   max_batch);
}

}  // namespace tessera::behaviour
