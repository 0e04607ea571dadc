#pragma once
// Embedding tables split across the ranks of a data-parallel run (hybrid-parallel training,
// docs/distributed.md "Tables split across ranks"): the planner (embeddings/sharding.h) places
// each table whole on one rank (table-wise, largest first to the rank with the most room), and
// each rank builds and trains only its own tables and their sparse optimizer state. The dense
// model stays data-parallel: every rank runs it on its contiguous part of each global batch, in
// rank order.
//
// One training step, collective over dist::process_group() (every rank calls each in turn):
//   forward(bags of this rank's B_r samples)
//     ids      rank r -> owner j: the bags of j's tables for r's samples (ProcessGroup::alltoallv)
//     lookup   owner j concatenates the parts in rank order (= the global batch one process
//              would look up, for j's tables) and pools them with its own collection
//     pooled   owner j -> rank r: rows of r's samples, [B_r, D_j] (alltoallv)
//   exchange_step(dout [B_r, out_dim], share)   (the Trainer, after the dense all-reduce)
//     grads    rank r -> owner j: the columns of j's tables times the share, [B_r, D_j]
//   step_exchanged()
//              owner j applies the global batch's gradient with its collection's own
//              backward_and_update: the one-process sparse step of j's tables, on the same bags
//              in the same order (Adagrad is not linear: the ranks' rows are not summed first).
// Wire formats (native byte order; every rank runs the same build):
//   ids:     i64 B, i64 flags (bit 0: per-id weights), i64 nnz, i32 lengths [T_j * B]
//            (table-major), i64 ids [nnz], f32 weights [nnz] (flag only)
//   pooled:  f32 [B, D_j] row-major
//   grads:   i64 B (-1: this rank's part was dropped and stays out of the step), f32 [B, D_j]
// So one id per (sample, table) costs, per sample and table owned elsewhere, 12 bytes of ids
// forward and 4 d bytes each of pooled rows and gradients (plus 24 bytes of header per message).
//
// Not collective-free: table_to_host, weights_to_host (a broadcast from each table's owner, one
// table at a time) and training_state (an all-gather of every rank's tables and optimizer state,
// in the unsharded layout one process's collection uses) are collectives too;
// restore_training_state is not (each rank keeps its slices of the whole state), so a state
// taken at N ranks restores at any M, or in one process with the tables in one collection.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/tables.h"

namespace tessera::dist {
class ProcessGroup;
}

namespace tessera::emb {

// Where a data-parallel run keeps its embedding tables.
enum class RankPlacement : uint8_t {
  Replicated = 0,  // every table on every rank (the sparse step all-gathered)
  TableWise = 1,   // each table on one rank (this file)
};
const char* rank_placement_name(RankPlacement p);

class AllToAllTables final : public EmbeddingTables {
 public:
  // Collective over dist::process_group(): every rank passes the same specs and options.
  AllToAllTables(std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts);
  ~AllToAllTables() override;

  const TableLayout& layout() const override { return layout_; }
  void forward(const Bags& host_bags, Tensor& out) override;
  // Without the Trainer's exchange (one process, or a caller stepping at once): exchange_step
  // with the share 1, then step_exchanged.
  void backward_and_update(const Tensor& dout) override;
  Tensor forward_host(const Bags& host_bags) override;
  void backward_and_update_host(const Tensor& host_dout) override;
  // Collective: the owner's rows on every rank.
  Tensor table_to_host(int64_t t) override;
  // Every rank passes the same rows (the model's seeded initialisation); the owner keeps them.
  void set_table(int64_t t, const Tensor& host_rows_dim) override;
  Tensor weights_to_host() override;  // collective, table by table
  void set_weights(const Tensor& host_flat) override;
  int64_t steps() const override { return steps_; }
  void set_lr_scale(float scale) override;
  // Collective (every rank gets the whole state); see the file comment.
  std::map<std::string, Tensor> training_state() override;
  void restore_training_state(const std::map<std::string, Tensor>& s) override;
  std::string shard_plan() const override;

  // The Trainer's step exchange: dout [B_r, out_dim] (on the model's backend) of the last
  // forward, undefined or share 0 for a rank whose part stays out of the step.
  void exchange_step(dist::ProcessGroup& group, const Tensor& dout, float share);
  // Applies the exchanged step (false when none is held).
  bool step_exchanged();

  // What rank 0 does alone in a run over several ranks (validation, the final test scoring, the
  // model save: the Trainer's lead sections, docs/distributed.md): collective, every rank calls
  // it; rank `lead` then holds a whole copy of the tables (one process's collection, weights
  // only), and its forward, forward_host, table_to_host and weights_to_host read that copy
  // without the other ranks (the same pooled rows, bit for bit) until drop_whole_copy(). Steps
  // and training state are refused while it is held.
  void gather_whole_copy(int lead);
  void drop_whole_copy() { whole_.reset(); }
  bool holds_whole_copy() const { return whole_ != nullptr; }

  int owner(int64_t t) const { return owner_[static_cast<size_t>(t)]; }
  // Table elements this rank holds (weights; the optimizer state is in proportion).
  int64_t held_elements() const;

 protected:
  Tensor host_copy(const Tensor& t) override;

 private:
  dist::ProcessGroup& group() const;
  std::string pack_ids(const Bags& b, int j) const;
  Tensor lookup_global(const std::vector<std::string>& parts);
  Tensor assemble(const std::vector<std::string>& rows, int64_t batch) const;
  void import_gradients(const std::vector<std::string>& parts);

  void refuse_while_whole(const char* what) const;

  Backend* backend_;
  std::vector<TableSpec> specs_;
  CollectionOptions opts_;
  TableLayout layout_;
  ShardPlan plan_;
  int world_ = 1, rank_ = 0;
  std::vector<int> owner_;                      // [T]: the rank of each table
  std::vector<std::vector<int64_t>> own_;       // [N]: each rank's tables, in table order
  std::vector<int64_t> local_index_;            // [T]: the table's index in its owner's collection
  std::unique_ptr<EmbeddingCollection> local_;  // this rank's tables (none: nullptr)
  std::unique_ptr<EmbeddingCollection> whole_;  // the lead's whole copy (gather_whole_copy)
  // The last forward's global batch of this rank's tables and each rank's part of it.
  std::unique_ptr<Bags> global_bags_;
  std::vector<int64_t> parts_;
  Tensor pending_dout_;  // host [B kept, D_me] after exchange_step
  bool pending_ = false;
  int64_t steps_ = 0;
};

}  // namespace tessera::emb
