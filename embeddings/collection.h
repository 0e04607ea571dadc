#pragma once
// EmbeddingCollection: many tables stored flat and table-batched on one Backend, looked up as
// pooled bags, trained by a sparse optimizer that touches only the rows a batch used.
//
//   EmbeddingCollection emb({{"user", 1000, 16}, {"item", 5000, 16, Pooling::Mean}}, backend, {});
//   emb.forward(bags, pooled);                 // pooled [B, 32]
//   emb.backward_and_update(dpooled);          // one optimizer step on the touched rows
//
// The storage (EmbeddingStorage) and the ops (BagOps) are interfaces: host storage + host ops on
// the host backend, device storage + CUDA kernels on a CUDA (or cuda-emu) backend.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/bag_ops.h"

namespace tessera::emb {

struct CollectionOptions {
  SparseOptimizerConfig optimizer;
  float init_scale = 0.01f;  // weights start uniform in [-init_scale, init_scale)
  uint64_t seed = 0;         // counter-based: the same initial tables on every backend
  // Storage of the tables (model.table_dtype): f32, or bf16 / f16 with lookups and the optimizer
  // in f32 and updated rows rounded to the storage type (to nearest even, or stochastically from
  // a generator seeded by `seed` and the step when stochastic_rounding; model.stochastic_rounding).
  TableDType table_dtype = TableDType::F32;
  bool stochastic_rounding = false;
  StorageFormat format() const { return {table_dtype, stochastic_rounding}; }
};

// Checks a training_state() map against a collection with the given flat weights and optimizer
// state sizes (every name, dtype and size; no slot of another optimizer) before anything is
// copied; returns its step. A mismatch is an Error(Io) naming the tensor.
int64_t check_training_state(const std::map<std::string, Tensor>& state, SparseOptimizer kind,
                             int64_t weights_numel, const std::vector<int64_t>& state_numels);

class EmbeddingCollection {
 public:
  EmbeddingCollection(std::vector<TableSpec> specs, Backend& backend,
                      const CollectionOptions& opts);
  EmbeddingCollection(const EmbeddingCollection&) = delete;
  EmbeddingCollection& operator=(const EmbeddingCollection&) = delete;

  const TableLayout& layout() const { return layout_; }
  Backend& backend() { return *backend_; }
  BagOps& ops() { return *ops_; }
  EmbeddingStorage& storage() { return *storage_; }
  const CollectionOptions& options() const { return opts_; }

  // out f32 [B, out_dim] on the backend (allocated if undefined). Resolves ids under each table's
  // policy and keeps the batch for backward.
  void forward(const Bags& bags, Tensor& out);
  // The same for a batch of host tensors on any backend: the ops stage it (BagOps::stage: on a
  // device, an upload nobody waits for and a deferred id check) and the staged batch is kept.
  void forward_host_bags(const Bags& host_bags, Tensor& out);
  // Makes a batch of host tensors the one the next backward / backward_and_update applies to,
  // as forward_host_bags would, without the lookup (data-parallel training's global batch,
  // embeddings/step_exchange.h). Ids this process has already warned about are not counted again.
  void stage_batch(const Bags& host_bags);
  // The de-duplicated gradient of the last forward's batch; dout [B, out_dim].
  SparseGrad backward(const Tensor& dout);
  // The gradient w.r.t. the last forward's per-sample weights, f32 [nnz] on the backend (see
  // BagOps::weight_grad; call before the step that changes the rows). dout [B, out_dim].
  Tensor weight_grad(const Tensor& dout);
  // One optimizer step with g (the step counter advances).
  void apply(const SparseGrad& g);
  // backward + apply, fused where the ops support it.
  void backward_and_update(const Tensor& dout);

  // Host copies / replacement of one table [rows, dim], or the whole flat buffer, always f32: a
  // 16-bit table's values widen exactly, and f32 values given to one are rounded to nearest even.
  Tensor table_to_host(int64_t t);
  void set_table(int64_t t, const Tensor& host_rows_dim);
  Tensor weights_to_host();
  void set_weights(const Tensor& host_flat);
  Tensor state_to_host(int slot) { return backend_->to_host(storage_->state(slot)); }

  // Everything training needs to continue exactly, as host tensors by name: "weights" (the flat
  // buffer, f32 whatever the storage type: exact for a 16-bit table, and a checkpoint of either
  // loads into either), "state0".. (the sparse optimizer's slots: Adagrad accumulators, lazy Adam's
  // m and v) and "step" (i64 [1]: the step counter, which lazy Adam's bias corrections depend on).
  std::map<std::string, Tensor> training_state();
  // Takes back what training_state() gave. Checks every name and size before copying anything;
  // a mismatch is an Error(Io) naming the tensor.
  void restore_training_state(const std::map<std::string, Tensor>& state);

  uint64_t clamped_ids() const { return warn_.clamped_total; }
  int64_t steps() const { return step_; }
  // A resumed run continues the step count (lazy Adam's bias corrections depend on it).
  void set_steps(int64_t steps) { step_ = steps; }
  // The factor on the optimizer's lr for the next steps (a learning-rate schedule's multiplier at
  // the step: the update uses lr * scale; 1 leaves the configured lr exactly). Must be finite
  // and >= 0. Not part of training_state(): the caller sets it from the step before each update.
  void set_lr_scale(float scale);
  float lr_scale() const { return lr_scale_; }

 private:
  const ResolvedBags& last_batch() const;
  SparseStepParams next_step_params();  // advances the step counter

  Backend* backend_;
  TableLayout layout_;
  CollectionOptions opts_;
  std::unique_ptr<BagOps> ops_;
  std::unique_ptr<EmbeddingStorage> storage_;
  IdWarnState warn_;
  ResolvedBags last_;
  bool have_last_ = false;
  int64_t step_ = 0;
  float lr_scale_ = 1.f;
};

// A host batch of bags from per-table, per-sample id lists: ids[t][s] is the bag of sample s in
// table t (all tables the same number of samples); weights likewise, or empty.
Bags make_host_bags(const std::vector<std::vector<std::vector<int64_t>>>& ids,
                    const std::vector<std::vector<std::vector<float>>>& weights = {});
// The same batch on `backend`.
Bags bags_to(Backend& backend, const Bags& host_bags);

}  // namespace tessera::emb
