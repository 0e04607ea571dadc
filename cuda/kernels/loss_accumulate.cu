// The Trainer's loss accumulator: one block sums a step's per-sample losses in double and counts
// the non-finite ones, then one thread adds both into the accumulator (no atomics: one block per
// call, and the calls are ordered on the stream).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/loss_accumulate.h"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

constexpr unsigned kAccumulateBlock = 256;
// An f32 is NaN or Inf exactly when its exponent bits are all ones.
constexpr unsigned kExponentBits = 0x7f800000u;

// Sums of one thread's strided share, then of its warp, then of the block (thread 0 holds the
// block's). sum and bad: __shared__ double[32] each.
__device__ inline void block_sum_pair(double& sum, double& bad, double* sums, double* bads) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  sum = warp_sum(sum);
  bad = warp_sum(bad);
  if (lane == 0) {
    sums[warp] = sum;
    bads[warp] = bad;
  }
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x) / kWarpSize;
  if (warp == 0) {
    sum = warp_sum(lane < warps ? sums[lane] : 0.0);
    bad = warp_sum(lane < warps ? bads[lane] : 0.0);
  }
}

// loss [n], acc [3]; launched as one block whose size is a multiple of 32.
__global__ void loss_accumulate_kernel(const float* loss, int64_t n, float step, float* acc) {
  __shared__ double sums[kWarpSize];
  __shared__ double bads[kWarpSize];
  double sum = 0.0, bad = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = loss[i];
    sum += static_cast<double>(v);
    if ((__float_as_uint(v) & kExponentBits) == kExponentBits) bad += 1.0;
  }
  block_sum_pair(sum, bad, sums, bads);
  if (threadIdx.x != 0) return;
  acc[0] = static_cast<float>(static_cast<double>(acc[0]) + sum);
  if (bad > 0.0) {
    acc[1] = static_cast<float>(static_cast<double>(acc[1]) + bad);
    if (acc[2] == 0.f) acc[2] = step;
  }
}

}  // namespace

void launch_loss_accumulate(const float* loss, int64_t n, float step, float* acc,
                            cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(loss_accumulate_kernel, dim3(1), dim3(kAccumulateBlock), 0, stream, loss, n, step,
                 acc);
}

}  // namespace tessera::cuda
