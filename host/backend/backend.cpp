#include "host/backend/backend.h"

#include <unistd.h>

#include "host/backend/rows_cols.h"

namespace tessera {

int64_t Backend::available_memory_bytes() const {
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

namespace {
void check_f32(const Tensor& t, const char* what) {
  TESSERA_CHECK(t.defined(), what << " is undefined");
  TESSERA_CHECK(t.dtype() == DType::F32, what << " must be f32, got " << t.describe());
}
void check_same_shape(const Tensor& a, const Tensor& b, const char* an, const char* bn) {
  TESSERA_CHECK(a.shape() == b.shape(), an << " " << shape_str(a.shape()) << " and " << bn << " "
                                           << shape_str(b.shape()) << " must have the same shape");
}
int64_t row_width(const Tensor& t) {
  return rows_cols(t).cols;
}
void check_dropout(const DropoutParams& d) {
  TESSERA_CHECK(d.p >= 0.f && d.p < 1.f, "dropout probability " << d.p << " not in [0, 1)");
}
}  // namespace

void Backend::check_here(const Tensor& t, const char* what) const {
  TESSERA_CHECK(t.defined(), what << " is undefined");
  TESSERA_CHECK(t.device() == device(),
                what << " lives on " << t.device().str() << " but the backend is " << name());
}

void Backend::check_elementwise(const Tensor& in, const Tensor& out, const char* in_name,
                                const char* out_name) const {
  check_f32(in, in_name);
  check_f32(out, out_name);
  check_here(in, in_name);
  check_here(out, out_name);
  check_same_shape(in, out, in_name, out_name);
}

Tensor Backend::empty(const Shape& shape, DType dtype) {
  return empty_impl(shape, dtype);
}

Tensor Backend::to_device(const Tensor& host_tensor) {
  TESSERA_CHECK(host_tensor.is_host(), "to_device expects a host tensor");
  Tensor t = empty_impl(host_tensor.shape(), host_tensor.dtype());
  copy_impl(host_tensor, t);
  return t;
}

Tensor Backend::to_host(const Tensor& t) {
  Tensor h = Tensor::host(t.shape(), t.dtype());
  copy_impl(t, h);
  return h;
}

void Backend::copy(const Tensor& src, Tensor& dst) {
  TESSERA_CHECK(src.numel() == dst.numel() && src.dtype() == dst.dtype(),
                "copy " << src.describe() << " -> " << dst.describe());
  copy_impl(src, dst);
}

void Backend::fill(Tensor& t, float value) {
  check_f32(t, "fill target");
  check_here(t, "fill target");
  fill_impl(t, value);
}

void Backend::gemm(Transpose ta, Transpose tb, float alpha, const Tensor& a, const Tensor& b,
                   float beta, Tensor& c) {
  check_f32(a, "gemm A");
  check_f32(b, "gemm B");
  check_f32(c, "gemm C");
  check_here(a, "gemm A");
  check_here(b, "gemm B");
  check_here(c, "gemm C");
  TESSERA_CHECK(
      a.rank() == 2 && b.rank() == 2 && c.rank() == 2,
      "gemm takes matrices: " << a.describe() << " " << b.describe() << " " << c.describe());
  int64_t m = ta == Transpose::No ? a.dim(0) : a.dim(1);
  int64_t k = ta == Transpose::No ? a.dim(1) : a.dim(0);
  int64_t kb = tb == Transpose::No ? b.dim(0) : b.dim(1);
  int64_t n = tb == Transpose::No ? b.dim(1) : b.dim(0);
  TESSERA_CHECK(k == kb && c.dim(0) == m && c.dim(1) == n,
                "gemm shapes: op(A) [" << m << "," << k << "] op(B) [" << kb << "," << n << "] C "
                                       << shape_str(c.shape()));
  if (m == 0 || n == 0) return;
  gemm_impl(ta, tb, m, n, k, alpha, a.data<float>(), a.dim(1), b.data<float>(), b.dim(1), beta,
            c.data<float>(), c.dim(1));
}

void Backend::bias_act_forward(Activation act, const Tensor& x, const Tensor& bias, Tensor& y) {
  check_elementwise(x, y, "x", "y");
  TESSERA_CHECK(x.rank() >= 1, "bias_act_forward needs rows: x is a scalar " << x.describe());
  if (bias.defined()) {
    check_f32(bias, "bias");
    check_here(bias, "bias");
    TESSERA_CHECK(bias.numel() == row_width(x),
                  "bias " << shape_str(bias.shape()) << " for rows of width " << row_width(x));
  }
  if (x.numel() == 0) return;
  bias_act_forward_impl(act, x, bias, y);
}

void Backend::bias_act_backward(Activation act, const Tensor& y, const Tensor& dy, Tensor& dx,
                                Tensor& dbias) {
  check_f32(y, "y");
  check_f32(dy, "dy");
  check_f32(dx, "dx");
  check_here(y, "y");
  check_here(dy, "dy");
  check_here(dx, "dx");
  check_same_shape(y, dy, "y", "dy");
  check_same_shape(y, dx, "y", "dx");
  TESSERA_CHECK(y.rank() >= 1, "bias_act_backward needs rows: y is a scalar " << y.describe());
  if (dbias.defined()) {
    check_f32(dbias, "dbias");
    check_here(dbias, "dbias");
    TESSERA_CHECK(dbias.numel() == row_width(y),
                  "dbias " << shape_str(dbias.shape()) << " for rows of width " << row_width(y));
  }
  bias_act_backward_impl(act, y, dy, dx, dbias);
}

void Backend::dropout_forward(const DropoutParams& d, const Tensor& x, Tensor& y) {
  check_elementwise(x, y, "x", "y");
  check_dropout(d);
  if (x.numel() == 0) return;
  dropout_forward_impl(d, x, y);
}

void Backend::dropout_backward(const DropoutParams& d, const Tensor& dy, Tensor& dx) {
  check_elementwise(dy, dx, "dy", "dx");
  check_dropout(d);
  if (dy.numel() == 0) return;
  dropout_backward_impl(d, dy, dx);
}

void Backend::check_embedding(const Tensor& table, const char* table_name, const Tensor& ids,
                              const Tensor& rows, const char* rows_name) const {
  check_f32(table, table_name);
  check_f32(rows, rows_name);
  check_here(table, table_name);
  check_here(ids, "ids");
  check_here(rows, rows_name);
  TESSERA_CHECK(ids.dtype() == DType::I64, "ids must be i64, got " << ids.describe());
  TESSERA_CHECK(table.rank() == 2, table_name << " must be [V, D], got " << table.describe());
  TESSERA_CHECK(rows.numel() == ids.numel() * table.dim(1),
                rows_name << " " << rows.describe() << " for " << ids.numel() << " ids of width "
                          << table.dim(1));
}

void Backend::embedding_forward(const Tensor& table, const Tensor& ids, Tensor& out) {
  check_embedding(table, "table", ids, out, "out");
  if (ids.numel() == 0) return;
  embedding_forward_impl(table, ids, out);
}

void Backend::embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  check_embedding(dtable, "dtable", ids, dout, "dout");
  if (ids.numel() == 0) return;
  embedding_backward_impl(ids, dout, dtable);
}

void Backend::bce_with_logits(const Tensor& logits, const Tensor& labels, float grad_scale,
                              Tensor& loss, Tensor& dlogits) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&logits, &labels, &loss, &dlogits}) {
    check_f32(*t, "bce tensor");
    check_here(*t, "bce tensor");
  }
  int64_t n = logits.numel();
  TESSERA_CHECK(logits.rank() == 1 || (logits.rank() == 2 && logits.dim(1) == 1),
                "bce logits must be [N] or [N,1], got " << logits.describe());
  TESSERA_CHECK(labels.numel() == n && loss.numel() == n && dlogits.numel() == n,
                "bce: logits " << logits.describe() << " labels " << labels.describe() << " loss "
                               << loss.describe() << " dlogits " << dlogits.describe());
  if (n == 0) return;
  bce_with_logits_impl(logits, labels, grad_scale, loss, dlogits);
}

