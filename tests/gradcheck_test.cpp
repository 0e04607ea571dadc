// Finite-difference gradient checks for every op with a backward, on the host backend and on each
// parity backend that is usable here (the same skip logic as the parity suite).
//
// For an op y = f(x) the check builds the scalar loss L(x) = sum(w .* f(x)) with fixed random
// weights w, so dL/dy = w; it runs the op's backward with dy = w (the analytic gradient) and
// compares every element with the central difference (L(x + eps) - L(x - eps)) / (2 eps), where L
// is accumulated in double on the host from the backend's float outputs. Elements of y that a
// perturbation does not touch come out bit-identical and cancel exactly, so the numeric noise is
// only that of the touched elements: ~1e-7 / eps. Tolerances (abs 1e-3 + rel 1e-2) are far below
// the size of a sign error, a missing factor or a wrong activation derivative; the
// GradCheckSelfTest cases prove the checker rejects such gradients.
//
// Also: optimizer trajectories (Adam, AdamW, SGD with Nesterov momentum and weight decay) against
// references written independently here in double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/backends.h"
#include "tests/support/tensor_check.h"

namespace tessera::test {
namespace {

constexpr float kEps = 1e-2f;
struct GradTolerance {
  double abs = 1e-3;
  double rel = 1e-2;
};

// sum(w .* y) in double. y and w are host f32 tensors with the same number of elements.
double weighted_sum(const Tensor& y, const Tensor& w) {
  double s = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i)
    s += static_cast<double>(w.data<float>()[i]) * y.data<float>()[i];
  return s;
}

// Compares `analytic` (host, same shape as x0) with central differences of loss(x) around x0 for
// every element. loss receives a host tensor equal to x0 except for the perturbed element.
::testing::AssertionResult check_gradient(const std::string& what, const Tensor& x0,
                                          const Tensor& analytic,
                                          const std::function<double(const Tensor&)>& loss,
                                          GradTolerance tol = {}, float eps = kEps) {
  if (analytic.shape() != x0.shape())
    return ::testing::AssertionFailure() << what << ": analytic gradient " << analytic.describe()
                                         << " for input " << x0.describe();
  Tensor x = clone_host(x0);
  float* xp = x.data<float>();
  int64_t bad = 0, first = -1;
  double first_num = 0, first_ana = 0, max_err = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float orig = xp[i];
    const float hi = orig + eps;
    const float lo = orig - eps;
    xp[i] = hi;
    const double l_hi = loss(x);
    xp[i] = lo;
    const double l_lo = loss(x);
    xp[i] = orig;
    // The float step actually taken, not 2*eps (hi and lo are rounded).
    const double numeric = (l_hi - l_lo) / (static_cast<double>(hi) - lo);
    const double ana = analytic.data<float>()[i];
    const double err = std::fabs(numeric - ana);
    max_err = std::max(max_err, err);
    if (!(err <= tol.abs + tol.rel * std::max(std::fabs(numeric), std::fabs(ana)))) {
      if (first < 0) {
        first = i;
        first_num = numeric;
        first_ana = ana;
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << x.numel() << " gradient elements disagree with the "
         << "central difference (eps " << eps << ", tolerance abs " << tol.abs << " + rel "
         << tol.rel << "); max abs err " << max_err << "; first at " << index_str(x.shape(), first)
         << ": analytic " << first_ana << ", numeric " << first_num;
}

Tensor zeros(const Shape& s) {
  return Tensor::host(s, DType::F32);
}

// ---- the parameterised fixture -----------------------------------------------------------------

class GradCheck : public ::testing::TestWithParam<std::string> {};

std::vector<std::string> gradcheck_specs() {
  std::vector<std::string> specs{"cpu"};
  for (const std::string& s : parity_backend_specs())
    if (s != "cpu") specs.push_back(s);  // already there (TESSERA_PARITY_BACKENDS may name it)
  return specs;
}

// ---- gemm --------------------------------------------------------------------------------------

Transpose flip(Transpose t) {
  return t == Transpose::No ? Transpose::Yes : Transpose::No;
}

// For C = alpha op(A) op(B) + beta C0 and an upstream gradient dC, the gradients of A and B in
// their stored layouts, each one gemm call:
//   dA = alpha dC op(B)^T  (A stored [M,K])     dA = alpha op(B) dC^T  (A stored [K,M])
//   dB = alpha op(A)^T dC  (B stored [K,N])     dB = alpha dC^T op(A)  (B stored [N,K])
void gemm_backward(Backend& be, Transpose ta, Transpose tb, float alpha, const Tensor& a,
                   const Tensor& b, const Tensor& dc, Tensor& da, Tensor& db) {
  if (ta == Transpose::No)
    be.gemm(Transpose::No, flip(tb), alpha, dc, b, 0.f, da);
  else
    be.gemm(tb, Transpose::Yes, alpha, b, dc, 0.f, da);
  if (tb == Transpose::No)
    be.gemm(flip(ta), Transpose::No, alpha, a, dc, 0.f, db);
  else
    be.gemm(Transpose::Yes, ta, alpha, dc, a, 0.f, db);
}

TEST_P(GradCheck, Gemm) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  const int64_t m = 3, n = 4, k = 5;
  const float alpha = 1.5f, beta = 0.5f;
  for (Transpose ta : {Transpose::No, Transpose::Yes})
    for (Transpose tb : {Transpose::No, Transpose::Yes}) {
      SCOPED_TRACE(std::string("ta=") + (ta == Transpose::Yes ? "T" : "N") +
                   " tb=" + (tb == Transpose::Yes ? "T" : "N"));
      Rng rng(seed_from("gemm") + static_cast<int>(ta) * 2 + static_cast<int>(tb));
      const Tensor a = random_f32(ta == Transpose::No ? Shape{m, k} : Shape{k, m}, rng);
      const Tensor b = random_f32(tb == Transpose::No ? Shape{k, n} : Shape{n, k}, rng);
      const Tensor c0 = random_f32({m, n}, rng);
      const Tensor w = random_f32({m, n}, rng);  // dL/dC
      auto forward = [&](const Tensor& ah, const Tensor& bh) {
        Tensor c = be->to_device(c0);
        be->gemm(ta, tb, alpha, be->to_device(ah), be->to_device(bh), beta, c);
        return weighted_sum(be->to_host(c), w);
      };
      Tensor da = be->empty(a.shape());
      Tensor db = be->empty(b.shape());
      gemm_backward(*be, ta, tb, alpha, be->to_device(a), be->to_device(b), be->to_device(w), da,
                    db);
      EXPECT_TRUE(
          check_gradient("dA", a, be->to_host(da), [&](const Tensor& x) { return forward(x, b); }));
      EXPECT_TRUE(
          check_gradient("dB", b, be->to_host(db), [&](const Tensor& x) { return forward(a, x); }));
    }
}

// ---- bias + activation -------------------------------------------------------------------------

// x [rows, cols] and bias [cols] with every pre-activation x + bias at least 0.1 away from 0, so a
// +-eps perturbation never crosses the ReLU kink.
void make_away_from_kink(Tensor& x, const Tensor& bias) {
  const int64_t cols = x.dim(1);
  for (int64_t i = 0; i < x.numel(); ++i) {
    float& xi = x.data<float>()[i];
    const float pre = xi + bias.data<float>()[i % cols];
    if (std::fabs(pre) < 0.1f) xi += pre >= 0.f ? 0.2f : -0.2f;
  }
}

TEST_P(GradCheck, BiasAct) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (Activation act : {Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh})
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE("activation " + std::to_string(static_cast<int>(act)) +
                   (with_bias ? " with bias" : " without bias"));
      Rng rng(seed_from("bias_act") + static_cast<int>(act));
      Tensor x = random_f32({4, 5}, rng, -2.f, 2.f);
      Tensor bias = with_bias ? random_f32({5}, rng) : zeros({5});
      make_away_from_kink(x, bias);
      const Tensor w = random_f32({4, 5}, rng);
      auto forward = [&](const Tensor& xh, const Tensor& bh) {
        Tensor y = be->empty(xh.shape());
        be->bias_act_forward(act, be->to_device(xh), with_bias ? be->to_device(bh) : Tensor(), y);
        return weighted_sum(be->to_host(y), w);
      };
      Tensor y = be->empty({4, 5});
      be->bias_act_forward(act, be->to_device(x), with_bias ? be->to_device(bias) : Tensor(), y);
      Tensor dx = be->empty({4, 5});
      Tensor dbias = with_bias ? be->empty({5}) : Tensor();
      be->bias_act_backward(act, y, be->to_device(w), dx, dbias);
      EXPECT_TRUE(check_gradient("dx", x, be->to_host(dx),
                                 [&](const Tensor& t) { return forward(t, bias); }));
      if (with_bias) {
        EXPECT_TRUE(check_gradient("dbias", bias, be->to_host(dbias),
                                   [&](const Tensor& t) { return forward(x, t); }));
      }
    }
}

