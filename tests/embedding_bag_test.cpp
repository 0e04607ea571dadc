// The host embedding-bag ops (the specification) against plain references written here:
// pooled forward (sum, mean, per-sample weights, empty bags, mixed dims), the de-duplicated
// backward against finite differences, every sparse optimizer against a dense reference that
// touches the same rows, the fused path, the id policies, hashing, vocabularies and bad batches.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "embeddings/collection.h"
#include "embeddings/vocabulary.h"

namespace tessera::emb {
namespace {

using Ids = std::vector<std::vector<std::vector<int64_t>>>;  // [T][B][bag]
using Wts = std::vector<std::vector<std::vector<float>>>;

std::vector<TableSpec> mixed_specs() {
  return {{"a", 7, 3, Pooling::Sum}, {"b", 11, 5, Pooling::Mean}, {"c", 4, 1, Pooling::Sum}};
}

// Random bags: lengths 0..max_len (some empty), ids in [0, rows).
Ids random_ids(const std::vector<TableSpec>& specs, int64_t batch, int max_len, std::mt19937& gen) {
  Ids ids(specs.size(), std::vector<std::vector<int64_t>>(static_cast<size_t>(batch)));
  for (size_t t = 0; t < specs.size(); ++t)
    for (auto& bag : ids[t]) {
      const int len = std::uniform_int_distribution<int>(0, max_len)(gen);
      for (int k = 0; k < len; ++k)
        bag.push_back(std::uniform_int_distribution<int64_t>(0, specs[t].rows - 1)(gen));
    }
  return ids;
}
Wts random_weights(const Ids& ids, std::mt19937& gen) {
  Wts w(ids.size());
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  for (size_t t = 0; t < ids.size(); ++t) {
    w[t].resize(ids[t].size());
    for (size_t s = 0; s < ids[t].size(); ++s)
      for (size_t k = 0; k < ids[t][s].size(); ++k) w[t][s].push_back(u(gen));
  }
  return w;
}

// Reference pooled output in double: [B, out_dim].
std::vector<double> reference_forward(const TableLayout& L, const std::vector<float>& weights,
                                      const Ids& ids, const Wts& wts) {
  const size_t B = ids[0].size();
  std::vector<double> out(B * static_cast<size_t>(L.out_dim()), 0.0);
  for (int64_t t = 0; t < L.num_tables(); ++t) {
    const TableSpec& s = L.spec(t);
    for (size_t b = 0; b < B; ++b) {
      const auto& bag = ids[static_cast<size_t>(t)][b];
      for (size_t k = 0; k < bag.size(); ++k) {
        double scale = wts.empty() ? 1.0 : wts[static_cast<size_t>(t)][b][k];
        if (s.pooling == Pooling::Mean) scale /= static_cast<double>(bag.size());
        for (int64_t c = 0; c < s.dim; ++c)
          out[b * static_cast<size_t>(L.out_dim()) + static_cast<size_t>(L.out_offset(t) + c)] +=
              scale * weights[static_cast<size_t>(L.weight_offset(t) + bag[k] * s.dim + c)];
      }
    }
  }
  return out;
}

std::vector<float> to_vec(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

TEST(EmbeddingLayout, OffsetsAreTableBatched) {
  TableLayout L(mixed_specs());
  EXPECT_EQ(L.total_rows(), 22);
  EXPECT_EQ(L.total_elements(), 7 * 3 + 11 * 5 + 4);
  EXPECT_EQ(L.out_dim(), 9);
  EXPECT_EQ(L.weight_offset(1), 21);
  EXPECT_EQ(L.row_offset(2), 18);
  EXPECT_EQ(L.table_of_key(17), 1);
  EXPECT_EQ(L.element_offset(18), 21 + 55);
  // 64-bit offsets: a layout past 2^31 elements and rows (only the arithmetic; nothing allocated).
  TableLayout big({{"wide", int64_t{3} << 30, 4}, {"next", 5, 2}});
  EXPECT_EQ(big.weight_offset(1), (int64_t{3} << 30) * 4);
  EXPECT_EQ(big.table_of_key(int64_t{3} << 30), 1);
  EXPECT_EQ(big.element_offset((int64_t{3} << 30) + 2), (int64_t{3} << 32) + 4);
  EXPECT_THROW(TableLayout({{"x", 0, 4}}), Error);
  EXPECT_THROW(TableLayout({{"x", 3, 4}, {"x", 3, 4}}), Error);
}

// Tables too large for the machine fail by name before anything is allocated: an overflowing
// size in the layout, one beyond the machine's memory in the host storage.
TEST(EmbeddingLayout, TablesBeyondMemoryAreRefusedByName) {
  try {
    TableLayout({{"ok", 10, 4}, {"huge", int64_t{1} << 40, int64_t{1} << 20}});
    FAIL() << "no error for a 2^60-element table";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("'huge' (#1)"), std::string::npos) << e.what();
  }
  auto backend = make_host_backend();
  try {
    EmbeddingCollection emb({{"big", int64_t{1} << 36, 64}}, *backend, {});  // 16 TiB
    FAIL() << "no error for a 16 TiB table";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("MiB of memory"), std::string::npos) << e.what();
  }
}

TEST(EmbeddingBag, ForwardMatchesReferenceSumMeanWeightsEmptyBags) {
  auto backend = make_host_backend();
  std::mt19937 gen(11);
  for (bool weighted : {false, true}) {
    EmbeddingCollection emb(mixed_specs(), *backend, {});
    const Ids ids = random_ids(mixed_specs(), 9, 4, gen);
    const Wts wts = weighted ? random_weights(ids, gen) : Wts{};
    Tensor out;
    emb.forward(make_host_bags(ids, wts), out);
    const auto ref = reference_forward(emb.layout(), to_vec(emb.weights_to_host()), ids, wts);
    ASSERT_EQ(out.numel(), static_cast<int64_t>(ref.size()));
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(out.data<float>()[i], ref[i], 1e-6) << i;
  }
}

// Forward is linear in the weights: L = sum(out * R) has dL/dW = backward(R); central differences
// check every touched element and that untouched rows have no gradient.
TEST(EmbeddingBag, BackwardMatchesFiniteDifferences) {
  auto backend = make_host_backend();
  std::mt19937 gen(12);
  CollectionOptions opts;
  opts.init_scale = 0.5f;
  EmbeddingCollection emb(mixed_specs(), *backend, opts);
  const TableLayout& L = emb.layout();
  const Ids ids = random_ids(mixed_specs(), 6, 5, gen);
  const Wts wts = random_weights(ids, gen);
  const Bags bags = make_host_bags(ids, wts);
  Tensor out;
  emb.forward(bags, out);
  Tensor R = Tensor::host({6, L.out_dim()});
  for (int64_t i = 0; i < R.numel(); ++i)
    R.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
  const SparseGrad g = emb.backward(R);
  // Dense gradient from the sparse one.
  std::vector<double> dense(static_cast<size_t>(L.total_elements()), 0.0);
  for (int64_t u = 0; u < g.count; ++u) {
    const int64_t key = g.keys.data<int64_t>()[u];
    if (u > 0)
      EXPECT_LT(g.keys.data<int64_t>()[u - 1], key) << "keys must be distinct and ascending";
    const int64_t t = L.table_of_key(key);
    for (int64_t c = 0; c < L.max_dim(); ++c) {
      const float v = g.grads.data<float>()[u * L.max_dim() + c];
      if (c >= L.spec(t).dim) {
        EXPECT_EQ(v, 0.f);
        continue;
      }
      dense[static_cast<size_t>(L.element_offset(key) + c)] = v;
    }
  }
  std::vector<float> w = to_vec(emb.weights_to_host());
  auto loss = [&](const std::vector<float>& ww) {
    const auto o = reference_forward(L, ww, ids, wts);
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * R.data<float>()[i];
    return s;
  };
  const double eps = 1e-2;
  for (size_t e = 0; e < w.size(); ++e) {
    std::vector<float> wp = w, wm = w;
    wp[e] += static_cast<float>(eps);
    wm[e] -= static_cast<float>(eps);
    const double fd = (loss(wp) - loss(wm)) / (2 * eps);
    EXPECT_NEAR(dense[e], fd, 2e-3 * (1 + std::fabs(fd))) << "element " << e;
  }
}

// The gradient w.r.t. the per-sample weights (sum and mean tables, bags with and without
// weights, empty bags, a width-64 table) against central differences of L = sum(out * R) through
// the double reference forward; with no weights the derivative is taken at weights of 1.
TEST(EmbeddingBag, WeightGradientMatchesFiniteDifferences) {
  auto backend = make_host_backend();
  std::mt19937 gen(31);
  std::vector<TableSpec> specs = mixed_specs();
  specs.push_back({"wide", 20, 64, Pooling::Mean});
  CollectionOptions opts;
  opts.init_scale = 0.5f;
  for (bool weighted : {true, false}) {
    EmbeddingCollection emb(specs, *backend, opts);
    const TableLayout& L = emb.layout();
    const int64_t B = 7;
    const Ids ids = random_ids(specs, B, 4, gen);
    Wts wts = random_weights(ids, gen);
    if (!weighted)
      for (auto& tab : wts)
        for (auto& bag : tab) std::fill(bag.begin(), bag.end(), 1.f);
    Tensor out;
    emb.forward(make_host_bags(ids, weighted ? wts : Wts{}), out);
    Tensor R = Tensor::host({B, L.out_dim()});
    for (int64_t i = 0; i < R.numel(); ++i)
      R.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    const Tensor g = emb.weight_grad(R);
    const std::vector<float> w = to_vec(emb.weights_to_host());
    auto loss = [&](const Wts& ww) {
      const auto o = reference_forward(L, w, ids, ww);
      double s = 0;
      for (size_t i = 0; i < o.size(); ++i) s += o[i] * R.data<float>()[i];
      return s;
    };
    const double eps = 1e-2;
    int64_t j = 0;  // CSR position: tables, then samples, then the bag's indices
    for (size_t t = 0; t < ids.size(); ++t)
      for (size_t b = 0; b < ids[t].size(); ++b)
        for (size_t k = 0; k < ids[t][b].size(); ++k, ++j) {
          Wts wp = wts, wm = wts;
          wp[t][b][k] += static_cast<float>(eps);
          wm[t][b][k] -= static_cast<float>(eps);
          const double fd = (loss(wp) - loss(wm)) / (2 * eps);
          EXPECT_NEAR(g.data<float>()[j], fd, 1e-3 * (1 + std::fabs(fd)))
              << "table " << t << " sample " << b << " index " << k;
        }
    EXPECT_EQ(j, g.numel());
  }
}

// A dense reference of one optimizer step on the rows in `touched` (double precision).
void reference_step(const TableLayout& L, const SparseOptimizerConfig& c, int64_t step,
                    const std::map<int64_t, std::vector<double>>& grad_by_key,
                    std::vector<double>& w, std::vector<double>& s0, std::vector<double>& s1) {
  const double bc1 = 1 - std::pow(double(c.beta1), double(step));
  const double bc2 = 1 - std::pow(double(c.beta2), double(step));
  for (const auto& kv : grad_by_key) {
    const int64_t key = kv.first;
    const int64_t t = L.table_of_key(key);
    const int64_t dim = L.spec(t).dim;
    const int64_t e0 = L.element_offset(key);
    double sq = 0;
    for (int64_t k = 0; k < dim; ++k)
      sq += kv.second[static_cast<size_t>(k)] * kv.second[static_cast<size_t>(k)];
    if (c.kind == SparseOptimizer::RowwiseAdagrad) s0[static_cast<size_t>(key)] += sq / double(dim);
    for (int64_t k = 0; k < dim; ++k) {
      const double g = kv.second[static_cast<size_t>(k)];
      const size_t e = static_cast<size_t>(e0 + k);
      switch (c.kind) {
        case SparseOptimizer::Sgd:
          w[e] -= c.lr * g;
          break;
        case SparseOptimizer::Adagrad:
          s0[e] += g * g;
          w[e] -= c.lr * g / (std::sqrt(s0[e]) + c.eps);
          break;
        case SparseOptimizer::RowwiseAdagrad:
          w[e] -= c.lr * g / (std::sqrt(s0[static_cast<size_t>(key)]) + c.eps);
          break;
        case SparseOptimizer::LazyAdam:
          s0[e] = c.beta1 * s0[e] + (1 - c.beta1) * g;
          s1[e] = c.beta2 * s1[e] + (1 - c.beta2) * g * g;
          w[e] -= c.lr * (s0[e] / bc1) / (std::sqrt(s1[e] / bc2) + c.eps);
          break;
      }
    }
  }
}

class SparseOptimizerTest : public ::testing::TestWithParam<SparseOptimizer> {
 protected:
  // The parameter's optimizer, with steps and initial tables large enough to move every weight.
  static CollectionOptions options() {
    CollectionOptions opts;
    opts.optimizer.kind = GetParam();
    opts.optimizer.lr = 0.05f;
    opts.optimizer.initial_accumulator = 0.1f;
    opts.init_scale = 0.3f;
    return opts;
  }
};

TEST_P(SparseOptimizerTest, UpdatesOnlyTouchedRowsLikeTheDenseReference) {
  auto backend = make_host_backend();
  std::mt19937 gen(13);
  const CollectionOptions opts = options();
  EmbeddingCollection fused(mixed_specs(), *backend, opts);
  EmbeddingCollection unfused(mixed_specs(), *backend, opts);
  const TableLayout& L = fused.layout();
  std::vector<double> w, s0, s1;
  for (float x : to_vec(fused.weights_to_host())) w.push_back(x);
  const bool adagrad =
      GetParam() == SparseOptimizer::Adagrad || GetParam() == SparseOptimizer::RowwiseAdagrad;
  s0.assign(static_cast<size_t>(state_size(GetParam(), L)), adagrad ? 0.1 : 0.0);
  s1.assign(static_cast<size_t>(L.total_elements()), 0.0);
  std::set<int64_t> ever_touched;
  for (int step = 1; step <= 3; ++step) {
    // Few rows, many repeats: de-duplication matters.
    Ids ids = random_ids(mixed_specs(), 5, 4, gen);
    for (auto& tab : ids)
      for (auto& bag : tab)
        for (auto& id : bag) id = id % 3;
    const Wts wts = random_weights(ids, gen);
    Tensor out1, out2;
    fused.forward(make_host_bags(ids, wts), out1);
    unfused.forward(make_host_bags(ids, wts), out2);
    Tensor dout = Tensor::host({5, L.out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    const SparseGrad g = unfused.backward(dout);
    std::map<int64_t, std::vector<double>> by_key;
    for (int64_t u = 0; u < g.count; ++u) {
      const int64_t key = g.keys.data<int64_t>()[u];
      ever_touched.insert(key);
      for (int64_t c = 0; c < L.max_dim(); ++c)
        by_key[key].push_back(g.grads.data<float>()[u * L.max_dim() + c]);
    }
    unfused.apply(g);
    fused.backward_and_update(dout);
    reference_step(L, opts.optimizer, step, by_key, w, s0, s1);
  }
  const std::vector<float> wf = to_vec(fused.weights_to_host());
  const std::vector<float> wu = to_vec(unfused.weights_to_host());
  const std::vector<float> w0 =
      to_vec(EmbeddingCollection(mixed_specs(), *backend, opts).weights_to_host());
  for (size_t e = 0; e < w.size(); ++e) {
    EXPECT_NEAR(wu[e], w[e], 1e-5 * (1 + std::fabs(w[e]))) << "element " << e;
    EXPECT_EQ(wf[e], wu[e]) << "fused and unfused differ at element " << e;
  }
  // Rows no batch touched are bit-for-bit the initial ones.
  for (int64_t key = 0; key < L.total_rows(); ++key) {
    if (ever_touched.count(key)) continue;
    const int64_t e0 = L.element_offset(key);
    for (int64_t c = 0; c < L.spec(L.table_of_key(key)).dim; ++c)
      EXPECT_EQ(wf[static_cast<size_t>(e0 + c)], w0[static_cast<size_t>(e0 + c)])
          << "untouched row " << key;
  }
  EXPECT_EQ(fused.steps(), 3);
}

// Width-64 tables take the host's fixed-width kernels (the pooled sum kept in registers, the
// fused backward's prefetching, the sparse and the dense update sweeps); a width-8 table beside
// them takes the general ones. With 4 tables and a batch large enough to go parallel, the fused
// step runs one table per thread: forward must match the double reference, and fused must equal
// unfused bit for bit, over steps that reuse rows.
TEST_P(SparseOptimizerTest, WideTablesFastPathsMatchReferenceAndUnfused) {
  auto backend = make_host_backend();
  std::mt19937 gen(29);
  const std::vector<TableSpec> specs = {{"sparse", 10000, 64, Pooling::Sum},
                                        {"dense", 50, 64, Pooling::Mean},
                                        {"mid", 300, 64, Pooling::Sum},
                                        {"narrow", 30, 8, Pooling::Sum}};
  const CollectionOptions opts = options();
  EmbeddingCollection fused(specs, *backend, opts);
  EmbeddingCollection unfused(specs, *backend, opts);
  const TableLayout& L = fused.layout();
  const int64_t B = 160;
  for (int step = 1; step <= 3; ++step) {
    const Ids ids = random_ids(specs, B, 6, gen);
    const Wts wts = step == 2 ? Wts{} : random_weights(ids, gen);
    const std::vector<float> before = to_vec(fused.weights_to_host());
    Tensor out1, out2;
    fused.forward(make_host_bags(ids, wts), out1);
    unfused.forward(make_host_bags(ids, wts), out2);
    const auto ref = reference_forward(L, before, ids, wts);
    ASSERT_EQ(out1.numel(), static_cast<int64_t>(ref.size()));
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_NEAR(out1.data<float>()[i], ref[i], 1e-5 * (1 + std::fabs(ref[i]))) << i;
      ASSERT_EQ(out1.data<float>()[i], out2.data<float>()[i]) << i;
    }
    Tensor dout = Tensor::host({B, L.out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    unfused.apply(unfused.backward(dout));
    fused.backward_and_update(dout);
    const std::vector<float> wf = to_vec(fused.weights_to_host());
    const std::vector<float> wu = to_vec(unfused.weights_to_host());
    size_t changed = 0;
    for (size_t e = 0; e < wf.size(); ++e) {
      ASSERT_EQ(wf[e], wu[e]) << "fused and unfused differ at element " << e << ", step " << step;
      changed += wf[e] != before[e];
    }
    EXPECT_GT(changed, 0u) << "the step changed no weight";
  }
}

// A batch whose ids are all in range is used as it is (its indices are the keys, table-local);
// one with an id to clamp is mapped to global keys. The two paths must agree exactly: the same
// batches, once with an out-of-range id in a WarnClamp table and once with that id already
// clamped, give the same outputs, weight gradients and (fused and unfused) training steps.
TEST_P(SparseOptimizerTest, CleanBatchesUsedAsTheyAreTrainLikeMappedOnes) {
  auto backend = make_host_backend();
  std::mt19937 gen(41);
  const std::vector<TableSpec> specs = {{"clamped", 400, 64, Pooling::Sum, IdPolicy::WarnClamp},
                                        {"dense", 50, 64, Pooling::Mean},
                                        {"mid", 300, 16, Pooling::Sum},
                                        {"narrow", 30, 8, Pooling::Mean}};
  const CollectionOptions opts = options();
  EmbeddingCollection mapped(specs, *backend, opts), clean(specs, *backend, opts);
  EmbeddingCollection mapped_unfused(specs, *backend, opts), clean_unfused(specs, *backend, opts);
  const int64_t B = 96;
  for (int step = 1; step <= 3; ++step) {
    Ids ids = random_ids(specs, B, 5, gen);
    ids[0][7] = {3, 3};
    Ids bad = ids;
    bad[0][7][1] = step == 2 ? -4 : 400 + step;  // clamps to row 0 or to the last row (399)
    ids[0][7][1] = step == 2 ? 0 : 399;
    const Wts wts = step == 2 ? Wts{} : random_weights(ids, gen);
    Tensor out_m, out_c, out_mu, out_cu;
    mapped.forward(make_host_bags(bad, wts), out_m);
    clean.forward(make_host_bags(ids, wts), out_c);
    mapped_unfused.forward(make_host_bags(bad, wts), out_mu);
    clean_unfused.forward(make_host_bags(ids, wts), out_cu);
    {
      // Both paths are taken: the batch to clamp is mapped, the clean one used as it is.
      auto ops = make_host_bag_ops();
      IdWarnState ws;
      const Bags bb = make_host_bags(bad, wts), cb = make_host_bags(ids, wts);
      ASSERT_FALSE(ops->resolve(mapped.layout(), bb, ws).local_keys);
      const ResolvedBags rc = ops->resolve(clean.layout(), cb, ws);
      ASSERT_TRUE(rc.local_keys);
      ASSERT_EQ(rc.keys.data<int64_t>(), cb.indices.data<int64_t>());
    }
    ASSERT_EQ(out_m.numel(), out_c.numel());
    for (int64_t i = 0; i < out_m.numel(); ++i)
      ASSERT_EQ(out_m.data<float>()[i], out_c.data<float>()[i]) << i << ", step " << step;
    Tensor dout = Tensor::host({B, mapped.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    if (step != 2) {
      const std::vector<float> gm = to_vec(mapped.weight_grad(dout));
      const std::vector<float> gc = to_vec(clean.weight_grad(dout));
      ASSERT_EQ(gm, gc) << "weight gradients, step " << step;
    }
    mapped.backward_and_update(dout);
    clean.backward_and_update(dout);
    mapped_unfused.apply(mapped_unfused.backward(dout));
    clean_unfused.apply(clean_unfused.backward(dout));
    const std::vector<float> wm = to_vec(mapped.weights_to_host());
    ASSERT_EQ(wm, to_vec(clean.weights_to_host())) << "fused, step " << step;
    ASSERT_EQ(wm, to_vec(mapped_unfused.weights_to_host())) << "unfused mapped, step " << step;
    ASSERT_EQ(wm, to_vec(clean_unfused.weights_to_host())) << "unfused clean, step " << step;
  }
  EXPECT_EQ(mapped.clamped_ids(), 3u);
  EXPECT_EQ(clean.clamped_ids(), 0u);
}

INSTANTIATE_TEST_SUITE_P(All, SparseOptimizerTest,
                         ::testing::Values(SparseOptimizer::Sgd, SparseOptimizer::Adagrad,
                                           SparseOptimizer::RowwiseAdagrad,
                                           SparseOptimizer::LazyAdam),
                         [](const auto& info) {
                           return std::string(sparse_optimizer_name(info.param));
                         });

// A learning-rate schedule reaches the tables as a factor on the sparse optimizer's lr: one SGD
// step from zero weights with factor 0.5 moves each touched row exactly half as far as with 1
// (the default, which is exactly the configured lr), on the host backend and through both update
// paths (fused backward + update, and apply). A factor that is not finite or is negative is
// refused.
TEST(EmbeddingOptimizer, LrScaleScalesTheStep) {
  auto be = make_host_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::Sgd;
  opts.optimizer.lr = 0.1f;
  opts.init_scale = 0.f;  // w = -lr * scale * g after one step, no rounding against the start
  const std::vector<TableSpec> specs = {{"a", 4, 3, Pooling::Sum}, {"b", 3, 2, Pooling::Mean}};
  const Bags bags = make_host_bags({{{1}, {3, 1}}, {{0, 2}, {2}}});
  Tensor dout = Tensor::host({2, 5});
  for (int64_t i = 0; i < dout.numel(); ++i)
    dout.data<float>()[i] = 0.25f * static_cast<float>(i + 1) * (i % 2 ? -1.f : 1.f);
  auto step = [&](float scale, bool fused, bool set) {
    EmbeddingCollection emb(specs, *be, opts);
    if (set) emb.set_lr_scale(scale);
    Tensor out;
    emb.forward(bags, out);
    if (fused)
      emb.backward_and_update(dout);
    else
      emb.apply(emb.backward(dout));
    EXPECT_EQ(emb.steps(), 1);
    return to_vec(emb.weights_to_host());
  };
  for (const bool fused : {true, false}) {
    const std::vector<float> full = step(1.f, fused, false), half = step(0.5f, fused, true);
    EXPECT_EQ(step(1.f, fused, true), full);  // an explicit 1 is the configured lr, bit for bit
    ASSERT_EQ(full.size(), half.size());
    int64_t moved = 0;
    for (size_t i = 0; i < full.size(); ++i) {
      EXPECT_EQ(half[i], 0.5f * full[i]) << "element " << i << (fused ? " fused" : " apply");
      moved += full[i] != 0.f;
    }
    // Rows 1 and 3 of "a" (3 columns each) and rows 0 and 2 of "b" (2 each) moved; no others.
    EXPECT_EQ(moved, 10);
  }
  EmbeddingCollection emb(specs, *be, opts);
  for (const float bad : {-0.5f, std::nanf(""), INFINITY})
    EXPECT_THROW(emb.set_lr_scale(bad), Error) << bad;
  EXPECT_EQ(emb.lr_scale(), 1.f);
}

TEST(EmbeddingIds, ErrorPolicyNamesTableSampleAndId) {
  auto backend = make_host_backend();
  EmbeddingCollection emb({{"users", 5, 2}, {"items", 4, 2}}, *backend, {});
  // items, sample 1 holds id 9 (position 5) and a later -1.
  const Bags bags = make_host_bags({{{0, 1}, {2}}, {{3}, {1, 9, -1}}});
  Tensor out;
  try {
    emb.forward(bags, out);
    FAIL() << "no error for id 9";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    const std::string m = e.what();
    EXPECT_NE(m.find("embedding id 9 in table 'items' (#1), sample 1 (index position 5)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("[0, 4)"), std::string::npos) << m;
  }
}

TEST(EmbeddingIds, WarnClampClampsCountsAndWarnsOncePerTable) {
  auto backend = make_host_backend();
  std::vector<TableSpec> specs{{"u", 5, 2, Pooling::Sum, IdPolicy::WarnClamp}, {"v", 4, 2}};
  EmbeddingCollection emb(specs, *backend, {});
  const size_t before = id_policy_warnings().size();
  Tensor out, clamped_out;
  emb.forward(make_host_bags({{{7, -3}, {2}}, {{0}, {1}}}), out);
  emb.forward(make_host_bags({{{4, 0}, {2}}, {{0}, {1}}}), clamped_out);
  for (int64_t i = 0; i < out.numel(); ++i)
    EXPECT_EQ(out.data<float>()[i], clamped_out.data<float>()[i]);
  EXPECT_EQ(emb.clamped_ids(), 2u);
  emb.forward(make_host_bags({{{99}, {2}}, {{0}, {1}}}), out);
  EXPECT_EQ(emb.clamped_ids(), 3u);
  ASSERT_EQ(id_policy_warnings().size(), before + 1) << "warn once per table";
  EXPECT_NE(id_policy_warnings().back().find(
                "embedding id 7 in table 'u' (#0), sample 0 (index position 0)"),
            std::string::npos)
      << id_policy_warnings().back();
  // The Error table next to it still fails.
  EXPECT_THROW(emb.forward(make_host_bags({{{0}, {2}}, {{4}, {1}}}), out), Error);
}

TEST(EmbeddingIds, HashedTablesAcceptAnyIdAndMapLikeHashRow) {
  auto backend = make_host_backend();
  std::vector<TableSpec> specs{{"h", 13, 2, Pooling::Sum, IdPolicy::Error, IdMapping::Hash}};
  EmbeddingCollection emb(specs, *backend, {});
  const std::vector<int64_t> raw{-5, 0, 123456789012345, INT64_MAX, 13};
  Tensor out;
  emb.forward(make_host_bags({{{raw[0]}, {raw[1]}, {raw[2]}, {raw[3]}, {raw[4]}}}), out);
  const Tensor table = emb.table_to_host(0);
  for (size_t s = 0; s < raw.size(); ++s) {
    const int64_t row = hash_row(raw[s], 13);
    ASSERT_GE(row, 0);
    ASSERT_LT(row, 13);
    EXPECT_EQ(row, static_cast<int64_t>(math::mix64(static_cast<uint64_t>(raw[s])) % 13u));
    for (int c = 0; c < 2; ++c)
      EXPECT_EQ(out.data<float>()[s * 2 + c], table.data<float>()[row * 2 + c]);
  }
}

TEST(EmbeddingBags, BadOffsetsAndShapesAreClearErrors) {
  auto backend = make_host_backend();
  EmbeddingCollection emb({{"a", 5, 2}}, *backend, {});
  Tensor out;
  Bags b = make_host_bags({{{0, 1}, {2}}});
  b.offsets.data<int64_t>()[1] = 3;  // offsets 0,3,3 with nnz 3: valid; then decrease
  b.offsets.data<int64_t>()[1] = 4;
  try {
    emb.forward(b, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("decrease at offsets[2]"), std::string::npos) << e.what();
  }
  Bags c = make_host_bags({{{0, 1}, {2}}});
  c.offsets.data<int64_t>()[2] = 2;
  try {
    emb.forward(c, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must equal the number of indices 3"), std::string::npos)
        << e.what();
  }
  Bags d = make_host_bags({{{0, 1}, {2}}});
  d.batch = 3;
  EXPECT_THROW(emb.forward(d, out), Error);
  EXPECT_THROW(emb.backward(Tensor::host({1, 1})), Error);
}

TEST(EmbeddingVocabulary, MinCountOovRowAndDeterministicOrder) {
  const std::vector<std::string> data{"b", "a", "c", "a", "b", "a", "d", "b", "c"};
  const Vocabulary v = Vocabulary::build(data, {/*min_count=*/2, /*max_size=*/0});
  ASSERT_EQ(v.size(), 4);  // <oov>, a(3), b(3), c(2); d is rare
  EXPECT_EQ(v.token(0), "<oov>");
  EXPECT_EQ(v.lookup("a"), 1);
  EXPECT_EQ(v.lookup("b"), 2);
  EXPECT_EQ(v.lookup("c"), 3);
  EXPECT_EQ(v.lookup("d"), Vocabulary::kOovRow);
  EXPECT_EQ(v.lookup("never"), Vocabulary::kOovRow);
  EXPECT_EQ(v.count(0), 1);
  const Vocabulary capped = Vocabulary::build(data, {1, 3});
  EXPECT_EQ(capped.size(), 3);
  EXPECT_EQ(capped.count(0), 3);  // c(2) + d(1)
  const Vocabulary ints = Vocabulary::build(std::vector<int64_t>{5, 5, 7}, {2, 0});
  EXPECT_EQ(ints.lookup(5), 1);
  EXPECT_EQ(ints.lookup(7), 0);
  EXPECT_THROW(Vocabulary::build(data, {0, 0}), Error);
}

}  // namespace
}  // namespace tessera::emb
