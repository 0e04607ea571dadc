#pragma once
// Pooled embedding-bag ops over a table-batched collection, behind one interface with a host
// implementation (OpenMP; the specification) and a device implementation (custom CUDA kernels in
// embeddings/kernels/embedding_bag*.cu, sort/de-duplication by CUB on a GPU, on the host in the
// emulation build). Every tensor an op takes or returns lives on the ops' backend.
//
// A batch of bags follows FBGEMM's TBE layout: for T tables and B samples,
//   indices  i64 [nnz]        ids, bag after bag
//   offsets  i64 [T * B + 1]  bag b = t * B + s (table-major) holds indices[offsets[b],
//   offsets[b+1]) weights  f32 [nnz]        optional per-sample weights (undefined: all 1)
// The pooled output is [B, out_dim]; table t writes columns [out_offset(t), out_offset(t) + dim).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embeddings/bag_math.h"
#include "embeddings/table_dtype.h"
#include "embeddings/table_spec.h"
#include "host/backend/backend.h"

namespace tessera::emb {

struct Bags {
  Tensor indices;  // i64 [nnz]
  Tensor offsets;  // i64 [T * B + 1]
  Tensor weights;  // f32 [nnz], or undefined
  int64_t batch = 0;
  // Set by BagOps::stage: the offsets were checked on the host before the upload, so the device
  // resolve need not read its validation flags back before the forward may run: its id check is
  // deferred (Backend::check_deferred) unless a table warns and clamps.
  bool offsets_checked = false;
};

// A batch after id resolution (hashing, range policy): every index as a row of its table.
struct ResolvedBags {
  Tensor keys;     // i64 [nnz]: key_origin(layout.row_offset(t)) + resolved row
  Tensor bag_of;   // i64 [nnz]: the bag b of each index (device ops; the host leaves it undefined)
  Tensor offsets;  // the batch's offsets (shared)
  Tensor weights;  // the batch's weights (shared; may be undefined)
  int64_t batch = 0;
  int64_t nnz = 0;
  uint64_t clamped = 0;  // ids clamped under IdPolicy::WarnClamp in this batch
  // false: keys are global rows (row_offset(t) + row). true: keys are the rows of their own
  // tables, and then they are the batch's indices themselves, shared: the host sets it when no
  // table hashes and every id is in range, and so skips writing (and later re-reading) a key
  // array as large as the batch's ids. Like offsets and weights, the batch's tensors must then
  // stay unchanged until the backward of that batch (EmbeddingCollection keeps the last one).
  bool local_keys = false;
  // What to take from a key of table t (whose first global row is row_offset) to get its row.
  int64_t key_origin(int64_t row_offset) const { return local_keys ? 0 : row_offset; }
};

// The gradient of a batch w.r.t. the rows it touched, de-duplicated: keys ascending, one row each.
struct SparseGrad {
  Tensor keys;        // i64 [U], ascending global rows
  Tensor grads;       // f32 [U, max_dim]; row u's columns past its table's dim are 0
  int64_t count = 0;  // U
};

// Which tables have warned already (WarnClamp warns once per table) and how many ids were clamped.
struct IdWarnState {
  std::vector<bool> warned;  // [T]
  uint64_t clamped_total = 0;
};

// Where embedding storage lives: the flat weights and the optimizer state, allocated by a Backend
// (host memory for the host backend, device memory for CUDA). The interface is what a sharded or
// remote table implements later.
class EmbeddingStorage {
 public:
  virtual ~EmbeddingStorage() = default;
  virtual Device device() const = 0;
  // f32 [total_elements]; a 16-bit table's values packed in i32 words (table_rows.h).
  virtual Tensor& weights() = 0;
  virtual TableDType dtype() const { return TableDType::F32; }
  virtual Tensor& state(int slot) = 0;  // see state_shape()
  virtual int num_states() const = 0;
};

// State tensors of an optimizer: Sgd none; Adagrad one [total_elements]; row-wise Adagrad one
// [total_rows]; lazy Adam two (m, v) [total_elements].
int state_slots(SparseOptimizer kind);
int64_t state_size(SparseOptimizer kind, const TableLayout& layout);

class BackendStorage final : public EmbeddingStorage {
 public:
  BackendStorage(Backend& backend, const TableLayout& layout, const SparseOptimizerConfig& opt,
                 TableDType dtype = TableDType::F32);
  Device device() const override { return backend_->device(); }
  Tensor& weights() override { return weights_; }
  TableDType dtype() const override { return dtype_; }
  Tensor& state(int slot) override { return states_.at(static_cast<size_t>(slot)); }
  int num_states() const override { return static_cast<int>(states_.size()); }

