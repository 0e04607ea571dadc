// Kernels with known memory behaviour for the cost model's tests (see cost_cases.h). Written like
// cuda/kernels/*.cu: the prelude, the launcher, kernels and launchers only.
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "tests/emu_kernels/cost_cases.h"

namespace tessera::emu_test {
namespace {

__global__ void cost_copy_kernel(const float* x, float* y) {
  y[threadIdx.x] = x[threadIdx.x];
}

__global__ void cost_strided_kernel(const float* x, float* y, int stride) {
  y[threadIdx.x] = x[static_cast<int64_t>(threadIdx.x) * stride];
}

__global__ void cost_shared_kernel(float* y, int stride) {
  __shared__ float tile[32 * 32];
  const unsigned i = threadIdx.x;
  tile[(i * static_cast<unsigned>(stride)) % (32 * 32)] = static_cast<float>(i);
  __syncthreads();
  y[i] = tile[(i * static_cast<unsigned>(stride)) % (32 * 32)];
}

__global__ void cost_imbalance_kernel(const float* x, float* y, int heavy) {
  const unsigned i = threadIdx.x;
  float s = 0.f;
  if (i == 0) {
    for (int k = 0; k < heavy; ++k) s += x[k];
  } else {
    s = x[i];
  }
  y[i] = s;
}

}  // namespace

void launch_cost_copy(const float* x, float* y, cudaStream_t s) {
  TESSERA_LAUNCH(cost_copy_kernel, dim3(1), dim3(32), 0, s, x, y);
}
void launch_cost_strided(const float* x, float* y, int stride, cudaStream_t s) {
  TESSERA_LAUNCH(cost_strided_kernel, dim3(1), dim3(32), 0, s, x, y, stride);
}
void launch_cost_shared(float* y, int stride, cudaStream_t s) {
  TESSERA_LAUNCH(cost_shared_kernel, dim3(1), dim3(32), 0, s, y, stride);
}
void launch_cost_imbalance(const float* x, float* y, int heavy, cudaStream_t s) {
  TESSERA_LAUNCH(cost_imbalance_kernel, dim3(1), dim3(32), 0, s, x, y, heavy);
}

}  // namespace tessera::emu_test
