// A DLRM whose tables are sharded (model.shards > 1: N host shards here, one per GPU on a CUDA
// machine) trains exactly as the unsharded one: the same logits at every step and the same
// weights after it, for table-wise, row-wise and planner-chosen placements and two sparse
// optimizers; and its checkpoint state (whole tables, optimizer slots, step) moves between shard
// counts: 3 shards -> 1 and 1 -> 2 continue exactly as the uninterrupted run.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "pipelines/behaviour/dlrm_model.h"

namespace tessera {
namespace {

DlrmSpec spec(emb::SparseOptimizer kind, int64_t shards, emb::ShardPlacement placement) {
  DlrmSpec s;
  s.n_dense = 3;
  s.table_rows = {50, 7, 300, 12};
  s.embedding_dim = 8;
  s.bottom = {16};
  s.top = {16};
  s.sparse.kind = kind;
  s.sparse.lr = 0.05f;
  s.shards = shards;
  s.placement = placement;
  return s;
}

struct Batch {
  Tensor dense, cat, labels;
};

Batch make_batch(int64_t b, const DlrmSpec& s, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t nt = static_cast<int64_t>(s.table_rows.size());
  Batch p{Tensor::host({b, s.n_dense}), Tensor::host({b, nt}, DType::I64), Tensor::host({b})};
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < p.dense.numel(); ++i) p.dense.data<float>()[i] = u(rng);
  for (int64_t i = 0; i < b; ++i) {
    p.labels.data<float>()[i] = static_cast<float>(rng() % 2);
    for (int64_t t = 0; t < nt; ++t)  // skewed: low rows repeat within a batch
      p.cat.data<int64_t>()[i * nt + t] = static_cast<int64_t>(
          (rng() % s.table_rows[t]) * (rng() % s.table_rows[t]) / s.table_rows[t]);
  }
  return p;
}

// One training step (plain SGD on the dense parameters, the tables' sparse optimizer inside
// backward); returns the logits.
std::vector<float> step(Backend& be, DlrmModel& m, const Batch& p) {
  const int64_t b = p.dense.dim(0);
  Tensor logits = m.forward(p.dense, p.cat, Mode::Train, 0);
  std::vector<float> out(logits.data<float>(), logits.data<float>() + b);
  Tensor l = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, p.labels, 1.f / static_cast<float>(b), l, dl);
  m.backward(dl);
  for (Parameter* q : m.parameters())
    for (int64_t i = 0; i < q->value.numel(); ++i)
      q->value.data<float>()[i] -= 0.1f * q->grad.data<float>()[i];
  return out;
}

void expect_same_weights(DlrmModel& a, DlrmModel& b, const std::string& what) {
  const auto wa = a.snapshot(), wb = b.snapshot();
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) {
    const Tensor& u = wb.at(name);
    ASSERT_EQ(t.numel(), u.numel()) << name;
    EXPECT_EQ(0, std::memcmp(t.data<float>(), u.data<float>(), t.numel() * sizeof(float)))
        << what << ": '" << name << "' differs";
  }
}

struct Case {
  emb::SparseOptimizer kind;
  int64_t shards;
  emb::ShardPlacement placement;
};

TEST(DlrmShards, ShardedTrainingEqualsUnsharded) {
  auto be = make_host_backend();
  for (const Case& c : {Case{emb::SparseOptimizer::RowwiseAdagrad, 2, emb::ShardPlacement::Table},
                        Case{emb::SparseOptimizer::RowwiseAdagrad, 3, emb::ShardPlacement::Row},
                        Case{emb::SparseOptimizer::LazyAdam, 3, emb::ShardPlacement::Auto},
                        Case{emb::SparseOptimizer::LazyAdam, 2, emb::ShardPlacement::Row},
                        Case{emb::SparseOptimizer::Adagrad, 3, emb::ShardPlacement::Column}}) {
    const std::string what = std::string(emb::sparse_optimizer_name(c.kind)) + " over " +
                             std::to_string(c.shards) + " shards";
    DlrmModel one(*be, spec(c.kind, 1, emb::ShardPlacement::Auto), 5, 64);
    DlrmModel many(*be, spec(c.kind, c.shards, c.placement), 5, 64);
    EXPECT_TRUE(one.shard_plan().empty());
    EXPECT_NE(many.shard_plan().find("shard"), std::string::npos) << many.shard_plan();
    EXPECT_EQ(one.parameter_count(), many.parameter_count());
    expect_same_weights(one, many, what + ", initial");
    for (uint32_t k = 0; k < 4; ++k) {
      const Batch p = make_batch(64, one.spec(), 100 + k);
      const std::vector<float> a = step(*be, one, p), b = step(*be, many, p);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_EQ(a[i], b[i]) << what << ": logit " << i << " of step " << k;
    }
    expect_same_weights(one, many, what + ", after 4 steps");
  }
}

