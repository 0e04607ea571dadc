// Hot rows on the device embedding-bag path (issue 17 item 6): batches whose ids follow a power law
// (Zipf, s = 1.05) or where one row takes most of the occurrences, through the device kernels
// (embeddings/kernels/, run by the emulator with its schedule check: every launch forward and
// reversed) against the host ops, the specification. The backward splits a row's occurrences over
// groups of lanes and its columns over the lanes, and the sparse updates run a warp (or, fused
// with the backward, a block) per row: these batches put hundreds of occurrences on one row, with
// a table wider than a warp (two column tiles) and a narrow mean table beside it.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "embeddings/collection.h"
#include "host/backend/backend.h"

namespace tessera::emb {
namespace {

std::vector<TableSpec> specs() {
  return {{"wide", 200, 40, Pooling::Sum}, {"narrow", 50, 5, Pooling::Mean}};
}

// Ids in [0, rows): Zipf(s) by inverse CDF; with probability `hot_share` row `hot` instead.
class IdSource {
 public:
  IdSource(int64_t rows, double s, double hot_share, int64_t hot)
      : hot_share_(hot_share), hot_(hot) {
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      total += 1.0 / std::pow(static_cast<double>(r + 1), s);
      cdf_.push_back(total);
    }
    for (double& c : cdf_) c /= total;
  }
  int64_t operator()(std::mt19937& gen) {
    const double x = std::uniform_real_distribution<double>(0, 1)(gen);
    if (x < hot_share_) return hot_;
    const double y = std::uniform_real_distribution<double>(0, 1)(gen);
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), y);
    return std::min<int64_t>(it - cdf_.begin(), static_cast<int64_t>(cdf_.size()) - 1);
  }

 private:
  std::vector<double> cdf_;
  double hot_share_;
  int64_t hot_;
};

struct HotBatch {
  Bags bags;
  int64_t nnz = 0;
  int64_t hottest = 0;  // occurrences of the most frequent id of table 0
};

// `batch` bags per table of 1..6 ids; table 0's ids from `wide`, table 1's Zipf(1.05).
HotBatch hot_batch(int64_t batch, IdSource wide, bool weighted, std::mt19937& gen) {
  IdSource narrow(specs()[1].rows, 1.05, 0.0, 0);
  std::vector<std::vector<std::vector<int64_t> > > ids(2);
  std::vector<std::vector<std::vector<float> > > w(weighted ? 2 : 0);
  std::map<int64_t, int64_t> seen;
  HotBatch h;
  for (size_t t = 0; t < 2; ++t) {
    ids[t].resize(static_cast<size_t>(batch));
    if (weighted) w[t].resize(static_cast<size_t>(batch));
    for (size_t s = 0; s < static_cast<size_t>(batch); ++s) {
      const int len = std::uniform_int_distribution<int>(1, 6)(gen);
      for (int k = 0; k < len; ++k) {
        const int64_t id = t == 0 ? wide(gen) : narrow(gen);
        if (t == 0) h.hottest = std::max(h.hottest, ++seen[id]);
        ids[t][s].push_back(id);
        if (weighted) w[t][s].push_back(std::uniform_real_distribution<float>(-2, 2)(gen));
        ++h.nnz;
      }
    }
  }
  h.bags = make_host_bags(ids, w);
  return h;
}

Tensor random_dout(int64_t rows, int64_t cols, std::mt19937& gen) {
  Tensor d = Tensor::host({rows, cols});
  for (int64_t i = 0; i < d.numel(); ++i)
    d.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
  return d;
}

void expect_near_all(const Tensor& host, const Tensor& dev, double atol, double rtol,
                     const std::string& what) {
  ASSERT_EQ(host.numel(), dev.numel()) << what;
  int shown = 0;
  for (int64_t i = 0; i < host.numel(); ++i) {
    const double a = host.data<float>()[i];
    const double b = dev.data<float>()[i];
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(a)) && shown++ < 5)
      ADD_FAILURE() << what << " element " << i << ": host " << a << ", cuda-emu " << b;
  }
}

Backend& emu() {
  static std::unique_ptr<Backend> b = make_backend("cuda-emu");
  return *b;
}
Backend& host() {
  static std::unique_ptr<Backend> b = make_backend("host");
  return *b;
}

// The de-duplicated gradient of a batch whose hottest row holds most of table 0's occurrences.
TEST(EmuHotRows, BackwardOfAHotRowMatchesHost) {
  const int64_t B = 128;
  for (bool weighted : {false, true}) {
    SCOPED_TRACE(weighted ? "weighted" : "unweighted");
    std::mt19937 gen(weighted ? 31 : 30);
    const HotBatch hb = hot_batch(B, IdSource(specs()[0].rows, 1.05, 0.7, 3), weighted, gen);
    ASSERT_GT(hb.hottest * 4, hb.nnz) << "one row should take most of table 0's ids";
    // More occurrences than a block of the row kernels stages (kBagRowBlock, 256): the hot row
    // takes the unstaged path, every other row the staged one.
    ASSERT_GT(hb.hottest, 256);
    CollectionOptions opts;
    opts.init_scale = 0.5f;
    EmbeddingCollection eh(specs(), host(), opts), ed(specs(), emu(), opts);
    Tensor oh, od;
    eh.forward(hb.bags, oh);
    ed.forward(bags_to(emu(), hb.bags), od);
    expect_near_all(oh, emu().to_host(od), 1e-5, 1e-5, "pooled output");
    const Tensor dout = random_dout(B, eh.layout().out_dim(), gen);
    const SparseGrad gh = eh.backward(dout);
    const SparseGrad gd = ed.backward(emu().to_device(dout));
    ASSERT_EQ(gh.count, gd.count);
    const Tensor kd = emu().to_host(gd.keys);
    for (int64_t u = 0; u < gh.count; ++u)
      ASSERT_EQ(gh.keys.data<int64_t>()[u], kd.data<int64_t>()[u]) << u;
    // The hot row sums ~300 terms in another order than the host: rounding, not more.
    expect_near_all(gh.grads, emu().to_host(gd.grads), 2e-5, 2e-5, "sparse gradient");
  }
}

