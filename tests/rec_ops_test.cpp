// The recommendation ops on the host backend (backend.h, "recommendation scores and losses"):
// their gradients against central finite differences of what they compute, their results against
// the formulas the MF and two-tower steps computed on the host before the ops existed (double
// accumulation, rounded once), and the edge checks' messages.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "tests/support/error_of.h"

namespace tessera {
namespace {

Tensor uniform(const Shape& s, std::mt19937& gen, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::host(s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(gen);
  return t;
}

double old_softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
double old_sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// d f / d x[i] for every i by central differences (f evaluated in double from f32 ops).
std::vector<double> numeric_gradient(Tensor& x, const std::function<double()>& f, float h) {
  std::vector<double> g(static_cast<size_t>(x.numel()));
  float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float keep = p[i];
    p[i] = keep + h;
    const double up = f();
    p[i] = keep - h;
    const double down = f();
    p[i] = keep;
    g[static_cast<size_t>(i)] = (up - down) / (2.0 * h);
  }
  return g;
}

void expect_gradient(const std::vector<double>& numeric, const Tensor& analytic, double tol,
                     const std::string& what) {
  ASSERT_EQ(static_cast<int64_t>(numeric.size()), analytic.numel()) << what;
  for (int64_t i = 0; i < analytic.numel(); ++i) {
    const double a = analytic.data<float>()[i], n = numeric[static_cast<size_t>(i)];
    EXPECT_NEAR(a, n, tol * (1.0 + std::fabs(n))) << what << " element " << i;
  }
}

class RecOps : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be = make_backend("cpu");
  std::mt19937 gen{11};
};

// f(out) = sum_s w[s] * score[s] + l2/2 |p, q|^2 + bias_l2/2 |bias|^2: its gradient is what
// rec_score_backward writes for dscore = w.
TEST_F(RecOps, ScoreBackwardIsTheGradientOfTheScoreWithItsL2) {
  for (const int64_t bias_cols : {0, 1, 2}) {
    const int64_t S = 4, d = 5, W = 2 * d + bias_cols;
    const float l2 = 0.03f, bl2 = 0.2f, offset = 0.7f;
    Tensor out = uniform({S, W}, gen), w = uniform({S}, gen), score = Tensor::host({S});
    Tensor dout = Tensor::host({S, W});
    be->rec_score_backward(out, w, d, l2, bl2, dout);
    const auto f = [&] {
      be->rec_score_forward(out, d, offset, score);
      double v = 0;
      for (int64_t s = 0; s < S; ++s) {
        v += static_cast<double>(w.data<float>()[s]) * score.data<float>()[s];
        for (int64_t j = 0; j < W; ++j) {
          const double x = out.data<float>()[s * W + j];
          v += 0.5 * (j < 2 * d ? l2 : bl2) * x * x;
        }
      }
      return v;
    };
    expect_gradient(numeric_gradient(out, f, 1e-2f), dout, 2e-3,
                    "bias columns " + std::to_string(bias_cols));
  }
}

// squared_error: loss = e^2 and dpred = grad_scale * e, the gradient of loss / 2 scaled.
TEST_F(RecOps, SquaredErrorGradientIsHalfTheLossDerivativeScaled) {
  const int64_t n = 6;
  const float scale = 0.25f;
  Tensor pred = uniform({n}, gen, 0.f, 5.f), target = uniform({n}, gen, 1.f, 5.f);
  Tensor loss = Tensor::host({n}), dpred = Tensor::host({n});
  be->squared_error(pred, target, scale, loss, dpred);
  for (int64_t i = 0; i < n; ++i) {
    const float e = pred.data<float>()[i] - target.data<float>()[i];
    EXPECT_EQ(loss.data<float>()[i], e * e) << i;
  }
  Tensor l2 = Tensor::host({n}), g2 = Tensor::host({n});
  const auto f = [&] {
    be->squared_error(pred, target, scale, l2, g2);
    double v = 0;
    for (int64_t i = 0; i < n; ++i) v += 0.5 * scale * l2.data<float>()[i];
    return v;
  };
  expect_gradient(numeric_gradient(pred, f, 1e-2f), dpred, 2e-3, "squared_error");
}

TEST_F(RecOps, PairwiseLogisticGradientMatchesFiniteDifferences) {
  const int64_t n = 3, group = 5;
  const float scale = 0.5f;
  Tensor scores = uniform({n * group}, gen, -3.f, 3.f);
  Tensor loss = Tensor::host({n}), dscores = Tensor::host({n * group});
  be->pairwise_logistic(scores, group, scale, loss, dscores);
  Tensor l2 = Tensor::host({n}), g2 = Tensor::host({n * group});
  const auto f = [&] {
    be->pairwise_logistic(scores, group, scale, l2, g2);
    double v = 0;
    for (int64_t i = 0; i < n; ++i) v += scale * static_cast<double>(l2.data<float>()[i]);
    return v;
  };
  expect_gradient(numeric_gradient(scores, f, 1e-2f), dscores, 2e-3, "pairwise_logistic");
  // A group's gradients sum to zero: what the positive gains the negatives lose.
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < group; ++j) sum += dscores.data<float>()[i * group + j];
    EXPECT_NEAR(sum, 0.0, 1e-6) << "group " << i;
    EXPECT_LT(dscores.data<float>()[i * group], 0.f) << "the positive's score should rise";
  }
}

