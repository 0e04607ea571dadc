#pragma once
// The embedding tables of a table model (DCN-V2, Wide & Deep), one id per sample and table: the
// tables (embeddings/ EmbeddingTables, sharded or not), the bags a batch of per-column ids makes,
// and the deferred sparse step as the optimizer's sparse group. Several tables may read the same
// categorical column (Wide & Deep's deep and wide tables).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/alltoall_tables.h"
#include "embeddings/sharding.h"
#include "embeddings/tables.h"
#include "host/model/optimizer.h"

namespace tessera {

struct FeatureTable {
  int64_t column = 0;  // the categorical column whose ids it reads
  int64_t rows = 0;
  int64_t dim = 0;
  bool zero_init = false;  // else uniform in +-1/sqrt(rows) (DLRM's initialisation)
};

struct TableFeaturesSpec {
  std::vector<FeatureTable> tables;
  emb::SparseOptimizerConfig sparse;
  emb::TableDType table_dtype = emb::TableDType::F32;  // model.table_dtype
  bool stochastic_rounding = false;                    // model.stochastic_rounding
  int64_t shards = 1;
  emb::ShardPlacement placement = emb::ShardPlacement::Auto;
  bool remote_shards = false;
  // Under data-parallel training: replicated on every rank, or each table on one rank
  // (embeddings/alltoall_tables.h; needs shards == 1 and no remote_shards).
  emb::RankPlacement rank_placement = emb::RankPlacement::Replicated;
};

class TableFeatures final : public SparseGroup {
 public:
  TableFeatures(Backend& backend, const TableFeaturesSpec& spec, uint64_t seed);

  int64_t out_dim() const { return tables_->layout().out_dim(); }
  int64_t columns() const { return columns_; }
  // cat: host i64 [B, columns()] local ids -> out [B, out_dim()] on the backend (table t in its
  // layout's columns, in order).
  void forward(const Tensor& cat, Tensor& out);
  // The same with each (column, sample) a bag of ids: host tensors, column-major (bag c * B + s),
  // ids local to column c's tables, optional per-sample weights (embeddings/bag_ops.h); every
  // table of a column pools that column's bag. Kept (and must stay unchanged) until step().
  void forward_bags(const emb::Bags& column_bags, Tensor& out);
  // The gradient of the last forward's output, kept for step() (the optimizer's sparse group).
  void set_gradient(const Tensor& dout);
  const Tensor& gradient() const { return dout_; }

  void set_lr_scale(float scale) override { tables_->set_lr_scale(scale); }
  void step() override;
  std::map<std::string, Tensor> training_state() override { return tables_->training_state(); }
  void restore_training_state(const std::map<std::string, Tensor>& s) override {
    tables_->restore_training_state(s);
  }
  // Data-parallel with the tables replicated (docs/distributed.md): the pending step's lookup
  // and gradient go out; the global batch's comes back for step().
  bool exchanges_steps() const override { return true; }
  std::string export_step(float scale) override {
    return tables_->export_step(pending_ ? dout_ : Tensor(), scale);
  }
  void import_steps(std::vector<std::string> steps) override {
    tables_->import_steps(steps);
    pending_ = true;
  }
  // Tables split across the ranks: the gradient goes to the tables' owners only.
  void exchange_step(dist::ProcessGroup& group, float share) override {
    if (!split_) return SparseGroup::exchange_step(group, share);
    split_->exchange_step(group, pending_ ? dout_ : Tensor(), share);
    pending_ = true;
  }

  Tensor table_to_host(int64_t t) { return tables_->table_to_host(t); }
  Tensor weights_to_host() { return tables_->weights_to_host(); }
  void set_weights(const Tensor& flat) { tables_->set_weights(flat); }
  int64_t total_elements() const { return tables_->layout().total_elements(); }
  std::string shard_plan() const { return tables_->shard_plan(); }
  emb::AllToAllTables* split_tables() { return split_; }  // split across the ranks, else nullptr
  // The flat weights' element count for `tables` (what the model artefact checks).
  static int64_t elements(const std::vector<FeatureTable>& tables);

 private:
  std::vector<FeatureTable> specs_;
  int64_t columns_ = 0;
  std::unique_ptr<emb::EmbeddingTables> tables_;
  emb::AllToAllTables* split_ = nullptr;  // tables_ when split across the ranks
  emb::Bags bags_;  // the last forward_bags' table bags when tables and columns differ
  Tensor dout_;
  bool pending_ = false;
};

}  // namespace tessera
