// Test kernels for the CUDA emulator's own tests (tests/emu_runtime_test.cpp): each exercises a
// CUDA feature the project's kernels rely on, with results the test can predict exactly.
// Written like cuda/kernels/*.cu: the prelude, the launcher, kernels and launchers only.
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "tests/emu_kernels/emu_test_kernels.h"

namespace tessera::emu_test {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// x [n]; sums [gridDim.x]. Warp sums by shuffle, then warp 0 adds the per-warp partials.
__global__ void block_sums_kernel(const float* x, int64_t n, float* sums) {
  __shared__ float partial[32];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  float v = i < n ? x[i] : 0.f;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / 32 ? partial[lane] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
    if (lane == 0) sums[blockIdx.x] = v;
  }
}

// x, out [n]; dynamic shared memory: blockDim.x floats.
__global__ void reverse_blocks_kernel(const float* x, float* out, int64_t n) {
  TESSERA_DYNAMIC_SHARED(float, tile);
  const int64_t start = static_cast<int64_t>(blockIdx.x) * blockDim.x;
  const int64_t count = n - start < blockDim.x ? n - start : blockDim.x;
  const int64_t t = threadIdx.x;
  if (t < count) tile[t] = x[start + t];
  __syncthreads();
  if (t < count) out[start + t] = tile[count - 1 - t];
}

__global__ void write_indices_kernel(uint64_t* ids, unsigned* dims) {
  const uint64_t block = blockIdx.x + uint64_t{gridDim.x} * (blockIdx.y + uint64_t{gridDim.y} * blockIdx.z);
  const uint64_t thread = threadIdx.x + uint64_t{blockDim.x} * (threadIdx.y + uint64_t{blockDim.y} * threadIdx.z);
  const uint64_t per_block = uint64_t{blockDim.x} * blockDim.y * blockDim.z;
  ids[block * per_block + thread] = (block << 32) | thread;
  if (block == 0 && thread == 0) {
    dims[0] = blockDim.x; dims[1] = blockDim.y; dims[2] = blockDim.z;
    dims[3] = gridDim.x; dims[4] = gridDim.y; dims[5] = gridDim.z;
  }
}

// One warp per block. in [warps * 32]; out [warps * kWarpResults * 32].
__global__ void warp_primitives_kernel(const int* in, int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  const int v = in[blockIdx.x * 32 + lane];
  int* o = out + blockIdx.x * kWarpResults * 32;
  int k = 0;
  o[k++ * 32 + lane] = __shfl_sync(kFull, v, 0);
  o[k++ * 32 + lane] = __shfl_sync(kFull, v, 31 - lane);
  o[k++ * 32 + lane] = __shfl_up_sync(kFull, v, 3);
  o[k++ * 32 + lane] = __shfl_down_sync(kFull, v, 5);
  o[k++ * 32 + lane] = __shfl_xor_sync(kFull, v, 1);
  o[k++ * 32 + lane] = __shfl_xor_sync(kFull, v, 16);
  o[k++ * 32 + lane] = __shfl_sync(kFull, v, 2, 8);
  o[k++ * 32 + lane] = __shfl_down_sync(kFull, v, 2, 8);
  o[k++ * 32 + lane] = __shfl_up_sync(kFull, v, 1, 16);
  o[k++ * 32 + lane] = static_cast<int>(__ballot_sync(kFull, v % 3 == 0));
  o[k++ * 32 + lane] = __any_sync(kFull, v > 90);
  o[k++ * 32 + lane] = __all_sync(kFull, v >= 0);
  o[k++ * 32 + lane] = static_cast<int>(__match_any_sync(kFull, v % 4));
  o[k++ * 32 + lane] = __reduce_add_sync(kFull, v);
  int s = v;
  for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(kFull, s, offset);
  o[k++ * 32 + lane] = s;
  __syncwarp();
  o[k++ * 32 + lane] = __shfl_xor_sync(kFull, v, 3, 4);
}

// One warp; lanes >= active leave at once.
__global__ void partial_warp_shuffle_kernel(const float* in, float* out, int active) {
  const int lane = static_cast<int>(threadIdx.x);
  if (lane >= active) return;
  const float v = in[lane];
  out[lane] = __shfl_down_sync(kFull, v, 1);
}

