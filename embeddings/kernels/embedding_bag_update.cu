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

// The columns c = first, first + step, ... < dim of the row whose elements start at `base` take
// one step of an element-wise optimizer (Sgd, Adagrad, LazyAdam) or of row-wise Adagrad with the
// row's updated accumulator `row_acc`. g: the row's gradient (dim floats).
__device__ inline void step_row_columns(int kind, const SparseStepParams& p, int64_t dim,
                                        int64_t base, const float* g, int64_t first, int64_t step,
                                        float row_acc, float* weights, float* s0, float* s1) {
  for (int64_t c = first; c < dim; c += step) {
    const int64_t e = base + c;
    if (kind == static_cast<int>(SparseOptimizer::Sgd)) {
      weights[e] -= p.lr * g[c];
    } else if (kind == static_cast<int>(SparseOptimizer::Adagrad)) {
      adagrad_step(p, weights[e], g[c], s0[e]);
    } else if (kind == static_cast<int>(SparseOptimizer::RowwiseAdagrad)) {
      rowwise_adagrad_step(p, weights[e], g[c], row_acc);
    } else {
      lazy_adam_step(p, weights[e], g[c], s0[e], s1[e]);
    }
  }
}

// One warp per touched row, lanes over the columns (coalesced). Row-wise Adagrad: the row's mean
// square is a warp sum; lane 0 reads and writes the row's accumulator and hands it to the warp.
__global__ void sparse_update_kernel(int kind, SparseStepParams p, const int64_t* meta,
                                     int64_t tables, int64_t max_dim, const int64_t* keys,
                                     const float* grads, int64_t touched, float* weights, float* s0,
                                     float* s1) {
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

// One block per touched row: its gradient into shared memory (bag_rows.cuh), then the step. The
// row's key is read once (thread 0) and its table's meta comes from bag_row_gradient.
// Dynamic shared memory: max_dim floats.
__global__ void bag_backward_update_kernel(BagRowInputs in, int kind, SparseStepParams p,
                                           float* weights, float* s0, float* s1) {
  __shared__ BagRowShared sh;
  __shared__ float scratch[kWarpSize];
  __shared__ float shared_acc;
  __shared__ int64_t shared_key;
  TESSERA_DYNAMIC_SHARED(float, row);
  const int64_t touched = bag_rows_touched(in);
  for (int64_t u = blockIdx.x; u < touched; u += gridDim.x) {
    if (threadIdx.x == 0) shared_key = in.ukeys[u];  // published by bag_row_gradient's barriers
    bag_row_gradient(in, u, row, &sh);               // ends with a barrier
    const int64_t key = shared_key;
    const int64_t dim = sh.meta[kMetaDim];
    const int64_t base = sh.meta[kMetaWeightOffset] + (key - sh.meta[kMetaRowOffset]) * dim;
    float row_acc = 0.f;
    if (kind == static_cast<int>(SparseOptimizer::RowwiseAdagrad)) {
      float sq = 0.f;
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) sq += row[c] * row[c];
      sq = block_sum(sq, scratch);
      if (threadIdx.x == 0) {
        shared_acc = s0[key] + sq / static_cast<float>(dim);
        s0[key] = shared_acc;
      }
      __syncthreads();
      row_acc = shared_acc;
    }
    step_row_columns(kind, p, dim, base, row, threadIdx.x, blockDim.x, row_acc, weights, s0, s1);
    __syncthreads();  // row, sh and the shared scalars are rewritten for the next row
  }
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

}  // namespace tessera::cuda
