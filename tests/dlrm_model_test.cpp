// DlrmModel (pipelines/behaviour/dlrm_model.h) against finite differences of its own loss: every
// dense weight of the bottom and top MLPs and every table element a batch touches, through the
// bottom MLP, the per-table lookups, the dot interaction and the top MLP. The tables' gradient
// is read off one sparse-SGD step with lr 1 (w_after = w_before - g), so the check also covers
// the id mapping and the sparse update. Also: untouched table rows do not move.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/optimizer.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "tests/support/gpu_skips.h"

namespace tessera {
namespace {

struct Problem {
  Tensor dense, cat, labels;
};

Problem make_problem(int64_t b, const DlrmSpec& s, std::mt19937& rng) {
  Problem p;
  const int64_t nt = static_cast<int64_t>(s.table_rows.size());
  p.dense = Tensor::host({b, s.n_dense});
  p.cat = Tensor::host({b, nt}, DType::I64);
  p.labels = Tensor::host({b});
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < p.dense.numel(); ++i) p.dense.data<float>()[i] = u(rng);
  for (int64_t i = 0; i < b; ++i) {
    p.labels.data<float>()[i] = static_cast<float>(i % 2);
    // Table t uses only its first rows - 1 rows, so the last row of each is never touched.
    for (int64_t t = 0; t < nt; ++t)
      p.cat.data<int64_t>()[i * nt + t] = static_cast<int64_t>(rng() % (s.table_rows[t] - 1));
  }
  return p;
}

double loss(Backend& be, DlrmModel& m, const Problem& p, bool backward) {
  const int64_t b = p.dense.dim(0);
  Tensor logits = m.forward(p.dense, p.cat, backward ? Mode::Train : Mode::Eval, 0);
  Tensor l = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, p.labels, 1.f / static_cast<float>(b), l, dl);
  if (backward) m.backward(dl);
  double s = 0;
  for (int64_t i = 0; i < b; ++i) s += l.data<float>()[i];
  return s / static_cast<double>(b);
}

TEST(DlrmModel, GradientsMatchFiniteDifferences) {
  auto be = make_host_backend();
  DlrmSpec s;
  s.n_dense = 3;
  s.table_rows = {5, 7, 4};
  s.embedding_dim = 4;
  s.bottom = {6};
  s.top = {8};
  s.activation = Activation::Tanh;  // smooth: no kinks for the central differences to straddle
  s.sparse.kind = emb::SparseOptimizer::Sgd;
  s.sparse.lr = 1.f;
  std::mt19937 rng(3);
  const Problem p = make_problem(6, s, rng);
  DlrmModel m(*be, s, 11, 8);
  const auto before = m.snapshot();
  loss(*be, m, p, /*backward=*/true);
  const auto after = m.snapshot();  // tables stepped once: g = before - after
  m.restore(before);

  const float eps = 1e-2f;
  auto check = [&](const std::string& what, float* x, int64_t n,
                   const std::function<float(int64_t)>& analytic) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float orig = x[i];
      x[i] = orig + eps;
      const double hi = loss(*be, m, p, false);
      x[i] = orig - eps;
      const double lo = loss(*be, m, p, false);
      x[i] = orig;
      const double num = (hi - lo) / (2.0 * eps);
      const double ana = analytic(i);
      if (!(std::fabs(num - ana) <= 1e-3 + 1e-2 * std::max(std::fabs(num), std::fabs(ana)))) {
        if (bad++ < 3)
          ADD_FAILURE() << what << "[" << i << "]: analytic " << ana << ", numeric " << num;
      }
    }
    EXPECT_EQ(bad, 0) << what;
  };
  for (Parameter* prm : m.parameters()) {
    Tensor g = be->to_host(prm->grad);
    check(prm->name, prm->value.data<float>(), prm->value.numel(),
          [&](int64_t i) { return g.data<float>()[i]; });
  }
  // Tables: perturb through snapshot/restore (the flat buffer).
  auto w = m.snapshot();
  Tensor& tw = w.at("embedding.tables");
  const float* b0 = before.at("embedding.tables").data<float>();
  const float* a0 = after.at("embedding.tables").data<float>();
  int64_t bad = 0, touched = 0;
  for (int64_t i = 0; i < tw.numel(); ++i) {
    const float orig = tw.data<float>()[i];
    tw.data<float>()[i] = orig + eps;
    m.restore(w);
    const double hi = loss(*be, m, p, false);
    tw.data<float>()[i] = orig - eps;
    m.restore(w);
    const double lo = loss(*be, m, p, false);
    tw.data<float>()[i] = orig;
    const double num = (hi - lo) / (2.0 * eps);
    const double ana = static_cast<double>(b0[i]) - a0[i];
    touched += ana != 0.0;
    if (!(std::fabs(num - ana) <= 1e-3 + 1e-2 * std::max(std::fabs(num), std::fabs(ana))))
      if (bad++ < 3)
        ADD_FAILURE() << "table element " << i << ": analytic " << ana << ", numeric " << num;
  }
  m.restore(w);
  EXPECT_EQ(bad, 0);
  EXPECT_GT(touched, 0);
  // The last row of every table is never used: it must not move.
  int64_t row0 = 0;
  for (int64_t rows : s.table_rows) {
    row0 += rows;
    for (int64_t k = 0; k < s.embedding_dim; ++k)
      EXPECT_EQ(a0[(row0 - 1) * s.embedding_dim + k], b0[(row0 - 1) * s.embedding_dim + k]);
  }
}

