// DCN-V2 and Wide & Deep (pipelines/behaviour/dcn_model.h, wide_deep_model.h) against finite
// differences of their own loss, on the host backend: a cross network alone (full and low rank:
// every weight and the input x0, which enters each layer twice), then the whole models (every
// dense weight and every table element a batch touches; the tables' gradient read off one
// sparse-SGD step with lr 1, w_after = w_before - g, so the id mapping and the deferred sparse step
// are covered too). Also: the column concatenation's gather and scatter, and restore's checks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/error.h"
#include "pipelines/behaviour/column_concat.h"
#include "pipelines/behaviour/cross_network.h"
#include "pipelines/behaviour/dcn_model.h"
#include "pipelines/behaviour/wide_deep_model.h"

namespace tessera {
namespace {

constexpr float kEps = 1e-2f;

Tensor random_host(const Shape& shape, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::host(shape);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

bool close(double num, double ana) {
  return std::fabs(num - ana) <= 1e-3 + 1e-2 * std::max(std::fabs(num), std::fabs(ana));
}

// Central differences of `f` in each of x[0, n) against analytic(i); failures counted.
int64_t check_fd(const std::string& what, float* x, int64_t n, const std::function<double()>& f,
                 const std::function<double(int64_t)>& analytic) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float orig = x[i];
    x[i] = orig + kEps;
    const double hi = f();
    x[i] = orig - kEps;
    const double lo = f();
    x[i] = orig;
    const double num = (hi - lo) / (2.0 * kEps), ana = analytic(i);
    if (!close(num, ana) && bad++ < 3)
      ADD_FAILURE() << what << "[" << i << "]: analytic " << ana << ", numeric " << num;
  }
  return bad;
}

void check_cross_network(int64_t rank) {
  auto be = make_host_backend();
  std::mt19937 rng(5 + static_cast<unsigned>(rank));
  const int64_t b = 3, d = 5;
  CrossNetwork net(*be, {d, 2, rank}, 17, 4);
  // Non-zero biases, so their gradient path is exercised with real values.
  for (Parameter* p : net.parameters()) {
    Tensor r = random_host(p->value.shape(), rng);
    be->copy(r, p->value);
  }
  Tensor x0 = random_host({b, d}, rng), c = random_host({b, d}, rng);
  // loss = sum(c (.) x_L): dL/dx_L = c.
  auto loss = [&] {
    const Tensor y = net.forward(x0);
    double s = 0;
    for (int64_t i = 0; i < y.numel(); ++i) s += double(c.data<float>()[i]) * y.data<float>()[i];
    return s;
  };
  loss();
  Tensor dx0 = be->empty({b, d});
  net.backward(c, dx0);
  const std::string kind = rank == 0 ? "full rank " : "low rank ";
  for (Parameter* p : net.parameters()) {
    Tensor g = be->to_host(p->grad);
    EXPECT_EQ(check_fd(kind + p->name, p->value.data<float>(), p->value.numel(), loss,
                       [&](int64_t i) { return g.data<float>()[i]; }),
              0);
  }
  EXPECT_EQ(check_fd(kind + "x0", x0.data<float>(), x0.numel(), loss,
                     [&](int64_t i) { return dx0.data<float>()[i]; }),
            0);
  // The parameters the spec implies, by name and shape.
  const auto shapes = CrossNetwork::weight_shapes({d, 2, rank});
  ASSERT_EQ(shapes.size(), net.parameters().size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_EQ(shapes[i].first, net.parameters()[i]->name);
    EXPECT_EQ(shapes[i].second, net.parameters()[i]->value.shape());
  }
}

TEST(CrossNetwork, FullRankGradientsMatchFiniteDifferences) {
  check_cross_network(0);
}
TEST(CrossNetwork, LowRankGradientsMatchFiniteDifferences) {
  check_cross_network(2);
}

TEST(ColumnConcat, GathersPicksAndScattersBack) {
  auto be = make_host_backend();
  // Parts of widths 4 and 6; x = [part0[:, 1:3) | part1[:, 0:6) | part0[:, 3:4)] (chunks of 1).
  ColumnConcat cc(*be, {4, 6}, {{0, 1, 3}, {1, 0, 6}, {0, 3, 4}}, 5);
  ASSERT_EQ(cc.width(), 9);
  const int64_t b = 3;
  std::mt19937 rng(2);
  Tensor p0 = random_host({b, 4}, rng), p1 = random_host({b, 6}, rng);
  Tensor v0 = cc.part(b, 0), v1 = cc.part(b, 1);
  be->copy(p0, v0);
  be->copy(p1, v1);
  const Tensor x = cc.forward(b);
  ASSERT_EQ(x.shape(), (Shape{b, 9}));
  for (int64_t s = 0; s < b; ++s) {
    const float* r = x.data<float>() + s * 9;
    EXPECT_EQ(r[0], p0.data<float>()[s * 4 + 1]);
    EXPECT_EQ(r[1], p0.data<float>()[s * 4 + 2]);
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(r[2 + j], p1.data<float>()[s * 6 + j]);
    EXPECT_EQ(r[8], p0.data<float>()[s * 4 + 3]);
  }
  Tensor dx = random_host({b, 9}, rng);
  cc.backward(dx);
  const Tensor d0 = cc.dpart(b, 0), d1 = cc.dpart(b, 1);
  for (int64_t s = 0; s < b; ++s) {
    const float* g = dx.data<float>() + s * 9;
    EXPECT_EQ(d0.data<float>()[s * 4 + 0], 0.f);  // no pick takes column 0
    EXPECT_EQ(d0.data<float>()[s * 4 + 1], g[0]);
    EXPECT_EQ(d0.data<float>()[s * 4 + 2], g[1]);
    EXPECT_EQ(d0.data<float>()[s * 4 + 3], g[8]);
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(d1.data<float>()[s * 6 + j], g[2 + j]);
  }
}

struct Problem {
  Tensor dense, cat, labels;
};

Problem make_problem(int64_t b, const TableModelSpec& s, std::mt19937& rng) {
  Problem p;
  const int64_t nt = static_cast<int64_t>(s.table_rows.size());
  p.dense = random_host({b, s.n_dense}, rng);
  p.cat = Tensor::host({b, nt}, DType::I64);
  p.labels = Tensor::host({b});
  for (int64_t i = 0; i < b; ++i) {
    p.labels.data<float>()[i] = static_cast<float>(i % 2);
    // Table t uses only its first rows - 1 rows, so the last row of each is never touched.
    for (int64_t t = 0; t < nt; ++t)
      p.cat.data<int64_t>()[i * nt + t] = static_cast<int64_t>(rng() % (s.table_rows[t] - 1));
  }
  return p;
}

double loss(Backend& be, TableModel& m, const Problem& p, bool backward) {
  const int64_t b = p.cat.dim(0);
  Tensor logits = m.forward(p.dense, p.cat, backward ? Mode::Train : Mode::Eval, 0);
  Tensor l = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, p.labels, 1.f / static_cast<float>(b), l, dl);
  if (backward) m.backward(dl);
  double s = 0;
  for (int64_t i = 0; i < b; ++i) s += l.data<float>()[i];
  return s / static_cast<double>(b);
}