// ---- dropout -----------------------------------------------------------------------------------

TEST_P(GradCheck, Dropout) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (float p : {0.f, 0.4f}) {
    SCOPED_TRACE("p = " + std::to_string(p));
    Rng rng(seed_from("dropout"));
    const DropoutParams d{p, /*seed=*/77};
    const Tensor x = random_f32({6, 7}, rng);
    const Tensor w = random_f32({6, 7}, rng);
    auto forward = [&](const Tensor& xh) {
      Tensor y = be->empty(xh.shape());
      be->dropout_forward(d, be->to_device(xh), y);
      return weighted_sum(be->to_host(y), w);
    };
    Tensor dx = be->empty({6, 7});
    be->dropout_backward(d, be->to_device(w), dx);
    const Tensor dxh = be->to_host(dx);
    EXPECT_TRUE(check_gradient("dx", x, dxh, forward));
    int64_t dropped = 0;
    for (int64_t i = 0; i < dxh.numel(); ++i) dropped += dxh.data<float>()[i] == 0.f;
    if (p > 0.f) {
      EXPECT_GT(dropped, 0) << "the mask should drop something at p = " << p;
      EXPECT_LT(dropped, dxh.numel()) << "the mask should keep something at p = " << p;
    } else {
      EXPECT_EQ(dropped, 0);
    }
  }
}

