// The LSTM op: the host backend against an independent double-precision reference written here,
// finite-difference gradient checks through x, h0, c0 and the weights (multi-layer,
// bidirectional, dropout between layers), parity of every parity backend with the host, and the
// edge checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/backend/host_lstm_impl.h"
#include "tests/support/backends.h"
#include "tests/support/gpu_skips.h"
#include "tests/support/tensor_check.h"

namespace tessera::test {
namespace {

struct Case {
  std::string name;
  LstmConfig cfg;
  int64_t t = 3, b = 2;
  bool with_state = true;  // h0/c0 given
};

LstmConfig make_cfg(int64_t in, int64_t hid, int64_t layers, LstmDirections dirs,
                    float dropout = 0.f) {
  LstmConfig c;
  c.input_size = in;
  c.hidden_size = hid;
  c.num_layers = layers;
  c.directions = dirs;
  c.dropout = dropout;
  c.dropout_seed = 1234;
  return c;
}

std::vector<Case> cases() {
  return {
      {"one_layer", make_cfg(3, 4, 1, LstmDirections::Unidirectional), 4, 2, true},
      {"one_layer_no_state", make_cfg(3, 4, 1, LstmDirections::Unidirectional), 3, 3, false},
      {"one_step", make_cfg(2, 3, 2, LstmDirections::Bidirectional), 1, 2, true},
      {"two_layer_bidir", make_cfg(3, 4, 2, LstmDirections::Bidirectional), 3, 2, true},
      {"three_layer", make_cfg(2, 3, 3, LstmDirections::Unidirectional), 3, 2, true},
  };
}

// ---- the reference: scalar loops in double, straight from the definition ----------------------

struct RefOut {
  std::vector<double> y, hn, cn;
};

double sig(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

RefOut reference(const LstmConfig& c, int64_t T, int64_t B, const Tensor& x, const Tensor& h0,
                 const Tensor& c0, const Tensor& w) {
  const int64_t H = c.hidden_size, D = c.dirs();
  std::vector<double> in(x.data<float>(), x.data<float>() + x.numel());
  RefOut r;
  r.hn.assign(c.num_layers * D * B * H, 0.0);
  r.cn = r.hn;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t I = c.layer_input_size(l);
    std::vector<double> out(T * B * D * H, 0.0);
    for (int d = 0; d < D; ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      const float* W = w.data<float>();
      for (int64_t bi = 0; bi < B; ++bi) {
        std::vector<double> h(H, 0.0), cc(H, 0.0);
        const int64_t srow = ((l * D + d) * B + bi) * H;
        if (h0.defined())
          for (int64_t j = 0; j < H; ++j) {
            h[j] = h0.data<float>()[srow + j];
            cc[j] = c0.data<float>()[srow + j];
          }
        for (int64_t s = 0; s < T; ++s) {
          const int64_t t = d == 0 ? s : T - 1 - s;
          std::vector<double> a(4 * H);
          for (int64_t r4 = 0; r4 < 4 * H; ++r4) {
            double v = W[o.b_ih + r4] + W[o.b_hh + r4];
            for (int64_t k = 0; k < I; ++k) v += W[o.w_ih + r4 * I + k] * in[(t * B + bi) * I + k];
            for (int64_t k = 0; k < H; ++k) v += W[o.w_hh + r4 * H + k] * h[k];
            a[r4] = v;
          }
          for (int64_t j = 0; j < H; ++j) {
            const double ig = sig(a[j]), fg = sig(a[H + j]), gg = std::tanh(a[2 * H + j]),
                         og = sig(a[3 * H + j]);
            cc[j] = fg * cc[j] + ig * gg;
            h[j] = og * std::tanh(cc[j]);
            out[(t * B + bi) * D * H + d * H + j] = h[j];
          }
        }
        for (int64_t j = 0; j < H; ++j) {
          r.hn[srow + j] = h[j];
          r.cn[srow + j] = cc[j];
        }
      }
    }
    in = out;
  }
  r.y = in;
  return r;
}

struct Inputs {
  Tensor x, h0, c0, w;
};

Inputs make_inputs(const Case& k, Rng& rng) {
  const int64_t n_state = k.cfg.num_layers * k.cfg.dirs();
  Inputs in;
  in.x = random_f32({k.t, k.b, k.cfg.input_size}, rng);
  if (k.with_state) {
    in.h0 = random_f32({n_state, k.b, k.cfg.hidden_size}, rng, -0.5f, 0.5f);
    in.c0 = random_f32({n_state, k.b, k.cfg.hidden_size}, rng, -0.5f, 0.5f);
  }
  in.w = random_f32({lstm_weight_count(k.cfg)}, rng, -0.6f, 0.6f);
  return in;
}

// Forward on `be` from host inputs; returns host y, hn, cn (and keeps the io for backward).
struct LstmRun {
  LstmIo io;
  Tensor y, hn, cn;
};
LstmRun forward(Backend& be, const LstmConfig& c, LstmMode mode, const Inputs& in) {
  LstmRun r;
  const int64_t T = in.x.dim(0), B = in.x.dim(1), H = c.hidden_size;
  const Shape state{c.num_layers * c.dirs(), B, H};
  r.io.x = be.to_device(in.x);
  if (in.h0.defined()) r.io.h0 = be.to_device(in.h0);
  if (in.c0.defined()) r.io.c0 = be.to_device(in.c0);
  r.io.w = be.to_device(in.w);
  r.io.y = be.empty({T, B, c.dirs() * H});
  r.io.hn = be.empty(state);
  r.io.cn = be.empty(state);
  be.lstm_forward(c, mode, r.io);
  r.y = be.to_host(r.io.y);
  r.hn = be.to_host(r.io.hn);
  r.cn = be.to_host(r.io.cn);
  return r;
}

::testing::AssertionResult close_to(const std::vector<double>& ref, const Tensor& got, double tol,
                                    const char* what) {
  if (static_cast<int64_t>(ref.size()) != got.numel())
    return ::testing::AssertionFailure()
           << what << ": size " << got.numel() << " vs " << ref.size();
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!(std::fabs(ref[i] - got.data<float>()[i]) <= tol))
      return ::testing::AssertionFailure()
             << what << "[" << i << "] = " << got.data<float>()[i] << ", reference " << ref[i];
  }
  return ::testing::AssertionSuccess();
}

