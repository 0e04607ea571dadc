#pragma once
// Sharding an embedding collection over N shards: a planner that places each table whole on one
// shard (table-wise), splits its rows over the shards (row-wise) or its columns (column-wise),
// from table sizes and each shard's memory, and a ShardedEmbeddingCollection that runs lookups
// and training over the shards with the same results as one unsharded EmbeddingCollection
// (table-wise and column-wise: bit for bit; row-wise: pooled outputs up to float summation order,
// gradients and updates bit for bit; per-sample weight gradients of row-wise parts bit for bit,
// of column-wise parts up to summation order, as each shard sums its own columns).
//
// Column-wise placement is only used when asked for (the planner's automatic choice is table-
// or row-wise) and not with row-wise Adagrad, whose per-row state is a mean over all columns.
//
// The parent resolves ids (hashing, id policy: the same checks, messages and warnings as the
// unsharded run), routes each index to the shard owning its row, folds mean pooling into
// per-sample weights (so shards always sum), and combines the shards' pooled outputs (row-wise
// parts add up). Shards talk in host tensors through EmbeddingShard, so a shard can live in
// another process (embeddings/remote_shard.h; over MPI: embeddings/mpi/mpi_shards.h); shards on
// CUDA backends of this process also take device tensors, and then a training step's pooled rows
// and gradients stay on the devices (forward_device, embeddings/shard_exchange.cpp).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/collection.h"

namespace tessera::emb {

enum class Placement : uint8_t { TableWise = 0, RowWise = 1, ColumnWise = 2 };
const char* placement_name(Placement p);

// What a configuration asks of the planner: "auto" lets it choose per table (whole tables by
// memory, row-wise for one that would unbalance the shards), "table" / "row" / "column" force one
// kind.
enum class ShardPlacement : uint8_t { Auto = 0, Table = 1, Row = 2, Column = 3 };

struct ShardPart {
  int shard = 0;
  int64_t row_begin = 0;  // rows [row_begin, row_end) of the table
  int64_t row_end = 0;
  int64_t col_begin = 0;  // columns [col_begin, col_end): [0, dim) unless column-wise
  int64_t col_end = 0;
};

struct TablePlacement {
  Placement placement = Placement::TableWise;
  // One part (table-wise) or one per shard that got rows (row-wise) or columns (column-wise).
  std::vector<ShardPart> parts;
  int64_t bytes = 0;  // weights + optimizer state
};

struct ShardPlan {
  int num_shards = 0;
  std::vector<TablePlacement> tables;   // [T], in the collection's table order
  std::vector<int64_t> shard_bytes;     // planned bytes per shard
  std::vector<int64_t> shard_capacity;  // bytes available per shard
  // A human-readable table: one line per table (placement, shards, rows, MiB) and per shard.
  std::string describe(const std::vector<TableSpec>& specs) const;
};

struct PlannerOptions {
  // A table larger than this fraction of the average per-shard load is split row-wise even if
  // it fits on one shard (one huge table on one shard unbalances the lookups).
  double rowwise_threshold = 1.0;
  Placement force = Placement::TableWise;  // with force_all: every table gets this placement
  bool force_all = false;
  TableDType table_dtype = TableDType::F32;  // the tables' storage: 2 bytes a value for 16-bit
};

// Bytes per table = rows * dim * (value bytes + 4 * per-element optimizer state) (+ rows * 4 for
// row-wise Adagrad); a value is 4 bytes, 2 for a 16-bit table_dtype. Tables go largest first to the
// shard with the most free memory (table-wise) unless they exceed the threshold or fit on no shard
// (row-wise, rows split in proportion to free memory). Forced column-wise splits every table's
// columns evenly over min(N, dim) shards. Throws Error(Config) when the tables do not fit in the
// shards' memory, or for column-wise with row-wise Adagrad.
ShardPlan plan_shards(const std::vector<TableSpec>& specs,
                      const std::vector<int64_t>& capacity_bytes, const SparseOptimizerConfig& opt,
                      const PlannerOptions& options = {});

// One shard as the parent sees it: host tensors in and out.
class EmbeddingShard {
 public:
  virtual ~EmbeddingShard() = default;
  virtual const TableLayout& layout() const = 0;
  // bags (host) in the shard's local ids -> pooled [B, shard out_dim] (host).
  virtual Tensor forward(const Bags& host_bags) = 0;
  // dout (host) [B, shard out_dim] for the last forward; one optimizer step.
  virtual void backward_update(const Tensor& host_dout) = 0;
  // The last forward's per-sample weight gradient (EmbeddingCollection::weight_grad), host [nnz].
  virtual Tensor weight_grad(const Tensor& host_dout) = 0;
  virtual Tensor table_to_host(int64_t t) = 0;
  virtual void set_table(int64_t t, const Tensor& host_rows_dim) = 0;
  // Optimizer state slot `slot` over the shard's own flat layout (state_size() elements), and the
  // step counter the optimizer's bias corrections use: what a checkpoint needs.
  virtual int num_states() const = 0;
  virtual Tensor state_to_host(int slot) = 0;
  virtual void set_state(int slot, const Tensor& host_flat) = 0;
  virtual void set_steps(int64_t steps) = 0;
  // The factor on the sparse optimizer's lr for the next steps (EmbeddingCollection::
  // set_lr_scale). A shard that cannot scale it refuses any factor but 1 (Error(Usage)).
  virtual void set_lr_scale(float scale);
  virtual std::string where() const = 0;  // e.g. "cpu" or "cuda:1 (...)"

