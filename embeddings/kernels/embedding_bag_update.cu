// Sparse optimizer steps on the rows a batch touched (after de-duplication, so each row is
// updated by exactly one warp or block and no atomics are needed), and the fused backward +
// update. The per-element math is embeddings/bag_math.h, shared with the host implementation.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"
#include "embeddings/kernels/bag_kernels.h"
#include "embeddings/kernels/bag_rows.cuh"

namespace tessera::cuda {
namespace {

using namespace tessera::emb;

// The flat weights the steps read and write: f32 in place, or 16-bit values widened on read and
// rounded on write (the element's own stochastic bits when the table asks for them).
struct F32Rows {
  float* w;
  __device__ float load(int64_t e) const { return w[e]; }
  __device__ void store(int64_t e, float v, const SparseStepParams&) const { w[e] = v; }
};
struct HalfRows {
  BagHalfTable t;
  __device__ float load(int64_t e) const {
    return half_to_f32(static_cast<TableDType>(t.dtype), t.values[e]);
  }
  __device__ void store(int64_t e, float v, const SparseStepParams& p) const {
    t.values[e] =
        round_to_half(static_cast<TableDType>(t.dtype), v, t.stochastic != 0, p.round_stream, e);
  }
};

// The columns c = first, first + step, ... < dim of the row whose elements start at `base` take
// one step of an element-wise optimizer (Sgd, Adagrad, LazyAdam) or of row-wise Adagrad with the
// row's updated accumulator `row_acc`. g: the row's gradient (dim floats).
template <class Rows>
__device__ inline void step_row_columns(int kind, const SparseStepParams& p, int64_t dim,
                                        int64_t base, const float* g, int64_t first, int64_t step,
                                        float row_acc, const Rows& weights, float* s0, float* s1) {
  for (int64_t c = first; c < dim; c += step) {
    const int64_t e = base + c;
    float w = weights.load(e);
    if (kind == static_cast<int>(SparseOptimizer::Sgd)) {
      w -= p.lr * g[c];
    } else if (kind == static_cast<int>(SparseOptimizer::Adagrad)) {
      adagrad_step(p, w, g[c], s0[e]);
    } else if (kind == static_cast<int>(SparseOptimizer::RowwiseAdagrad)) {
      rowwise_adagrad_step(p, w, g[c], row_acc);
    } else {
      lazy_adam_step(p, w, g[c], s0[e], s1[e]);
    }
    weights.store(e, w, p);
  }
}

// One warp per touched row, lanes over the columns (coalesced). Row-wise Adagrad: the row's mean
// square is a warp sum; lane 0 reads and writes the row's accumulator and hands it to the warp.
template <class Rows>
__device__ inline void sparse_update_rows(int kind, const SparseStepParams& p, const int64_t* meta,
                                          int64_t tables, int64_t max_dim, const int64_t* keys,
                                          const float* grads, int64_t touched, const Rows& weights,
                                          float* s0, float* s1) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / kWarpSize;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  for (int64_t u = first; u < touched; u += warps) {  // the same trip count for the whole warp
    const int64_t key = keys[u];
    const int64_t* m = meta + table_of_key_meta(meta, tables, key) * kMetaFields;
    const int64_t dim = m[kMetaDim];
    const float* g = grads + u * max_dim;
    float row_acc = 0.f;
    if (kind == static_cast<int>(SparseOptimizer::RowwiseAdagrad)) {
      float sq = 0.f;
      for (int64_t c = lane; c < dim; c += kWarpSize) sq += g[c] * g[c];
      sq = warp_sum(sq);
      if (lane == 0) {
        row_acc = s0[key] + sq / static_cast<float>(dim);
        s0[key] = row_acc;
      }
      row_acc = __shfl_sync(kFullWarpMask, row_acc, 0);
    }
    const int64_t base = m[kMetaWeightOffset] + (key - m[kMetaRowOffset]) * dim;
    step_row_columns(kind, p, dim, base, g, lane, kWarpSize, row_acc, weights, s0, s1);
  }
}

__global__ void sparse_update_kernel(int kind, SparseStepParams p, const int64_t* meta,
                                     int64_t tables, int64_t max_dim, const int64_t* keys,
                                     const float* grads, int64_t touched, float* weights, float* s0,
                                     float* s1) {
  sparse_update_rows(kind, p, meta, tables, max_dim, keys, grads, touched, F32Rows{weights}, s0,
                     s1);
}
__global__ void sparse_update_half_kernel(int kind, SparseStepParams p, const int64_t* meta,
                                          int64_t tables, int64_t max_dim, const int64_t* keys,
                                          const float* grads, int64_t touched, BagHalfTable weights,
                                          float* s0, float* s1) {
  sparse_update_rows(kind, p, meta, tables, max_dim, keys, grads, touched, HalfRows{weights}, s0,
                     s1);
}

// What bag_backward_update's blocks keep in shared memory (declared by the kernels).
struct BackwardUpdateShared {
  BagRowShared* sh;
  float* scratch;  // [kWarpSize]
  float* acc;
  int64_t* key;
  float* row;  // [max_dim], dynamic
};

// One block per touched row: its gradient into shared memory (bag_rows.cuh), then the step. The
// row's key is read once (thread 0) and its table's meta comes from bag_row_gradient.
template <class Rows>
__device__ inline void backward_update_rows(const BagRowInputs& in, int kind,
                                            const SparseStepParams& p, const Rows& weights,
                                            float* s0, float* s1, const BackwardUpdateShared& b) {
  const int64_t touched = bag_rows_touched(in);
  float* row = b.row;
  for (int64_t u = blockIdx.x; u < touched; u += gridDim.x) {
    if (threadIdx.x == 0) *b.key = in.ukeys[u];  // published by bag_row_gradient's barriers
    bag_row_gradient(in, u, row, b.sh);          // ends with a barrier
    const int64_t key = *b.key;
    const int64_t dim = b.sh->meta[kMetaDim];
    const int64_t base = b.sh->meta[kMetaWeightOffset] + (key - b.sh->meta[kMetaRowOffset]) * dim;
    float row_acc = 0.f;
    if (kind == static_cast<int>(SparseOptimizer::RowwiseAdagrad)) {
      float sq = 0.f;
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) sq += row[c] * row[c];
      sq = block_sum(sq, b.scratch);
      if (threadIdx.x == 0) {
        *b.acc = s0[key] + sq / static_cast<float>(dim);
        s0[key] = *b.acc;
      }
      __syncthreads();
      row_acc = *b.acc;
    }
    step_row_columns(kind, p, dim, base, row, threadIdx.x, blockDim.x, row_acc, weights, s0, s1);
    __syncthreads();  // row, sh and the shared scalars are rewritten for the next row
  }
}