class LstmCase : public ::testing::TestWithParam<Case> {};

TEST_P(LstmCase, HostMatchesReference) {
  const Case& k = GetParam();
  Rng rng(seed_from("ref_" + k.name));
  const Inputs in = make_inputs(k, rng);
  const RefOut ref = reference(k.cfg, k.t, k.b, in.x, in.h0, in.c0, in.w);
  for (LstmMode mode : {LstmMode::Inference, LstmMode::Training}) {
    LstmRun r = forward(reference_backend(), k.cfg, mode, in);
    EXPECT_TRUE(close_to(ref.y, r.y, 2e-5, "y"));
    EXPECT_TRUE(close_to(ref.hn, r.hn, 2e-5, "hn"));
    EXPECT_TRUE(close_to(ref.cn, r.cn, 2e-5, "cn"));
  }
}

// L = sum(wy .* y) + sum(wh .* hn) + sum(wc .* cn): every output feeds the loss, so the check
// covers dy, dhn and dcn.
struct LossWeights {
  Tensor wy, wh, wc;
};
double loss_of(const LstmRun& r, const LossWeights& lw) {
  double s = 0;
  auto add = [&](const Tensor& a, const Tensor& b) {
    for (int64_t i = 0; i < a.numel(); ++i)
      s += static_cast<double>(a.data<float>()[i]) * b.data<float>()[i];
  };
  add(r.y, lw.wy);
  add(r.hn, lw.wh);
  add(r.cn, lw.wc);
  return s;
}

struct Grads {
  Tensor dx, dh0, dc0, dw;
};
Grads backward(Backend& be, const LstmConfig& c, LstmRun& r, const LossWeights& lw) {
  LstmGrads g;
  g.dy = be.to_device(lw.wy);
  g.dhn = be.to_device(lw.wh);
  g.dcn = be.to_device(lw.wc);
  g.dx = be.empty(r.io.x.shape());
  g.dw = be.empty(r.io.w.shape());
  if (r.io.h0.defined()) {
    g.dh0 = be.empty(r.io.h0.shape());
    g.dc0 = be.empty(r.io.c0.shape());
  }
  be.lstm_backward(c, r.io, g);
  Grads out;
  out.dx = be.to_host(g.dx);
  out.dw = be.to_host(g.dw);
  if (g.dh0.defined()) {
    out.dh0 = be.to_host(g.dh0);
    out.dc0 = be.to_host(g.dc0);
  }
  return out;
}

