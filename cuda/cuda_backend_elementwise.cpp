// CudaBackend's element-wise ops. PLACEHOLDER: being written (issue 18, DCN-v2 / Wide & Deep).
#include "cuda/cuda_backend.h"

#include "host/core/error.h"

namespace tessera {
namespace cuda {

void CudaBackend::mul_add_impl(const Tensor&, const Tensor&, float, Tensor&) {
  TESSERA_THROW(Internal, "mul_add is not written yet");
}
void CudaBackend::axpby_impl(float, const Tensor&, float, Tensor&) {
  TESSERA_THROW(Internal, "axpby is not written yet");
}

}  // namespace cuda
}  // namespace tessera
