// Convolution, pooling and batch normalisation (NCHW f32):
//   - the host backend (oneDNN) against direct loops written here in double precision, over
//     stride, padding, dilation and groups;
//   - finite-difference gradient checks of every backward, on the host and on each parity backend
//     usable here (tests/support/backends.h: "cuda" when a GPU is present,
//     TESSERA_PARITY_BACKENDS);
//   - guarded parity runs (out-of-bounds writes, unwritten outputs, modified inputs) against the
//     host backend;
//   - edge errors that name the argument and the shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/support/backends.h"
#include "tests/support/tensor_check.h"

namespace tessera::test {
namespace {

// ---- direct references (double) ---------------------------------------------------------------

Tensor ref_conv2d(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const Shape ys = conv2d_output_shape(p, x.shape(), w.shape());
  Tensor y = Tensor::host(ys);
  const int64_t n_ = x.dim(0), c_ = x.dim(1), h_ = x.dim(2), w_ = x.dim(3);
  const int64_t k_ = w.dim(0), cg = w.dim(1), r_ = w.dim(2), s_ = w.dim(3);
  const int64_t kg = k_ / p.groups;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  for (int64_t n = 0; n < n_; ++n)
    for (int64_t k = 0; k < k_; ++k)
      for (int64_t oh = 0; oh < ys[2]; ++oh)
        for (int64_t ow = 0; ow < ys[3]; ++ow) {
          double acc = bias.defined() ? bias.data<float>()[k] : 0.0;
          const int64_t g = k / kg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t r = 0; r < r_; ++r)
              for (int64_t s = 0; s < s_; ++s) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + s * p.dilation_w;
                if (ih < 0 || ih >= h_ || iw < 0 || iw >= w_) continue;
                acc += static_cast<double>(xp[((n * c_ + g * cg + c) * h_ + ih) * w_ + iw]) *
                       wp[((k * cg + c) * r_ + r) * s_ + s];
              }
          y.data<float>()[((n * k_ + k) * ys[2] + oh) * ys[3] + ow] = static_cast<float>(acc);
        }
  return y;
}

Tensor ref_pool2d(const Pool2dParams& p, const Tensor& x) {
  const Shape ys = pool2d_output_shape(p, x.shape());
  Tensor y = Tensor::host(ys);
  const int64_t h_ = x.dim(2), w_ = x.dim(3);
  for (int64_t nc = 0; nc < x.dim(0) * x.dim(1); ++nc)
    for (int64_t oh = 0; oh < ys[2]; ++oh)
      for (int64_t ow = 0; ow < ys[3]; ++ow) {
        double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
        for (int64_t r = 0; r < p.window_h; ++r)
          for (int64_t s = 0; s < p.window_w; ++s) {
            const int64_t ih = oh * p.stride_h - p.pad_h + r;
            const int64_t iw = ow * p.stride_w - p.pad_w + s;
            if (ih < 0 || ih >= h_ || iw < 0 || iw >= w_) continue;
            const double v = x.data<float>()[(nc * h_ + ih) * w_ + iw];
            mx = std::max(mx, v);
            sum += v;
          }
        y.data<float>()[(nc * ys[2] + oh) * ys[3] + ow] = static_cast<float>(
            p.kind == PoolKind::Max ? mx : sum / static_cast<double>(p.window_h * p.window_w));
      }
  return y;
}

struct BnRef {
  Tensor y, mean, invstd, running_mean, running_var;
};
BnRef ref_batchnorm(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                    const Tensor& beta, const Tensor& rm0, const Tensor& rv0) {
  const int64_t n_ = x.dim(0), c_ = x.dim(1);
  const int64_t hw = x.numel() / (n_ * c_);
  BnRef r{Tensor::host(x.shape()), Tensor::host({c_}), Tensor::host({c_}), clone_host(rm0),
          clone_host(rv0)};
  for (int64_t c = 0; c < c_; ++c) {
    double mean, var;
    if (p.mode == BatchNormMode::Training) {
      double s = 0, ss = 0;
      for (int64_t n = 0; n < n_; ++n)
        for (int64_t i = 0; i < hw; ++i) s += x.data<float>()[(n * c_ + c) * hw + i];
      mean = s / (n_ * hw);
      for (int64_t n = 0; n < n_; ++n)
        for (int64_t i = 0; i < hw; ++i) {
          const double d = x.data<float>()[(n * c_ + c) * hw + i] - mean;
          ss += d * d;
        }
      var = ss / (n_ * hw);
      r.mean.data<float>()[c] = static_cast<float>(mean);
      r.invstd.data<float>()[c] = static_cast<float>(1.0 / std::sqrt(var + p.eps));
      const double cnt = static_cast<double>(n_ * hw);
      r.running_mean.data<float>()[c] =
          static_cast<float>((1 - p.momentum) * rm0.data<float>()[c] + p.momentum * mean);
      r.running_var.data<float>()[c] = static_cast<float>((1 - p.momentum) * rv0.data<float>()[c] +
                                                          p.momentum * var * cnt / (cnt - 1));
    } else {
      mean = rm0.data<float>()[c];
      var = rv0.data<float>()[c];
    }
    for (int64_t n = 0; n < n_; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t at = (n * c_ + c) * hw + i;
        r.y.data<float>()[at] = static_cast<float>(
            gamma.data<float>()[c] * (x.data<float>()[at] - mean) / std::sqrt(var + p.eps) +
            beta.data<float>()[c]);
      }
  }
  return r;
}

