// The sharded == unsharded check shared by the in-process shard tests (embedding_shard_test)
// and the shards-in-other-processes test (mpi_shard_test): tables of every kind (a hashed one, a
// clamping one, mean pooling), random bags, three training steps, then the checkpoint state's
// gather and scatter, compared with one unsharded host collection.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "embeddings/sharding.h"
#include "tests/random_bags.h"

namespace tessera::emb::shard_test {

inline std::vector<TableSpec> specs() {
  return {{"small", 10, 4, Pooling::Sum},
          {"big", 400, 6, Pooling::Mean},
          {"mid", 60, 3, Pooling::Sum, IdPolicy::WarnClamp},
          {"hashed", 23, 5, Pooling::Sum, IdPolicy::Error, IdMapping::Hash}};
}

inline Bags random_bags(int64_t batch, std::mt19937& gen, bool weighted) {
  return emb::random_bags(specs(), batch, 5, weighted, INT64_MAX, gen);
}

struct ShardCase {
  int shards;
  Placement force;
  SparseOptimizer opt;
};

inline std::string case_name(const ShardCase& c) {
  std::string p = placement_name(c.force);
  p.erase(p.find('-'), 1);
  return std::to_string(c.shards) + "_" + p + "_" + sparse_optimizer_name(c.opt);
}

// Builds the sharded collection under test for a plan.
using MakeSharded = std::function<std::unique_ptr<ShardedEmbeddingCollection>(
    const ShardPlan& plan, const CollectionOptions& opts)>;

// Lookups, per-sample weight gradients, training, and the training state's gather and scatter of
// the collection `make` builds equal one unsharded host collection's (bit for bit where the sums
// run in the same order).
inline void expect_sharded_equals_unsharded(const ShardCase& c, const MakeSharded& make) {
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
  std::unique_ptr<ShardedEmbeddingCollection> sharded_owner = make(plan, opts);
  ShardedEmbeddingCollection& sharded = *sharded_owner;
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
  std::unique_ptr<ShardedEmbeddingCollection> again_owner = make(plan, opts);
  ShardedEmbeddingCollection& again = *again_owner;
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

}  // namespace tessera::emb::shard_test
