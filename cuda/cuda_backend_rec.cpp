// CudaBackend's recommendation ops. PLACEHOLDER: being written (issue 17).
#include "cuda/cuda_backend.h"

#include "host/core/error.h"

namespace tessera {
namespace cuda {

void CudaBackend::rec_score_forward_impl(const Tensor&, int64_t, float, Tensor&) {
  TESSERA_THROW(Internal, "rec_score_forward is not written yet");
}
void CudaBackend::rec_score_backward_impl(const Tensor&, const Tensor&, int64_t, float, float,
                                          Tensor&) {
  TESSERA_THROW(Internal, "rec_score_backward is not written yet");
}
void CudaBackend::squared_error_impl(const Tensor&, const Tensor&, float, Tensor&, Tensor&) {
  TESSERA_THROW(Internal, "squared_error is not written yet");
}
void CudaBackend::pairwise_logistic_impl(const Tensor&, int64_t, float, Tensor&, Tensor&) {
  TESSERA_THROW(Internal, "pairwise_logistic is not written yet");
}

}  // namespace cuda
}  // namespace tessera