// Every sparse optimizer over three Zipf(1.05) steps, fused (backward_and_update) and unfused
// (backward, then apply: the warp-per-row update kernel).
TEST(EmuHotRows, ZipfStepsMatchHostForEveryOptimizer) {
  const int64_t B = 32;
  for (SparseOptimizer kind : {SparseOptimizer::Sgd, SparseOptimizer::Adagrad,
                               SparseOptimizer::RowwiseAdagrad, SparseOptimizer::LazyAdam}) {
    for (bool fused : {true, false}) {
      SCOPED_TRACE(std::string(sparse_optimizer_name(kind)) + (fused ? ", fused" : ", unfused"));
      std::mt19937 gen(40);
      CollectionOptions opts;
      opts.optimizer.kind = kind;
      opts.optimizer.lr = 0.03f;
      opts.optimizer.initial_accumulator = 0.05f;
      opts.init_scale = 0.2f;
      EmbeddingCollection eh(specs(), host(), opts), ed(specs(), emu(), opts);
      for (int step = 0; step < 3; ++step) {
        const HotBatch hb = hot_batch(B, IdSource(specs()[0].rows, 1.05, 0.0, 0), step == 1, gen);
        Tensor oh, od;
        eh.forward(hb.bags, oh);
        ed.forward(bags_to(emu(), hb.bags), od);
        const Tensor dout = random_dout(B, eh.layout().out_dim(), gen);
        eh.backward_and_update(dout);
        if (fused)
          ed.backward_and_update(emu().to_device(dout));
        else
          ed.apply(ed.backward(emu().to_device(dout)));
      }
      expect_near_all(eh.weights_to_host(), ed.weights_to_host(), 1e-5, 1e-4, "weights");
      for (int s = 0; s < state_slots(kind); ++s)
        expect_near_all(eh.state_to_host(s), ed.state_to_host(s), 1e-6, 1e-4, "state");
    }
  }
}

// The warp layouts of the forward (a warp per bag, float4 rows where the dim and alignment allow)
// and of the resolve (a warp per 32 bags walking their contiguous positions, the meta of up to 4
// tables in the lanes): batches of 3 samples, so a warp's bags span up to 11 tables and the
// tables past the 4th read their meta from global memory; bags of 0 to 70 ids (two key chunks);
// dims that take the float4 path (8, 36, 128) and the float path (3, 130, or misaligned);
// weighted, mean and sum tables, a hashed one and a clamping one with out-of-range ids.
TEST(EmuHotRows, WarpLayoutsOfResolveAndForwardMatchHost) {
  std::vector<TableSpec> many;
  const int64_t dims[] = {8, 3, 36, 130, 128, 8, 5, 16, 12, 128, 36};
  for (int t = 0; t < 11; ++t) {
    TableSpec sp{"t" + std::to_string(t), 40 + 7 * t, dims[t],
                 t % 3 == 1 ? Pooling::Mean : Pooling::Sum};
    if (t == 5) sp.id_mapping = IdMapping::Hash;
    if (t == 7) sp.id_policy = IdPolicy::WarnClamp;
    many.push_back(sp);
  }
  const int64_t B = 3;
  std::mt19937 gen(77);
  std::vector<std::vector<std::vector<int64_t> > > ids(many.size());
  std::vector<std::vector<std::vector<float> > > w(many.size());
  for (size_t t = 0; t < many.size(); ++t) {
    for (int64_t s = 0; s < B; ++s) {
      const int len = (t + static_cast<size_t>(s)) % 4 == 0
                          ? 0
                          : std::uniform_int_distribution<int>(1, 70)(gen);
      std::vector<int64_t> bag;
      std::vector<float> bw;
      for (int k = 0; k < len; ++k) {
        const int64_t hi = t == 5 ? 1000000 : (t == 7 ? many[t].rows + 5 : many[t].rows - 1);
        bag.push_back(std::uniform_int_distribution<int64_t>(t == 7 ? -3 : 0, hi)(gen));
        bw.push_back(std::uniform_real_distribution<float>(-2, 2)(gen));
      }
      ids[t].push_back(bag);
      w[t].push_back(bw);
    }
  }
  const Bags hb = make_host_bags(ids, w);
  CollectionOptions opts;
  opts.init_scale = 0.5f;
  EmbeddingCollection eh(many, host(), opts), ed(many, emu(), opts);
  Tensor oh, od;
  eh.forward(hb, oh);
  ed.forward(bags_to(emu(), hb), od);
  // The same terms in the same order per column: equal to the last bit.
  expect_near_all(oh, emu().to_host(od), 0, 0, "pooled output");
  const Tensor dout = random_dout(B, eh.layout().out_dim(), gen);
  const SparseGrad gh = eh.backward(dout);
  const SparseGrad gd = ed.backward(emu().to_device(dout));
  ASSERT_EQ(gh.count, gd.count);
  const Tensor kd = emu().to_host(gd.keys);
  for (int64_t u = 0; u < gh.count; ++u)
    ASSERT_EQ(gh.keys.data<int64_t>()[u], kd.data<int64_t>()[u]) << u;
  expect_near_all(gh.grads, emu().to_host(gd.grads), 1e-5, 1e-5, "sparse gradient");
}

}  // namespace
}  // namespace tessera::emb

#endif  // TESSERA_CUDA_EMULATION