  // The parent starts every shard's forward (or backward + update) before it waits for any, so
  // shards that compute elsewhere (other processes) work at the same time. A shard here runs the
  // call in start_*; a remote one sends the request there and waits for the reply in finish_*.
  // Each start_* is followed by its finish_* before any other call.
  virtual void start_forward(const Bags& host_bags) { started_ = forward(host_bags); }
  virtual Tensor finish_forward() { return std::move(started_); }
  virtual void start_backward_update(const Tensor& host_dout) { backward_update(host_dout); }
  virtual void finish_backward_update() {}

  // A shard in this process: the backend it runs on, whose device tensors the two calls below
  // take (nullptr, the default: a shard that speaks only host tensors). Both queue their work on
  // that backend and return without waiting.
  virtual Backend* local_backend() { return nullptr; }
  // host bags in the shard's local ids -> pooled rows into out [B, shard out_dim] on
  // local_backend() (written).
  virtual void forward_device(const Bags& host_bags, Tensor& out);
  // dout [B, shard out_dim] on local_backend(), for the last forward; one optimizer step.
  virtual void backward_update_device(const Tensor& dout);

 private:
  Tensor started_;
};

// A shard in this process on a Backend.
std::unique_ptr<EmbeddingShard> make_local_shard(std::vector<TableSpec> specs, Backend& backend,
                                                 const CollectionOptions& opts);

// Makes shard k of a collection, holding the given table parts (local shards on backends, or
// proxies for shards in other processes: embeddings/remote_shard.h).
using ShardFactory = std::function<std::unique_ptr<EmbeddingShard>(
    int shard, std::vector<TableSpec> specs, const CollectionOptions& opts)>;

// One backend per shard for a run on `like`'s kind of device (n host backends on the CPU; on a
// CUDA device shard k on cuda:(k mod the device count), so a machine with fewer GPUs than shards
// (one GPU, say) still runs them; in the emulation build the same over the emulated devices,
// cuda-emu:(k mod their count)) and the plan of
// `specs` over them. Shards that share a device (or the host) share its memory: each plans with
// its share of what is available.
struct ShardDevices {
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<Backend*> raw;  // backends[k].get()
  ShardPlan plan;
};
ShardDevices place_shards(const std::vector<TableSpec>& specs, const Backend& like, int64_t n,
                          ShardPlacement placement, const SparseOptimizerConfig& optimizer,
                          TableDType table_dtype = TableDType::F32);
// What the planner is told for a config's placement (auto: its own choice; else forced).
PlannerOptions planner_options(ShardPlacement placement);

class ShardedEmbeddingCollection {
 public:
  // backends[k] runs shard k (N host backends on a machine without GPUs). The plan must have
  // backends.size() shards. Initial weights equal EmbeddingCollection(specs, any, opts)'s.
  ShardedEmbeddingCollection(std::vector<TableSpec> specs, const ShardPlan& plan,
                             const std::vector<Backend*>& backends, const CollectionOptions& opts);
  // The same over shards `make` creates (a shard the plan leaves empty is not made). Everything
  // but the shards runs here: id resolution and policies, routing, pooling scales, gathers.
  ShardedEmbeddingCollection(std::vector<TableSpec> specs, const ShardPlan& plan,
                             const ShardFactory& make, const CollectionOptions& opts);

