// Edge checks of the element-wise ops (Backend::mul_add, Backend::axpby).
// PLACEHOLDER: checks and implementations are being written (issue 18, DCN-v2 / Wide & Deep).
#include "host/backend/backend.h"

namespace tessera {

void Backend::mul_add(const Tensor& a, const Tensor& b, float beta, Tensor& y) {
  mul_add_impl(a, b, beta, y);
}

void Backend::axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  axpby_impl(alpha, x, beta, y);
}

}  // namespace tessera