// ---- embedding ---------------------------------------------------------------------------------

TEST_P(GradCheck, Embedding) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  Rng rng(seed_from("embedding"));
  const Tensor table = random_f32({6, 3}, rng);
  // Duplicates (row 2 three times) and unused rows (1, 3, 4 must get exactly zero gradient).
  const Tensor ids = Tensor::host_from<int64_t>({5}, {0, 2, 2, 5, 2});
  const Tensor w = random_f32({5, 3}, rng);
  auto forward = [&](const Tensor& th) {
    Tensor out = be->empty({5, 3});
    be->embedding_forward(be->to_device(th), be->to_device(ids), out);
    return weighted_sum(be->to_host(out), w);
  };
  Tensor dtable = be->empty({6, 3});  // zero-filled; backward accumulates
  be->embedding_backward(be->to_device(ids), be->to_device(w), dtable);
  const Tensor dth = be->to_host(dtable);
  EXPECT_TRUE(check_gradient("dtable", table, dth, forward));
  for (int64_t row : {1, 3, 4})
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(dth.data<float>()[row * 3 + j], 0.f) << "row " << row;
}

// ---- DLRM dot interaction ----------------------------------------------------------------------

// Gradients w.r.t. both inputs, for F = 1 (a single pair with the dense vector), a width that is
// not a multiple of 4 and several embeddings.
TEST_P(GradCheck, DotInteraction) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  struct S {
    int64_t batch, d, f;
  };
  for (S s : {S{1, 4, 1}, S{3, 5, 4}}) {
    Rng rng(seed_from("dot_interaction" + std::to_string(s.f)));
    const int64_t width = s.d + s.f * (s.f + 1) / 2;
    const Tensor dense = random_f32({s.batch, s.d}, rng);
    const Tensor emb = random_f32({s.batch, s.f * s.d}, rng);
    const Tensor w = random_f32({s.batch, width}, rng);
    auto loss = [&](const Tensor& dh, const Tensor& eh) {
      Tensor y = be->empty({s.batch, width});
      be->dot_interaction_forward(be->to_device(dh), be->to_device(eh), y);
      return weighted_sum(be->to_host(y), w);
    };
    Tensor ddense = be->empty({s.batch, s.d}), demb = be->empty({s.batch, s.f * s.d});
    be->dot_interaction_backward(be->to_device(dense), be->to_device(emb), be->to_device(w), ddense,
                                 demb);
    const std::string tag = " (F " + std::to_string(s.f) + ")";
    EXPECT_TRUE(check_gradient("ddense" + tag, dense, be->to_host(ddense),
                               [&](const Tensor& x) { return loss(x, emb); }));
    EXPECT_TRUE(check_gradient("demb" + tag, emb, be->to_host(demb),
                               [&](const Tensor& x) { return loss(dense, x); }));
  }
}

