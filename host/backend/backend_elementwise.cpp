// Edge checks of the element-wise ops (Backend::mul_add, Backend::axpby): every tensor f32, on
// this backend and of one shape; an empty shape is a no-op.
#include "host/backend/backend.h"

#include "host/core/error.h"

namespace tessera {

void Backend::mul_add(const Tensor& a, const Tensor& b, float beta, Tensor& y) {
  check_elementwise(a, y, "mul_add a", "mul_add y");
  check_elementwise(b, y, "mul_add b", "mul_add y");
  if (y.numel() == 0) return;
  mul_add_impl(a, b, beta, y);
}

void Backend::axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  check_elementwise(x, y, "axpby x", "axpby y");
  if (y.numel() == 0) return;
  axpby_impl(alpha, x, beta, y);
}

}  // namespace tessera
