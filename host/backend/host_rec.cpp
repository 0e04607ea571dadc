// HostBackend's recommendation ops (backend.h, "recommendation scores and losses"): dot products
// and losses accumulate in double, as the models' former host loops did, and round once to f32.
// Rows are independent, so large batches split over OpenMP threads; a recommendation batch is
// usually a few hundred KiB, where a team's fork and barriers cost more than the work, so small
// ones run on the calling thread (the results do not depend on the thread count).
#include <cmath>

#include "host/backend/host_backend.h"

namespace tessera {
namespace {

// Elements (rows x width) from which a loop is worth an OpenMP team.
constexpr int64_t kParallelElements = int64_t{1} << 21;

double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace

void HostBackend::rec_score_forward_impl(const Tensor& out, int64_t dim, float offset,
                                         Tensor& score) {
  const int64_t S = out.dim(0), W = out.dim(1);
  const float* o = out.data<float>();
  float* sc = score.data<float>();
#pragma omp parallel for schedule(static) if (S * W >= kParallelElements)
  for (int64_t s = 0; s < S; ++s) {
    const float* p = o + s * W;
    const float* q = p + dim;
    double dot = 0;
    for (int64_t k = 0; k < dim; ++k) dot += static_cast<double>(p[k]) * q[k];
    // The offset and bias columns add in f32, then the dot product in double: the models'
    // former host loops did exactly this (mu + b_u + b_i + dot), so scores are unchanged.
    float bias = offset;
    for (int64_t j = 2 * dim; j < W; ++j) bias += p[j];
    sc[s] = static_cast<float>(bias + dot);
  }
}

void HostBackend::rec_score_backward_impl(const Tensor& out, const Tensor& dscore, int64_t dim,
                                          float l2, float bias_l2, Tensor& dout) {
  const int64_t S = out.dim(0), W = out.dim(1);
  const float* o = out.data<float>();
  const float* ds = dscore.data<float>();
  float* g = dout.data<float>();
#pragma omp parallel for schedule(static) if (S * W >= kParallelElements)
  for (int64_t s = 0; s < S; ++s) {
    const float* p = o + s * W;
    float* gs = g + s * W;
    const float d = ds[s];
    for (int64_t k = 0; k < dim; ++k) {
      gs[k] = d * p[dim + k] + l2 * p[k];
      gs[dim + k] = d * p[k] + l2 * p[dim + k];
    }
    for (int64_t j = 2 * dim; j < W; ++j) gs[j] = d + bias_l2 * p[j];
  }
}

void HostBackend::squared_error_impl(const Tensor& pred, const Tensor& target, float grad_scale,
                                     Tensor& loss, Tensor& dpred) {
  const int64_t n = pred.numel();
  const float* p = pred.data<float>();
  const float* t = target.data<float>();
  float* l = loss.data<float>();
  float* g = dpred.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float e = p[i] - t[i];
    l[i] = e * e;
    g[i] = grad_scale * e;
  }
}

void HostBackend::pairwise_logistic_impl(const Tensor& scores, int64_t group, float grad_scale,
                                         Tensor& loss, Tensor& dscores) {
  const int64_t n = scores.numel() / group;
  const float* sc = scores.data<float>();
  float* l = loss.data<float>();
  float* g = dscores.data<float>();
#pragma omp parallel for schedule(static) if (n * group >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float* s = sc + i * group;
    float* gs = g + i * group;
    double sum = 0, dpos = 0;
    for (int64_t j = 1; j < group; ++j) {
      const double x = static_cast<double>(s[0]) - s[j];  // the positive's margin over negative j
      sum += softplus(-x);
      const double dx = -sigmoid(-x);  // d softplus(-x) / dx
      dpos += dx;
      gs[j] = static_cast<float>(grad_scale * -dx);
    }
    gs[0] = static_cast<float>(grad_scale * dpos);
    l[i] = static_cast<float>(sum);
  }
}

}  // namespace tessera
