// Inverted dropout with the counter-based mask of host/core/math.h: element i is kept iff
// hash_uniform(seed, i) >= p, on every backend and thread layout, so no mask is stored.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// x, y [n]; y may alias x.
__global__ void dropout_kernel(uint64_t seed, float p, float scale, const float* x, float* y,
                               int64_t n) {
  for (const int64_t i : grid_stride_range(n))
    y[i] = math::dropout_keep(seed, static_cast<uint64_t>(i), p) ? x[i] * scale : 0.f;
}

}  // namespace

void launch_dropout(uint64_t seed, float p, float scale, const float* x, float* y, int64_t n,
                    cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(dropout_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream,
                 seed, p, scale, x, y, n);
}

}  // namespace tessera::cuda
