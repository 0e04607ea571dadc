// Kernels with deliberate bugs: tests/emu_negative_test.cpp proves the emulation harness reports
// each one (an emulator that cannot fail proves nothing). Do not "fix" them.
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "tests/emu_kernels/emu_test_kernels.h"

namespace tessera::emu_test {
namespace {

// BUG: i <= n writes out[n], one past the end.
__global__ void off_by_one_kernel(float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.f;
}

// BUG: no __syncthreads() between the shared write and the neighbour's read.
__global__ void missing_syncthreads_kernel(const float* x, float* out) {
  __shared__ float s[256];
  const unsigned t = threadIdx.x;
  s[t] = x[blockIdx.x * blockDim.x + t];
  out[blockIdx.x * blockDim.x + t] = s[(t + 1) % blockDim.x];
}

// BUG: threads >= half leave before the barrier the others wait at.
__global__ void divergent_barrier_kernel(float* out, unsigned half) {
  if (threadIdx.x >= half) return;
  out[threadIdx.x] = 1.f;
  __syncthreads();
  out[threadIdx.x] += 1.f;
}

// BUG: two barrier call sites, each reached by half of the block.
__global__ void two_barrier_sites_kernel(float* out) {
  if (threadIdx.x % 2 == 0) {
    out[threadIdx.x] = 1.f;
    __syncthreads();
  } else {
    out[threadIdx.x] = 2.f;
    __syncthreads();
  }
}

// BUG: every thread writes the same shared word in one barrier interval.
__global__ void shared_write_race_kernel(int* out) {
  TESSERA_DYNAMIC_SHARED(int, word);
  word[0] = static_cast<int>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) out[0] = word[0];
}

// BUG: the two half-warps call different collectives with the full mask.
__global__ void divergent_warp_ops_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane < 16) out[lane] = __shfl_sync(0xffffffffu, lane, 0);
  else out[lane] = static_cast<int>(__ballot_sync(0xffffffffu, 1));
}

// BUG: lane 0's mask leaves out lane 0.
__global__ void mask_without_self_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  const unsigned mask = lane == 0 ? 0xfffffffeu : 0xffffffffu;
  out[lane] = __shfl_sync(mask, lane, 1);
}

__global__ void write_through_kernel(float* p, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) p[i] = 0.f;
}

// BUG: thread 32 writes s[32] of a 32-element shared array.
__global__ void static_shared_overflow_kernel(float* out) {
  __shared__ float s[32];
  s[threadIdx.x] = 1.f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

__global__ void trap_kernel(float* out) {
  if (blockIdx.x == 1 && threadIdx.x == 3) __trap();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1.f;
}

}  // namespace

void launch_off_by_one(float* out, int64_t n, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((n + 1 + 63) / 64);
  TESSERA_LAUNCH(off_by_one_kernel, dim3(blocks), dim3(64), 0, s, out, n);
}

void launch_missing_syncthreads(const float* x, float* out, unsigned block, cudaStream_t s) {
  TESSERA_LAUNCH(missing_syncthreads_kernel, dim3(2), dim3(block), 0, s, x, out);
}

void launch_divergent_barrier(float* out, unsigned block, unsigned half, cudaStream_t s) {
  TESSERA_LAUNCH(divergent_barrier_kernel, dim3(1), dim3(block), 0, s, out, half);
}

void launch_two_barrier_sites(float* out, unsigned block, cudaStream_t s) {
  TESSERA_LAUNCH(two_barrier_sites_kernel, dim3(1), dim3(block), 0, s, out);
}

void launch_shared_write_race(int* out, unsigned block, cudaStream_t s) {
  TESSERA_LAUNCH(shared_write_race_kernel, dim3(1), dim3(block), sizeof(int), s, out);
}

void launch_divergent_warp_ops(int* out, cudaStream_t s) {
  TESSERA_LAUNCH(divergent_warp_ops_kernel, dim3(1), dim3(32), 0, s, out);
}

void launch_mask_without_self(int* out, cudaStream_t s) {
  TESSERA_LAUNCH(mask_without_self_kernel, dim3(1), dim3(32), 0, s, out);
}

void launch_write_through(float* p, int64_t n, cudaStream_t s) {
  TESSERA_LAUNCH(write_through_kernel, dim3(1), dim3(64), 0, s, p, n);
}

void launch_static_shared_overflow(float* out, cudaStream_t s) {
  TESSERA_LAUNCH(static_shared_overflow_kernel, dim3(1), dim3(33), 0, s, out);
}

void launch_trap(float* out, cudaStream_t s) {
  TESSERA_LAUNCH(trap_kernel, dim3(2), dim3(8), 0, s, out);
}

}  // namespace tessera::emu_test
