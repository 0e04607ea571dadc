// fill and scale: the element-wise memory ops (fill_impl; C = beta * C for a GEMM with K = 0).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

__global__ void fill_kernel(float* p, int64_t n, float value) {
  for (const int64_t i : grid_stride_range(n)) p[i] = value;
}

__global__ void scale_kernel(float* p, int64_t n, float beta) {
  for (const int64_t i : grid_stride_range(n)) p[i] = beta == 0.f ? 0.f : beta * p[i];
}

}  // namespace

void launch_fill(float* p, int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(fill_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p, n,
                 value);
}

void launch_scale(float* p, int64_t n, float beta, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(scale_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p,
                 n, beta);
}

}  // namespace tessera::cuda
