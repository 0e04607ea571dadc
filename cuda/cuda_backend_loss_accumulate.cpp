// CudaBackend::loss_accumulate. PLACEHOLDER: being written (issue 17).
#include "cuda/cuda_backend.h"

#include "host/core/error.h"

namespace tessera {
namespace cuda {

void CudaBackend::loss_accumulate_impl(const Tensor&, float, Tensor&) {
  TESSERA_THROW(Internal, "loss_accumulate is not written yet");
}

}  // namespace cuda
}  // namespace tessera
