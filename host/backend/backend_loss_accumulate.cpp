// Edge checks of Backend::loss_accumulate.
// PLACEHOLDER: being written (issue 17, no host synchronisation inside a training step).
#include "host/backend/backend.h"

namespace tessera {

void Backend::loss_accumulate(const Tensor& loss, float step, Tensor& acc) {
  loss_accumulate_impl(loss, step, acc);
}

}  // namespace tessera
