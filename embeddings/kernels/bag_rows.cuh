#pragma once
// Device code shared by the backward kernels (embedding_bag.cu) and the fused backward + update
// (embedding_bag_update.cu): the gradient of one touched row, computed by a whole block.
//
// Why a block per row: ids follow a power law, so one row can hold most of a batch's
// occurrences. The block splits the row's occurrences over groups of `width` lanes and, inside a
// group, the columns over the lanes (consecutive lanes read consecutive floats of a dout row:
// coalesced). Each group sums its occurrences (q = begin + group, step groups) in ascending order,
// then group 0 adds the groups' partial sums in group order: a fixed order, no atomics, the same
// result whatever order the threads run in. A row with at most `groups` occurrences is summed in
// position order, the host's order; a longer one differs from the host by rounding only.
//
// Same contract as a kernel file: only what cuda/kernel_prelude.cuh supplies. Include after it.
#include <cstdint>

#include "embeddings/bag_math.h"
#include "embeddings/kernels/bag_kernels.h"
#include "embeddings/kernels/bag_warp.cuh"

namespace tessera::cuda {

// Threads per block of the row kernels (a multiple of 32; block_sum needs it).
constexpr unsigned kBagRowBlock = 256;

// Lanes per occurrence group: the columns a group covers at once, min(32, max_dim rounded up to
// a power of two), so narrow tables still keep most lanes busy.
__device__ inline int bag_row_width(int64_t max_dim) {
  int w = 1;
  while (w < 32 && w < max_dim) w *= 2;
  return w;
}

// Blocks for the row kernels over at most `rows` touched rows (blocks stride over the rows past
// the cap; the kernels stop at the device count).
inline unsigned bag_row_blocks(int64_t rows) {
  constexpr int64_t kCap = int64_t{1} << 16;
  return static_cast<unsigned>(rows < 1 ? 1 : (rows < kCap ? rows : kCap));
}

// The block's shared memory for bag_row_gradient: the groups' partial sums, the row's
// occurrences staged (their bag, then their dout row offset and scale), its segment and its
// table's meta.
struct BagRowShared {
  float partial[kBagRowBlock];
  int64_t occ_row[kBagRowBlock];
  float occ_scale[kBagRowBlock];
  int64_t seg[2];
  int64_t meta[tessera::emb::kMetaFields];
};

// U, the number of touched rows, read from device memory by one thread and handed to the block
// (every thread of the block calls it; it contains a barrier).
__device__ inline int64_t bag_rows_touched(const BagRowInputs& in) {
  __shared__ int64_t touched;
  if (threadIdx.x == 0) touched = *in.touched;
  __syncthreads();
  return touched;
}

// Threads i < n stage occurrence first + i (positions sorted_pos[first + i], read side by side):
// occ_row[i] = its bag, occ_scale[i] = its per-sample weight. Returns the thread's bag (0 if none).
__device__ inline int64_t bag_row_stage_bags(const BagRowInputs& in, int64_t first, int64_t n,
                                             BagRowShared* sh) {
  const int64_t i = threadIdx.x;
  if (i >= n) return 0;
  const int64_t j = in.sorted_pos[first + i];
  const int64_t b = in.bag_of[j];
  sh->occ_row[i] = b;
  sh->occ_scale[i] = in.psw ? in.psw[j] : 1.f;
  return b;
}

// After a barrier, threads i < n turn staged occurrence i into its dout row offset and its scale
// (the bag's length is read only under mean pooling: the scale of a sum bag does not use it).
__device__ inline void bag_row_stage_scales(const BagRowInputs& in, int64_t n, BagRowShared* sh) {
  using namespace tessera::emb;
  const int64_t i = threadIdx.x;
  if (i >= n) return;
  const int64_t b = sh->occ_row[i];
  const int64_t pooling = sh->meta[kMetaPooling];
  const int64_t len =
      pooling == static_cast<int64_t>(Pooling::Mean) ? in.offsets[b + 1] - in.offsets[b] : 0;
  sh->occ_scale[i] = bag_scale(pooling, len, sh->occ_scale[i]);
  sh->occ_row[i] = (b % in.batch) * in.out_dim;
}

// The row's occurrences [begin, begin + count) are in shared memory (count <= blockDim.x), or
// staged a block at a time (a hot row) for column tile c: its part of the sum, group `group` of
// `groups` summing k = group, group + groups, ... ascending (blockDim.x is a multiple of groups,
// so a block-sized chunk keeps that order). Every thread of the block calls it.
__device__ inline float bag_row_tile(const BagRowInputs& in, int64_t begin, int64_t count,
                                     int64_t c, bool in_row, int group, int groups,
                                     BagRowShared* sh) {
  const float* dout_cols = in.dout + sh->meta[tessera::emb::kMetaOutOffset];
  const int64_t block = blockDim.x;
  float acc = 0.f;
  if (count <= block) {
    if (in_row)
      for (int64_t k = group; k < count; k += groups)
        acc += sh->occ_scale[k] * dout_cols[sh->occ_row[k] + c];
    return acc;
  }
  for (int64_t chunk = 0; chunk < count; chunk += block) {
    const int64_t n = count - chunk < block ? count - chunk : block;
    __syncthreads();  // the previous chunk (and the meta's readers) are done
    bag_row_stage_bags(in, begin + chunk, n, sh);
    __syncthreads();
    bag_row_stage_scales(in, n, sh);
    __syncthreads();
    if (in_row)
      for (int64_t k = group; k < n; k += groups)
        acc += sh->occ_scale[k] * dout_cols[sh->occ_row[k] + c];
  }
  return acc;
}

// row[c] for c in [0, max_dim) = the gradient of touched row u (0 past its table's dim). `row`
// is global or shared memory. Every thread of the block calls it with the same u; it ends with a
// barrier, so row is complete on return, and sh->meta then holds the row's table's meta. The
// segment is read once (two threads), the table comes from the first occurrence's bag and its
// meta is one 64-byte load; a row with at most blockDim.x occurrences (nearly all) has them
// staged once, one thread per occurrence (positions read side by side), a longer (hot) row a
// block at a time per column tile. The summation order is the same either way.
__device__ inline void bag_row_gradient(const BagRowInputs& in, int64_t u, float* row,
                                        BagRowShared* sh) {
  using namespace tessera::emb;
  if (threadIdx.x < 2) sh->seg[threadIdx.x] = in.seg_start[u + threadIdx.x];
  __syncthreads();
  const int64_t begin = sh->seg[0];
  const int64_t count = sh->seg[1] - begin;
  const bool staged = count <= static_cast<int64_t>(blockDim.x);  // the same for the whole block
  const int64_t b = bag_row_stage_bags(in, begin, staged ? count : 1, sh);
  if (threadIdx.x < kWarpSize) {  // warp 0: lane 0 staged occurrence 0, whose bag names the table
    const int64_t t = __shfl_sync(kFullWarpMask, b, 0) / in.batch;
    const int lane = bag_lane();
    if (lane < kMetaFields) sh->meta[lane] = in.meta[t * kMetaFields + lane];
  }
  __syncthreads();
  if (staged) {
    bag_row_stage_scales(in, count, sh);
    __syncthreads();
  }
  const int width = bag_row_width(in.max_dim);
  const int groups = static_cast<int>(blockDim.x) / width;
  const int group = static_cast<int>(threadIdx.x) / width;
  const int lane = static_cast<int>(threadIdx.x) % width;
  const int64_t dim = sh->meta[kMetaDim];
  for (int64_t c0 = 0; c0 < in.max_dim; c0 += width) {
    const int64_t c = c0 + lane;
    sh->partial[threadIdx.x] = bag_row_tile(in, begin, count, c, c < dim, group, groups, sh);
    __syncthreads();
    if (group == 0 && c < in.max_dim) {
      float sum = 0.f;
      for (int k = 0; k < groups; ++k) sum += sh->partial[k * width + lane];
      row[c] = sum;
    }
    __syncthreads();  // partial, and a hot row's staged occurrences, are rewritten next
  }
}

}  // namespace tessera::cuda