// One schedule for both parameter groups: under a 4-step warm-up the dense optimizer's multiplier
// at the first step is 1/4, and the tables stepped with it move exactly as tables whose sparse lr
// is a quarter of the configured one (and not as unscaled ones); the multiplier then follows the
// warm-up. A constant schedule's multiplier is exactly 1, leaving the configured lr untouched.
TEST(DlrmModel, SparseStepFollowsTheDenseLrSchedule) {
  auto be = make_host_backend();
  OptimizerConfig dense;
  dense.type = OptimizerType::Sgd;
  dense.lr = 0.03;
  LrSchedule warmup;
  warmup.warmup_steps = 4;
  Optimizer opt(*be, dense, warmup);
  EXPECT_EQ(Optimizer(*be, dense, LrSchedule{}).lr_multiplier(), 1.f);
  const float mult = opt.lr_multiplier();
  EXPECT_EQ(mult, 0.25f);

  DlrmSpec s;
  s.n_dense = 3;
  s.table_rows = {5, 7};
  s.embedding_dim = 4;
  s.bottom = {6};
  s.top = {8};
  s.sparse.kind = emb::SparseOptimizer::Sgd;
  s.sparse.lr = 0.4f;
  std::mt19937 rng(7);
  const Problem p = make_problem(6, s, rng);
  auto train_step = [&](const DlrmSpec& spec, float scale) {
    DlrmModel m(*be, spec, 11, 8);
    m.set_sparse_lr_scale(scale);
    const Tensor logits = m.forward(p.dense, p.cat, Mode::Train, 0);
    Tensor l = be->empty({6}), dl = be->empty({6, 1});
    be->bce_with_logits(logits, p.labels, 1.f / 6.f, l, dl);
    m.backward(dl, DlrmModel::SparseStep::Deferred);
    const Tensor before = m.snapshot().at("embedding.tables");
    m.step_sparse();
    return std::make_pair(before, m.snapshot().at("embedding.tables"));
  };
  const auto [w0, scheduled] = train_step(s, mult);
  DlrmSpec quarter = s;
  quarter.sparse.lr = s.sparse.lr * 0.25f;
  const Tensor reference = train_step(quarter, 1.f).second;
  const Tensor unscaled = train_step(s, 1.f).second;
  ASSERT_EQ(scheduled.numel(), reference.numel());
  int64_t moved = 0, differ = 0;
  for (int64_t i = 0; i < scheduled.numel(); ++i) {
    EXPECT_EQ(scheduled.data<float>()[i], reference.data<float>()[i]) << "element " << i;
    moved += scheduled.data<float>()[i] != w0.data<float>()[i];
    differ += scheduled.data<float>()[i] != unscaled.data<float>()[i];
  }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(differ, moved);
  opt.step();
  EXPECT_EQ(opt.lr_multiplier(), 0.5f);
}

