// Steady-state training steps of the recommendation models on the CUDA backend (the real
// CudaBackend on the emulated runtime): after five warm-up steps and a synchronisation (the step
// buffers, the BCE labels, the bag ops' pinned slots; with nothing waiting on the stream the
// caching allocator only reuses blocks whose stream has passed them, so its cache fills over
// the first steps), three more MF steps and two-tower steps (BCE and BPR; one shard, and two
// shards on cuda-emu:0 and cuda-emu:1) make no device or pinned allocation and no host
// synchronisation, counted by the emulated runtime
// (cuda/emu/runtime_counters.h). A step is what RecModel does — the tables' forward on the
// device, score, loss, score gradient, the sparse optimizer update — with the ratings already on
// the device as the pinned stager hands them over (pipelines/recommend/train.cpp stages them);
// the per-sample losses stay on the device (the Trainer reads them every few steps).
// Also: the same steps on the host backend give the same losses and tables within f32 rounding.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#endif

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "host/backend/backend.h"
#include "pipelines/recommend/rec_model.h"

namespace tessera {
namespace {

constexpr int64_t kUsers = 13, kItems = 29, kBatch = 16, kNegatives = 3;

recommend::RecommendConfig config(const std::string& model, const std::string& loss,
                                  int64_t shards) {
  const std::string train =
      model == "two_tower" ? R"(, "train": {"negatives": 3, "loss": ")" + loss + "\"}" : "";
  return recommend::parse_recommend_config(
      R"({"task": "recommend", "name": "steady", "model": ")" + model +
          R"(", "data": {"path": "r.csv"},
          "embeddings": {"dim": 8, "shards": )" +
          std::to_string(shards) + R"(, "optimizer": {"kind": "adagrad", "lr": 0.05}})" + train +
          "}",
      "test config");
}

// One batch's ids and ratings, drawn once.
struct Batch {
  std::vector<int32_t> users, items;  // items: [kBatch] (mf) or [kBatch * (1 + kNegatives)]
  Tensor ratings;                     // host f32 [kBatch]
};

Batch batch(bool two_tower, std::mt19937& rng) {
  Batch b;
  const int64_t per_user = two_tower ? 1 + kNegatives : 1;
  for (int64_t s = 0; s < kBatch; ++s) b.users.push_back(static_cast<int32_t>(rng() % kUsers));
  for (int64_t s = 0; s < kBatch * per_user; ++s)
    b.items.push_back(static_cast<int32_t>(rng() % kItems));
  b.ratings = Tensor::host({kBatch});
  for (int64_t s = 0; s < kBatch; ++s)
    b.ratings.data<float>()[s] = 1.f + static_cast<float>(rng() % 9) * 0.5f;
  return b;
}

// Runs `steps` steps of `model` on batch b (after_warm_up: called, after a synchronisation,
// before the last three); the last step's per-sample losses, on the model's backend.
Tensor run_steps(Backend& be, recommend::RecModel& model, const Batch& b, int steps,
                 const std::function<void()>& after_warm_up = {}) {
  const Tensor ratings = be.to_device(b.ratings);
  Tensor loss;
  for (int i = 0; i < steps; ++i) {
    if (i == steps - 3 && after_warm_up) {
      be.synchronize();
      after_warm_up();
    }
    const recommend::RecModel::Step s =
        model.kind() == recommend::ModelKind::Mf
            ? model.mf_step(b.users.data(), b.items.data(), ratings, kBatch)
            : model.two_tower_step(b.users.data(), b.items.data(), kBatch, kNegatives);
    model.apply(s);
    loss = s.loss;
  }
  return loss;
}

void expect_no_stall(const std::string& model, const std::string& loss, int64_t shards = 1) {
  SCOPED_TRACE(model + " " + loss + ", " + std::to_string(shards) + " shard(s)");
  const recommend::RecommendConfig cfg = config(model, loss, shards);
  std::mt19937 rng(5);
  const Batch b = batch(model == "two_tower", rng);
  auto be = make_backend("cuda-emu");
  recommend::RecModel m(cfg, kUsers, kItems, *be);
  if (shards > 1)  // tables on both emulated devices
    EXPECT_NE(m.shard_plan().find("shard 1 rows"), std::string::npos) << m.shard_plan();
  m.set_global_mean(3.f);
  const Tensor last = run_steps(*be, m, b, 8, [] { emu::reset_runtime_counters(); });
  const emu::RuntimeCounters c = emu::runtime_counters();
  be->synchronize();  // and any deferred failure surfaces here
  EXPECT_EQ(c.synchronisations, 0u) << c.describe();
  EXPECT_EQ(c.device_allocations, 0u) << c.describe();
  EXPECT_EQ(c.pinned_allocations, 0u) << c.describe();
  EXPECT_GT(c.launches, 0u) << "the steps launched nothing";

  // The same five steps on the host backend: the same losses and tables within f32 rounding.
  auto host = make_backend("cpu");
  recommend::RecModel hm(cfg, kUsers, kItems, *host);
  hm.set_global_mean(3.f);
  const Tensor host_last = run_steps(*host, hm, b, 8);
  const Tensor dev_last = be->to_host(last);
  ASSERT_EQ(dev_last.numel(), host_last.numel());
  for (int64_t i = 0; i < dev_last.numel(); ++i)
    EXPECT_NEAR(dev_last.data<float>()[i], host_last.data<float>()[i],
                1e-4 * (1 + std::fabs(host_last.data<float>()[i])))
        << "loss " << i;
  const auto dev_tables = m.tables(), host_tables = hm.tables();
  ASSERT_EQ(dev_tables.size(), host_tables.size());
  for (size_t t = 0; t < dev_tables.size(); ++t) {
    const Tensor& d = dev_tables[t].second;
    const Tensor& h = host_tables[t].second;
    ASSERT_EQ(d.numel(), h.numel()) << dev_tables[t].first;
    for (int64_t i = 0; i < d.numel(); ++i)
      EXPECT_NEAR(d.data<float>()[i], h.data<float>()[i],
                  1e-4 * (1 + std::fabs(h.data<float>()[i])))
          << dev_tables[t].first << " element " << i;
  }
}

TEST(EmuSteadyStateRec, MfStepNeitherWaitsNorAllocates) {
  expect_no_stall("mf", "");
}
TEST(EmuSteadyStateRec, TwoTowerBceStepNeitherWaitsNorAllocates) {
  expect_no_stall("two_tower", "bce");
}
TEST(EmuSteadyStateRec, TwoTowerBprStepNeitherWaitsNorAllocates) {
  expect_no_stall("two_tower", "bpr");
}
TEST(EmuSteadyStateRec, ShardedMfAndTwoTowerStepsNeitherWaitNorAllocate) {
  expect_no_stall("mf", "", 2);  // shards on cuda-emu:0 and cuda-emu:1
  expect_no_stall("two_tower", "bce", 2);
}

}  // namespace
}  // namespace tessera
