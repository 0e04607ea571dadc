#pragma once
// DLRM (Naumov et al. 2019) for behaviour prediction, on any Backend:
//   dense [B, n_dense] -> bottom MLP (act after every layer) -> z0 [B, d]
//   categorical column t -> its own embedding table (embeddings/ EmbeddingCollection, one id per
//     sample and table, or a weighted bag of ids: forward_bags) -> e [B, T*d]
//   dot interaction (Backend::dot_interaction_forward) -> [B, d + T(T+1)/2]
// Without numeric features (n_dense == 0) there is no bottom MLP: the interaction is over the T
// embeddings alone, [e_1 | <e_i, e_j> for i > j] = [B, d + T(T-1)/2] (e_1 alone when T == 1).
//   top MLP (act, dropout after each hidden layer) -> logit [B, 1]
// The MLPs are the dense group of the pipeline's optimizer; the tables are stepped by their sparse
// optimizer (only the rows the batch used) inside backward(), or, deferred, as the optimizer's
// sparse group (sparse_group()).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/alltoall_tables.h"
#include "embeddings/sharding.h"
#include "embeddings/tables.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "host/model/parameter.h"

namespace tessera {

struct DlrmSpec {
  int64_t n_dense = 0;
  std::vector<int64_t> table_rows;  // one table per categorical column
  int64_t embedding_dim = 16;
  std::vector<int64_t> bottom = {64};   // hidden widths; a last layer of embedding_dim is added
  std::vector<int64_t> top = {64, 32};  // hidden widths; a last layer of width 1 is added
  float dropout = 0.f;                  // top MLP hidden layers
  Activation activation = Activation::Relu;
  emb::SparseOptimizerConfig sparse;
  emb::TableDType table_dtype = emb::TableDType::F32;  // model.table_dtype
  bool stochastic_rounding = false;                    // model.stochastic_rounding
  // > 1: the tables are split over this many shards (one per GPU on a CUDA device, host shards
  // on the CPU) by embeddings/sharding.h's planner; results and checkpoints equal one shard's.
  int64_t shards = 1;
  emb::ShardPlacement placement = emb::ShardPlacement::Auto;
  bool remote_shards = false;  // the shards in other processes (emb::make_embedding_tables)
  // Under data-parallel training: every table on every rank (Replicated), or each table on one
  // rank with all-to-all lookups (TableWise: embeddings/alltoall_tables.h; needs shards == 1 and
  // no remote_shards; made collectively over dist::process_group()).
  emb::RankPlacement rank_placement = emb::RankPlacement::Replicated;
  int64_t interaction_width() const {
    const int64_t v = static_cast<int64_t>(table_rows.size()) + (n_dense > 0 ? 1 : 0);
    return embedding_dim + v * (v - 1) / 2;
  }
};

class DlrmModel {
 public:
  // Validates the spec (needs at least one table). Dense weights He/Xavier-
  // uniform from `seed` on the host; tables uniform in +-1/sqrt(rows) (DLRM's initialisation).
  DlrmModel(Backend& backend, const DlrmSpec& spec, uint64_t seed, int64_t max_batch);
  ~DlrmModel();

  // dense f32 [B, n_dense] (host or backend), cat i64 [B, T] HOST tensor of per-table rows
  // (local to each table). Returns logits [B, 1] on the backend (valid until the next forward).
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t dropout_seed);
  // The same with each (table, sample) a bag of ids (HOST tensors, table-major: bag t * B + s,
  // ids local to table t, optional per-sample weights; embeddings/bag_ops.h), pooled by sum.
  // dense is ignored when n_dense == 0. The bags' tensors must stay unchanged until backward.
  Tensor forward_bags(const Tensor& dense, const emb::Bags& bags, Mode mode, uint64_t dropout_seed);
  // Dense gradients into parameters()' .grad, and one sparse optimizer step of the tables; with
  // SparseStep::Deferred the tables' gradient is kept for step_sparse() instead, so a caller
  // can look at every gradient (sparse_gradient()) before any weight changes.
  enum class SparseStep : uint8_t { InBackward, Deferred };
  void backward(const Tensor& dlogits, SparseStep sparse = SparseStep::InBackward);
  // The deferred sparse step of the last backward(dlogits, Deferred); once.
  void step_sparse();
  // The factor on the tables' sparse optimizer lr for the next sparse steps (a learning-rate
  // schedule's multiplier; 1 by default: exactly spec().sparse.lr).
  void set_sparse_lr_scale(float scale) { tables_->set_lr_scale(scale); }
  // The last backward's gradient of the pooled embeddings, [B, T*d] on the backend (table t in
  // columns [t*d, (t+1)*d)): what the sparse step would apply.
  Tensor sparse_gradient() { return demb_.rows(0, batch_); }
  // Table t's weights [rows, d] as a host tensor.
  Tensor table_to_host(int64_t t) { return tables_->table_to_host(t); }