// ---- cases -------------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  Shape x, w;
  Conv2dParams p;
};

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cs;
  cs.push_back({"plain3x3", {2, 3, 7, 6}, {4, 3, 3, 3}, {}});
  Conv2dParams same;
  same.pad_h = same.pad_w = 1;
  cs.push_back({"same_pad", {2, 2, 5, 5}, {3, 2, 3, 3}, same});
  Conv2dParams strided;
  strided.stride_h = 2;
  strided.stride_w = 3;
  strided.pad_h = 1;
  strided.pad_w = 2;
  cs.push_back({"stride_pad_asym", {1, 3, 9, 10}, {2, 3, 3, 2}, strided});
  Conv2dParams dil;
  dil.dilation_h = 2;
  dil.dilation_w = 3;
  dil.pad_h = 2;
  cs.push_back({"dilation", {2, 2, 8, 9}, {3, 2, 3, 2}, dil});
  Conv2dParams grouped;
  grouped.groups = 2;
  grouped.pad_h = grouped.pad_w = 1;
  cs.push_back({"groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, grouped});
  Conv2dParams depthwise;
  depthwise.groups = 3;
  depthwise.stride_h = depthwise.stride_w = 2;
  cs.push_back({"depthwise_strided", {2, 3, 7, 7}, {3, 1, 3, 3}, depthwise});
  cs.push_back({"pointwise", {3, 5, 4, 4}, {2, 5, 1, 1}, {}});
  return cs;
}

struct PoolCase {
  std::string name;
  Shape x;
  Pool2dParams p;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cs;
  for (PoolKind kind : {PoolKind::Max, PoolKind::Average}) {
    const std::string k = kind == PoolKind::Max ? "max" : "avg";
    Pool2dParams p;
    p.kind = kind;
    cs.push_back({k + "2x2", {2, 3, 6, 6}, p});
    cs.push_back({k + "2x2_odd_input", {1, 2, 5, 7}, p});
    Pool2dParams q = p;
    q.window_h = q.window_w = 3;
    q.stride_h = q.stride_w = 2;
    q.pad_h = q.pad_w = 1;
    cs.push_back({k + "3x3_s2_pad1", {2, 2, 7, 6}, q});
    Pool2dParams global = p;  // global average / max pooling
    global.window_h = 4;
    global.window_w = 5;
    global.stride_h = global.stride_w = 1;
    cs.push_back({k + "global", {3, 4, 4, 5}, global});
  }
  return cs;
}

// Values spaced at least 0.05 apart (a shuffled ramp), so max-pool windows have a clear maximum
// that a +-1e-2 perturbation does not change.
Tensor distinct_values(const Shape& s, Rng& rng) {
  Tensor t = Tensor::host(s);
  std::vector<float> v(t.numel());
  for (size_t i = 0; i < v.size(); ++i) v[i] = -1.f + 0.05f * static_cast<float>(i);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.index(static_cast<int64_t>(i))]);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// ---- finite differences ------------------------------------------------------------------------

double weighted_sum(const Tensor& y, const Tensor& w) {
  double s = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i)
    s += static_cast<double>(w.data<float>()[i]) * y.data<float>()[i];
  return s;
}

