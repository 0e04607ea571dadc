// HostBackend's element-wise ops: one pass over contiguous f32, split over the OpenMP threads once
// a tensor is large enough for the split to pay (host_loops::kParallelElements). beta == 0 never
// reads y, as the declaration in backend.h promises (y may hold NaN before the call).
#include "host/backend/host_backend.h"
#include "host/backend/host_loops.h"

namespace tessera {

namespace {

// y = a (.) b + beta * y over [0, n).
void mul_add_loop(const float* a, const float* b, float beta, float* y, int64_t n) {
  if (beta == 0.f) {
#pragma omp parallel for schedule(static) if (n > host_loops::kParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  } else {
#pragma omp parallel for schedule(static) if (n > host_loops::kParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i] + beta * y[i];
  }
}

// y = alpha * x + beta * y over [0, n).
void axpby_loop(float alpha, const float* x, float beta, float* y, int64_t n) {
  if (beta == 0.f) {
#pragma omp parallel for schedule(static) if (n > host_loops::kParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
  } else {
#pragma omp parallel for schedule(static) if (n > host_loops::kParallelElements)
    for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i] + beta * y[i];
  }
}

}  // namespace

void HostBackend::mul_add_impl(const Tensor& a, const Tensor& b, float beta, Tensor& y) {
  mul_add_loop(a.data<float>(), b.data<float>(), beta, y.data<float>(), y.numel());
}

void HostBackend::axpby_impl(float alpha, const Tensor& x, float beta, Tensor& y) {
  axpby_loop(alpha, x.data<float>(), beta, y.data<float>(), y.numel());
}

}  // namespace tessera