  std::vector<Parameter*> parameters();  // the MLPs' weights and biases
  // Every weight (MLPs and tables, "embedding.tables" = the flat table buffer) as host tensors.
  std::map<std::string, Tensor> snapshot();
  void restore(const std::map<std::string, Tensor>& weights);
  // The tables' training state (weights, sparse optimizer slots, step counter; see
  // EmbeddingCollection::training_state) for checkpoints: parameters() and the dense optimizer's
  // state hold the rest.
  // The same tensors whatever the number of shards.
  std::map<std::string, Tensor> sparse_state() { return tables_->training_state(); }
  void restore_sparse_state(const std::map<std::string, Tensor>& s) {
    tables_->restore_training_state(s);
  }
  // The tables as a sparse parameter group of the model's optimizer (host/model/optimizer.h,
  // state as sparse_state() names it): the optimizer sets their lr scale and steps them with the
  // gradient of the last backward(dlogits, SparseStep::Deferred) (step_sparse()).
  SparseGroup& sparse_group() { return group_; }
  // The shard plan as a table ("" when the tables are not sharded).
  std::string shard_plan() const { return tables_->shard_plan(); }
  // The tables when split across the ranks (spec().rank_placement TableWise), else nullptr.
  const emb::AllToAllTables* split_tables() const { return split_; }
  emb::AllToAllTables* split_tables() { return split_; }
  int64_t parameter_count() const;
  Backend& backend() { return backend_; }
  const DlrmSpec& spec() const { return spec_; }

 private:
  struct Layer {
    Parameter w, b;  // [in, out], [out]
    Activation act = Activation::None;
    bool dropout = false;
    Tensor h, a, dh;  // [max_batch, out]: post-activation, post-dropout (== h without), grad
  };
  struct Tower {
    std::vector<Layer> layers;
    Tensor dx;  // [max_batch, widest input] scratch for the backward
  };
  Tower make_tower(int64_t in, const std::vector<int64_t>& widths, Activation last_act,
                   bool dropout, const std::string& prefix, uint64_t seed);
  Tensor tower_forward(Tower& t, const Tensor& x, Mode mode, uint64_t seed);
  // Returns dx (when want_dx) for input x of the forward.
  Tensor tower_backward(Tower& t, const Tensor& x, const Tensor& dy, uint64_t seed, bool want_dx);
  void make_tables(const std::vector<emb::TableSpec>& tables, const emb::CollectionOptions& co);

  Backend& backend_;
  DlrmSpec spec_;
  int64_t max_batch_;
  Tower bottom_, top_;
  const emb::TableLayout& table_layout() const { return tables_->layout(); }

  std::unique_ptr<emb::EmbeddingTables> tables_;  // one collection, or sharded
  emb::AllToAllTables* split_ = nullptr;          // tables_ when split across the ranks
  class TableGroup final : public SparseGroup {
   public:
    explicit TableGroup(DlrmModel& m) : m_(m) {}
    void set_lr_scale(float scale) override { m_.set_sparse_lr_scale(scale); }
    void step() override { m_.step_sparse(); }
    std::map<std::string, Tensor> training_state() override { return m_.sparse_state(); }
    void restore_training_state(const std::map<std::string, Tensor>& s) override {
      m_.restore_sparse_state(s);
    }
    // Data-parallel with the tables replicated (docs/distributed.md): the pending step's
    // lookup and pooled gradient go out; the global batch's comes back for step_sparse().
    bool exchanges_steps() const override { return true; }
    std::string export_step(float scale) override {
      return m_.tables_->export_step(m_.sparse_pending_ ? m_.sparse_gradient() : Tensor(), scale);
    }
    void import_steps(std::vector<std::string> steps) override {
      m_.tables_->import_steps(steps);
      m_.sparse_pending_ = true;
    }
    // Tables split across the ranks: the pooled gradient goes to the tables' owners only.
    void exchange_step(dist::ProcessGroup& group, float share) override {
      if (!m_.split_) return SparseGroup::exchange_step(group, share);
      m_.split_->exchange_step(group, m_.sparse_pending_ ? m_.sparse_gradient() : Tensor(), share);
      m_.sparse_pending_ = true;
    }

   private:
    DlrmModel& m_;
  };
  TableGroup group_{*this};
  // n_dense == 0: the interaction's first vector e_1 and the others, picked from e [B, T*d] by
  // products with fixed 0/1 matrices (exact: each output sums one product by 1 and zeros).
  Tensor interact(const Tensor& e, int64_t b);
  void interact_backward(const Tensor& dinter, int64_t b);
  Tensor pick_first_, pick_rest_;  // [T*d, d], [T*d, (T-1)*d]
  Tensor e_first_, e_rest_, de_first_, de_rest_;
  Tensor dense_in_, emb_out_, inter_, dinter_, dz0_, demb_;
  int64_t batch_ = 0;
  bool sparse_pending_ = false;  // a Deferred backward's table step not taken yet
  uint64_t dropout_seed_ = 0;
  Mode mode_ = Mode::Eval;
};

}  // namespace tessera
