// The device path of sharded embedding tables (ShardedEmbeddingCollection::forward_device and
// backward_and_update_device, embeddings/shard_exchange.cpp) on the emulated devices cuda-emu:0
// and cuda-emu:1: a model on cuda-emu over shards placed table-, row- and column-wise, on tables
// of different widths (column chunks of one float), trains exactly as the same shards driven
// through the host path (pooled rows, weights and optimizer state, bit for bit), and a step makes
// no host synchronisation.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "embeddings/tables.h"
#include "host/backend/backend.h"

namespace tessera::emb {
namespace {

std::vector<TableSpec> specs() {
  return {{"a", 30, 4}, {"b", 9, 6, Pooling::Mean}, {"c", 50, 3}, {"d", 12, 5, Pooling::Mean}};
}

// B samples, up to 4 ids a bag (some bags empty), per-sample weights.
Bags random_bags(int64_t batch, std::mt19937& gen) {
  const std::vector<TableSpec> s = specs();
  std::vector<std::vector<std::vector<int64_t> > > ids(s.size());
  std::vector<std::vector<std::vector<float> > > w(s.size());
  for (size_t t = 0; t < s.size(); ++t)
    for (int64_t i = 0; i < batch; ++i) {
      const size_t n = gen() % 5;
      std::vector<int64_t> bag(n);
      std::vector<float> bw(n);
      for (size_t j = 0; j < n; ++j) {
        bag[j] = static_cast<int64_t>(gen() % static_cast<uint32_t>(s[t].rows));
        bw[j] = std::uniform_real_distribution<float>(0.5f, 1.5f)(gen);
      }
      ids[t].push_back(bag);
      w[t].push_back(bw);
    }
  return make_host_bags(ids, w);
}

Tensor random_host(const Shape& shape, std::mt19937& gen) {
  Tensor t = Tensor::host(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = std::uniform_real_distribution<float>(-1.f, 1.f)(gen);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

struct Case {
  ShardPlacement placement;
  SparseOptimizer optimizer;
  const char* name;
};

class EmuShardExchange : public ::testing::TestWithParam<Case> {};

TEST_P(EmuShardExchange, TrainsAsTheHostPathDoes) {
  auto model = make_backend("cuda-emu");
  CollectionOptions opts;
  opts.optimizer.kind = GetParam().optimizer;
  opts.optimizer.lr = 0.05f;
  opts.init_scale = 0.2f;
  auto device = make_embedding_tables(specs(), *model, opts, 2, GetParam().placement);
  ShardDevices d = place_shards(specs(), *model, 2, GetParam().placement, opts.optimizer);
  ShardedEmbeddingCollection host_path(specs(), d.plan, d.raw, opts);
  ASSERT_NE(device->shard_plan().find("shard 1"), std::string::npos) << device->shard_plan();
  std::mt19937 gen(7);
  const int64_t od = device->layout().out_dim();
  for (int step = 0; step < 4; ++step) {
    const int64_t batch = step == 2 ? 5 : 11;  // a new batch size rebuilds the exchange
    const Bags bags = random_bags(batch, gen);
    Tensor out = model->empty({batch, od}), ref;
    device->forward(bags, out);
    host_path.forward(bags, ref);
    ASSERT_TRUE(same_bits(model->to_host(out), ref)) << "pooled rows of step " << step;
    const Tensor dout = random_host({batch, od}, gen);
    device->backward_and_update(model->to_device(dout));
    host_path.backward_and_update(dout);
  }
  EXPECT_TRUE(same_bits(device->weights_to_host(), host_path.weights_to_host()));
  const auto a = device->training_state(), b = host_path.training_state();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(same_bits(t, b.at(name))) << name;
}

TEST_P(EmuShardExchange, AWarmStepNeitherWaitsNorAllocates) {
  auto model = make_backend("cuda-emu");
  CollectionOptions opts;
  opts.optimizer.kind = GetParam().optimizer;
  auto tables = make_embedding_tables(specs(), *model, opts, 2, GetParam().placement);
  std::mt19937 gen(8);
  const Bags bags = random_bags(6, gen);
  Tensor out = model->empty({6, tables->layout().out_dim()});
  const Tensor dout = model->to_device(random_host(out.shape(), gen));
  auto step = [&] {
    tables->forward(bags, out);
    tables->backward_and_update(dout);
  };
  for (int i = 0; i < 4; ++i) step();  // the exchange, every ring slot and cache class
  model->synchronize();
  emu::reset_runtime_counters();
  for (int i = 0; i < 3; ++i) step();
  const emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.synchronisations, 0u) << c.describe();
  EXPECT_EQ(c.device_allocations, 0u) << c.describe();
  EXPECT_EQ(c.pinned_allocations, 0u) << c.describe();
  EXPECT_GT(c.launches, 0u) << c.describe();
}

INSTANTIATE_TEST_SUITE_P(
    Placements, EmuShardExchange,
    ::testing::Values(Case{ShardPlacement::Table, SparseOptimizer::RowwiseAdagrad, "table"},
                      Case{ShardPlacement::Row, SparseOptimizer::LazyAdam, "row"},
                      Case{ShardPlacement::Column, SparseOptimizer::Adagrad, "column"}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace tessera::emb

#endif  // TESSERA_CUDA_EMULATION
