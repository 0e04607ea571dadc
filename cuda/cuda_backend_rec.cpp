// CudaBackend's recommendation ops: the kernels of cuda/kernels/rec.cu on the backend's stream.
#include "cuda/cuda_backend.h"
#include "cuda/device_guard.h"
#include "cuda/kernels/rec.h"

namespace tessera {
namespace cuda {

void CudaBackend::rec_score_forward_impl(const Tensor& out, int64_t dim, float offset,
                                         Tensor& score) {
  DeviceGuard guard(device_index_);
  launch_rec_score_forward(out.data<float>(), out.dim(0), out.dim(1), dim, offset,
                           score.data<float>(), stream());
}

void CudaBackend::rec_score_backward_impl(const Tensor& out, const Tensor& dscore, int64_t dim,
                                          float l2, float bias_l2, Tensor& dout) {
  DeviceGuard guard(device_index_);
  launch_rec_score_backward(out.data<float>(), dscore.data<float>(), out.dim(0), out.dim(1), dim,
                            l2, bias_l2, dout.data<float>(), stream());
}

void CudaBackend::squared_error_impl(const Tensor& pred, const Tensor& target, float grad_scale,
                                     Tensor& loss, Tensor& dpred) {
  DeviceGuard guard(device_index_);
  launch_squared_error(pred.data<float>(), target.data<float>(), grad_scale, loss.data<float>(),
                       dpred.data<float>(), pred.numel(), stream());
}

void CudaBackend::pairwise_logistic_impl(const Tensor& scores, int64_t group, float grad_scale,
                                         Tensor& loss, Tensor& dscores) {
  DeviceGuard guard(device_index_);
  launch_pairwise_logistic(scores.data<float>(), scores.numel() / group, group, grad_scale,
                           loss.data<float>(), dscores.data<float>(), stream());
}

}  // namespace cuda
}  // namespace tessera