 private:
  Backend* backend_;
  TableDType dtype_;
  Tensor weights_;
  std::vector<Tensor> states_;
};

class BagOps {
 public:
  virtual ~BagOps() = default;
  virtual std::string name() const = 0;
  // The storage format of the tables the ops run on (EmbeddingCollection sets it once, before
  // any call): forward and weight_grad widen 16-bit rows to f32, update rounds updated rows to
  // the storage type. Ops that cannot run a format refuse it here (Error(Usage)).
  virtual void set_storage_format(const StorageFormat& f) { format_ = f; }
  const StorageFormat& storage_format() const { return format_; }
  // Checks the batch (offsets, ids) and resolves ids per table: hashed, or range-checked under
  // the table's IdPolicy (Error throws Error(Data) naming table, sample, position and id; the
  // first offending position wins; WarnClamp warns once per table on stderr and clamps).
  //
  // The device ops read the batch's validation flags back before returning (one wait), except
  // for a batch from stage() whose tables all stop on a bad id (IdPolicy::Error, or hashed): its
  // id check is then queued with the backend's deferred checks, and an out-of-range id raises the
  // same Error(Data) message plus "(embedding_bag call N on cuda:D, found by its deferred
  // check)" at a later resolve, Backend::check_deferred, synchronize() or a copy to pageable
  // host memory. Its forward, queued before, reads the id clamped into the table's rows.
  virtual ResolvedBags resolve(const TableLayout& layout, const Bags& bags, IdWarnState& warn) = 0;
  // A batch of host tensors made ready for resolve() without waiting: the host ops return it as
  // it is; the device ops check its shape and offsets on the host (the same Error(Data) as
  // resolve), copy it through a small ring of page-locked buffers (one asynchronous copy per
  // tensor, into memory from the backend's caching allocator) and set offsets_checked. A ring
  // slot is rewritten only once its last copy has completed (a wait only when the device is
  // several batches behind). The caller may change its host tensors as soon as this returns.
  virtual Bags stage(const TableLayout& layout, const Bags& host_bags) {
    (void)layout;
    return host_bags;
  }
  // out f32 [B, out_dim] (overwritten); weights f32 [total_elements].
  virtual void forward(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
                       Tensor& out) = 0;
  // dout f32 [B, out_dim] -> the de-duplicated gradient of the touched rows.
  virtual SparseGrad backward(const TableLayout& layout, const ResolvedBags& r,
                              const Tensor& dout) = 0;
  // The gradient w.r.t. the per-sample weights of the batch: f32 [nnz] on the ops' device,
  // g[j] = bag_weight_grad(pooling, bag length, row of index j, dout slice of its bag)
  // (bag_math.h); defined whether or not the batch carried weights (absent weights are 1).
  virtual Tensor weight_grad(const TableLayout& layout, const Tensor& weights,
                             const ResolvedBags& r, const Tensor& dout) = 0;
  // Updates only the rows in g (weights and optimizer state).
  virtual void update(const TableLayout& layout, SparseOptimizer kind, const SparseStepParams& p,
                      const SparseGrad& g, EmbeddingStorage& storage) = 0;
  // backward + update; implementations fuse them where that pays (the host does: no gradient
  // tensor is materialised). Same result as the two calls.
  virtual void backward_update(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout,
                               SparseOptimizer kind, const SparseStepParams& p,
                               EmbeddingStorage& storage) {
    update(layout, kind, p, backward(layout, r, dout), storage);
  }
  // How the ops run, for reports (e.g. which steps fall back to the host).
  virtual std::string notes() const { return ""; }

 protected:
  StorageFormat format_;
};

// Host ops for the host backend; device ops for a CUDA or cuda-emu backend (an Error(Backend)
// saying why in a build without them).
std::unique_ptr<BagOps> make_bag_ops(Backend& backend);
std::unique_ptr<BagOps> make_host_bag_ops();

// ---- shared by the implementations: the id policy and batch checks, so messages are identical --
// Checks the shape of a batch (dtypes, sizes, devices) at the edge.
void check_bags_shape(const TableLayout& layout, const Bags& bags, Device device);
// offsets must start at 0, not decrease and end at nnz; `first_bad_bag` is the first index of
// offsets that breaks it (or -1). Throws Error(Data) naming table and sample.
void report_bad_offsets(const TableLayout& layout, int64_t batch, int64_t first_bad_bag,
                        const std::vector<int64_t>& offsets_host, int64_t nnz);
// Acts on what resolution found: first_error is the smallest index position with an
// out-of-range id in any Error table, first_warn[t] the smallest in WarnClamp table t (-1: none).
// ids and offsets are the batch on the host (device ops fetch them only when something was found).
struct BadIdFindings {
  int64_t first_error = -1;
  std::vector<int64_t> first_warn;  // [T]
  uint64_t clamped = 0;
  bool any() const;
};
void apply_id_policy(const TableLayout& layout, int64_t batch, const BadIdFindings& found,
                     const std::vector<int64_t>& ids_host, const std::vector<int64_t>& offsets_host,
                     IdWarnState& warn);
// One line per warning (tests read it); also written to stderr.
const std::vector<std::string>& id_policy_warnings();

// Work queued on `consumer` from now on runs after everything queued so far on `producer`, without
// a host wait (two CUDA backends: an event one stream waits for on the device; a host backend
// runs its ops at once, so there is nothing to order).
void order_after(Backend& consumer, Backend& producer);

// Adam's bias corrections etc. for step `step` (1-based).
SparseStepParams step_params(const SparseOptimizerConfig& c, int64_t step);

}  // namespace tessera::emb
