// Dense optimizer updates, one element per thread, through math::sgd_step / math::adam_step (the
// host backend's arithmetic).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// param, grad, velocity [n]; velocity is nullptr when p.momentum == 0 (sgd_step never reads it).
__global__ void sgd_kernel(math::SgdParams p, float* param, const float* grad, float* velocity,
                           int64_t n) {
  for (const int64_t i : grid_stride_range(n)) {
    float unused_velocity = 0.f;
    math::sgd_step(p, param[i], grad[i], velocity ? velocity[i] : unused_velocity);
  }
}

// param, grad, m, v [n].
__global__ void adam_kernel(math::AdamParams p, float* param, const float* grad, float* m, float* v,
                            int64_t n) {
  for (const int64_t i : grid_stride_range(n)) math::adam_step(p, param[i], grad[i], m[i], v[i]);
}

}  // namespace

void launch_sgd_update(const math::SgdParams& p, float* param, const float* grad, float* velocity,
                       int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(sgd_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p,
                 param, grad, velocity, n);
}

void launch_adam_update(const math::AdamParams& p, float* param, const float* grad, float* m,
                        float* v, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(adam_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, p,
                 param, grad, m, v, n);
}

}  // namespace tessera::cuda