// ---- losses ------------------------------------------------------------------------------------

TEST_P(GradCheck, BceWithLogits) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (const Shape& shape : {Shape{8}, Shape{8, 1}}) {
    SCOPED_TRACE("logits " + shape_str(shape));
    Rng rng(seed_from("bce"));
    Tensor logits = random_f32(shape, rng, -4.f, 4.f);
    logits.data<float>()[0] = 12.f;  // saturated: gradient ~ 1 - y or ~ -y
    logits.data<float>()[1] = -12.f;
    const Tensor labels =
        Tensor::host_from<float>({8}, {0.f, 1.f, 1.f, 0.f, 0.25f, 1.f, 0.f, 0.75f});
    const float scale = 0.125f;
    auto loss = [&](const Tensor& z) {
      Tensor l = be->empty({8});
      Tensor g = be->empty(shape);
      be->bce_with_logits(be->to_device(z), be->to_device(labels), scale, l, g);
      return scale * weighted_sum(be->to_host(l), host_f32({8}, 1.f));
    };
    Tensor l = be->empty({8});
    Tensor g = be->empty(shape);
    be->bce_with_logits(be->to_device(logits), be->to_device(labels), scale, l, g);
    EXPECT_TRUE(check_gradient("dlogits", logits, be->to_host(g), loss));
  }
}

TEST_P(GradCheck, SoftmaxXent) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  struct S {
    int64_t n, c;
  };
  for (S s : {S{3, 5}, S{4, 1}, S{2, 3}}) {
    SCOPED_TRACE("N " + std::to_string(s.n) + " C " + std::to_string(s.c));
    Rng rng(seed_from("softmax") + s.c);
    const Tensor logits = random_f32({s.n, s.c}, rng, -3.f, 3.f);
    const Tensor labels = random_labels(s.n, static_cast<int32_t>(s.c), rng);
    const float scale = 1.f / static_cast<float>(s.n);
    auto loss = [&](const Tensor& z) {
      Tensor l = be->empty({s.n});
      Tensor g = be->empty({s.n, s.c});
      be->softmax_xent(be->to_device(z), be->to_device(labels), scale, l, g);
      return scale * weighted_sum(be->to_host(l), host_f32({s.n}, 1.f));
    };
    Tensor l = be->empty({s.n});
    Tensor g = be->empty({s.n, s.c});
    be->softmax_xent(be->to_device(logits), be->to_device(labels), scale, l, g);
    const Tensor gh = be->to_host(g);
    EXPECT_TRUE(check_gradient("dlogits", logits, gh, loss));
    // Each row of the gradient sums to 0 (softmax minus a one-hot).
    for (int64_t i = 0; i < s.n; ++i) {
      double row = 0;
      for (int64_t j = 0; j < s.c; ++j) row += gh.data<float>()[i * s.c + j];
      EXPECT_NEAR(row, 0.0, 1e-6) << "row " << i;
    }
  }
}

// ---- optimizer trajectories against double-precision references --------------------------------

struct AdamRef {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  bool bias_correction = true;  // false only to show the check notices its absence
};