// Moves a model's whole training state (dense weights, tables, sparse optimizer slots, step)
// into another, as a checkpoint does.
void transfer(DlrmModel& from, DlrmModel& to) {
  to.restore(from.snapshot());
  to.restore_sparse_state(from.sparse_state());
}

TEST(DlrmShards, StateMovesBetweenShardCounts) {
  auto be = make_host_backend();
  const auto kind = emb::SparseOptimizer::LazyAdam;  // its bias correction needs the step
  DlrmModel straight(*be, spec(kind, 1, emb::ShardPlacement::Auto), 9, 32);
  DlrmModel three(*be, spec(kind, 3, emb::ShardPlacement::Row), 9, 32);
  DlrmModel one(*be, spec(kind, 1, emb::ShardPlacement::Auto), 9, 32);
  DlrmModel two(*be, spec(kind, 2, emb::ShardPlacement::Table), 9, 32);
  for (uint32_t k = 0; k < 6; ++k) {
    const Batch p = make_batch(32, straight.spec(), 200 + k);
    step(*be, straight, p);
    // Steps 0-1 on 3 shards, 2-3 on 1, 4-5 on 2.
    DlrmModel& m = k < 2 ? three : k < 4 ? one : two;
    if (k == 2) transfer(three, one);
    if (k == 4) transfer(one, two);
    step(*be, m, p);
  }
  expect_same_weights(straight, two, "3 -> 1 -> 2 shards");
  const auto s1 = straight.sparse_state(), s2 = two.sparse_state();
  ASSERT_EQ(s1.size(), s2.size());
  for (const auto& [name, t] : s1) {
    ASSERT_EQ(t.numel(), s2.at(name).numel()) << name;
    ASSERT_EQ(t.dtype(), s2.at(name).dtype()) << name;
    EXPECT_EQ(0, std::memcmp(t.raw(), s2.at(name).raw(), t.numel() * dtype_size(t.dtype())))
        << "sparse state '" << name << "' differs";
  }
  EXPECT_EQ(s2.at("step").data<int64_t>()[0], 6);
}

TEST(DlrmShards, BadStateIsRefusedBeforeAnythingChanges) {
  auto be = make_host_backend();
  const auto kind = emb::SparseOptimizer::LazyAdam;
  DlrmModel a(*be, spec(emb::SparseOptimizer::RowwiseAdagrad, 1, emb::ShardPlacement::Auto), 3, 16);
  DlrmModel b(*be, spec(kind, 2, emb::ShardPlacement::Row), 3, 16);
  const auto before = b.sparse_state();
  // Row-wise Adagrad's state lacks lazy Adam's second slot.
  EXPECT_THROW(b.restore_sparse_state(a.sparse_state()), Error);
  auto st = b.sparse_state();
  st.erase("step");
  EXPECT_THROW(b.restore_sparse_state(st), Error);
  const auto after = b.sparse_state();
  for (const auto& [name, t] : before)
    EXPECT_EQ(0, std::memcmp(t.raw(), after.at(name).raw(), t.numel() * dtype_size(t.dtype())))
        << name << " changed by a refused restore";
  DlrmSpec bad = spec(kind, 0, emb::ShardPlacement::Auto);
  EXPECT_THROW(DlrmModel(*be, bad, 1, 8), Error);
}

}  // namespace
}  // namespace tessera