::testing::AssertionResult check_fd(const std::string& what, const Tensor& x0, const Tensor& ana,
                                    const std::function<double(const Tensor&)>& loss) {
  const float eps = 1e-2f;
  Tensor x = clone_host(x0);
  float* xp = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float orig = xp[i];
    const float hi = orig + eps, lo = orig - eps;
    xp[i] = hi;
    const double lh = loss(x);
    xp[i] = lo;
    const double ll = loss(x);
    xp[i] = orig;
    const double num = (lh - ll) / (static_cast<double>(hi) - lo);
    const double a = ana.data<float>()[i];
    if (!(std::fabs(num - a) <= 2e-3 + 2e-2 * std::max(std::fabs(num), std::fabs(a))))
      return ::testing::AssertionFailure()
             << what << "[" << i << "]: analytic " << a << ", finite difference " << num;
  }
  return ::testing::AssertionSuccess();
}

void gradient_check(const Case& k, const LstmConfig& cfg) {
  Backend& be = reference_backend();
  Rng rng(seed_from("grad_" + k.name));
  Inputs in = make_inputs(k, rng);
  const int64_t n_state = cfg.num_layers * cfg.dirs();
  LossWeights lw{random_f32({k.t, k.b, cfg.dirs() * cfg.hidden_size}, rng),
                 random_f32({n_state, k.b, cfg.hidden_size}, rng),
                 random_f32({n_state, k.b, cfg.hidden_size}, rng)};
  LstmRun r = forward(be, cfg, LstmMode::Training, in);
  const Grads g = backward(be, cfg, r, lw);
  // The loss as a function of one input, the others held; Training mode (the same dropout masks).
  auto loss_with = [&](int which) {
    return [&, which](const Tensor& v) {
      Inputs p = in;
      (which == 0 ? p.x : which == 1 ? p.h0 : which == 2 ? p.c0 : p.w) = v;
      return loss_of(forward(be, cfg, LstmMode::Training, p), lw);
    };
  };
  EXPECT_TRUE(check_fd("dx", in.x, g.dx, loss_with(0)));
  if (k.with_state) {
    EXPECT_TRUE(check_fd("dh0", in.h0, g.dh0, loss_with(1)));
    EXPECT_TRUE(check_fd("dc0", in.c0, g.dc0, loss_with(2)));
  }
  EXPECT_TRUE(check_fd("dw", in.w, g.dw, loss_with(3)));
}

TEST_P(LstmCase, GradientsMatchFiniteDifferences) {
  gradient_check(GetParam(), GetParam().cfg);
}

// Dropout applies between layers only: the cases with two or more.
class LstmMultiLayerCase : public ::testing::TestWithParam<Case> {};

std::vector<Case> multi_layer_cases() {
  std::vector<Case> out;
  for (const Case& k : cases())
    if (k.cfg.num_layers >= 2) out.push_back(k);
  return out;
}

TEST_P(LstmMultiLayerCase, GradientsWithDropoutBetweenLayers) {
  Case k = GetParam();
  k.cfg.dropout = 0.3f;
  gradient_check(k, k.cfg);
}

INSTANTIATE_TEST_SUITE_P(Lstm, LstmMultiLayerCase, ::testing::ValuesIn(multi_layer_cases()),
                         [](const auto& info) { return info.param.name; });

// The host backend's two implementations (host/backend/host_lstm_impl.h): oneDNN's LSTM
// primitive against the GEMM path (checked above by the reference and finite differences), on
// every case, with and without dropout between layers: outputs, final states and all gradients.
// The cases are tiny, so the choice is forced (Auto would take the GEMM path for them).
class ScopedLstmImpl {
 public:
  explicit ScopedLstmImpl(HostLstmImpl impl) : saved_(host_lstm_impl()) {
    set_host_lstm_impl(impl);
  }
  ~ScopedLstmImpl() { set_host_lstm_impl(saved_); }
  ScopedLstmImpl(const ScopedLstmImpl&) = delete;
  ScopedLstmImpl& operator=(const ScopedLstmImpl&) = delete;

 private:
  HostLstmImpl saved_;
};

