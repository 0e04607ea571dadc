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

// A warp per 32 consecutive bags [b0, b0 + 32): lane l holds the end of bag b0 + l, so the warp's
// positions are the contiguous range [offsets[b0], offsets[b0 + 32]), walked 32 at a time (ids,
// keys and bag_of coalesced); a position finds its bag among the lanes' ends with shuffles, and
// the meta of the (up to 4) tables the warp's bags span is one coalesced load (bag_warp_metas).
// Runs only on offsets the check kernel passed (it ran before on the stream): with broken ones the
// batch is refused anyway, and the walk would need them sorted.
__global__ void bag_resolve_kernel(const int64_t* meta, int64_t tables, int64_t batch,
                                   const int64_t* ids, const int64_t* offsets, int64_t nnz,
                                   int64_t* keys, int64_t* bag_of, unsigned long long* flags) {
  if (flags[kBagFlagBadOffset] != ~0ull) return;  // the same for every thread
  const int64_t n_bags = tables * batch;
  const int lane = bag_lane();
  for (int64_t b0 = bag_first_warp() * kWarpSize; b0 < n_bags; b0 += bag_warps() * kWarpSize) {
    const int nb = static_cast<int>(n_bags - b0 < kWarpSize ? n_bags - b0 : kWarpSize);
    const int64_t end_l = offsets[b0 + (lane < nb ? lane : nb - 1) + 1];
    const int64_t lo = bag_clamp(offsets[b0], nnz);
    const int64_t hi = bag_clamp(__shfl_sync(kFullWarpMask, end_l, nb - 1), nnz);
    const int64_t t0 = b0 / batch;  // the warp's bags span tables t0 .. t_last
    const int64_t held = bag_warp_metas(meta, t0, (b0 + nb - 1) / batch);
    for (int64_t j0 = lo; j0 < hi; j0 += kWarpSize) {  // the same trip count for the whole warp
      const int64_t j = j0 + lane;
      const int64_t b = b0 + bag_lane_of_position(end_l, nb, j);
      const int64_t t = b / batch;
      const bool held_t = t - t0 < kBagWarpTables;  // else (batch < 8) read from global memory
      const int src = held_t ? static_cast<int>(t - t0) * kMetaFields : 0;
      int64_t rows = __shfl_sync(kFullWarpMask, held, src + kMetaRows);
      int64_t mapping = __shfl_sync(kFullWarpMask, held, src + kMetaMapping);
      int64_t row_offset = __shfl_sync(kFullWarpMask, held, src + kMetaRowOffset);
      int64_t policy = __shfl_sync(kFullWarpMask, held, src + kMetaPolicy);
      if (j >= hi) continue;
      if (!held_t) {
        const int64_t* m = meta + t * kMetaFields;
        rows = m[kMetaRows];
        mapping = m[kMetaMapping];
        row_offset = m[kMetaRowOffset];
        policy = m[kMetaPolicy];
      }
      bool bad = false;
      const int64_t row = resolve_row(ids[j], rows, mapping, &bad);
      keys[j] = row_offset + row;
      bag_of[j] = b;
      if (bad) {
        if (policy == static_cast<int64_t>(IdPolicy::Error)) {
          record_first_bad(flags + kBagFlagFirstError, static_cast<unsigned long long>(j));
        } else {
          atomicAdd(flags + kBagFlagClamped, 1ull);
          record_first_bad(flags + kBagFlagFirstWarn + t, static_cast<unsigned long long>(j));
        }
      }
    }
  }
}

// acc += scale * row[c .. c + 4) (float4 loads: the row and c are 16-byte aligned).
__device__ inline void bag_add_row4(float4& acc, float scale, const float* row) {
  const float4 v = bag_load4(row);
  acc.x += scale * v.x;
  acc.y += scale * v.y;
  acc.z += scale * v.z;
  acc.w += scale * v.w;
}

