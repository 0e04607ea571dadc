// Sharded embeddings on N host shards (a machine without GPUs runs the same code that places
// shards on N devices): the planner's choices and its printed plan, and sharded == unsharded for
// lookups, per-sample weight gradients, training (every sparse optimizer; table-, row- and
// column-wise), checkpoint state and the id policies.
#include <gtest/gtest.h>

#include <random>

#include "embeddings/sharding.h"

namespace tessera::emb {
namespace {

std::vector<TableSpec> specs() {
  return {{"small", 10, 4, Pooling::Sum},
          {"big", 400, 6, Pooling::Mean},
          {"mid", 60, 3, Pooling::Sum, IdPolicy::WarnClamp},
          {"hashed", 23, 5, Pooling::Sum, IdPolicy::Error, IdMapping::Hash}};
}

Bags random_bags(int64_t batch, std::mt19937& gen, bool weighted) {
  const auto sp = specs();
  std::vector<std::vector<std::vector<int64_t>>> ids(sp.size());
  std::vector<std::vector<std::vector<float>>> w(weighted ? sp.size() : 0);
  for (size_t t = 0; t < sp.size(); ++t) {
    ids[t].resize(static_cast<size_t>(batch));
    if (weighted) w[t].resize(static_cast<size_t>(batch));
    for (int64_t s = 0; s < batch; ++s) {
      const int len = std::uniform_int_distribution<int>(0, 5)(gen);
      for (int k = 0; k < len; ++k) {
        ids[t][static_cast<size_t>(s)].push_back(
            std::uniform_int_distribution<int64_t>(0, sp[t].rows - 1)(gen));
        if (weighted)
          w[t][static_cast<size_t>(s)].push_back(std::uniform_real_distribution<float>(-1, 1)(gen));
      }
    }
  }
  return make_host_bags(ids, w);
}

TEST(EmbeddingShardPlan, SmallTablesWholeBigTablesSplitAndPrinted) {
  SparseOptimizerConfig opt;
  opt.kind = SparseOptimizer::Adagrad;
  const ShardPlan plan = plan_shards(specs(), {100000, 100000}, opt);
  const std::string text = plan.describe(specs());
  std::cout << text;
  // big: 400 x 6 x 4 x 2 = 19200 B, more than the average load -> row-wise; the rest table-wise.
  EXPECT_EQ(plan.tables[1].placement, Placement::RowWise) << text;
  ASSERT_EQ(plan.tables[1].parts.size(), 2u);
  EXPECT_EQ(plan.tables[1].parts[0].row_begin, 0);
  EXPECT_EQ(plan.tables[1].parts[1].row_end, 400);
  EXPECT_EQ(plan.tables[0].placement, Placement::TableWise);
  EXPECT_NE(text.find("table 'big' [400 x 6]"), std::string::npos) << text;
  EXPECT_NE(text.find("row-wise: shard 0 rows [0, "), std::string::npos) << text;
  // A table larger than any shard but not than all of them together is split; too large is an
  // error.
  const ShardPlan tight = plan_shards({{"huge", 1000, 8}}, {20000, 20000}, {});
  EXPECT_EQ(tight.tables[0].placement, Placement::RowWise);
  try {
    plan_shards({{"huge", 1000, 8}}, {10000, 10000}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("need 0.03 MiB"), std::string::npos) << e.what();
  }
}

struct ShardCase {
  int shards;
  Placement force;
  SparseOptimizer opt;
};

class ShardedEqualsUnsharded : public ::testing::TestWithParam<ShardCase> {};

TEST_P(ShardedEqualsUnsharded, LookupsAndTrainingMatch) {
  const ShardCase c = GetParam();
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> backends;
  for (int k = 0; k < c.shards; ++k) {
    owned.push_back(make_host_backend());
    backends.push_back(owned.back().get());
  }
  CollectionOptions opts;
  opts.optimizer.kind = c.opt;
  opts.optimizer.lr = 0.05f;
  opts.init_scale = 0.3f;
  opts.seed = 5;
  PlannerOptions po;
  po.force_all = true;
  po.force = c.force;
  const ShardPlan plan =
      plan_shards(specs(), std::vector<int64_t>(static_cast<size_t>(c.shards), int64_t{1} << 20),
                  opts.optimizer, po);
  ShardedEmbeddingCollection sharded(specs(), plan, backends, opts);
  auto host = make_host_backend();
  EmbeddingCollection single(specs(), *host, opts);
  for (int64_t t = 0; t < 4; ++t) {
    const Tensor a = sharded.table_to_host(t), b = single.table_to_host(t);
    for (int64_t i = 0; i < a.numel(); ++i)
      ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << "initial table " << t;
  }
  std::mt19937 gen(31);
  for (int step = 0; step < 3; ++step) {
    const Bags bags = random_bags(7, gen, step == 1);
    Tensor os, ou;
    sharded.forward(bags, os);
    single.forward(bags, ou);
    for (int64_t i = 0; i < ou.numel(); ++i) {
      if (c.force != Placement::RowWise)  // table- and column-wise: the same sums, in order
        ASSERT_EQ(os.data<float>()[i], ou.data<float>()[i]) << "step " << step << " element " << i;
      else
        ASSERT_NEAR(os.data<float>()[i], ou.data<float>()[i], 1e-6)
            << "step " << step << " element " << i;
    }
    Tensor dout = Tensor::host({7, single.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    // Per-sample weight gradients: one dot product per index, split over column parts.
    const Tensor gs = sharded.weight_grad(dout), gu = single.weight_grad(dout);
    ASSERT_EQ(gs.numel(), gu.numel());
    ASSERT_GT(gu.numel(), 0);
    for (int64_t j = 0; j < gu.numel(); ++j) {
      if (c.force != Placement::ColumnWise)
        ASSERT_EQ(gs.data<float>()[j], gu.data<float>()[j]) << "step " << step << " index " << j;
      else
        ASSERT_NEAR(gs.data<float>()[j], gu.data<float>()[j], 1e-5)
            << "step " << step << " index " << j;
    }
    sharded.backward_and_update(dout);
    single.backward_and_update(dout);
  }
  // The gradients do not depend on the pooled output, so training is bit for bit the same.
  for (int64_t t = 0; t < 4; ++t) {
    const Tensor a = sharded.table_to_host(t), b = single.table_to_host(t);
    for (int64_t i = 0; i < a.numel(); ++i)
      ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << "table " << t << " element " << i;
  }
  // The training state gathers into the unsharded layout, slot by slot.
  const auto ss = sharded.training_state(), su = single.training_state();
  ASSERT_EQ(ss.size(), su.size());
  for (const auto& [name, tu] : su) {
    const Tensor& ts = ss.at(name);
    ASSERT_EQ(ts.numel(), tu.numel()) << name;
    if (tu.dtype() != DType::F32) continue;  // the step counter
    for (int64_t i = 0; i < tu.numel(); ++i)
      ASSERT_EQ(ts.data<float>()[i], tu.data<float>()[i]) << name << " element " << i;
  }
  // ...and scatters back: a fresh sharded collection restored from the unsharded state trains
  // on exactly as the unsharded one.
  ShardedEmbeddingCollection again(specs(), plan, backends, opts);
  again.restore_training_state(su);
  const Bags bags = random_bags(7, gen, true);
  Tensor oa, ou;
  again.forward(bags, oa);
  single.forward(bags, ou);
  Tensor dout = Tensor::host({7, single.layout().out_dim()});
  for (int64_t i = 0; i < dout.numel(); ++i)
    dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
  again.backward_and_update(dout);
  single.backward_and_update(dout);
  const Tensor wa = again.weights_to_host(), wu = single.weights_to_host();
  for (int64_t i = 0; i < wu.numel(); ++i)
    ASSERT_EQ(wa.data<float>()[i], wu.data<float>()[i]) << "restored, element " << i;
}

INSTANTIATE_TEST_SUITE_P(
    HostShards, ShardedEqualsUnsharded,
    ::testing::Values(ShardCase{2, Placement::TableWise, SparseOptimizer::Sgd},
                      ShardCase{3, Placement::TableWise, SparseOptimizer::LazyAdam},
                      ShardCase{2, Placement::RowWise, SparseOptimizer::Adagrad},
                      ShardCase{3, Placement::RowWise, SparseOptimizer::RowwiseAdagrad},
                      ShardCase{5, Placement::RowWise, SparseOptimizer::LazyAdam},
                      ShardCase{2, Placement::ColumnWise, SparseOptimizer::Sgd},
                      ShardCase{3, Placement::ColumnWise, SparseOptimizer::Adagrad},
                      ShardCase{4, Placement::ColumnWise, SparseOptimizer::LazyAdam},
                      // more shards than any table has columns
                      ShardCase{8, Placement::ColumnWise, SparseOptimizer::Adagrad},
                      // more shards than tables: one shard holds nothing
                      ShardCase{5, Placement::TableWise, SparseOptimizer::Adagrad}),
    [](const auto& info) {
      std::string p = placement_name(info.param.force);
      p.erase(p.find('-'), 1);
      return std::to_string(info.param.shards) + "_" + p + "_" +
             sparse_optimizer_name(info.param.opt);
    });

TEST(EmbeddingShardPlan, ColumnWiseSplitsColumnsAndRefusesRowwiseAdagrad) {
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::ColumnWise;
  SparseOptimizerConfig opt;
  opt.kind = SparseOptimizer::Adagrad;
  const ShardPlan plan = plan_shards(specs(), {100000, 100000, 100000, 100000}, opt, po);
  const std::string text = plan.describe(specs());
  std::cout << text;
  // 'big' is 6 wide over 4 shards: 2 + 2 + 1 + 1 columns.
  const TablePlacement& big = plan.tables[1];
  EXPECT_EQ(big.placement, Placement::ColumnWise);
  ASSERT_EQ(big.parts.size(), 4u);
  const int64_t widths[] = {2, 2, 1, 1};
  int64_t col = 0;
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(big.parts[k].shard, static_cast<int>(k));
    EXPECT_EQ(big.parts[k].col_begin, col);
    EXPECT_EQ(big.parts[k].col_end - big.parts[k].col_begin, widths[k]);
    EXPECT_EQ(big.parts[k].row_begin, 0);
    EXPECT_EQ(big.parts[k].row_end, 400);
    col = big.parts[k].col_end;
  }
  // 'mid' is 3 wide: 3 parts, starting at the shard with the most free memory after 'big'
  // (shards 2 and 3 got one column of it, 0 and 1 two), not at shard 0.
  ASSERT_EQ(plan.tables[2].parts.size(), 3u);
  EXPECT_EQ(plan.tables[2].parts[0].shard, 2);
  EXPECT_EQ(plan.tables[2].parts[2].shard, 0);
  // Every byte planned once: 4 + 6 + 3 + 5 columns of 2 floats per element.
  int64_t planned = 0;
  for (int64_t b : plan.shard_bytes) planned += b;
  EXPECT_EQ(planned, (10 * 4 + 400 * 6 + 60 * 3 + 23 * 5) * 4 * 2);
  EXPECT_NE(text.find("column-wise: shard 0 cols [0, 2) shard 1 cols [2, 4)"), std::string::npos)
      << text;
  opt.kind = SparseOptimizer::RowwiseAdagrad;
  try {
    plan_shards(specs(), {100000, 100000}, opt, po);
    FAIL() << "column-wise with rowwise_adagrad was planned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("column-wise sharding cannot train with rowwise_adagrad"),
              std::string::npos)
        << e.what();
  }
}

TEST(EmbeddingShards, IdPolicyAsUnsharded) {
  std::vector<std::unique_ptr<Backend>> owned;
  owned.push_back(make_host_backend());
  owned.push_back(make_host_backend());
  std::vector<Backend*> backends{owned[0].get(), owned[1].get()};
  PlannerOptions po;
  po.force_all = true;
  po.force = Placement::RowWise;
  const ShardPlan plan = plan_shards(specs(), {1 << 20, 1 << 20}, {}, po);
  ShardedEmbeddingCollection sharded(specs(), plan, backends, {});
  auto host = make_host_backend();
  EmbeddingCollection single(specs(), *host, {});
  // 'small' (Error) holds id 10 at sample 1.
  const Bags bad = make_host_bags({{{1}, {10}}, {{0}, {1}}, {{0}, {1}}, {{0}, {1}}});
  std::string ms, mu;
  Tensor out;
  try {
    sharded.forward(bad, out);
  } catch (const Error& e) {
    ms = e.what();
  }
  try {
    single.forward(bad, out);
  } catch (const Error& e) {
    mu = e.what();
  }
  EXPECT_NE(ms.find("embedding id 10 in table 'small' (#0), sample 1"), std::string::npos) << ms;
  EXPECT_EQ(ms, mu);
  // 'mid' (WarnClamp): clamped the same way.
  const Bags clamp = make_host_bags({{{1}, {2}}, {{0}, {1}}, {{70}, {-2}}, {{0}, {1}}});
  Tensor os, ou;
  sharded.forward(clamp, os);
  single.forward(clamp, ou);
  for (int64_t i = 0; i < ou.numel(); ++i)
    EXPECT_NEAR(os.data<float>()[i], ou.data<float>()[i], 1e-6);
  EXPECT_EQ(sharded.clamped_ids(), 2u);
}

}  // namespace
}  // namespace tessera::emb