TEST_P(LstmCase, OneDnnPrimitiveMatchesGemmPath) {
  for (float dropout : {0.f, 0.3f}) {
    Case k = GetParam();
    if (dropout > 0.f && k.cfg.num_layers < 2) continue;
    k.cfg.dropout = dropout;
    SCOPED_TRACE("dropout " + std::to_string(dropout));
    Backend& be = reference_backend();
    Rng rng(seed_from("impl_" + k.name));
    const Inputs in = make_inputs(k, rng);
    const int64_t n_state = k.cfg.num_layers * k.cfg.dirs();
    LossWeights lw{random_f32({k.t, k.b, k.cfg.dirs() * k.cfg.hidden_size}, rng),
                   random_f32({n_state, k.b, k.cfg.hidden_size}, rng),
                   random_f32({n_state, k.b, k.cfg.hidden_size}, rng)};
    LstmRun gemm_run, dnnl_run;
    Grads gemm_grads, dnnl_grads;
    {
      ScopedLstmImpl impl(HostLstmImpl::Gemm);
      ASSERT_FALSE(host_lstm_uses_onednn(k.cfg, k.t, k.b));
      gemm_run = forward(be, k.cfg, LstmMode::Training, in);
      gemm_grads = backward(be, k.cfg, gemm_run, lw);
    }
    {
      ScopedLstmImpl impl(HostLstmImpl::OneDnn);
      ASSERT_TRUE(host_lstm_uses_onednn(k.cfg, k.t, k.b));
      dnnl_run = forward(be, k.cfg, LstmMode::Training, in);
      dnnl_grads = backward(be, k.cfg, dnnl_run, lw);
      // Inference takes the same path and gives the same outputs (no dropout there).
      if (dropout == 0.f) {
        LstmRun inf = forward(be, k.cfg, LstmMode::Inference, in);
        EXPECT_TRUE(all_close(gemm_run.y, inf.y, Tolerance{1e-5, 1e-4}, "inference y"));
      }
    }
    const Tolerance tol{1e-5, 1e-4};
    EXPECT_TRUE(all_close(gemm_run.y, dnnl_run.y, tol, "y"));
    EXPECT_TRUE(all_close(gemm_run.hn, dnnl_run.hn, tol, "hn"));
    EXPECT_TRUE(all_close(gemm_run.cn, dnnl_run.cn, tol, "cn"));
    EXPECT_TRUE(all_close(gemm_grads.dx, dnnl_grads.dx, tol, "dx"));
    EXPECT_TRUE(all_close(gemm_grads.dw, dnnl_grads.dw, tol, "dw"));
    if (k.with_state) {
      EXPECT_TRUE(all_close(gemm_grads.dh0, dnnl_grads.dh0, tol, "dh0"));
      EXPECT_TRUE(all_close(gemm_grads.dc0, dnnl_grads.dc0, tol, "dc0"));
    }
  }
}

TEST(LstmImpl, AutoTakesOneDnnOnlyWhereTheWorkPaysForIt) {
  ScopedLstmImpl impl(HostLstmImpl::Auto);
  LstmConfig small = make_cfg(3, 4, 2, LstmDirections::Bidirectional);
  LstmConfig big = make_cfg(64, 384, 2, LstmDirections::Unidirectional);
  EXPECT_FALSE(host_lstm_uses_onednn(small, 3, 2));
  EXPECT_TRUE(host_lstm_uses_onednn(big, 64, 64));
  EXPECT_FALSE(host_lstm_uses_onednn(big, 0, 64));  // empty: the GEMM path handles it
}

// Every parity backend (cuda when a GPU is present; cuda-emu in the emulation build) against the
// host: forward outputs and all gradients. Dropout 0 (cuDNN draws its own masks).
TEST_P(LstmCase, ParityWithHost) {
  const Case& k = GetParam();
  int tested = 0;
  std::string skipped;
  for (const std::string& spec : parity_backend_specs()) {
    SCOPED_TRACE(spec);
    const BackendSlot& slot = acquire_backend(spec);
    if (!slot.backend) {
      if (slot.is_failure) ADD_FAILURE() << slot.why_not;
      skipped += slot.why_not + "; ";
      continue;
    }
    ++tested;
    Backend& dut = *slot.backend;
    Rng rng(seed_from("parity_" + k.name));
    const Inputs in = make_inputs(k, rng);
    const int64_t n_state = k.cfg.num_layers * k.cfg.dirs();
    LossWeights lw{random_f32({k.t, k.b, k.cfg.dirs() * k.cfg.hidden_size}, rng),
                   random_f32({n_state, k.b, k.cfg.hidden_size}, rng),
                   random_f32({n_state, k.b, k.cfg.hidden_size}, rng)};
    LstmRun ref = forward(reference_backend(), k.cfg, LstmMode::Training, in);
    LstmRun got = forward(dut, k.cfg, LstmMode::Training, in);
    const Tolerance tol{1e-5, 1e-4};
    EXPECT_TRUE(all_close(ref.y, got.y, tol, "y"));
    EXPECT_TRUE(all_close(ref.hn, got.hn, tol, "hn"));
    EXPECT_TRUE(all_close(ref.cn, got.cn, tol, "cn"));
    const Grads gr = backward(reference_backend(), k.cfg, ref, lw);
    const Grads gg = backward(dut, k.cfg, got, lw);
    EXPECT_TRUE(all_close(gr.dx, gg.dx, tol, "dx"));
    EXPECT_TRUE(all_close(gr.dw, gg.dw, tol, "dw"));
    if (k.with_state) {
      EXPECT_TRUE(all_close(gr.dh0, gg.dh0, tol, "dh0"));
      EXPECT_TRUE(all_close(gr.dc0, gg.dc0, tol, "dc0"));
    }
    LstmRun inf = forward(dut, k.cfg, LstmMode::Inference, in);
    EXPECT_TRUE(all_close(ref.y, inf.y, tol, "inference y"));
  }
  if (tested == 0) TESSERA_NEEDS_GPU_SKIP("no parity backend here: " + skipped);
}