// One bag's pooled row: lanes over the columns, c ascending per tile of 32 lanes x `vec` floats
// (vec 4: float4 loads and stores; 1: floats), the bag's indices summed in position order as the
// host does. Keys and weights are loaded 32 at a time, one per lane, and broadcast by shuffles.
__device__ inline void bag_pool(const BagWarpTable& tb, int64_t begin, int64_t end, int vec,
                                const float* rows, const int64_t* keys, const float* psw,
                                float* dst) {
  const int lane = bag_lane();
  for (int64_t c0 = 0; c0 < tb.dim; c0 += kWarpSize * vec) {
    const int64_t c = c0 + static_cast<int64_t>(lane) * vec;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int64_t j0 = begin; j0 < end; j0 += kWarpSize) {
      const int n = static_cast<int>(end - j0 < kWarpSize ? end - j0 : kWarpSize);
      const int64_t key_l = lane < n ? keys[j0 + lane] : 0;
      const float w_l = lane < n && psw ? psw[j0 + lane] : 1.f;
      for (int k = 0; k < n; ++k) {
        const int64_t key = __shfl_sync(kFullWarpMask, key_l, k);
        const float scale = bag_scale(tb.pooling, end - begin, __shfl_sync(kFullWarpMask, w_l, k));
        const float* row = rows + (key - tb.row_offset) * tb.dim;
        if (c >= tb.dim) continue;
        if (vec == 4)
          bag_add_row4(acc, scale, row + c);
        else
          acc.x += scale * __ldg(row + c);
      }
    }
    if (c >= tb.dim) continue;
    if (vec == 4)
      bag_store4(dst + c, acc);
    else
      dst[c] = acc.x;
  }
}

// A warp per bag (b = t * B + s): its table's meta in one coalesced load, its two offsets in
// another, then bag_pool. Rows are read with float4 when the table's dim is a multiple of 4 and
// its rows and the output slice are 16-byte aligned.
__global__ void bag_forward_kernel(const int64_t* meta, int64_t tables, int64_t batch,
                                   int64_t out_dim, const float* weights, const int64_t* keys,
                                   const int64_t* offsets, const float* psw, float* out) {
  const int lane = bag_lane();
  for (int64_t b = bag_first_warp(); b < tables * batch; b += bag_warps()) {
    const int64_t t = b / batch;
    const int64_t s = b - t * batch;
    const BagWarpTable tb = bag_warp_table(bag_warp_meta(meta, t));
    const int64_t o = lane < 2 ? offsets[b + lane] : 0;
    const int64_t begin = __shfl_sync(kFullWarpMask, o, 0);
    const int64_t end = __shfl_sync(kFullWarpMask, o, 1);
    const float* rows = weights + tb.weight_offset;
    float* dst = out + s * out_dim + tb.out_offset;
    const bool aligned = tb.dim % 4 == 0 && reinterpret_cast<uintptr_t>(rows) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(dst) % 16 == 0;
    bag_pool(tb, begin, end, aligned ? 4 : 1, rows, keys, psw, dst);
  }
}

// One block per touched row (bag_rows.cuh: the row's occurrences over groups of lanes, its
// columns over the lanes of a group); rows past the device count U are not touched. grads [>= U,
// max_dim].
__global__ void bag_backward_kernel(BagRowInputs in, float* grads) {
  __shared__ BagRowShared sh;
  const int64_t touched = bag_rows_touched(in);
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

// bag_pool over a 16-bit table: lanes over the columns one value each (a warp reads 64 contiguous
// bytes of a row), each value widened to f32 and summed in position order from 0, as the host's
// 16-bit forward does.
__device__ inline void bag_pool_half(const BagWarpTable& tb, int64_t begin, int64_t end,
                                     TableDType d, const uint16_t* rows, const int64_t* keys,
                                     const float* psw, float* dst) {
  const int lane = bag_lane();
  for (int64_t c0 = 0; c0 < tb.dim; c0 += kWarpSize) {
    const int64_t c = c0 + lane;
    float acc = 0.f;
    for (int64_t j0 = begin; j0 < end; j0 += kWarpSize) {
      const int n = static_cast<int>(end - j0 < kWarpSize ? end - j0 : kWarpSize);
      const int64_t key_l = lane < n ? keys[j0 + lane] : 0;
      const float w_l = lane < n && psw ? psw[j0 + lane] : 1.f;
      for (int k = 0; k < n; ++k) {
        const int64_t key = __shfl_sync(kFullWarpMask, key_l, k);
        const float scale = bag_scale(tb.pooling, end - begin, __shfl_sync(kFullWarpMask, w_l, k));
        if (c < tb.dim) acc += scale * half_to_f32(d, rows[(key - tb.row_offset) * tb.dim + c]);
      }
    }
    if (c < tb.dim) dst[c] = acc;
  }
}

// bag_forward_kernel over a 16-bit table.
__global__ void bag_forward_half_kernel(const int64_t* meta, int64_t tables, int64_t batch,
                                        int64_t out_dim, BagHalfTable weights, const int64_t* keys,
                                        const int64_t* offsets, const float* psw, float* out) {
  const int lane = bag_lane();
  for (int64_t b = bag_first_warp(); b < tables * batch; b += bag_warps()) {
    const int64_t t = b / batch;
    const int64_t s = b - t * batch;
    const BagWarpTable tb = bag_warp_table(bag_warp_meta(meta, t));
    const int64_t o = lane < 2 ? offsets[b + lane] : 0;
    const int64_t begin = __shfl_sync(kFullWarpMask, o, 0);
    const int64_t end = __shfl_sync(kFullWarpMask, o, 1);
    bag_pool_half(tb, begin, end, static_cast<TableDType>(weights.dtype),
                  weights.values + tb.weight_offset, keys, psw, out + s * out_dim + tb.out_offset);
  }
}

// bag_weight_grad_kernel over a 16-bit table: bag_weight_grad's dot (c ascending) on the widened
// row.
__global__ void bag_weight_grad_half_kernel(const int64_t* meta, int64_t batch, int64_t out_dim,
                                            BagHalfTable weights, const int64_t* keys,
                                            const int64_t* bag_of, const int64_t* offsets,
                                            const float* dout, float* wgrad, int64_t nnz) {
  const TableDType d = static_cast<TableDType>(weights.dtype);
  for (const int64_t j : grid_stride_range(nnz)) {
    const int64_t b = bag_of[j];
    const int64_t t = b / batch;
    const int64_t s = b - t * batch;
    const int64_t* m = meta + t * kMetaFields;
    const int64_t dim = m[kMetaDim];
    const uint16_t* row =
        weights.values + m[kMetaWeightOffset] + (keys[j] - m[kMetaRowOffset]) * dim;
    const float* dy = dout + s * out_dim + m[kMetaOutOffset];
    float dot = 0.f;
    for (int64_t c = 0; c < dim; ++c) dot += half_to_f32(d, row[c]) * dy[c];
    wgrad[j] = bag_scale(m[kMetaPooling], offsets[b + 1] - offsets[b], 1.f) * dot;
  }
}

}  // namespace

