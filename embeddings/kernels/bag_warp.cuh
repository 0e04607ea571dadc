#pragma once
// Warp-level pieces of the embedding-bag kernels (embedding_bag.cu, embedding_bag_update.cu,
// bag_rows.cuh): the warp's place in the grid, a table's meta fetched by one coalesced load per
// warp and handed out with shuffles, and a bag search over values the lanes hold.
//
// Why: a value every lane of a warp reads for itself (a table's dim, a bag's offsets, an index's
// key) costs a whole 32-byte sector for 8 useful bytes. Loading it once per warp with the lanes
// side by side (the 8 meta fields of a table are 64 contiguous bytes: lane f loads field f) and
// broadcasting it with __shfl_sync moves only the bytes that are used.
//
// Same contract as a kernel file: only what cuda/kernel_prelude.cuh supplies. Include after it.
#include <cstdint>
#include <cstring>

#include "cuda/kernels/reduce.cuh"
#include "embeddings/bag_math.h"

namespace tessera::cuda {

__device__ inline int bag_lane() {
  return static_cast<int>(threadIdx.x) % kWarpSize;
}
// This warp's index in the grid and the number of warps in it (1-D blocks of whole warps).
__device__ inline int64_t bag_first_warp() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
}
__device__ inline int64_t bag_warps() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarpSize;
}

// The float4 at p (16-byte aligned) read or written in one 16-byte access. Through memcpy
// rather than a float4 copy: nvcc makes either one ld/st.global.v4.f32, but g++ splits a float4
// copy whose fields are used one by one into four float accesses, which the emulator's cost
// model would score as four strided requests (25% of their sectors used each).
__device__ inline float4 bag_load4(const float* p) {
  float4 v;
  memcpy(&v, __builtin_assume_aligned(p, 16), sizeof v);
  return v;
}
__device__ inline void bag_store4(float* p, const float4& v) {
  // Through a float4 pointer: nvcc 12's front end rejects __builtin_assume_aligned's void*
  // passed straight to memcpy as the destination (an NVVM "stored value type" error).
  float4* q = static_cast<float4*>(__builtin_assume_aligned(p, 16));
  memcpy(q, &v, sizeof v);
}

__device__ inline int64_t bag_clamp(int64_t v, int64_t hi) {
  return v < 0 ? 0 : (v > hi ? hi : v);
}

// Table t's meta, lane f holding field f (f < kMetaFields; the other lanes 0): one coalesced
// 64-byte load. Every lane of the warp must call it (with the same t).
__device__ inline int64_t bag_warp_meta(const int64_t* meta, int64_t t) {
  const int lane = bag_lane();
  return lane < tessera::emb::kMetaFields ? meta[t * tessera::emb::kMetaFields + lane] : 0;
}

// The meta of tables t0 .. min(t_last, t0 + kBagWarpTables - 1), side by side in the lanes (lane
// (t - t0) * kMetaFields + f holds field f of table t): one coalesced load of up to 256 bytes for
// a warp whose items span up to 4 tables. Every lane must call it (with the same t0, t_last).
constexpr int kBagWarpTables = kWarpSize / tessera::emb::kMetaFields;
__device__ inline int64_t bag_warp_metas(const int64_t* meta, int64_t t0, int64_t t_last) {
  const int lane = bag_lane();
  return lane / tessera::emb::kMetaFields <= t_last - t0
             ? meta[t0 * tessera::emb::kMetaFields + lane]
             : 0;
}

// The fields the kernels use, broadcast from bag_warp_meta's lanes (every lane must call it).
struct BagWarpTable {
  int64_t dim;
  int64_t row_offset;
  int64_t weight_offset;
  int64_t out_offset;
  int64_t pooling;
};
__device__ inline BagWarpTable bag_warp_table(int64_t held) {
  using namespace tessera::emb;
  BagWarpTable tb;
  tb.dim = __shfl_sync(kFullWarpMask, held, kMetaDim);
  tb.row_offset = __shfl_sync(kFullWarpMask, held, kMetaRowOffset);
  tb.weight_offset = __shfl_sync(kFullWarpMask, held, kMetaWeightOffset);
  tb.out_offset = __shfl_sync(kFullWarpMask, held, kMetaOutOffset);
  tb.pooling = __shfl_sync(kFullWarpMask, held, kMetaPooling);
  return tb;
}

// Lane l holds end_l, the end of bag l of the warp's nb (1..32) bags (non-decreasing in l; lanes
// >= nb hold the last bag's end). Returns the bag of position j: the smallest l < nb with
// end_l > j (so empty bags are skipped), by a binary search over the lanes with shuffles; nb - 1
// when j is past the last end. Every lane must call it (each with its own j).
__device__ inline int bag_lane_of_position(int64_t end_l, int nb, int64_t j) {
  int l = 0;  // lanes [0, l) end at or before j
  for (int step = kWarpSize / 2; step > 0; step /= 2) {
    const int probe = l + step - 1;  // at most 30
    const int64_t e = __shfl_sync(kFullWarpMask, end_l, probe);
    if (probe < nb - 1 && e <= j) l += step;
  }
  return l;
}

}  // namespace tessera::cuda
