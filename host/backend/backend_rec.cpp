// Edge checks of the recommendation ops (Backend::rec_score_forward, rec_score_backward,
// squared_error, pairwise_logistic): every tensor f32 and on this backend, shapes as backend.h
// states them; an empty batch is a no-op.
#include <initializer_list>

#include "host/backend/backend.h"
#include "host/core/error.h"

namespace tessera {
namespace {

void check_rec_f32(const Tensor& t, const char* what) {
  TESSERA_CHECK(t.defined(), what << " is undefined");
  TESSERA_CHECK(t.dtype() == DType::F32, what << " must be f32, got " << t.describe());
}

// out [S, W], W >= 2 * dim, dim >= 1.
void check_score_rows(const Tensor& out, int64_t dim, const char* op) {
  TESSERA_CHECK(out.rank() == 2, op << ": out must be [S, W], got " << out.describe());
  TESSERA_CHECK(dim >= 1, op << ": dim must be >= 1, got " << dim);
  TESSERA_CHECK(out.dim(1) >= 2 * dim, op << ": out " << out.describe()
                                          << " is narrower than 2 * dim = " << 2 * dim
                                          << " (p | q columns)");
}

// A per-sample vector: [n] or [n, 1].
void check_vector(const Tensor& t, int64_t n, const char* what, const char* op) {
  TESSERA_CHECK(t.numel() == n && (t.rank() == 1 || (t.rank() == 2 && t.dim(1) == 1)),
                op << ": " << what << " must be [" << n << "], got " << t.describe());
}

}  // namespace

void Backend::rec_score_forward(const Tensor& out, int64_t dim, float offset, Tensor& score) {
  for (const Tensor* t : {&out, static_cast<const Tensor*>(&score)}) {
    check_rec_f32(*t, "rec_score_forward tensor");
    check_here(*t, "rec_score_forward tensor");
  }
  check_score_rows(out, dim, "rec_score_forward");
  check_vector(score, out.dim(0), "score", "rec_score_forward");
  if (out.dim(0) == 0) return;
  rec_score_forward_impl(out, dim, offset, score);
}

void Backend::rec_score_backward(const Tensor& out, const Tensor& dscore, int64_t dim, float l2,
                                 float bias_l2, Tensor& dout) {
  for (const Tensor* t : {&out, &dscore, static_cast<const Tensor*>(&dout)}) {
    check_rec_f32(*t, "rec_score_backward tensor");
    check_here(*t, "rec_score_backward tensor");
  }
  check_score_rows(out, dim, "rec_score_backward");
  check_vector(dscore, out.dim(0), "dscore", "rec_score_backward");
  TESSERA_CHECK(dout.shape() == out.shape(), "rec_score_backward: dout "
                                                 << dout.describe() << " must have out's shape "
                                                 << out.describe());
  if (out.dim(0) == 0) return;
  rec_score_backward_impl(out, dscore, dim, l2, bias_l2, dout);
}

void Backend::squared_error(const Tensor& pred, const Tensor& target, float grad_scale,
                            Tensor& loss, Tensor& dpred) {
  for (const Tensor* t :
       {&pred, &target, static_cast<const Tensor*>(&loss), static_cast<const Tensor*>(&dpred)}) {
    check_rec_f32(*t, "squared_error tensor");
    check_here(*t, "squared_error tensor");
  }
  const int64_t n = pred.numel();
  check_vector(pred, n, "pred", "squared_error");
  check_vector(target, n, "target", "squared_error");
  check_vector(loss, n, "loss", "squared_error");
  check_vector(dpred, n, "dpred", "squared_error");
  if (n == 0) return;
  squared_error_impl(pred, target, grad_scale, loss, dpred);
}

void Backend::pairwise_logistic(const Tensor& scores, int64_t group, float grad_scale, Tensor& loss,
                                Tensor& dscores) {
  for (const Tensor* t :
       {&scores, static_cast<const Tensor*>(&loss), static_cast<const Tensor*>(&dscores)}) {
    check_rec_f32(*t, "pairwise_logistic tensor");
    check_here(*t, "pairwise_logistic tensor");
  }
  TESSERA_CHECK(group >= 2,
                "pairwise_logistic: group must be >= 2 (a positive and at least one "
                "negative), got "
                    << group);
  const int64_t total = scores.numel();
  TESSERA_CHECK(total % group == 0, "pairwise_logistic: scores "
                                        << scores.describe()
                                        << " is not a whole number of groups of " << group);
  check_vector(scores, total, "scores", "pairwise_logistic");
  check_vector(loss, total / group, "loss", "pairwise_logistic");
  check_vector(dscores, total, "dscores", "pairwise_logistic");
  if (total == 0) return;
  pairwise_logistic_impl(scores, group, grad_scale, loss, dscores);
}

}  // namespace tessera
