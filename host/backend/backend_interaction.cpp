// Edge checks of the DLRM dot-interaction op (Backend::dot_interaction_forward / _backward).
#include "host/backend/backend.h"
#include "host/core/interaction.h"

namespace tessera {

namespace {

// dense [B, d], emb [B, F*d] with F >= 1; returns F.
int64_t check_interaction_inputs(const Tensor& dense, const Tensor& emb) {
  TESSERA_CHECK(dense.defined() && dense.dtype() == DType::F32 && dense.rank() == 2,
                "dot interaction: dense must be f32 [B, d], got " << dense.describe());
  TESSERA_CHECK(emb.defined() && emb.dtype() == DType::F32 && emb.rank() == 2,
                "dot interaction: emb must be f32 [B, F*d], got " << emb.describe());
  const int64_t d = dense.dim(1);
  TESSERA_CHECK(d >= 1, "dot interaction: dense width must be >= 1, got " << dense.describe());
  TESSERA_CHECK(emb.dim(0) == dense.dim(0), "dot interaction: emb "
                                                << emb.describe() << " and dense "
                                                << dense.describe() << " differ in batch");
  TESSERA_CHECK(emb.dim(1) >= d && emb.dim(1) % d == 0,
                "dot interaction: emb width " << emb.dim(1) << " is not F * d for d = " << d
                                              << " and some F >= 1");
  return emb.dim(1) / d;
}

void check_same_shape(const Tensor& t, const Shape& want, const char* what) {
  TESSERA_CHECK(t.defined() && t.dtype() == DType::F32 && t.shape() == want,
                "dot interaction: " << what << " must be f32 " << shape_str(want) << ", got "
                                    << t.describe());
}

}  // namespace

void Backend::dot_interaction_forward(const Tensor& dense, const Tensor& emb, Tensor& y) {
  const int64_t f = check_interaction_inputs(dense, emb);
  const int64_t b = dense.dim(0), d = dense.dim(1);
  check_same_shape(y, {b, d + math::interaction_pairs(f + 1)}, "y");
  check_here(dense, "dense");
  check_here(emb, "emb");
  check_here(y, "y");
  if (b == 0) return;
  dot_interaction_forward_impl(dense, emb, y);
}

void Backend::dot_interaction_backward(const Tensor& dense, const Tensor& emb, const Tensor& dy,
                                       Tensor& ddense, Tensor& demb) {
  const int64_t f = check_interaction_inputs(dense, emb);
  const int64_t b = dense.dim(0), d = dense.dim(1);
  check_same_shape(dy, {b, d + math::interaction_pairs(f + 1)}, "dy");
  check_same_shape(ddense, dense.shape(), "ddense");
  check_same_shape(demb, emb.shape(), "demb");
  check_here(dense, "dense");
  check_here(emb, "emb");
  check_here(dy, "dy");
  check_here(ddense, "ddense");
  check_here(demb, "demb");
  if (b == 0) return;
  dot_interaction_backward_impl(dense, emb, dy, ddense, demb);
}

}  // namespace tessera
