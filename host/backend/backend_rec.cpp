// Edge checks of the recommendation ops (Backend::rec_score_forward, ...).
// PLACEHOLDER: being written (issue 17, recommendation steps on the device).
#include "host/backend/backend.h"

namespace tessera {

void Backend::rec_score_forward(const Tensor& out, int64_t dim, float offset, Tensor& score) {
  rec_score_forward_impl(out, dim, offset, score);
}
void Backend::rec_score_backward(const Tensor& out, const Tensor& dscore, int64_t dim, float l2,
                                 float bias_l2, Tensor& dout) {
  rec_score_backward_impl(out, dscore, dim, l2, bias_l2, dout);
}
void Backend::squared_error(const Tensor& pred, const Tensor& target, float grad_scale,
                            Tensor& loss, Tensor& dpred) {
  squared_error_impl(pred, target, grad_scale, loss, dpred);
}
void Backend::pairwise_logistic(const Tensor& scores, int64_t group, float grad_scale, Tensor& loss,
                                Tensor& dscores) {
  pairwise_logistic_impl(scores, group, grad_scale, loss, dscores);
}

}  // namespace tessera