// The MF step's former host loop (rec_model.cpp before the ops): pred in double, e rounded to f32.
TEST_F(RecOps, MfOpsEqualTheFormerHostStep) {
  const int64_t n = 40, d = 8, W = 2 * d + 2;
  const float mu = 3.5f, l2 = 0.02f, bl2 = 0.001f;
  Tensor out = uniform({n, W}, gen), ratings = uniform({n}, gen, 0.5f, 5.f);
  Tensor score = Tensor::host({n}), loss = Tensor::host({n}), de = Tensor::host({n});
  Tensor dout = Tensor::host({n, W});
  be->rec_score_forward(out, d, mu, score);
  be->squared_error(score, ratings, 1.f, loss, de);
  be->rec_score_backward(out, de, d, l2, bl2, dout);
  for (int64_t s = 0; s < n; ++s) {
    const float* p = out.data<float>() + s * W;
    const float* q = p + d;
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(p[k]) * q[k];
    const double pred = mu + p[2 * d] + p[2 * d + 1] + dot;
    const auto e = static_cast<float>(pred - ratings.data<float>()[s]);
    // The same score; the op rounds it to f32 before subtracting: e agrees to that rounding.
    EXPECT_EQ(score.data<float>()[s], static_cast<float>(pred)) << s;
    EXPECT_NEAR(de.data<float>()[s], e, 4e-7 * (1 + std::fabs(pred))) << s;
    EXPECT_NEAR(loss.data<float>()[s], e * e, 1e-5 * (1 + e * e)) << s;
    const float ds = de.data<float>()[s];  // the formulas on the op's e: identical
    const float* g = dout.data<float>() + s * W;
    for (int64_t k = 0; k < d; ++k) {
      EXPECT_EQ(g[k], ds * q[k] + l2 * p[k]) << s << " " << k;
      EXPECT_EQ(g[d + k], ds * p[k] + l2 * q[k]) << s << " " << k;
    }
    EXPECT_EQ(g[2 * d], ds + bl2 * p[2 * d]) << s;
    EXPECT_EQ(g[2 * d + 1], ds + bl2 * p[2 * d + 1]) << s;
  }
}

