// DCN-V2 and Wide & Deep on the emulated CUDA backend (cuda-emu: the real CudaBackend, kernels run
// by the emulator) against the host backend: a few training steps (dense weights by SGD, tables by
// their sparse optimizer, sharded tables too) must leave both with the same logits and weights.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "host/backend/backend.h"
#include "pipelines/behaviour/dcn_model.h"
#include "pipelines/behaviour/wide_deep_model.h"

namespace tessera {
namespace {

struct Problem {
  Tensor dense, cat, labels;
};

Problem make_problem(int64_t b, const TableModelSpec& s, std::mt19937& rng) {
  Problem p;
  const int64_t nt = static_cast<int64_t>(s.table_rows.size());
  p.dense = Tensor::host({b, s.n_dense});
  p.cat = Tensor::host({b, nt}, DType::I64);
  p.labels = Tensor::host({b});
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < p.dense.numel(); ++i) p.dense.data<float>()[i] = u(rng);
  for (int64_t i = 0; i < b; ++i) {
    p.labels.data<float>()[i] = static_cast<float>(rng() % 2);
    for (int64_t t = 0; t < nt; ++t)
      p.cat.data<int64_t>()[i * nt + t] = static_cast<int64_t>(rng() % s.table_rows[t]);
  }
  return p;
}

// One training step: forward, BCE, backward, the tables' sparse step, SGD on the dense weights.
void step(Backend& be, TableModel& m, const Problem& p) {
  const int64_t b = p.cat.dim(0);
  Tensor logits = m.forward(p.dense, p.cat, Mode::Train, 7);
  Tensor l = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, be.to_device(p.labels), 1.f / static_cast<float>(b), l, dl);
  m.backward(dl);
  m.sparse_group().step();
  for (Parameter* prm : m.parameters()) {
    Tensor v = be.empty(prm->value.shape());
    be.sgd_update({/*lr=*/0.1f, /*momentum=*/0.f}, prm->value, prm->grad, v);
  }
}

using Make = std::function<std::unique_ptr<TableModel>(Backend&, int64_t shards)>;

void expect_parity(const Make& make, const TableModelSpec& spec, const std::string& what) {
  for (const int64_t shards : {1, 2}) {
    SCOPED_TRACE(what + " x " + std::to_string(shards) + " shards");
    auto host = make_host_backend();
    std::unique_ptr<Backend> dev = make_backend("cuda-emu");
    std::unique_ptr<TableModel> mh = make(*host, 1), md = make(*dev, shards);
    std::mt19937 rng(5);
    // A full batch, then a smaller one (the concatenation's index for another batch size).
    const Problem p1 = make_problem(29, spec, rng), p2 = make_problem(13, spec, rng);
    for (int s = 0; s < 3; ++s) {
      step(*host, *mh, s == 1 ? p2 : p1);
      step(*dev, *md, s == 1 ? p2 : p1);
    }
    Tensor zh = host->to_host(mh->forward(p1.dense, p1.cat, Mode::Eval, 0));
    Tensor zd = dev->to_host(md->forward(p1.dense, p1.cat, Mode::Eval, 0));
    for (int64_t i = 0; i < zh.numel(); ++i)
      EXPECT_NEAR(zd.data<float>()[i], zh.data<float>()[i], 1e-4) << "sample " << i;
    const auto wh = mh->snapshot(), wd = md->snapshot();
    ASSERT_EQ(wh.size(), wd.size());
    for (const auto& [name, t] : wh) {
      const Tensor& o = wd.at(name);
      ASSERT_EQ(o.shape(), t.shape()) << name;
      int64_t bad = 0;
      for (int64_t i = 0; i < t.numel(); ++i)
        bad += !(std::fabs(o.data<float>()[i] - t.data<float>()[i]) <=
                 1e-4f * (1.f + std::fabs(t.data<float>()[i])));
      EXPECT_EQ(bad, 0) << name;
    }
  }
}

TableModelSpec base_spec() {
  TableModelSpec s;
  s.n_dense = 5;
  s.table_rows = {9, 3, 17};
  s.embedding_dim = 6;
  s.top = {10, 4};
  s.dropout = 0.2f;
  s.sparse.kind = emb::SparseOptimizer::RowwiseAdagrad;
  s.sparse.lr = 0.1f;
  s.placement = emb::ShardPlacement::Row;
  return s;
}

TEST(EmuDcnParity, StackedFullRankDcnTrainsAsOnTheHost) {
  DcnSpec s;
  static_cast<TableModelSpec&>(s) = base_spec();
  s.bottom = {7};
  s.cross_layers = 2;
  expect_parity(
      [&](Backend& be, int64_t shards) {
        DcnSpec t = s;
        t.shards = shards;
        return std::make_unique<DcnModel>(be, t, 9, 40);
      },
      s, "dcn_v2 stacked");
}

TEST(EmuDcnParity, ParallelLowRankDcnWithoutBottomTrainsAsOnTheHost) {
  DcnSpec s;
  static_cast<TableModelSpec&>(s) = base_spec();
  s.bottom = {};
  s.cross_layers = 3;
  s.low_rank = 4;
  s.parallel = true;
  expect_parity(
      [&](Backend& be, int64_t shards) {
        DcnSpec t = s;
        t.shards = shards;
        return std::make_unique<DcnModel>(be, t, 10, 40);
      },
      s, "dcn_v2 parallel low rank");
}

TEST(EmuDcnParity, WideDeepTrainsAsOnTheHost) {
  WideDeepSpec s;
  static_cast<TableModelSpec&>(s) = base_spec();
  expect_parity(
      [&](Backend& be, int64_t shards) {
        WideDeepSpec t = s;
        t.shards = shards;
        return std::make_unique<WideDeepModel>(be, t, 11, 40);
      },
      s, "wide_deep");
}

}  // namespace
}  // namespace tessera

#endif  // TESSERA_CUDA_EMULATION
