// fill and scale: the element-wise memory ops (fill_impl; C = beta * C for a GEMM with K = 0).
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "cuda/kernels/kernels.h"

namespace tessera::cuda {
namespace {

__global__ void fill_kernel(float* p, int64_t n, float value) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = value;
}

__global__ void scale_kernel(float* p, int64_t n, float beta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    p[i] = beta == 0.f ? 0.f : beta * p[i];
}

}  // namespace

void launch_fill(float* p, int64_t n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(fill_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p,
                 n, value);
}

void launch_scale(float* p, int64_t n, float beta, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(scale_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p,
                 n, beta);
}

}  // namespace tessera::cuda
