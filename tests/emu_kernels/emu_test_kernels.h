#pragma once
// Launchers of the CUDA emulator's own test kernels (tests/emu_kernels/*.cu). Written exactly
// like cuda/kernels/: kernels and launchers only, through TESSERA_LAUNCH, no emulation #ifdefs.
// Pointers are emulated device memory (tessera::emu::DeviceArray or cudaMalloc).
#include <cstdint>

#include "cuda/emu/emulator.h"

namespace tessera::emu_test {

// ---- features (features.cu) --------------------------------------------------------------------
// sums[b] = sum of x[b * block .. b * block + block) (past n counts 0): static shared memory, a
// warp-shuffle reduction and two barriers. block: a multiple of 32, at most 1024.
void launch_block_sums(const float* x, int64_t n, float* sums, unsigned block, cudaStream_t s);
// out[i] = x[block_start + (block - 1 - t)]: reverse each block's slice through dynamic shared
// memory (block floats). n need not be a multiple of block (the tail block reverses its part).
void launch_reverse_blocks(const float* x, float* out, int64_t n, unsigned block, cudaStream_t s);
// For a 3-D grid and 3-D block: ids[global linear thread] = packed (block linear, thread linear)
// and dims[0..5] = blockDim and gridDim as seen by the kernel.
void launch_write_indices(uint64_t* ids, unsigned* dims, dim3 grid, dim3 block, cudaStream_t s);
// One warp per block, lane l holds value v[l] = in[b*32 + l]; out[b*32*K + k*32 + l] is the k-th
// collective's result for lane l (see features.cu for the list), K = kWarpResults.
constexpr int kWarpResults = 16;
void launch_warp_primitives(const int* in, int* out, int warps, cudaStream_t s);
// As above with only lanes [0, active) of each warp alive (the rest return at once); the live
// lanes shuffle down with a full mask. out[b*32 + l] for l < active.
void launch_partial_warp_shuffle(const float* in, float* out, int active, cudaStream_t s);
// Histogram and atomics over n values: hist[v % bins] += 1 (int), fsum += x (float),
// usum += v (unsigned long long), imax = max, llmin/ullmin = min, cas_count = number of threads
// that won an atomicCAS race for a slot (exactly one per slot), exch_last: atomicExch target.
struct AtomicOut {
  int* hist;
  float* fsum;
  unsigned long long* usum;
  int* imax;
  long long* llmin;
  unsigned long long* ullmin;
  int* slots;          // [bins], 0 = free; atomicCAS(slot, 0, 1) winners count in cas_wins
  int* cas_wins;
  unsigned* inc;       // atomicInc with limit 7 by every thread
};
void launch_atomics(const int* values, const float* x, int64_t n, int bins, AtomicOut out,
                    cudaStream_t s);
// Shared-memory atomics: per block, counts[b] = number of threads with pred (atomicAdd on one
// shared int by every thread, which the race detector must accept), plus __syncthreads_count,
// __syncthreads_and and __syncthreads_or of the same predicate in results[b*4 + 1..3].
void launch_shared_atomics(const int* pred, int* results, int blocks, unsigned block,
                           cudaStream_t s);
// out[i] = float4 / int4 loads through __ldg, component-wise x+y+z+w (i < n4).
void launch_vector_loads(const float4* a, const int4* b, float* out, int64_t n4, cudaStream_t s);
// Grid-stride copy with 64-bit offsets: out[i] = base[offset + i] for i < n, where offset may be
// beyond 2^31 (the pointer `base` is then positioned so base + offset is in bounds).
void launch_offset_copy(const float* base, int64_t offset, float* out, int64_t n, cudaStream_t s);

// ---- negative tests (negative.cu): each has a bug the harness must report ------------------------
// Writes out[0..n] inclusive: one element past the end.
void launch_off_by_one(float* out, int64_t n, cudaStream_t s);
// Each thread writes s[t] then, with no __syncthreads(), reads its neighbour s[(t + 1) % block].
void launch_missing_syncthreads(const float* x, float* out, unsigned block, cudaStream_t s);
// Threads with threadIdx.x >= half return before the block's __syncthreads().
void launch_divergent_barrier(float* out, unsigned block, unsigned half, cudaStream_t s);
// Even and odd threads wait at two different __syncthreads() call sites.
void launch_two_barrier_sites(float* out, unsigned block, cudaStream_t s);
// Every thread writes its id to the same dynamic shared word, then a barrier: a write-write race.
void launch_shared_write_race(int* out, unsigned block, cudaStream_t s);
// Lanes 0-15 call __shfl_sync, lanes 16-31 __ballot_sync, both with the full mask.
void launch_divergent_warp_ops(int* out, cudaStream_t s);
// Lane 0 passes a mask without its own bit.
void launch_mask_without_self(int* out, cudaStream_t s);
// A pointer argument the caller gives (the test passes a host pointer).
void launch_write_through(float* p, int64_t n, cudaStream_t s);
// 33 threads index a 32-float static __shared__ array by threadIdx.x.
void launch_static_shared_overflow(float* out, cudaStream_t s);
// Calls __trap() in thread 3 of block 1.
void launch_trap(float* out, cudaStream_t s);

}  // namespace tessera::emu_test