// The same model on a device backend (a GPU, or cuda-emu in the emulation build): the tables
// on device storage with the device bag ops, the interaction kernels, device MLPs; and again with
// the tables over 2 row-wise shards on the device (pooled rows and their gradients cross through
// the host). Two training steps, then the logits agree with the host's.
TEST(DlrmModel, DeviceBackendsMatchTheHost) {
  // The device backends this build and machine have: "cuda" where a GPU is usable, "cuda-emu" in
  // the emulation build. Each of them must then be created and agree; none is a GPU skip.
  std::vector<std::string> specs;
  std::string why_no_gpu;
  if (cuda_available(&why_no_gpu)) specs.push_back("cuda");
#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION
  specs.push_back("cuda-emu");
#endif
  if (specs.empty()) TESSERA_NEEDS_GPU_SKIP(why_no_gpu);
  for (const std::string& spec : specs)
    for (const int64_t shards : {1, 2}) {
      SCOPED_TRACE(spec + " x " + std::to_string(shards) + " shards");
      std::unique_ptr<Backend> dev = make_backend(spec);
      auto host = make_host_backend();
      DlrmSpec s;
      s.n_dense = 5;
      s.table_rows = {9, 3, 17};
      s.embedding_dim = 6;
      s.bottom = {7};
      s.top = {10, 4};
      s.sparse.kind = emb::SparseOptimizer::RowwiseAdagrad;
      s.sparse.lr = 0.1f;
      std::mt19937 rng(5);
      const Problem p = make_problem(33, s, rng);
      DlrmModel mh(*host, s, 9, 40);
      s.shards = shards;
      s.placement = emb::ShardPlacement::Row;
      DlrmModel md(*dev, s, 9, 40);
      EXPECT_EQ(md.shard_plan().empty(), shards == 1) << md.shard_plan();
      for (int step = 0; step < 2; ++step) {
        loss(*host, mh, p, true);
        Tensor logits = md.forward(p.dense, p.cat, Mode::Train, 0);
        Tensor l = dev->empty({33}), dl = dev->empty({33, 1});
        dev->bce_with_logits(logits, dev->to_device(p.labels), 1.f / 33.f, l, dl);
        md.backward(dl);
        // Plain SGD on the dense weights, the same on both.
        for (DlrmModel* m : {&mh, &md})
          for (Parameter* prm : m->parameters()) {
            Tensor v = m->backend().empty(prm->value.shape());
            m->backend().sgd_update({/*lr=*/0.1f, /*momentum=*/0.f}, prm->value, prm->grad, v);
          }
      }
      Tensor zh = host->to_host(mh.forward(p.dense, p.cat, Mode::Eval, 0));
      Tensor zd = dev->to_host(md.forward(p.dense, p.cat, Mode::Eval, 0));
      for (int64_t i = 0; i < zh.numel(); ++i)
        EXPECT_NEAR(zd.data<float>()[i], zh.data<float>()[i], 1e-4) << spec << " sample " << i;
    }
}

// Without numeric features a DLRM has no bottom MLP (its interaction is over the embeddings);
// without tables it is not a DLRM.
TEST(DlrmModel, RejectsDataWithoutCategoricalFeatures) {
  auto be = make_host_backend();
  DlrmSpec s;
  s.n_dense = 0;
  s.table_rows = {3};
  EXPECT_NO_THROW(DlrmModel(*be, s, 1, 4));
  s.n_dense = 2;
  s.table_rows.clear();
  EXPECT_THROW(DlrmModel(*be, s, 1, 4), Error);
}

}  // namespace
}  // namespace tessera