// Dynamic shared memory: max_dim floats.
__global__ void bag_backward_update_kernel(BagRowInputs in, int kind, SparseStepParams p,
                                           float* weights, float* s0, float* s1) {
  __shared__ BagRowShared sh;
  __shared__ float scratch[kWarpSize];
  __shared__ float shared_acc;
  __shared__ int64_t shared_key;
  TESSERA_DYNAMIC_SHARED(float, row);
  backward_update_rows(in, kind, p, F32Rows{weights}, s0, s1,
                       BackwardUpdateShared{&sh, scratch, &shared_acc, &shared_key, row});
}
__global__ void bag_backward_update_half_kernel(BagRowInputs in, int kind, SparseStepParams p,
                                                BagHalfTable weights, float* s0, float* s1) {
  __shared__ BagRowShared sh;
  __shared__ float scratch[kWarpSize];
  __shared__ float shared_acc;
  __shared__ int64_t shared_key;
  TESSERA_DYNAMIC_SHARED(float, row);
  backward_update_rows(in, kind, p, HalfRows{weights}, s0, s1,
                       BackwardUpdateShared{&sh, scratch, &shared_acc, &shared_key, row});
}

}  // namespace

void launch_sparse_update(SparseOptimizer kind, const SparseStepParams& p, const int64_t* meta,
                          int64_t tables, int64_t max_dim, const int64_t* keys, const float* grads,
                          int64_t touched, float* weights, float* s0, float* s1,
                          cudaStream_t stream) {
  if (touched <= 0) return;
  TESSERA_LAUNCH(sparse_update_kernel, dim3(grid_stride_blocks(touched * kWarpSize)),
                 dim3(kElementwiseBlock), 0, stream, static_cast<int>(kind), p, meta, tables,
                 max_dim, keys, grads, touched, weights, s0, s1);
}

void launch_bag_backward_update(const BagRowInputs& in, int64_t capacity, SparseOptimizer kind,
                                const SparseStepParams& p, float* weights, float* s0, float* s1,
                                cudaStream_t stream) {
  if (capacity <= 0 || in.max_dim <= 0) return;
  const size_t smem = static_cast<size_t>(in.max_dim) * sizeof(float);
  TESSERA_LAUNCH(bag_backward_update_kernel, dim3(bag_row_blocks(capacity)), dim3(kBagRowBlock),
                 smem, stream, in, static_cast<int>(kind), p, weights, s0, s1);
}

void launch_sparse_update_half(SparseOptimizer kind, const SparseStepParams& p, const int64_t* meta,
                               int64_t tables, int64_t max_dim, const int64_t* keys,
                               const float* grads, int64_t touched, const BagHalfTable& weights,
                               float* s0, float* s1, cudaStream_t stream) {
  if (touched <= 0) return;
  TESSERA_LAUNCH(sparse_update_half_kernel, dim3(grid_stride_blocks(touched * kWarpSize)),
                 dim3(kElementwiseBlock), 0, stream, static_cast<int>(kind), p, meta, tables,
                 max_dim, keys, grads, touched, weights, s0, s1);
}

void launch_bag_backward_update_half(const BagRowInputs& in, int64_t capacity, SparseOptimizer kind,
                                     const SparseStepParams& p, const BagHalfTable& weights,
                                     float* s0, float* s1, cudaStream_t stream) {
  if (capacity <= 0 || in.max_dim <= 0) return;
  const size_t smem = static_cast<size_t>(in.max_dim) * sizeof(float);
  TESSERA_LAUNCH(bag_backward_update_half_kernel, dim3(bag_row_blocks(capacity)),
                 dim3(kBagRowBlock), smem, stream, in, static_cast<int>(kind), p, weights, s0, s1);
}

}  // namespace tessera::cuda