// Central differences of loss around x0 against `analytic`, every element.
::testing::AssertionResult check_gradient(const std::string& what, const Tensor& x0,
                                          const Tensor& analytic,
                                          const std::function<double(const Tensor&)>& loss,
                                          double abs_tol = 2e-3, double rel_tol = 1e-2,
                                          float eps = 1e-2f) {
  Tensor x = clone_host(x0);
  float* xp = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float orig = xp[i];
    const float hi = orig + eps, lo = orig - eps;
    xp[i] = hi;
    const double l_hi = loss(x);
    xp[i] = lo;
    const double l_lo = loss(x);
    xp[i] = orig;
    const double numeric = (l_hi - l_lo) / (static_cast<double>(hi) - lo);
    const double ana = analytic.data<float>()[i];
    if (!(std::fabs(numeric - ana) <=
          abs_tol + rel_tol * std::max(std::fabs(numeric), std::fabs(ana))))
      return ::testing::AssertionFailure() << what << " at " << index_str(x.shape(), i)
                                           << ": analytic " << ana << ", numeric " << numeric;
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::string> all_specs() {
  std::vector<std::string> specs{"cpu"};
  for (const std::string& s : parity_backend_specs())
    if (s != "cpu") specs.push_back(s);
  return specs;
}

// ---- host backend against the direct loops -----------------------------------------------------

TEST(ConvReference, ForwardMatchesDirectLoops) {
  Backend& be = reference_backend();
  for (const ConvCase& c : conv_cases())
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(c.name + (with_bias ? " with bias" : " without bias"));
      Rng rng(seed_from(c.name));
      const Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng);
      const Tensor bias = with_bias ? random_f32({c.w[0]}, rng) : Tensor();
      Tensor y = be.empty(conv2d_output_shape(c.p, c.x, c.w));
      be.conv2d_forward(c.p, x, w, bias, y);
      EXPECT_TRUE(all_close(ref_conv2d(c.p, x, w, bias), y, Tolerance{1e-5, 1e-4}, "conv y"));
    }
}

TEST(ConvReference, PoolForwardMatchesDirectLoops) {
  Backend& be = reference_backend();
  for (const PoolCase& c : pool_cases()) {
    SCOPED_TRACE(c.name);
    Rng rng(seed_from(c.name));
    const Tensor x = random_f32(c.x, rng);
    Tensor y = be.empty(pool2d_output_shape(c.p, c.x));
    be.pool2d_forward(c.p, x, y);
    EXPECT_TRUE(all_close(ref_pool2d(c.p, x), y, Tolerance{1e-6, 1e-5}, "pool y"));
  }
}

TEST(ConvReference, BatchNormTrainingAndInferenceMatchDirectLoops) {
  Backend& be = reference_backend();
  for (BatchNormMode mode : {BatchNormMode::Training, BatchNormMode::Inference})
    for (Shape shape : {Shape{4, 3, 5, 6}, Shape{16, 5}}) {
      SCOPED_TRACE(std::string(mode == BatchNormMode::Training ? "training " : "inference ") +
                   shape_str(shape));
      Rng rng(seed_from("bn" + shape_str(shape)));
      BatchNormParams p;
      p.mode = mode;
      p.momentum = 0.25f;
      const int64_t c = shape[1];
      const Tensor x = random_f32(shape, rng, -2.f, 3.f);
      const Tensor gamma = random_f32({c}, rng, 0.5f, 1.5f), beta = random_f32({c}, rng);
      const Tensor rm0 = random_f32({c}, rng), rv0 = random_f32({c}, rng, 0.5f, 2.f);
      Tensor rm = clone_host(rm0), rv = clone_host(rv0);
      Tensor y = be.empty(shape), sm = be.empty({c}), si = be.empty({c});
      be.batchnorm_forward(p, x, gamma, beta, rm, rv, y, sm, si);
      const BnRef r = ref_batchnorm(p, x, gamma, beta, rm0, rv0);
      const Tolerance tol{1e-5, 1e-4};
      EXPECT_TRUE(all_close(r.y, y, tol, "bn y"));
      EXPECT_TRUE(all_close(r.running_mean, rm, tol, "running mean"));
      EXPECT_TRUE(all_close(r.running_var, rv, tol, "running var"));
      if (mode == BatchNormMode::Training) {
        EXPECT_TRUE(all_close(r.mean, sm, tol, "saved mean"));
        EXPECT_TRUE(all_close(r.invstd, si, tol, "saved invstd"));
      }
    }
}