void Backend::softmax_xent(const Tensor& logits, const Tensor& labels, float grad_scale,
                           Tensor& loss, Tensor& dlogits) {
  check_f32(logits, "logits");
  check_f32(loss, "loss");
  check_f32(dlogits, "dlogits");
  for (const Tensor* t : std::initializer_list<const Tensor*>{&logits, &labels, &loss, &dlogits})
    check_here(*t, "softmax tensor");
  TESSERA_CHECK(labels.dtype() == DType::I32,
                "softmax labels must be i32, got " << labels.describe());
  TESSERA_CHECK(logits.rank() == 2 && logits.dim(1) >= 1,
                "logits must be [N, C], got " << logits.describe());
  int64_t n = logits.dim(0);
  TESSERA_CHECK(labels.numel() == n && loss.numel() == n,
                "softmax: labels " << labels.describe() << " loss " << loss.describe());
  check_same_shape(logits, dlogits, "logits", "dlogits");
  if (n == 0) return;
  softmax_xent_impl(logits, labels, grad_scale, loss, dlogits);
}

void Backend::sgd_update(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                         Tensor& velocity) {
  check_f32(param, "param");
  check_f32(grad, "grad");
  check_here(param, "param");
  check_here(grad, "grad");
  check_same_shape(param, grad, "param", "grad");
  if (p.momentum != 0.f) {
    check_here(velocity, "velocity");
    check_same_shape(param, velocity, "param", "velocity");
  }
  if (param.numel() == 0) return;
  sgd_update_impl(p, param, grad, velocity);
}

void Backend::adam_update(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                          Tensor& v) {
  for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad, &m, &v}) {
    check_f32(*t, "adam tensor");
    check_here(*t, "adam tensor");
  }
  check_same_shape(param, grad, "param", "grad");
  check_same_shape(param, m, "param", "m");
  check_same_shape(param, v, "param", "v");
  if (param.numel() == 0) return;
  adam_update_impl(p, param, grad, m, v);
}

}  // namespace tessera
