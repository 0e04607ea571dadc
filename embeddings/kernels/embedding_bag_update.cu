// Sparse optimizer steps on the rows a batch touched (after de-duplication, so each row is
// updated by exactly one thread group and no atomics are needed). The per-element math is
// embeddings/bag_math.h, shared with the host implementation.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/launch.cuh"
#include "embeddings/kernels/bag_kernels.h"

namespace tessera::cuda {
namespace {

using namespace tessera::emb;

// Element-wise optimizers (Sgd, Adagrad, LazyAdam): one thread per (touched row, column).
__global__ void sparse_update_kernel(int kind, SparseStepParams p, const int64_t* meta,
                                     int64_t tables, int64_t max_dim, const int64_t* keys,
                                     const float* grads, int64_t touched, float* weights, float* s0,
                                     float* s1) {
  for (const int64_t i : grid_stride_range(touched * max_dim)) {
    const int64_t u = i / max_dim;
    const int64_t c = i - u * max_dim;
    const int64_t key = keys[u];
    const int64_t* m = meta + table_of_key_meta(meta, tables, key) * kMetaFields;
    const int64_t dim = m[kMetaDim];
    if (c >= dim) continue;
    const int64_t e = m[kMetaWeightOffset] + (key - m[kMetaRowOffset]) * dim + c;
    const float g = grads[i];
    if (kind == static_cast<int>(SparseOptimizer::Sgd)) {
      weights[e] -= p.lr * g;
    } else if (kind == static_cast<int>(SparseOptimizer::Adagrad)) {
      adagrad_step(p, weights[e], g, s0[e]);
    } else {
      lazy_adam_step(p, weights[e], g, s0[e], s1[e]);
    }
  }
}

// Row-wise Adagrad: one thread per touched row (the row's mean square feeds every column).
__global__ void sparse_rowwise_adagrad_kernel(SparseStepParams p, const int64_t* meta,
                                              int64_t tables, int64_t max_dim, const int64_t* keys,
                                              const float* grads, int64_t touched, float* weights,
                                              float* acc) {
  for (const int64_t u : grid_stride_range(touched)) {
    const int64_t key = keys[u];
    const int64_t* m = meta + table_of_key_meta(meta, tables, key) * kMetaFields;
    const int64_t dim = m[kMetaDim];
    const float* g = grads + u * max_dim;
    float sq = 0.f;
    for (int64_t c = 0; c < dim; ++c) sq += g[c] * g[c];
    const float a = acc[key] + sq / static_cast<float>(dim);
    acc[key] = a;
    float* w = weights + m[kMetaWeightOffset] + (key - m[kMetaRowOffset]) * dim;
    for (int64_t c = 0; c < dim; ++c) rowwise_adagrad_step(p, w[c], g[c], a);
  }
}

}  // namespace

void launch_sparse_update(SparseOptimizer kind, const SparseStepParams& p, const int64_t* meta,
                          int64_t tables, int64_t max_dim, const int64_t* keys, const float* grads,
                          int64_t touched, float* weights, float* s0, float* s1,
                          cudaStream_t stream) {
  if (touched <= 0) return;
  if (kind == SparseOptimizer::RowwiseAdagrad) {
    TESSERA_LAUNCH(sparse_rowwise_adagrad_kernel, dim3(grid_stride_blocks(touched)),
                   dim3(kElementwiseBlock), 0, stream, p, meta, tables, max_dim, keys, grads,
                   touched, weights, s0);
    return;
  }
  TESSERA_LAUNCH(sparse_update_kernel, dim3(grid_stride_blocks(touched * max_dim)),
                 dim3(kElementwiseBlock), 0, stream, static_cast<int>(kind), p, meta, tables,
                 max_dim, keys, grads, touched, weights, s0, s1);
}

}  // namespace tessera::cuda
