// CudaBackend's element-wise ops: one launch each on the backend's stream (cuda/kernels/
// elementwise.cu); the edge (backend_elementwise.cpp) checked dtype, device and shapes.
#include "cuda/cuda_backend.h"
#include "cuda/device_guard.h"
#include "cuda/kernels/elementwise.h"

namespace tessera {
namespace cuda {

void CudaBackend::mul_add_impl(const Tensor& a, const Tensor& b, float beta, Tensor& y) {
  DeviceGuard guard(device_index_);
  launch_mul_add(a.data<float>(), b.data<float>(), beta, y.data<float>(), y.numel(), stream());
}

void CudaBackend::axpby_impl(float alpha, const Tensor& x, float beta, Tensor& y) {
  DeviceGuard guard(device_index_);
  launch_axpby(alpha, x.data<float>(), beta, y.data<float>(), y.numel(), stream());
}

}  // namespace cuda
}  // namespace tessera