// The Adam / AdamW recurrence, written from the papers (Kingma & Ba 2015; Loshchilov & Hutter
// 2019), in double, for one element over all steps.
void adam_reference(const AdamRef& o, double& w, double& m, double& v,
                    const std::vector<double>& grads) {
  for (size_t s = 0; s < grads.size(); ++s) {
    const int t = static_cast<int>(s) + 1;
    double g = grads[s];
    if (o.decoupled)
      w = w - o.lr * o.weight_decay * w;
    else
      g = g + o.weight_decay * w;
    m = o.beta1 * m + (1.0 - o.beta1) * g;
    v = o.beta2 * v + (1.0 - o.beta2) * g * g;
    const double mhat = o.bias_correction ? m / (1.0 - std::pow(o.beta1, t)) : m;
    const double vhat = o.bias_correction ? v / (1.0 - std::pow(o.beta2, t)) : v;
    w = w - o.lr * mhat / (std::sqrt(vhat) + o.eps);
  }
}

TEST_P(GradCheck, AdamTwoStepTrajectory) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  // Gradients chosen to exercise sign changes, zero and eps-sized values.
  const std::vector<float> w0 = {0.5f, -1.25f, 2.f, 0.f, -0.3f, 1e-3f};
  const std::vector<std::vector<float>> grads = {{0.1f, -2.f, 0.f, 1e-9f, 3.f, -0.5f},
                                                 {-0.2f, -1.f, 0.5f, 1e-9f, -3.f, 0.25f}};
  struct Variant {
    const char* name;
    float weight_decay;
    bool decoupled;
  };
  for (Variant var : {Variant{"adam", 0.f, false}, Variant{"adam+l2", 0.1f, false},
                      Variant{"adamw", 0.1f, true}}) {
    SCOPED_TRACE(var.name);
    math::AdamParams p;
    p.lr = 0.1f;
    p.beta1 = 0.9f;
    p.beta2 = 0.999f;
    p.eps = 1e-8f;
    p.weight_decay = var.weight_decay;
    p.decoupled = var.decoupled;
    const int64_t n = static_cast<int64_t>(w0.size());
    Tensor w = be->to_device(Tensor::host_from<float>({n}, w0));
    Tensor m = be->empty({n});
    Tensor v = be->empty({n});
    for (size_t s = 0; s < grads.size(); ++s) {
      p.bc1 = 1.f - std::pow(p.beta1, static_cast<float>(s + 1));
      p.bc2 = 1.f - std::pow(p.beta2, static_cast<float>(s + 1));
      be->adam_update(p, w, be->to_device(Tensor::host_from<float>({n}, grads[s])), m, v);
    }
    // The reference takes the float hyper-parameters exactly as the backend saw them.
    AdamRef ref{p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, p.decoupled};
    AdamRef no_bc = ref;
    no_bc.bias_correction = false;
    Tensor want_w = Tensor::host({n}), want_m = Tensor::host({n}), want_v = Tensor::host({n});
    Tensor wrong_w = Tensor::host({n});
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> g;
      for (const auto& step : grads) g.push_back(step[i]);
      double wi = w0[i], mi = 0, vi = 0;
      adam_reference(ref, wi, mi, vi, g);
      want_w.data<float>()[i] = static_cast<float>(wi);
      want_m.data<float>()[i] = static_cast<float>(mi);
      want_v.data<float>()[i] = static_cast<float>(vi);
      double wj = w0[i], mj = 0, vj = 0;
      adam_reference(no_bc, wj, mj, vj, g);
      wrong_w.data<float>()[i] = static_cast<float>(wj);
    }
    const Tolerance tol{1e-6, 1e-5};
    const Tensor got_w = be->to_host(w);
    EXPECT_TRUE(all_close(want_w, got_w, tol, "param after 2 steps on " + be->name()));
    EXPECT_TRUE(all_close(want_m, be->to_host(m), tol, "first moment on " + be->name()));
    EXPECT_TRUE(all_close(want_v, be->to_host(v), {1e-12, 1e-5}, "second moment on " + be->name()));
    // Sensitivity: the same comparison tells a trajectory without bias correction apart.
    EXPECT_FALSE(all_close(wrong_w, got_w, tol, "param without bias correction"));
  }
}