  const TableLayout& layout() const { return layout_; }
  const ShardPlan& plan() const { return plan_; }
  // bags on the host (T*B+1 offsets over the full tables); out [B, out_dim] on the host.
  void forward(const Bags& host_bags, Tensor& out);
  void backward_and_update(const Tensor& host_dout);
  // The gradient w.r.t. the last forward's per-sample weights, host f32 [nnz], as
  // EmbeddingCollection::weight_grad (call before backward_and_update changes the rows).
  Tensor weight_grad(const Tensor& host_dout);
  // The training step with the pooled rows on a CUDA backend `model` and nothing read back: the
  // shards run on device backends in this process (stays_on_device), each shard's pooled rows go
  // to the model's device with a device-to-device copy and are added into out's columns there
  // (Backend::embedding_backward over column chunks: a scatter-add), and dout's columns go back
  // the same way (Backend::embedding_forward: a gather); the model's stream and the shards' are
  // ordered by events (order_after), not by host waits. out and dout [B, out_dim] on `model`; the
  // same results as forward / backward_and_update (row-wise parts add up in any order).
  bool stays_on_device(const Backend& model) const;
  void forward_device(Backend& model, const Bags& host_bags, Tensor& out);
  void backward_and_update_device(Backend& model, const Tensor& dout);
  Tensor table_to_host(int64_t t);                         // reassembled from the parts
  void set_table(int64_t t, const Tensor& host_rows_dim);  // split into the parts
  // The whole collection's flat weights and optimizer state, laid out exactly as one unsharded
  // EmbeddingCollection lays them out (weights_to_host(), state_to_host(slot)): a checkpoint
  // written with N shards restores into any other number of shards, or none.
  int num_states() const { return state_slots(opts_.optimizer.kind); }
  Tensor weights_to_host();
  void set_weights(const Tensor& host_flat);
  Tensor state_to_host(int slot);
  void set_state(int slot, const Tensor& host_flat);
  // Every shard's optimizer step counter (they advance together, one per backward_and_update).
  void set_steps(int64_t steps);
  int64_t steps() const { return step_; }
  // Every shard's lr factor for the next steps (EmbeddingShard::set_lr_scale).
  void set_lr_scale(float scale);
  // The same names and layout as EmbeddingCollection::training_state(): a checkpoint taken
  // with any number of shards restores into any other, or into an unsharded collection.
  std::map<std::string, Tensor> training_state();
  void restore_training_state(const std::map<std::string, Tensor>& state);
  uint64_t clamped_ids() const { return warn_.clamped_total; }

 private:
  struct PartRef {
    int shard;
    int64_t local_table;  // the part's table index in that shard
    int64_t row_begin, row_end;
    int64_t col_begin, col_end;
  };
  // host_dout's columns that shard k's parts own, in the shard's out layout.
  Tensor shard_dout(int k, const Tensor& host_dout) const;
  // Resolution, the id policy and routing of a forward: each shard's host batch (undefined
  // tensors for a shard not made); sets batch_, offsets_ and src_.
  std::vector<Bags> route(const Bags& host_bags);
  // The device path's buffers for one batch size (shard_exchange.cpp).
  struct Exchange;
  Exchange& exchange(Backend& model, int64_t batch);
  std::shared_ptr<Exchange> exchange_;
  // Copies between the full flat layout and the parts' (per-element or per-row state).
  enum class Flat : uint8_t { Elements, Rows };
  void gather_flat(Flat kind, int slot, Tensor& full);
  void scatter_flat(Flat kind, int slot, const Tensor& full);

  TableLayout layout_;
  ShardPlan plan_;
  CollectionOptions opts_;
  std::vector<std::unique_ptr<EmbeddingShard>> shards_;
  std::vector<std::vector<PartRef>> parts_;  // [T]
  std::unique_ptr<BagOps> host_ops_;         // resolution and id policy on the parent
  IdWarnState warn_;
  int64_t batch_ = -1;
  // The last forward's routing: shard k's index i (in its CSR order) is the batch's index
  // src_[k][i].
  std::vector<std::vector<int64_t>> src_;
  Tensor offsets_;  // the last forward's bag offsets (host), for the pooling scales
  int64_t step_ = 0;
};

}  // namespace tessera::emb
