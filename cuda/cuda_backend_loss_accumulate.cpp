// CudaBackend::loss_accumulate: one kernel on the backend's stream, nothing read back, so a
// training step that hands its losses to the Trainer makes no host synchronisation.
#include "cuda/cuda_backend.h"
#include "cuda/device_guard.h"
#include "cuda/kernels/loss_accumulate.h"

namespace tessera {
namespace cuda {

void CudaBackend::loss_accumulate_impl(const Tensor& loss, float step, Tensor& acc) {
  DeviceGuard guard(device_index_);
  launch_loss_accumulate(loss.data<float>(), loss.numel(), step, acc.data<float>(), stream());
}

}  // namespace cuda
}  // namespace tessera