__global__ void atomics_kernel(const int* values, const float* x, int64_t n, int bins,
                               AtomicOut out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int v = values[i];
    atomicAdd(&out.hist[v % bins], 1);
    atomicAdd(out.fsum, x[i]);
    atomicAdd(out.usum, static_cast<unsigned long long>(v));
    atomicMax(out.imax, v);
    atomicMin(out.llmin, static_cast<long long>(v) - 1000000000000LL);
    atomicMin(out.ullmin, static_cast<unsigned long long>(v) + 5ull);
    if (atomicCAS(&out.slots[v % bins], 0, 1) == 0) atomicAdd(out.cas_wins, 1);
    atomicInc(out.inc, 7u);
  }
}

// pred [blocks * blockDim.x]; results [blocks * 4]; dynamic shared memory: one int.
__global__ void shared_atomics_kernel(const int* pred, int* results) {
  TESSERA_DYNAMIC_SHARED(int, counter);
  const int p = pred[blockIdx.x * blockDim.x + threadIdx.x];
  if (threadIdx.x == 0) counter[0] = 0;
  __syncthreads();
  if (p) atomicAdd(counter, 1);
  __syncthreads();
  const int count = __syncthreads_count(p);
  const int all = __syncthreads_and(p);
  const int any = __syncthreads_or(p);
  if (threadIdx.x == 0) {
    results[blockIdx.x * 4 + 0] = counter[0];
    results[blockIdx.x * 4 + 1] = count;
    results[blockIdx.x * 4 + 2] = all;
    results[blockIdx.x * 4 + 3] = any;
  }
}

__global__ void vector_loads_kernel(const float4* a, const int4* b, float* out, int64_t n4) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  const float4 fa = __ldg(a + i);
  const int4 ib = __ldg(b + i);
  out[i] = fa.x + fa.y + fa.z + fa.w + static_cast<float>(ib.x + ib.y + ib.z + ib.w);
}

__global__ void offset_copy_kernel(const float* base, int64_t offset, float* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = __ldg(base + offset + i);
}

unsigned blocks_for(int64_t n, unsigned block) {
  const int64_t b = (n + block - 1) / block;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

}  // namespace

void launch_block_sums(const float* x, int64_t n, float* sums, unsigned block, cudaStream_t s) {
  TESSERA_LAUNCH(block_sums_kernel, dim3(blocks_for(n, block)), dim3(block), 0, s, x, n, sums);
}

void launch_reverse_blocks(const float* x, float* out, int64_t n, unsigned block, cudaStream_t s) {
  if (n <= 0) return;
  TESSERA_LAUNCH(reverse_blocks_kernel, dim3(blocks_for(n, block)), dim3(block),
                 block * sizeof(float), s, x, out, n);
}

void launch_write_indices(uint64_t* ids, unsigned* dims, dim3 grid, dim3 block, cudaStream_t s) {
  TESSERA_LAUNCH(write_indices_kernel, grid, block, 0, s, ids, dims);
}

void launch_warp_primitives(const int* in, int* out, int warps, cudaStream_t s) {
  TESSERA_LAUNCH(warp_primitives_kernel, dim3(static_cast<unsigned>(warps)), dim3(32), 0, s, in, out);
}

void launch_partial_warp_shuffle(const float* in, float* out, int active, cudaStream_t s) {
  TESSERA_LAUNCH(partial_warp_shuffle_kernel, dim3(1), dim3(32), 0, s, in, out, active);
}

void launch_atomics(const int* values, const float* x, int64_t n, int bins, AtomicOut out,
                    cudaStream_t s) {
  TESSERA_LAUNCH(atomics_kernel, dim3(3), dim3(64), 0, s, values, x, n, bins, out);
}

void launch_shared_atomics(const int* pred, int* results, int blocks, unsigned block,
                           cudaStream_t s) {
  TESSERA_LAUNCH(shared_atomics_kernel, dim3(static_cast<unsigned>(blocks)), dim3(block),
                 sizeof(int), s, pred, results);
}

void launch_vector_loads(const float4* a, const int4* b, float* out, int64_t n4, cudaStream_t s) {
  TESSERA_LAUNCH(vector_loads_kernel, dim3(blocks_for(n4, 64)), dim3(64), 0, s, a, b, out, n4);
}

void launch_offset_copy(const float* base, int64_t offset, float* out, int64_t n, cudaStream_t s) {
  TESSERA_LAUNCH(offset_copy_kernel, dim3(2), dim3(64), 0, s, base, offset, out, n);
}

}  // namespace tessera::emu_test