void launch_bag_forward_half(const int64_t* meta, int64_t tables, int64_t batch, int64_t max_dim,
                             int64_t out_dim, const BagHalfTable& weights, const int64_t* keys,
                             const int64_t* offsets, const float* psw, float* out,
                             cudaStream_t stream) {
  if (tables * batch <= 0 || max_dim <= 0) return;
  TESSERA_LAUNCH(bag_forward_half_kernel, dim3(grid_stride_blocks(tables * batch * kWarpSize)),
                 dim3(kElementwiseBlock), 0, stream, meta, tables, batch, out_dim, weights, keys,
                 offsets, psw, out);
}

void launch_bag_weight_grad_half(const int64_t* meta, int64_t batch, int64_t out_dim,
                                 const BagHalfTable& weights, const int64_t* keys,
                                 const int64_t* bag_of, const int64_t* offsets, const float* dout,
                                 float* wgrad, int64_t nnz, cudaStream_t stream) {
  if (nnz <= 0) return;
  TESSERA_LAUNCH(bag_weight_grad_half_kernel, dim3(grid_stride_blocks(nnz)),
                 dim3(kElementwiseBlock), 0, stream, meta, batch, out_dim, weights, keys, bag_of,
                 offsets, dout, wgrad, nnz);
}

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
  const int64_t warps = (tables * batch + kWarpSize - 1) / kWarpSize;  // one per 32 bags
  TESSERA_LAUNCH(bag_resolve_kernel, dim3(grid_stride_blocks(warps * kWarpSize)),
                 dim3(kElementwiseBlock), 0, stream, meta, tables, batch, ids, offsets, nnz, keys,
                 bag_of, flags);
}

void launch_bag_forward(const int64_t* meta, int64_t tables, int64_t batch, int64_t max_dim,
                        int64_t out_dim, const float* weights, const int64_t* keys,
                        const int64_t* offsets, const float* psw, float* out, cudaStream_t stream) {
  if (tables * batch <= 0 || max_dim <= 0) return;
  TESSERA_LAUNCH(bag_forward_kernel, dim3(grid_stride_blocks(tables * batch * kWarpSize)),
                 dim3(kElementwiseBlock), 0, stream, meta, tables, batch, out_dim, weights, keys,
                 offsets, psw, out);
}

void launch_bag_backward(const BagRowInputs& in, int64_t capacity, float* grads,
                         cudaStream_t stream) {
  if (capacity <= 0 || in.max_dim <= 0) return;
  TESSERA_LAUNCH(bag_backward_kernel, dim3(bag_row_blocks(capacity)), dim3(kBagRowBlock), 0, stream,
                 in, grads);
}

}  // namespace tessera::cuda
