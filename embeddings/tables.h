#pragma once
// EmbeddingTables: the embedding tables a model trains, one EmbeddingCollection on the model's
// backend or a ShardedEmbeddingCollection over N shards, behind one interface, so a model does not
// branch on the shard count:
//
//   auto tables = make_embedding_tables(specs, backend, opts, shards, placement);
//   tables->forward(host_bags, pooled);      // pooled [B, out_dim] on `backend`
//   tables->backward_and_update(dpooled);    // dpooled on `backend`; one sparse optimizer step
//
// Weights, optimizer state and the step counter go in and out in the unsharded flat layout
// (EmbeddingCollection::training_state()'s names), so checkpoints and exports do not depend on
// the shard count.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/collection.h"
#include "embeddings/sharding.h"

namespace tessera::emb {

class EmbeddingTables {
 public:
  virtual ~EmbeddingTables() = default;
  virtual const TableLayout& layout() const = 0;
  // host_bags: ids in each table's own id space (resolved under the tables' policies). out
  // [B, out_dim] on the model's backend: allocated if undefined, else written in place (a view
  // of a larger buffer is fine).
  virtual void forward(const Bags& host_bags, Tensor& out) = 0;
  // dout [B, out_dim] on the model's backend, for the last forward; one optimizer step.
  virtual void backward_and_update(const Tensor& dout) = 0;
  // The same two for a model that works on the host (pooled rows and dout as host tensors;
  // sharded tables skip the round trip through the model's device).
  virtual Tensor forward_host(const Bags& host_bags) = 0;
  virtual void backward_and_update_host(const Tensor& host_dout) = 0;
  // Host copies: one table [rows, dim]; the whole flat buffer.
  virtual Tensor table_to_host(int64_t t) = 0;
  virtual void set_table(int64_t t, const Tensor& host_rows_dim) = 0;
  virtual Tensor weights_to_host() = 0;
  virtual void set_weights(const Tensor& host_flat) = 0;
  virtual int64_t steps() const = 0;
  // The factor on the sparse optimizer's lr for the next updates: a learning-rate schedule's
  // multiplier at the step (the update uses model.sparse_optimizer.lr * scale; 1, the default,
  // is exactly the configured lr). Shards in other processes refuse any factor but 1.
  virtual void set_lr_scale(float scale) = 0;
  // "weights", "state0".., "step": everything training needs to continue exactly.
  virtual std::map<std::string, Tensor> training_state() = 0;
  // Takes back what training_state() gave (any shard count); checks every name and size first
  // (Error(Io) naming the tensor).
  virtual void restore_training_state(const std::map<std::string, Tensor>& state) = 0;
  // The shard plan as a table ("" when unsharded).
  virtual std::string shard_plan() const = 0;

  // Data-parallel training with these tables replicated on every rank (docs/distributed.md,
  // embeddings/step_exchange.h). The last forward's batch with `dout` (its gradient, [B, out_dim]
  // on the model's backend, undefined for a rank without a step) times `scale`, as a pack.
  std::string export_step(const Tensor& dout, float scale);
  // Every rank's export_step in rank order, concatenated and held for step_imported().
  void import_steps(const std::vector<std::string>& packs);
  // One optimizer step with the held global batch, exactly as backward_and_update after a
  // forward of that batch would (none when its batch has no rows); false when none is held.
  bool step_imported();

 protected:
  // The batch of the last forward (host tensors), which export_step packs.
  Bags last_bags_;
  bool have_last_bags_ = false;
  // A host copy of a tensor on the model's backend.
  virtual Tensor host_copy(const Tensor& t) = 0;
  // Resolves `host_bags` for the next update and applies `host_dout` (host f32 [B, out_dim]).
  // This default looks the batch up (forward_host) only for the resolution; one collection
  // resolves without the lookup.
  virtual void update_with_batch(const Bags& host_bags, const Tensor& host_dout) {
    forward_host(host_bags);
    backward_and_update_host(host_dout);
  }

 private:
  std::unique_ptr<Bags> imported_bags_;
  Tensor imported_dout_;
};

// shards == 1: one EmbeddingCollection on `backend`; > 1: a ShardedEmbeddingCollection over
// place_shards(specs, backend, shards, placement) (the plan is printed by the caller).
// remote: the shards (one or more) live in other processes, where the registered remote shard
// factory puts them; Error(Usage) when none is registered.
std::unique_ptr<EmbeddingTables> make_embedding_tables(
    std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts,
    int64_t shards = 1, ShardPlacement placement = ShardPlacement::Auto, bool remote = false);

// Shards in other processes. A program that runs with processes to serve shards (the tessera CLI
// built with MPI, under mpirun: embeddings/mpi/mpi_shards.h) registers where they go; the
// planner sizes each remote shard as if it had this machine's available memory. `where` says
// what the factory reaches (printed with the plan), and also what to do when none is registered.
void set_remote_shard_factory(ShardFactory factory, std::string where);

}  // namespace tessera::emb
