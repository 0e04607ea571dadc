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

// The block's shared memory for bag_row_gradient: the groups' partial sums, and a row's
// occurrences staged once (their dout row offset and scale) when they fit in one block.
struct BagRowShared {
  float partial[kBagRowBlock];
  int64_t occ_row[kBagRowBlock];
  float occ_scale[kBagRowBlock];
};

// Occurrence q of a row of table t (meta m): the offset of its sample's dout row and its scale.
__device__ inline void bag_row_occurrence(const BagRowInputs& in, const int64_t* m, int64_t t,
                                          int64_t q, int64_t* dout_row, float* scale) {
  using namespace tessera::emb;
  const int64_t j = in.sorted_pos[q];
  const int64_t b = in.bag_of[j];
  *scale = bag_scale(m[kMetaPooling], in.offsets[b + 1] - in.offsets[b], in.psw ? in.psw[j] : 1.f);
  *dout_row = (b - t * in.batch) * in.out_dim;
}

// row[c] for c in [0, max_dim) = the gradient of touched row u (0 past its table's dim). `row`
// is global or shared memory. Every thread of the block calls it with the same u; it ends with a
// barrier, so row is complete on return. A row with at most blockDim.x occurrences (nearly all)
// has them staged in shared memory first, one thread per occurrence, so each is read from global
// memory once rather than by every lane for every column tile; a longer (hot) row's groups read
// their own. The summation order is the same either way.
__device__ inline void bag_row_gradient(const BagRowInputs& in, int64_t u, float* row,
                                        BagRowShared* sh) {
  using namespace tessera::emb;
  const int width = bag_row_width(in.max_dim);
  const int groups = static_cast<int>(blockDim.x) / width;
  const int group = static_cast<int>(threadIdx.x) / width;
  const int lane = static_cast<int>(threadIdx.x) % width;
  const int64_t t = table_of_key_meta(in.meta, in.tables, in.ukeys[u]);
  const int64_t* m = in.meta + t * kMetaFields;
  const int64_t dim = m[kMetaDim];
  const float* dout_cols = in.dout + m[kMetaOutOffset];
  const int64_t begin = in.seg_start[u];
  const int64_t count = in.seg_start[u + 1] - begin;
  const bool staged = count <= static_cast<int64_t>(blockDim.x);  // the same for the whole block
  if (staged) {
    if (threadIdx.x < count)
      bag_row_occurrence(in, m, t, begin + threadIdx.x, &sh->occ_row[threadIdx.x],
                         &sh->occ_scale[threadIdx.x]);
    __syncthreads();
  }
  for (int64_t c0 = 0; c0 < in.max_dim; c0 += width) {
    const int64_t c = c0 + lane;
    float acc = 0.f;
    if (c < dim && staged) {
      for (int64_t k = group; k < count; k += groups)
        acc += sh->occ_scale[k] * dout_cols[sh->occ_row[k] + c];
    } else if (c < dim) {
      for (int64_t k = group; k < count; k += groups) {
        int64_t dout_row = 0;
        float scale = 0.f;
        bag_row_occurrence(in, m, t, begin + k, &dout_row, &scale);
        acc += scale * dout_cols[dout_row + c];
      }
    }
    sh->partial[threadIdx.x] = acc;
    __syncthreads();
    if (group == 0 && c < in.max_dim) {
      float sum = 0.f;
      for (int k = 0; k < groups; ++k) sum += sh->partial[k * width + lane];
      row[c] = sum;
    }
    __syncthreads();  // partial, and the staged occurrences, are rewritten next
  }
}

}  // namespace tessera::cuda