// The reference really is what it claims: a hand-computed 1-channel case.
TEST(ConvReference, HandComputedCase) {
  Backend& be = reference_backend();
  const Tensor x = Tensor::host_from<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor w = Tensor::host_from<float>({1, 1, 2, 2}, {1, 0, 0, -1});
  const Tensor b = Tensor::host_from<float>({1}, {0.5f});
  Tensor y = be.empty({1, 1, 2, 2});
  be.conv2d_forward({}, x, w, b, y);
  // x[i][j] - x[i+1][j+1] = -4 everywhere, + 0.5.
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], -3.5f);
  Pool2dParams mp;  // 2x2 stride 1 max over the 3x3 ramp: 5 6 8 9
  mp.stride_h = mp.stride_w = 1;
  Tensor m = be.empty({1, 1, 2, 2});
  be.pool2d_forward(mp, x, m);
  EXPECT_FLOAT_EQ(m.data<float>()[0], 5.f);
  EXPECT_FLOAT_EQ(m.data<float>()[3], 9.f);
}

// ---- gradient checks (host and every usable parity backend) ------------------------------------

class ConvGrad : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvGrad, Conv2d) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    Rng rng(seed_from("grad " + c.name));
    const Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng);
    const Tensor bias = random_f32({c.w[0]}, rng);
    const Shape ys = conv2d_output_shape(c.p, c.x, c.w);
    const Tensor g = random_f32(ys, rng);  // dL/dy
    auto loss = [&](const Tensor& xh, const Tensor& wh, const Tensor& bh) {
      Tensor y = be->empty(ys);
      be->conv2d_forward(c.p, be->to_device(xh), be->to_device(wh), be->to_device(bh), y);
      return weighted_sum(be->to_host(y), g);
    };
    Tensor dx = be->empty(c.x), dw = be->empty(c.w), db = be->empty({c.w[0]});
    be->conv2d_backward(c.p, be->to_device(x), be->to_device(w), be->to_device(g), dx, dw, db);
    EXPECT_TRUE(check_gradient("dx", x, be->to_host(dx),
                               [&](const Tensor& t) { return loss(t, w, bias); }));
    EXPECT_TRUE(check_gradient("dw", w, be->to_host(dw),
                               [&](const Tensor& t) { return loss(x, t, bias); }));
    EXPECT_TRUE(check_gradient("dbias", bias, be->to_host(db),
                               [&](const Tensor& t) { return loss(x, w, t); }));
    // Without dx and dbias: dw alone, the same values.
    Tensor dw2 = be->empty(c.w), none_dx, none_db;
    be->conv2d_backward(c.p, be->to_device(x), be->to_device(w), be->to_device(g), none_dx, dw2,
                        none_db);
    EXPECT_TRUE(all_close(be->to_host(dw), be->to_host(dw2), Tolerance{1e-6, 1e-5}, "dw alone"));
  }
}

TEST_P(ConvGrad, Pool2d) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (const PoolCase& c : pool_cases()) {
    SCOPED_TRACE(c.name);
    Rng rng(seed_from("grad " + c.name));
    const Tensor x = distinct_values(c.x, rng);
    const Shape ys = pool2d_output_shape(c.p, c.x);
    const Tensor g = random_f32(ys, rng);
    auto loss = [&](const Tensor& xh) {
      Tensor y = be->empty(ys);
      be->pool2d_forward(c.p, be->to_device(xh), y);
      return weighted_sum(be->to_host(y), g);
    };
    const Tensor xd = be->to_device(x);
    Tensor y = be->empty(ys), dx = be->empty(c.x);
    be->pool2d_forward(c.p, xd, y);
    be->pool2d_backward(c.p, xd, y, be->to_device(g), dx);
    EXPECT_TRUE(check_gradient("dx", x, be->to_host(dx), loss));
  }
}

