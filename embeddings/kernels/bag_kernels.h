#pragma once
// Launchers of the embedding-bag kernels (embeddings/kernels/embedding_bag.cu and
// embeddings/kernels/embedding_bag_update.cu): plain C++, raw device pointers, 64-bit sizes, an
// explicit stream, like cuda/kernels/kernels.h. Shapes use the names of embeddings/bag_ops.h: T
// tables, B samples, n_bags = T * B, nnz indices, D = max dim, U touched rows; meta is the layout's
// packed [T * kMetaFields] (embeddings/table_spec.h) in device memory.
#include <cstdint>

#include "embeddings/bag_math.h"
#include "embeddings/table_dtype.h"

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace tessera::cuda {

// Validation flags of one batch (unsigned long long each; see kBagFlag*). Positions start at
// kNoBadPosition (all bits set) and keep the smallest offending one; the count starts at 0.
enum BagFlag : int {
  kBagFlagFirstError = 0,  // smallest index position with an out-of-range id in an Error table
  kBagFlagClamped = 1,     // number of ids clamped in WarnClamp tables
  kBagFlagBadOffset = 2,   // smallest b in [0, n_bags] where offsets break the CSR rules
  kBagFlagFirstWarn = 3,   // [3 + t]: smallest clamped position in table t
};

// flags [kBagFlagFirstWarn + tables] set to their starting values (positions kNoBadPosition, the
// count 0) on the stream: no upload.
void launch_bag_flags_init(unsigned long long* flags, int64_t tables, cudaStream_t stream);
// flags[kBagFlagBadOffset] = smallest b with offsets[0] != 0 (b = 0), offsets[b] < offsets[b-1],
// or offsets[n_bags] != nnz (b = n_bags). offsets [n_bags + 1].
void launch_bag_check_offsets(const int64_t* offsets, int64_t n_bags, int64_t nnz,
                              unsigned long long* flags, cudaStream_t stream);
// keys[j] = row_offset(t) + resolve_row(ids[j]) and bag_of[j] = b for every index j; records
// out-of-range ids in flags (offsets already checked).
void launch_bag_resolve(const int64_t* meta, int64_t tables, int64_t batch, const int64_t* ids,
                        const int64_t* offsets, int64_t nnz, int64_t* keys, int64_t* bag_of,
                        unsigned long long* flags, cudaStream_t stream);
// out [B, out_dim]: out[s, out_offset(t) + c] = sum_j bag_scale * weights[row(keys[j]) * dim + c]
// over the bag b = t * B + s; psw [nnz] or nullptr.
void launch_bag_forward(const int64_t* meta, int64_t tables, int64_t batch, int64_t max_dim,
                        int64_t out_dim, const float* weights, const int64_t* keys,
                        const int64_t* offsets, const float* psw, float* out, cudaStream_t stream);
// The batch, its segments (device_segments.h) and dout, as the row kernels read them. U, the
// number of touched rows, stays in device memory (`touched`), so no launch waits for it.
struct BagRowInputs {
  const int64_t* meta;
  int64_t tables;
  int64_t batch;
  int64_t max_dim;
  int64_t out_dim;
  const int64_t* ukeys;       // [>= U]: distinct keys, ascending
  const int64_t* seg_start;   // [>= U + 1]
  const int64_t* sorted_pos;  // [nnz]: positions sorted by key, ascending within a key
  const int64_t* bag_of;      // [nnz]
  const int64_t* offsets;     // [n_bags + 1]
  const float* psw;           // [nnz] or nullptr
  const float* dout;          // [B, out_dim]
  const int64_t* touched;     // [1], device memory: U
};
// grads [>= U, max_dim]: for touched row u (positions sorted_pos[seg_start[u] .. seg_start[u+1])),
// grads[u, c] = sum bag_scale * dout[s, out_offset(t) + c]; columns past the table's dim are 0.
// One block per row, occurrences and columns in parallel (bag_rows.cuh); deterministic: a fixed
// summation order, no atomics. capacity >= U sizes the grid (the host need not know U).
void launch_bag_backward(const BagRowInputs& in, int64_t capacity, float* grads,
                         cudaStream_t stream);
// wgrad [nnz]: wgrad[j] = bag_weight_grad(pooling, bag length, row(keys[j]), dout slice of the
// bag bag_of[j]) (bag_math.h), one thread per index.
void launch_bag_weight_grad(const int64_t* meta, int64_t tables, int64_t batch, int64_t out_dim,
                            const float* weights, const int64_t* keys, const int64_t* bag_of,
                            const int64_t* offsets, const float* dout, float* wgrad, int64_t nnz,
                            cudaStream_t stream);
// Sparse optimizer step on the touched rows only: Sgd (s0, s1 unused), Adagrad (s0 = accumulator
// per element), LazyAdam (s0 = m, s1 = v per element), RowwiseAdagrad (s0 = accumulator per
// global row). keys [U] distinct, grads [U, max_dim]. One warp per row, lanes over the columns
// (row-wise Adagrad's mean square is a warp reduction).
void launch_sparse_update(tessera::emb::SparseOptimizer kind,
                          const tessera::emb::SparseStepParams& p, const int64_t* meta,
                          int64_t tables, int64_t max_dim, const int64_t* keys, const float* grads,
                          int64_t touched, float* weights, float* s0, float* s1,
                          cudaStream_t stream);
// launch_bag_backward and launch_sparse_update in one kernel, without a gradient tensor: one block
// per touched row forms the row's gradient in shared memory and applies the step to it. Reads U
// from device memory; capacity >= U sizes the grid.
void launch_bag_backward_update(const BagRowInputs& in, int64_t capacity,
                                tessera::emb::SparseOptimizer kind,
                                const tessera::emb::SparseStepParams& p, float* weights, float* s0,
                                float* s1, cudaStream_t stream);

// ---- 16-bit tables (embeddings/table_dtype.h) ------------------------------------------------
// The same kernels over bf16 / f16 rows: every value read is widened to f32 (exact), sums and the
// optimizer's math run in f32 in the f32 kernels' order, and an updated value is rounded back to
// the storage type (to nearest even, or stochastically with the bits rounding_bits(p.round_stream,
// element) gives), so results equal the host's bit for bit wherever the f32 ones do.
struct BagHalfTable {
  uint16_t* values;  // the flat table's 16-bit patterns
  int dtype;         // tessera::emb::TableDType: BF16 or F16
  int stochastic;    // 1: round updated values stochastically
};
void launch_bag_forward_half(const int64_t* meta, int64_t tables, int64_t batch, int64_t max_dim,
                             int64_t out_dim, const BagHalfTable& weights, const int64_t* keys,
                             const int64_t* offsets, const float* psw, float* out,
                             cudaStream_t stream);
void launch_bag_weight_grad_half(const int64_t* meta, int64_t batch, int64_t out_dim,
                                 const BagHalfTable& weights, const int64_t* keys,
                                 const int64_t* bag_of, const int64_t* offsets, const float* dout,
                                 float* wgrad, int64_t nnz, cudaStream_t stream);
void launch_sparse_update_half(tessera::emb::SparseOptimizer kind,
                               const tessera::emb::SparseStepParams& p, const int64_t* meta,
                               int64_t tables, int64_t max_dim, const int64_t* keys,
                               const float* grads, int64_t touched, const BagHalfTable& weights,
                               float* s0, float* s1, cudaStream_t stream);
void launch_bag_backward_update_half(const BagRowInputs& in, int64_t capacity,
                                     tessera::emb::SparseOptimizer kind,
                                     const tessera::emb::SparseStepParams& p,
                                     const BagHalfTable& weights, float* s0, float* s1,
                                     cudaStream_t stream);

}  // namespace tessera::cuda