// The two-tower step's former host loop: scores and losses in double. BCE goes through
// bce_with_logits (f32), BPR through pairwise_logistic (double inside, like the former loop).
TEST_F(RecOps, TwoTowerOpsEqualTheFormerHostStep) {
  const int64_t n = 20, G = 5, S = n * G, d = 16, W = 2 * d + 1;
  Tensor out = uniform({S, W}, gen);
  Tensor score = Tensor::host({S});
  be->rec_score_forward(out, d, 0.f, score);
  std::vector<double> ref(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    const float* p = out.data<float>() + s * W;
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(p[k]) * p[d + k];
    ref[s] = dot + p[2 * d];
    EXPECT_EQ(score.data<float>()[s], static_cast<float>(ref[s])) << s;
  }
  Tensor labels = Tensor::host({S}), bce = Tensor::host({S}), dbce = Tensor::host({S});
  for (int64_t s = 0; s < S; ++s) labels.data<float>()[s] = s % G == 0 ? 1.f : 0.f;
  be->bce_with_logits(score, labels, 1.f, bce, dbce);
  Tensor bpr = Tensor::host({n}), dbpr = Tensor::host({S});
  be->pairwise_logistic(score, G, 1.f, bpr, dbpr);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = i * G;
    // The op sees f32 scores: the reference takes the same inputs.
    const auto sc = [&](int64_t s) { return static_cast<double>(score.data<float>()[s]); };
    EXPECT_NEAR(bce.data<float>()[pos], old_softplus(-sc(pos)), 1e-6);
    EXPECT_NEAR(dbce.data<float>()[pos], old_sigmoid(sc(pos)) - 1.0, 1e-6);
    double loss = 0, dpos = 0;
    for (int64_t j = 1; j < G; ++j) {
      EXPECT_NEAR(bce.data<float>()[pos + j], old_softplus(sc(pos + j)), 1e-6);
      EXPECT_NEAR(dbce.data<float>()[pos + j], old_sigmoid(sc(pos + j)), 1e-6);
      const double x = sc(pos) - sc(pos + j);
      loss += old_softplus(-x);
      const double dx = -old_sigmoid(-x);
      dpos += dx;
      EXPECT_EQ(dbpr.data<float>()[pos + j], static_cast<float>(-dx)) << i << " " << j;
    }
    EXPECT_EQ(bpr.data<float>()[i], static_cast<float>(loss)) << i;
    EXPECT_EQ(dbpr.data<float>()[pos], static_cast<float>(dpos)) << i;
  }
}

TEST_F(RecOps, EdgeChecksNameWhatIsWrong) {
  Tensor out = Tensor::host({4, 9}), score = Tensor::host({4}), dout = Tensor::host({4, 9});
  EXPECT_NE(
      test::error_of_kind(ErrorKind::Shape, [&] { be->rec_score_forward(out, 5, 0.f, score); })
          .find("narrower than 2 * dim = 10"),
      std::string::npos);
  EXPECT_NE(
      test::error_of_kind(ErrorKind::Shape, [&] { be->rec_score_forward(out, 0, 0.f, score); })
          .find("dim must be >= 1"),
      std::string::npos);
  Tensor short_score = Tensor::host({3});
  EXPECT_NE(test::error_of_kind(ErrorKind::Shape,
                                [&] { be->rec_score_forward(out, 4, 0.f, short_score); })
                .find("score must be [4]"),
            std::string::npos);
  Tensor narrow = Tensor::host({4, 8});
  EXPECT_NE(test::error_of_kind(ErrorKind::Shape,
                                [&] { be->rec_score_backward(out, score, 4, 0.f, 0.f, narrow); })
                .find("must have out's shape"),
            std::string::npos);
  Tensor ids = Tensor::host({4}, DType::I32);
  EXPECT_NE(test::error_of_kind(ErrorKind::Shape,
                                [&] { be->squared_error(score, ids, 1.f, score, score); })
                .find("must be f32"),
            std::string::npos);
  Tensor s6 = Tensor::host({6}), l3 = Tensor::host({3}), l2 = Tensor::host({2});
  EXPECT_NE(
      test::error_of_kind(ErrorKind::Shape, [&] { be->pairwise_logistic(s6, 1, 1.f, l3, s6); })
          .find("group must be >= 2"),
      std::string::npos);
  EXPECT_NE(
      test::error_of_kind(ErrorKind::Shape, [&] { be->pairwise_logistic(s6, 4, 1.f, l2, s6); })
          .find("not a whole number of groups of 4"),
      std::string::npos);
  EXPECT_NE(
      test::error_of_kind(ErrorKind::Shape, [&] { be->pairwise_logistic(s6, 3, 1.f, l3, s6); })
          .find("loss must be [2]"),
      std::string::npos);
  // An empty batch is a no-op, not an error.
  Tensor none = Tensor::host({0, 9}), no_score = Tensor::host({0});
  be->rec_score_forward(none, 4, 0.f, no_score);
}

}  // namespace
}  // namespace tessera