TEST_P(ConvGrad, BatchNormTraining) {
  TESSERA_TEST_BACKEND_OR_SKIP(be, GetParam());
  for (Shape shape : {Shape{3, 2, 3, 2}, Shape{6, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    Rng rng(seed_from("bn grad" + shape_str(shape)));
    const int64_t c = shape[1];
    const Tensor x = random_f32(shape, rng, -2.f, 2.f);
    const Tensor gamma = random_f32({c}, rng, 0.5f, 1.5f), beta = random_f32({c}, rng);
    const Tensor g = random_f32(shape, rng);
    BatchNormParams p;
    auto loss = [&](const Tensor& xh, const Tensor& gh, const Tensor& bh) {
      Tensor rm = be->empty({c}), rv = be->empty({c}), y = be->empty(shape);
      Tensor sm = be->empty({c}), si = be->empty({c});
      be->batchnorm_forward(p, be->to_device(xh), be->to_device(gh), be->to_device(bh), rm, rv, y,
                            sm, si);
      return weighted_sum(be->to_host(y), g);
    };
    const Tensor xd = be->to_device(x), gd = be->to_device(gamma);
    Tensor rm = be->empty({c}), rv = be->empty({c}), y = be->empty(shape);
    Tensor sm = be->empty({c}), si = be->empty({c});
    be->batchnorm_forward(p, xd, gd, be->to_device(beta), rm, rv, y, sm, si);
    Tensor dx = be->empty(shape), dgamma = be->empty({c}), dbeta = be->empty({c});
    be->batchnorm_backward(p, xd, be->to_device(g), gd, sm, si, dx, dgamma, dbeta);
    EXPECT_TRUE(check_gradient("dx", x, be->to_host(dx),
                               [&](const Tensor& t) { return loss(t, gamma, beta); }));
    EXPECT_TRUE(check_gradient("dgamma", gamma, be->to_host(dgamma),
                               [&](const Tensor& t) { return loss(x, t, beta); }));
    EXPECT_TRUE(check_gradient("dbeta", beta, be->to_host(dbeta),
                               [&](const Tensor& t) { return loss(x, gamma, t); }));
  }
}

// The checker rejects a wrong gradient (so a pass above means something).
TEST(ConvGradSelfTest, RejectsAWrongGradient) {
  Backend& be = reference_backend();
  const ConvCase c = conv_cases()[0];
  Rng rng(1);
  const Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng);
  const Shape ys = conv2d_output_shape(c.p, c.x, c.w);
  const Tensor g = random_f32(ys, rng);
  Tensor dx = be.empty(c.x), dw = be.empty(c.w), none;
  be.conv2d_backward(c.p, x, w, g, dx, dw, none);
  dw.data<float>()[5] *= 1.1f;
  EXPECT_FALSE(check_gradient("dw", w, dw, [&](const Tensor& t) {
    Tensor y = be.empty(ys);
    be.conv2d_forward(c.p, x, t, Tensor(), y);
    return weighted_sum(y, g);
  }));
}

std::string spec_name(const ::testing::TestParamInfo<std::string>& info) {
  return spec_param_name(info.param);
}
INSTANTIATE_TEST_SUITE_P(Backends, ConvGrad, ::testing::ValuesIn(all_specs()), spec_name);

// ---- guarded parity against the host backend ---------------------------------------------------

class ConvParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvParity, MatchesHostBackend) {
  TESSERA_TEST_BACKEND_OR_SKIP(dut, GetParam());
  Backend& ref = reference_backend();
  const Tolerance tol{1e-4, 1e-3};
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    Rng rng(seed_from("parity " + c.name));
    const Shape ys = conv2d_output_shape(c.p, c.x, c.w);
    const Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng);
    const Tensor b = random_f32({c.w[0]}, rng), g = random_f32(ys, rng);
    expect_parity(
        ref, *dut, {in("x", x), in("w", w), in("bias", b), out("y", ys)},
        [&](Backend& be, std::vector<Tensor>& t) {
          be.conv2d_forward(c.p, t[0], t[1], t[2], t[3]);
        },
        tol);
    expect_parity(
        ref, *dut,
        {in("x", x), in("w", w), in("dy", g), out("dx", c.x), out("dw", c.w),
         out("dbias", {c.w[0]})},
        [&](Backend& be, std::vector<Tensor>& t) {
          be.conv2d_backward(c.p, t[0], t[1], t[2], t[3], t[4], t[5]);
        },
        tol);
  }
  for (const PoolCase& c : pool_cases()) {
    SCOPED_TRACE(c.name);
    Rng rng(seed_from("parity " + c.name));
    const Shape ys = pool2d_output_shape(c.p, c.x);
    const Tensor x = distinct_values(c.x, rng);
    const Tensor y = ref_pool2d(c.p, x), g = random_f32(ys, rng);
    expect_parity(
        ref, *dut, {in("x", x), out("y", ys)},
        [&](Backend& be, std::vector<Tensor>& t) { be.pool2d_forward(c.p, t[0], t[1]); }, tol);
    expect_parity(
        ref, *dut, {in("x", x), in("y", y), in("dy", g), out("dx", c.x)},
        [&](Backend& be, std::vector<Tensor>& t) {
          be.pool2d_backward(c.p, t[0], t[1], t[2], t[3]);
        },
        tol);
  }
  for (BatchNormMode mode : {BatchNormMode::Training, BatchNormMode::Inference}) {
    SCOPED_TRACE(mode == BatchNormMode::Training ? "bn training" : "bn inference");
    Rng rng(seed_from("parity bn"));
    const Shape s{4, 3, 5, 5};
    BatchNormParams p;
    p.mode = mode;
    const Tensor x = random_f32(s, rng, -1.f, 2.f), gamma = random_f32({3}, rng, 0.5f, 1.5f);
    const Tensor beta = random_f32({3}, rng), rm = random_f32({3}, rng);
    const Tensor rv = random_f32({3}, rng, 0.5f, 2.f), g = random_f32(s, rng);
    const bool train = mode == BatchNormMode::Training;
    auto r = expect_parity(
        ref, *dut,
        {in("x", x), in("gamma", gamma), in("beta", beta), inout("running_mean", rm),
         inout("running_var", rv), out("y", s), train ? out("saved_mean", {3}) : absent("sm"),
         train ? out("saved_invstd", {3}) : absent("si")},
        [&](Backend& be, std::vector<Tensor>& t) {
          be.batchnorm_forward(p, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
        },
        tol);
    if (!train) continue;
    expect_parity(
        ref, *dut,
        {in("x", x), in("dy", g), in("gamma", gamma), in("saved_mean", r.ref[6]),
         in("saved_invstd", r.ref[7]), out("dx", s), out("dgamma", {3}), out("dbeta", {3})},
        [&](Backend& be, std::vector<Tensor>& t) {
          be.batchnorm_backward(p, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
        },
        tol);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ConvParity, ::testing::ValuesIn(parity_backend_specs()),
                         spec_name);
INSTANTIATE_TEST_SUITE_P(HostSelfCheck, ConvParity, ::testing::Values(std::string("cpu")),
                         spec_name);

// ---- edge errors -------------------------------------------------------------------------------

TEST(ConvEdges, BadShapesAreNamed) {
  Backend& be = reference_backend();
  const Tensor x = Tensor::host({2, 4, 5, 5});
  Tensor y = Tensor::host({2, 3, 3, 3});
  Conv2dParams g3;
  g3.groups = 3;
  EXPECT_TRUE(throws_error(
      [&] {
        be.conv2d_forward(g3, x, Tensor::host({3, 1, 3, 3}), Tensor(), y);
      },
      ErrorKind::Shape, {"groups", "4"}));
  EXPECT_TRUE(throws_error(
      [&] {
        be.conv2d_forward({}, x, Tensor::host({3, 2, 3, 3}), Tensor(), y);
      },
      ErrorKind::Shape, {"input channels"}));
  EXPECT_TRUE(throws_error(
      [&] {
        be.conv2d_forward({}, x, Tensor::host({3, 4, 7, 7}), Tensor(), y);
      },
      ErrorKind::Shape, {"does not fit"}));
  Tensor wrong_y = Tensor::host({2, 3, 4, 4});
  EXPECT_TRUE(throws_error(
      [&] {
        be.conv2d_forward({}, x, Tensor::host({3, 4, 3, 3}), Tensor(), wrong_y);
      },
      ErrorKind::Shape, {"y is [2, 3, 4, 4]", "[2, 3, 3, 3]"}));
  EXPECT_TRUE(throws_error(
      [&] {
        be.conv2d_forward({}, x, Tensor::host({3, 4, 3, 3}), Tensor::host({4}), y);
      },
      ErrorKind::Shape, {"bias"}));
  Pool2dParams bad_pad;
  bad_pad.pad_h = 2;
  Tensor py = Tensor::host({2, 4, 4, 2});
  EXPECT_TRUE(
      throws_error([&] { be.pool2d_forward(bad_pad, x, py); }, ErrorKind::Shape, {"padding"}));
  Tensor c1 = Tensor::host({1}), y1 = Tensor::host({1, 1});
  BatchNormParams p;
  EXPECT_TRUE(throws_error(
      [&] {
        be.batchnorm_forward(p, Tensor::host({1, 1}), c1, c1, c1, c1, y1, c1, c1);
      },
      ErrorKind::Shape, {"at least 2 values"}));
  Tensor c2 = Tensor::host({2});
  EXPECT_TRUE(throws_error([&] { be.batchnorm_forward(p, x, c2, c2, c2, c2, y, c2, c2); },
                           ErrorKind::Shape));
}

}  // namespace
}  // namespace tessera::test