// Every dense parameter and every table element of `m` against central differences.
void check_model(Backend& be, TableModel& m, const Problem& p) {
  // Non-zero wide weights and biases, so every path carries a real value.
  std::mt19937 rng(9);
  for (Parameter* prm : m.parameters()) {
    Tensor r = random_host(prm->value.shape(), rng, -0.5f, 0.5f);
    be.copy(r, prm->value);
  }
  auto w0 = m.snapshot();
  Tensor& flat0 = w0.at("embedding.tables");
  for (int64_t i = 0; i < flat0.numel(); ++i)
    flat0.data<float>()[i] += 0.3f * std::sin(static_cast<float>(i));
  m.restore(w0);
  const auto before = m.snapshot();
  loss(be, m, p, /*backward=*/true);
  m.sparse_group().step();
  const auto after = m.snapshot();  // tables stepped once: g = before - after
  m.restore(before);
  auto f = [&] { return loss(be, m, p, false); };
  for (Parameter* prm : m.parameters()) {
    Tensor g = be.to_host(prm->grad);
    EXPECT_EQ(check_fd(prm->name, prm->value.data<float>(), prm->value.numel(), f,
                       [&](int64_t i) { return g.data<float>()[i]; }),
              0);
  }
  auto w = m.snapshot();
  Tensor& tw = w.at("embedding.tables");
  const float* b0 = before.at("embedding.tables").data<float>();
  const float* a0 = after.at("embedding.tables").data<float>();
  int64_t touched = 0;
  auto table_loss = [&] {
    m.restore(w);
    return f();
  };
  EXPECT_EQ(check_fd("embedding.tables", tw.data<float>(), tw.numel(), table_loss,
                     [&](int64_t i) {
                       touched += b0[i] != a0[i];
                       return static_cast<double>(b0[i]) - a0[i];
                     }),
            0);
  EXPECT_GT(touched, 0);
  EXPECT_LT(touched, tw.numel());  // the last row of every table is never used
}

