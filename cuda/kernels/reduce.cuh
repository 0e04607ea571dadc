#pragma once
// Device-side reductions shared by the kernel files. Same contract as a kernel file: only the
// CUDA features cuda/kernel_prelude.cuh supplies (so the emulation build runs them too). Include
// after the prelude.

namespace tessera::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullWarpMask = 0xffffffffu;

// Sum over the 32 lanes of a warp; every lane gets the total. All 32 lanes must take part.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(kFullWarpMask, v, offset);
  return v;
}

__device__ inline float warp_max(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullWarpMask, v, offset));
  return v;
}

// Block-wide sum / max over a 1-D block whose size is a multiple of 32 (at most 1024); every
// thread gets the result. scratch: __shared__ float[32]. Every thread of the block must call it
// (it contains barriers); calling it again right away is safe (the first barrier protects
// scratch from the previous call's readers).
//
// Their common first half: each warp's lane 0 stores its warp's reduced value in scratch[warp],
// and every thread waits until all are there. Returns the number of warps.
__device__ inline int share_warp_results(float warp_result, float* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  __syncthreads();
  if (lane == 0) scratch[warp] = warp_result;
  __syncthreads();
  return static_cast<int>(blockDim.x) / kWarpSize;
}

__device__ inline float block_sum(float v, float* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warps = share_warp_results(warp_sum(v), scratch);
  return warp_sum(lane < warps ? scratch[lane] : 0.f);
}

__device__ inline float block_max(float v, float* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warps = share_warp_results(warp_max(v), scratch);
  // Lanes past the last warp repeat warp 0's value: neutral for max, no infinity needed.
  return warp_max(scratch[lane < warps ? lane : 0]);
}

// *first_bad = min(*first_bad, position), atomically (a compare-and-swap loop: the smallest
// offending position wins whatever the thread order, so the error names the same element as the
// host backend's sequential check).
__device__ inline void record_first_bad(unsigned long long* first_bad,
                                        unsigned long long position) {
  unsigned long long seen = atomicAdd(first_bad, 0ull);  // an atomic read
  while (position < seen) {
    const unsigned long long prev = atomicCAS(first_bad, seen, position);
    if (prev == seen) break;
    seen = prev;
  }
}

}  // namespace tessera::cuda
