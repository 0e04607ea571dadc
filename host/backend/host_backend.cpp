#include "host/backend/host_backend.h"

#include "host/backend/host_loops.h"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tessera {


// Work sizes below which an op runs on the calling thread (see gemm_impl).
constexpr double kParallelGemmFlops = 64.0 * 1024 * 1024;
using host_loops::kParallelElements;

Tensor HostBackend::empty_impl(const Shape& shape, DType dtype) { return Tensor::host(shape, dtype); }

void HostBackend::copy_impl(const Tensor& src, Tensor& dst) {
  // Host-to-host only; the CUDA backend handles every copy that touches the device.
  TESSERA_CHECK(src.is_host() && dst.is_host(), "host backend copy between "
                                                    << src.describe() << " and " << dst.describe());
  if (src.bytes()) std::memmove(dst.raw(), src.raw(), src.bytes());
}

void HostBackend::fill_impl(Tensor& t, float value) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

void HostBackend::gemm_impl(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k,
                            float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                            float beta, float* c, int64_t ldc) {
  if (k == 0) {  // oneDNN rejects K = 0; C = beta * C.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  // Small products run on the calling thread: waking the other threads for an MLP-sized GEMM
  // costs more than it saves, and on a busy 2-core machine a barrier with a descheduled thread
  // costs milliseconds (measured: 25x slower training with 2 threads than 1 on uci-adult).
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = omp_get_max_threads();
  const bool serial = flops < kParallelGemmFlops && threads > 1;
  if (serial) omp_set_num_threads(1);
  dnnl_status_t st = dnnl_sgemm(ta == Transpose::Yes ? 'T' : 'N', tb == Transpose::Yes ? 'T' : 'N',
                                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (serial) omp_set_num_threads(threads);
  if (st != dnnl_success) TESSERA_THROW(Backend, "oneDNN sgemm failed with status " << st);
}

void HostBackend::bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                                        Tensor& y) {
  const int64_t rows = x.dim(0);  // rank >= 1 (checked at the edge); [N] is N rows of width 1
  host_loops::bias_act_forward(act, x.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                               y.data<float>(), rows, rows ? x.numel() / rows : 0);
}

void HostBackend::bias_act_backward_impl(Activation act, const Tensor& y, const Tensor& dy,
                                         Tensor& dx, Tensor& dbias) {
  const int64_t rows = y.dim(0);
  host_loops::bias_act_backward(act, y.data<float>(), dy.data<float>(), dx.data<float>(),
                                dbias.defined() ? dbias.data<float>() : nullptr, rows,
                                rows ? y.numel() / rows : 0);
}

void HostBackend::dropout_forward_impl(const DropoutParams& d, const Tensor& x, Tensor& y) {
  host_loops::dropout(d.seed, d.p, x.data<float>(), y.data<float>(), x.numel());
}

void HostBackend::dropout_backward_impl(const DropoutParams& d, const Tensor& dy, Tensor& dx) {
  host_loops::dropout(d.seed, d.p, dy.data<float>(), dx.data<float>(), dy.numel());  // same mask
}

void HostBackend::embedding_forward_impl(const Tensor& table, const Tensor& ids, Tensor& out) {
  const int64_t n = ids.numel();
  const int64_t v = table.dim(0);
  const int64_t d = table.dim(1);
  const int64_t* idp = ids.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (idp[i] < 0 || idp[i] >= v)
      TESSERA_THROW(Data, "embedding id " << idp[i] << " at position " << i
                                          << " is outside the table's rows [0, " << v << ")");
  }
  const float* tp = table.data<float>();
  float* op = out.data<float>();
#pragma omp parallel for schedule(static) if (n * d > kParallelElements)
  for (int64_t i = 0; i < n; ++i) std::memcpy(op + i * d, tp + idp[i] * d, d * sizeof(float));
}

void HostBackend::embedding_backward_impl(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const int64_t n = ids.numel();
  const int64_t v = dtable.dim(0);
  const int64_t d = dtable.dim(1);
  const int64_t* idp = ids.data<int64_t>();
  const float* gp = dout.data<float>();
  float* tp = dtable.data<float>();
  // All ids are checked before anything is accumulated, so a bad id leaves dtable untouched.
  for (int64_t i = 0; i < n; ++i) {
    if (idp[i] < 0 || idp[i] >= v)
      TESSERA_THROW(Data, "embedding id " << idp[i] << " at position " << i
                                          << " is outside the table's rows [0, " << v << ")");
  }
  // Sequential in id order of appearance: deterministic accumulation.
  for (int64_t i = 0; i < n; ++i) {
    float* row = tp + idp[i] * d;
    const float* g = gp + i * d;
    for (int64_t j = 0; j < d; ++j) row[j] += g[j];
  }
}

void HostBackend::bce_with_logits_impl(const Tensor& logits, const Tensor& labels,
                                       float grad_scale, Tensor& loss, Tensor& dlogits) {
  const float* z = logits.data<float>();
  const float* y = labels.data<float>();
  float* l = loss.data<float>();
  float* g = dlogits.data<float>();
  const int64_t n = logits.numel();
  for (int64_t i = 0; i < n; ++i) {
    l[i] = math::bce_with_logits_loss(z[i], y[i]);
    g[i] = grad_scale * math::bce_with_logits_grad(z[i], y[i]);
  }
}

void HostBackend::softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                                    Tensor& loss, Tensor& dlogits) {
  const int64_t n = logits.dim(0);
  const int64_t c = logits.dim(1);
  const float* z = logits.data<float>();
  const int32_t* y = labels.data<int32_t>();
  float* l = loss.data<float>();
  float* g = dlogits.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (y[i] < 0 || y[i] >= c)
      TESSERA_THROW(Data, "class label " << y[i] << " at row " << i << " is outside [0, " << c
                                         << ")");
  }
#pragma omp parallel for schedule(static) if (n * c > kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * c;
    float* gi = g + i * c;
    float mx = zi[0];
    for (int64_t j = 1; j < c; ++j) mx = std::max(mx, zi[j]);
    float sum = 0.f;
    for (int64_t j = 0; j < c; ++j) sum += std::exp(zi[j] - mx);
    const float lse = mx + std::log(sum);
    l[i] = lse - zi[y[i]];
    for (int64_t j = 0; j < c; ++j)
      gi[j] = grad_scale * (std::exp(zi[j] - lse) - (j == y[i] ? 1.f : 0.f));
  }
}

void HostBackend::sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                                  Tensor& velocity) {
  host_loops::sgd(p, param.data<float>(), grad.data<float>(),
                  p.momentum != 0.f ? velocity.data<float>() : nullptr, param.numel());
}

void HostBackend::adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad,
                                   Tensor& m, Tensor& v) {
  host_loops::adam(p, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                   param.numel());
}

std::unique_ptr<Backend> make_host_backend() { return std::make_unique<HostBackend>(); }

}  // namespace tessera
