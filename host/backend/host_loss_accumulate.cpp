// HostBackend::loss_accumulate. PLACEHOLDER: being written (issue 17).
#include "host/backend/host_backend.h"

#include "host/core/error.h"

namespace tessera {

void HostBackend::loss_accumulate_impl(const Tensor&, float, Tensor&) {
  TESSERA_THROW(Internal, "loss_accumulate is not written yet");
}

}  // namespace tessera
