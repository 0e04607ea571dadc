// HostBackend's recommendation ops. PLACEHOLDER: being written (issue 17).
#include "host/backend/host_backend.h"

#include "host/core/error.h"

namespace tessera {

void HostBackend::rec_score_forward_impl(const Tensor&, int64_t, float, Tensor&) {
  TESSERA_THROW(Internal, "rec_score_forward is not written yet");
}
void HostBackend::rec_score_backward_impl(const Tensor&, const Tensor&, int64_t, float, float,
                                          Tensor&) {
  TESSERA_THROW(Internal, "rec_score_backward is not written yet");
}
void HostBackend::squared_error_impl(const Tensor&, const Tensor&, float, Tensor&, Tensor&) {
  TESSERA_THROW(Internal, "squared_error is not written yet");
}
void HostBackend::pairwise_logistic_impl(const Tensor&, int64_t, float, Tensor&, Tensor&) {
  TESSERA_THROW(Internal, "pairwise_logistic is not written yet");
}

}  // namespace tessera
