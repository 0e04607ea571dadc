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

// row[c] for c in [0, max_dim) = the gradient of touched row u (0 past its table's dim). `row`
// is global or shared memory; partial is __shared__ float[blockDim.x]. Every thread of the block
// calls it with the same u; it ends with a barrier, so row is complete on return.
__device__ inline void bag_row_gradient(const BagRowInputs& in, int64_t u, float* row,
                                        float* partial) {
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
  const int64_t end = in.seg_start[u + 1];
  for (int64_t c0 = 0; c0 < in.max_dim; c0 += width) {
    const int64_t c = c0 + lane;
    float acc = 0.f;
    if (c < dim) {
      for (int64_t q = begin + group; q < end; q += groups) {
        const int64_t j = in.sorted_pos[q];
        const int64_t b = in.bag_of[j];
        const float scale =
            bag_scale(m[kMetaPooling], in.offsets[b + 1] - in.offsets[b], in.psw ? in.psw[j] : 1.f);
        acc += scale * dout_cols[(b - t * in.batch) * in.out_dim + c];
      }
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    if (group == 0 && c < in.max_dim) {
      float sum = 0.f;
      for (int k = 0; k < groups; ++k) sum += partial[k * width + lane];
      row[c] = sum;
    }
    __syncthreads();
  }
}

}  // namespace tessera::cuda