INSTANTIATE_TEST_SUITE_P(Lstm, LstmCase, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(LstmLayout, OffsetsTileTheWeightTensor) {
  const LstmConfig c = make_cfg(5, 7, 2, LstmDirections::Bidirectional);
  int64_t at = 0;
  for (int64_t l = 0; l < 2; ++l)
    for (int d = 0; d < 2; ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      EXPECT_EQ(o.w_ih, at);
      EXPECT_EQ(o.w_hh - o.w_ih, 28 * (l == 0 ? 5 : 14));
      EXPECT_EQ(o.b_ih - o.w_hh, 28 * 7);
      EXPECT_EQ(o.end - o.b_ih, 56);
      at = o.end;
    }
  EXPECT_EQ(lstm_weight_count(c), at);
  // PyTorch nn.LSTM(5, 7, num_layers=2, bidirectional=True) has 4 * 7 * (5 + 7 + 2) * 2 +
  // 4 * 7 * (14 + 7 + 2) * 2 parameters.
  EXPECT_EQ(at, 28 * 14 * 2 + 28 * 23 * 2);
}

TEST(LstmLayout, DropoutMasksDependOnSeed) {
  Backend& be = reference_backend();
  LstmConfig c = make_cfg(3, 4, 2, LstmDirections::Unidirectional, 0.5f);
  Case k{"d", c, 3, 2, false};
  Rng rng(7);
  const Inputs in = make_inputs(k, rng);
  const Tensor a = forward(be, c, LstmMode::Training, in).y;
  const Tensor a2 = forward(be, c, LstmMode::Training, in).y;
  c.dropout_seed = 99;
  const Tensor b = forward(be, c, LstmMode::Training, in).y;
  const Tensor inf = forward(be, c, LstmMode::Inference, in).y;
  EXPECT_TRUE(bitwise_equal(a, a2, "same seed"));
  EXPECT_FALSE(all_close(a, b, Tolerance{1e-6, 0}, "other seed"));
  EXPECT_FALSE(all_close(a, inf, Tolerance{1e-6, 0}, "inference"));
}

TEST(LstmEdges, BadShapesAndMissingReserveAreErrors) {
  Backend& be = reference_backend();
  const LstmConfig c = make_cfg(3, 4, 1, LstmDirections::Unidirectional);
  LstmIo io;
  io.x = be.empty({2, 2, 5});
  io.w = be.empty({lstm_weight_count(c)});
  io.y = be.empty({2, 2, 4});
  EXPECT_THROW(be.lstm_forward(c, LstmMode::Inference, io), Error);  // x width 5, I = 3
  io.x = be.empty({2, 2, 3});
  io.w = be.empty({lstm_weight_count(c) - 1});
  EXPECT_THROW(be.lstm_forward(c, LstmMode::Inference, io), Error);
  io.w = be.empty({lstm_weight_count(c)});
  io.h0 = be.empty({2, 2, 4});  // L*D = 1
  EXPECT_THROW(be.lstm_forward(c, LstmMode::Inference, io), Error);
  io.h0 = Tensor();
  be.lstm_forward(c, LstmMode::Inference, io);
  LstmGrads g;
  g.dy = be.empty({2, 2, 4});
  g.dx = be.empty({2, 2, 3});
  g.dw = be.empty(io.w.shape());
  const CaughtError e = catch_error([&] { be.lstm_backward(c, io, g); });
  EXPECT_NE(e.message.find("reserve"), std::string::npos) << e.message;
  LstmConfig bad = c;
  bad.dropout = 1.f;
  EXPECT_THROW(be.lstm_forward(bad, LstmMode::Training, io), Error);
}

}  // namespace
}  // namespace tessera::test