TableModelSpec small_spec() {
  TableModelSpec s;
  s.n_dense = 3;
  s.table_rows = {5, 7, 4};
  s.embedding_dim = 4;
  s.top = {6};
  s.activation = Activation::Tanh;  // smooth: no kinks for the central differences to straddle
  s.sparse.kind = emb::SparseOptimizer::Sgd;
  s.sparse.lr = 1.f;
  return s;
}

TEST(DcnModel, StackedFullRankGradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  DcnSpec s;
  static_cast<TableModelSpec&>(s) = small_spec();
  s.bottom = {5};
  s.cross_layers = 2;
  std::mt19937 rng(3);
  const Problem p = make_problem(6, s, rng);
  DcnModel m(*be, s, 11, 8);
  EXPECT_EQ(s.x0_width(), 4 + 3 * 4);
  check_model(*be, m, p);
}

TEST(DcnModel, ParallelLowRankWithoutBottomGradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  DcnSpec s;
  static_cast<TableModelSpec&>(s) = small_spec();
  s.bottom = {};  // the 3 dense features join x0 as they are
  s.cross_layers = 2;
  s.low_rank = 3;
  s.parallel = true;
  std::mt19937 rng(4);
  const Problem p = make_problem(5, s, rng);
  DcnModel m(*be, s, 12, 8);
  EXPECT_EQ(s.x0_width(), 3 + 3 * 4);
  check_model(*be, m, p);
}

TEST(WideDeepModel, GradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  WideDeepSpec s;
  static_cast<TableModelSpec&>(s) = small_spec();
  std::mt19937 rng(6);
  const Problem p = make_problem(6, s, rng);
  WideDeepModel m(*be, s, 13, 8);
  check_model(*be, m, p);
}

TEST(WideDeepModel, TheWidePartStartsAtZeroAndTheLogitIsWidePlusDeep) {
  auto be = make_host_backend();
  WideDeepSpec s;
  static_cast<TableModelSpec&>(s) = small_spec();
  std::mt19937 rng(8);
  const Problem p = make_problem(4, s, rng);
  WideDeepModel m(*be, s, 14, 8);
  auto w = m.snapshot();
  // The wide tables (after the deep ones in the flat buffer) and the dense linear start at zero.
  const int64_t deep_elements = (5 + 7 + 4) * 4;
  const Tensor& flat = w.at("embedding.tables");
  ASSERT_EQ(flat.numel(), deep_elements + 5 + 7 + 4);
  for (int64_t i = deep_elements; i < flat.numel(); ++i) EXPECT_EQ(flat.data<float>()[i], 0.f);
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(w.at("wide.weight").data<float>()[i], 0.f);
  const Tensor deep_only = be->to_host(m.forward(p.dense, p.cat, Mode::Eval, 0));
  // A wide weight of 0.25 on every row of table 1 and 0.5 on dense feature 0 add exactly that.
  Tensor& tw = w.at("embedding.tables");
  for (int64_t r = 0; r < 7; ++r) tw.data<float>()[deep_elements + 5 + r] = 0.25f;
  w.at("wide.weight").data<float>()[0] = 0.5f;
  m.restore(w);
  const Tensor both = be->to_host(m.forward(p.dense, p.cat, Mode::Eval, 0));
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_NEAR(both.data<float>()[i],
                deep_only.data<float>()[i] + 0.25f + 0.5f * p.dense.data<float>()[i * 3], 1e-5f);
}

TEST(DcnModel, RestoreChecksEveryWeightFirstAndWeightShapesNameThem) {
  auto be = make_host_backend();
  DcnSpec s;
  static_cast<TableModelSpec&>(s) = small_spec();
  s.low_rank = 2;
  DcnModel m(*be, s, 1, 4);
  auto w = m.snapshot();
  const auto shapes = DcnModel::weight_shapes(s);
  ASSERT_EQ(shapes.size() + 1, w.size());  // + "embedding.tables"
  for (const auto& [name, shape] : shapes) EXPECT_EQ(w.at(name).shape(), shape) << name;
  const float kept = w.at("deep0.weight").data<float>()[0];
  w.at("deep0.weight").data<float>()[0] += 1.f;
  w.erase("cross1.u");
  try {
    m.restore(w);
    FAIL() << "a snapshot without cross1.u was restored";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cross1.u"), std::string::npos) << e.what();
  }
  // Nothing was copied before the check failed.
  EXPECT_EQ(m.snapshot().at("deep0.weight").data<float>()[0], kept);
}

}  // namespace
}  // namespace tessera
