// Pooled embedding bags over a table-batched collection (embeddings/bag_ops.h): batch checks, id
// resolution under the table's policy, forward pooling, and the de-duplicated backward (segments
// come from a sort: CUB on a GPU, the host in the emulation build). The arithmetic is
// embeddings/bag_math.h, shared with the host implementation.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"
#include "embeddings/kernels/bag_kernels.h"
#include "embeddings/kernels/bag_rows.cuh"

namespace tessera::cuda {
namespace {

using namespace tessera::emb;

// flags [kBagFlagFirstWarn + tables]: positions to kNoBadPosition (all bits set), the count to 0.
__global__ void bag_flags_init_kernel(unsigned long long* flags, int64_t n) {
  for (const int64_t i : grid_stride_range(n)) flags[i] = i == kBagFlagClamped ? 0ull : ~0ull;
}

// offsets [n_bags + 1]; one thread per entry.
__global__ void bag_check_offsets_kernel(const int64_t* offsets, int64_t n_bags, int64_t nnz,
                                         unsigned long long* flags) {
  for (const int64_t b : grid_stride_range(n_bags + 1)) {
    bool bad = (b == 0 && offsets[0] != 0) || (b > 0 && offsets[b] < offsets[b - 1]) ||
               (b == n_bags && offsets[b] != nnz);
    if (bad) record_first_bad(flags + kBagFlagBadOffset, static_cast<unsigned long long>(b));
  }
}

// One thread per index position j.
__global__ void bag_resolve_kernel(const int64_t* meta, int64_t tables, int64_t batch,
                                   const int64_t* ids, const int64_t* offsets, int64_t nnz,
                                   int64_t* keys, int64_t* bag_of, unsigned long long* flags) {
  const int64_t n_bags = tables * batch;
  for (const int64_t j : grid_stride_range(nnz)) {
    const int64_t b = bag_of_position(offsets, n_bags, j);
    const int64_t t = b / batch;
    const int64_t* m = meta + t * kMetaFields;
    bool bad = false;
    const int64_t row = resolve_row(ids[j], m[kMetaRows], m[kMetaMapping], &bad);
    keys[j] = m[kMetaRowOffset] + row;
    bag_of[j] = b;
    if (bad) {
      if (m[kMetaPolicy] == static_cast<int64_t>(IdPolicy::Error)) {
        record_first_bad(flags + kBagFlagFirstError, static_cast<unsigned long long>(j));
      } else {
        atomicAdd(flags + kBagFlagClamped, 1ull);
        record_first_bad(flags + kBagFlagFirstWarn + t, static_cast<unsigned long long>(j));
      }
    }
  }
}

// One thread per (bag, column < max_dim): consecutive threads read consecutive columns of a row.
__global__ void bag_forward_kernel(const int64_t* meta, int64_t tables, int64_t batch,
                                   int64_t max_dim, int64_t out_dim, const float* weights,
                                   const int64_t* keys, const int64_t* offsets, const float* psw,
                                   float* out) {
  for (const int64_t i : grid_stride_range(tables * batch * max_dim)) {
    const int64_t b = i / max_dim;
    const int64_t c = i - b * max_dim;
    const int64_t t = b / batch;
    const int64_t s = b - t * batch;
    const int64_t* m = meta + t * kMetaFields;
    const int64_t dim = m[kMetaDim];
    if (c >= dim) continue;
    const int64_t begin = offsets[b];
    const int64_t end = offsets[b + 1];
    const float* base = weights + m[kMetaWeightOffset] - m[kMetaRowOffset] * dim + c;
    float acc = 0.f;
    for (int64_t j = begin; j < end; ++j) {
      const float scale = bag_scale(m[kMetaPooling], end - begin, psw ? psw[j] : 1.f);
      acc += scale * __ldg(base + keys[j] * dim);
    }
    out[s * out_dim + m[kMetaOutOffset] + c] = acc;
  }
}

// One block per touched row (bag_rows.cuh: the row's occurrences over groups of lanes, its
// columns over the lanes of a group); rows past the device count U are not touched. grads [>= U,
// max_dim].
__global__ void bag_backward_kernel(BagRowInputs in, float* grads) {
  __shared__ BagRowShared sh;
  const int64_t touched = *in.touched;
  for (int64_t u = blockIdx.x; u < touched; u += gridDim.x)
    bag_row_gradient(in, u, grads + u * in.max_dim, &sh);
}

// One thread per index j: the dot of its row with its bag's dout slice.
__global__ void bag_weight_grad_kernel(const int64_t* meta, int64_t batch, int64_t out_dim,
                                       const float* weights, const int64_t* keys,
                                       const int64_t* bag_of, const int64_t* offsets,
                                       const float* dout, float* wgrad, int64_t nnz) {
  for (const int64_t j : grid_stride_range(nnz)) {
    const int64_t b = bag_of[j];
    const int64_t t = b / batch;
    const int64_t s = b - t * batch;
    const int64_t* m = meta + t * kMetaFields;
    const int64_t dim = m[kMetaDim];
    const float* row = weights + m[kMetaWeightOffset] + (keys[j] - m[kMetaRowOffset]) * dim;
    wgrad[j] = bag_weight_grad(m[kMetaPooling], offsets[b + 1] - offsets[b], row,
                               dout + s * out_dim + m[kMetaOutOffset], dim);
  }
}

}  // namespace

void launch_bag_weight_grad(const int64_t* meta, int64_t tables, int64_t batch, int64_t out_dim,
                            const float* weights, const int64_t* keys, const int64_t* bag_of,
                            const int64_t* offsets, const float* dout, float* wgrad, int64_t nnz,
                            cudaStream_t stream) {
  (void)tables;  // the bag of each index gives its table
  if (nnz <= 0) return;
  TESSERA_LAUNCH(bag_weight_grad_kernel, dim3(grid_stride_blocks(nnz)), dim3(kElementwiseBlock), 0,
                 stream, meta, batch, out_dim, weights, keys, bag_of, offsets, dout, wgrad, nnz);
}

void launch_bag_flags_init(unsigned long long* flags, int64_t tables, cudaStream_t stream) {
  const int64_t n = kBagFlagFirstWarn + tables;
  TESSERA_LAUNCH(bag_flags_init_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, flags, n);
}

void launch_bag_check_offsets(const int64_t* offsets, int64_t n_bags, int64_t nnz,
                              unsigned long long* flags, cudaStream_t stream) {
  TESSERA_LAUNCH(bag_check_offsets_kernel, dim3(grid_stride_blocks(n_bags + 1)),
                 dim3(kElementwiseBlock), 0, stream, offsets, n_bags, nnz, flags);
}

void launch_bag_resolve(const int64_t* meta, int64_t tables, int64_t batch, const int64_t* ids,
                        const int64_t* offsets, int64_t nnz, int64_t* keys, int64_t* bag_of,
                        unsigned long long* flags, cudaStream_t stream) {
  // No bag: nnz > 0 only with offsets the check already flagged, and there is no table to read.
  if (nnz <= 0 || tables * batch <= 0) return;
  TESSERA_LAUNCH(bag_resolve_kernel, dim3(grid_stride_blocks(nnz)), dim3(kElementwiseBlock), 0,
                 stream, meta, tables, batch, ids, offsets, nnz, keys, bag_of, flags);
}

void launch_bag_forward(const int64_t* meta, int64_t tables, int64_t batch, int64_t max_dim,
                        int64_t out_dim, const float* weights, const int64_t* keys,
                        const int64_t* offsets, const float* psw, float* out, cudaStream_t stream) {
  const int64_t total = tables * batch * max_dim;
  if (total <= 0) return;
  TESSERA_LAUNCH(bag_forward_kernel, dim3(grid_stride_blocks(total)), dim3(kElementwiseBlock), 0,
                 stream, meta, tables, batch, max_dim, out_dim, weights, keys, offsets, psw, out);
}

void launch_bag_backward(const BagRowInputs& in, int64_t capacity, float* grads,
                         cudaStream_t stream) {
  if (capacity <= 0 || in.max_dim <= 0) return;
  TESSERA_LAUNCH(bag_backward_kernel, dim3(bag_row_blocks(capacity)), dim3(kBagRowBlock), 0, stream,
                 in, grads);
}

}  // namespace tessera::cuda
