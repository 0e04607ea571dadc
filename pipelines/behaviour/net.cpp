#include "pipelines/behaviour/net.h"

#include <algorithm>

#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/model_artefact.h"
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

// The preprocessor numbers the rows of all columns in one flat table (column c at offset_c);
// the DLRM's tables are per column, so ids are made local before the lookup.
class DlrmNet final : public BehaviourNet {
 public:
  DlrmNet(Backend& backend, const DlrmSpec& spec, std::vector<int64_t> offsets,
          std::vector<std::string> columns, uint64_t seed, int64_t max_batch)
      : model_(backend, spec, seed, max_batch),
        offsets_(std::move(offsets)),
        columns_(std::move(columns)) {}
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) override {
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

 private:
  std::string table_name(int64_t t) const {
    return "embedding table '" + columns_[static_cast<size_t>(t)] + "'";
  }
  DlrmModel model_;
  std::vector<int64_t> offsets_;
  std::vector<std::string> columns_;  // table t's categorical column
  Tensor local_;
};

}  // namespace

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
  if (config.model.type == BehaviourModelType::Mlp)
    return std::make_unique<MlpNet>(backend, spec, seed, max_batch);
  if (config.model.type == BehaviourModelType::DcnV2 ||
      config.model.type == BehaviourModelType::WideDeep)
    return make_table_net(backend, config, pre, spec, seed, max_batch);
  if (is_libsvm(config))
    TESSERA_THROW(Config, "model.type \"dlrm\" needs categorical columns; libSVM input has none");
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
  d.shards = config.model.shards;
  d.remote_shards = config.model.remote_shards;
  d.placement = config.model.placement;
  return std::make_unique<DlrmNet>(backend, d, std::move(offsets), std::move(columns), seed,
                                   max_batch);
}

}  // namespace tessera::behaviour