TEST_P(GradCheck, SgdTrajectory) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  const std::vector<float> w0 = {0.5f, -1.25f, 2.f, 0.f};
  const std::vector<std::vector<float>> grads = {
      {0.1f, -2.f, 0.f, 1.f}, {-0.2f, -1.f, 0.5f, 1.f}, {0.3f, 0.f, -0.5f, 1.f}};
  for (bool nesterov : {false, true}) {
    SCOPED_TRACE(nesterov ? "nesterov" : "heavy ball");
    const math::SgdParams p{/*lr=*/0.1f, /*momentum=*/0.9f, /*weight_decay=*/0.01f, nesterov};
    const int64_t n = static_cast<int64_t>(w0.size());
    Tensor w = be->to_device(Tensor::host_from<float>({n}, w0));
    Tensor vel = be->empty({n});
    for (const auto& g : grads)
      be->sgd_update(p, w, be->to_device(Tensor::host_from<float>({n}, g)), vel);
    // PyTorch's SGD: g += wd w; b = mu b + g; step = nesterov ? g + mu b : b; w -= lr step.
    Tensor want = Tensor::host({n});
    for (int64_t i = 0; i < n; ++i) {
      double wi = w0[i], b = 0;
      for (const auto& step : grads) {
        const double g = step[i] + static_cast<double>(p.weight_decay) * wi;
        b = static_cast<double>(p.momentum) * b + g;
        wi -= static_cast<double>(p.lr) * (nesterov ? g + static_cast<double>(p.momentum) * b : b);
      }
      want.data<float>()[i] = static_cast<float>(wi);
    }
    EXPECT_TRUE(
        all_close(want, be->to_host(w), {1e-6, 1e-5}, "param after 3 steps on " + be->name()));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, GradCheck, ::testing::ValuesIn(gradcheck_specs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return spec_param_name(info.param);
                         });

// ---- the checker rejects wrong gradients -------------------------------------------------------

TEST(GradCheckSelfTest, RejectsWrongActivationDerivative) {
  // The sigmoid forward with tanh's derivative (1 - y^2 instead of y (1 - y)) as the gradient.
  Backend& be = reference_backend();
  Rng rng(3);
  Tensor x = random_f32({4, 5}, rng, -2.f, 2.f);
  const Tensor w = random_f32({4, 5}, rng);
  Tensor y = be.empty({4, 5});
  be.bias_act_forward(Activation::Sigmoid, x, Tensor(), y);
  Tensor dx = be.empty({4, 5});
  Tensor no_bias;
  be.bias_act_backward(Activation::Tanh, y, w, dx, no_bias);
  auto loss = [&](const Tensor& t) {
    Tensor yy = be.empty({4, 5});
    be.bias_act_forward(Activation::Sigmoid, t, Tensor(), yy);
    return weighted_sum(yy, w);
  };
  EXPECT_FALSE(check_gradient("dx", x, dx, loss));
}

TEST(GradCheckSelfTest, RejectsSignFlipAndWrongScale) {
  Backend& be = reference_backend();
  Rng rng(4);
  const Tensor a = random_f32({3, 5}, rng);
  const Tensor b = random_f32({5, 4}, rng);
  const Tensor w = random_f32({3, 4}, rng);
  auto loss = [&](const Tensor& ah) {
    Tensor c = be.empty({3, 4});
    be.gemm(Transpose::No, Transpose::No, 1.f, ah, b, 0.f, c);
    return weighted_sum(c, w);
  };
  for (float wrong_alpha : {-1.f, 1.05f, 0.f}) {
    Tensor da = be.empty({3, 5});
    be.gemm(Transpose::No, Transpose::Yes, wrong_alpha, w, b, 0.f, da);
    EXPECT_FALSE(check_gradient("dA", a, da, loss)) << "alpha " << wrong_alpha;
  }
  Tensor da = be.empty({3, 5});
  be.gemm(Transpose::No, Transpose::Yes, 1.f, w, b, 0.f, da);
  EXPECT_TRUE(check_gradient("dA", a, da, loss));
}

}  // namespace
}  // namespace tessera::test
