// The emulator's GPU cost model (cuda/emu/cost_model.h) on kernels whose memory behaviour is known
// (tests/emu_kernels/cost_cases.cu): sectors per request and sector efficiency of coalesced and
// strided global accesses, shared-memory bank conflicts, per-thread work imbalance. In a build
// without the model (the sanitizer build) the hooks are absent, and the test checks that the scope
// then records blocks but no memory traffic rather than inventing any.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#endif

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/cost_model.h"
#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "embeddings/collection.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
#include "tests/emu_kernels/cost_cases.h"

namespace tessera {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

emu::KernelCost cost_of(const emu::CostModelScope& scope, const std::string& kernel) {
  for (const emu::KernelCost& k : scope.costs())
    if (k.kernel == kernel) return k;
  ADD_FAILURE() << "no cost recorded for " << kernel;
  return {};
}

// Without the instrumentation (the sanitizer build) the blocks are seen and nothing else: the
// model reports no traffic rather than invented traffic. Returns whether the model is there.
bool model_or_no_traffic(const emu::KernelCost& k) {
  if (emu::cost_model_available()) return true;
  EXPECT_GT(k.blocks, 0u);
  EXPECT_EQ(k.global_requests, 0u);
  EXPECT_EQ(k.shared_requests, 0u);
  EXPECT_EQ(k.thread_accesses, 0u);
  return false;
}

class EmuCostModel : public ::testing::Test {
 protected:
  // One run per launch: the schedule check would run every kernel twice.
  emu::ScopedChecks checks_{emu::EmulatorChecks{false, false, true}};
  DeviceArray<float> x_{32 * 32, ElementKind::F32, "x"};
  DeviceArray<float> y_{32, ElementKind::F32, "y"};
  void SetUp() override {
    for (size_t i = 0; i < x_.size(); ++i) x_[i] = static_cast<float>(i % 7);
  }
};

TEST_F(EmuCostModel, CoalescedAccessesTouchFourSectorsPerRequest) {
  emu::CostModelScope scope;
  emu_test::launch_cost_copy(x_.data(), y_.data(), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const emu::KernelCost k = cost_of(scope, "cost_copy_kernel");
  EXPECT_EQ(k.blocks, 1u);
  EXPECT_EQ(k.threads, 32u);
  if (!model_or_no_traffic(k)) return;
  EXPECT_EQ(k.global_requests, 2u);  // one load, one store instruction per warp
  EXPECT_EQ(k.global_sectors, 8u);
  EXPECT_EQ(k.global_bytes_requested, 256u);
  EXPECT_EQ(k.global_bytes_read, 128u);
  EXPECT_EQ(k.global_bytes_written, 128u);
  EXPECT_DOUBLE_EQ(k.sector_efficiency(), 1.0);
  EXPECT_DOUBLE_EQ(k.imbalance(), 1.0);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y_[i], x_[i]);
}

TEST_F(EmuCostModel, StridedLoadsTouchOneSectorPerLane) {
  emu::CostModelScope scope;
  emu_test::launch_cost_strided(x_.data(), y_.data(), 32, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const emu::KernelCost k = cost_of(scope, "cost_strided_kernel");
  if (!model_or_no_traffic(k)) return;
  EXPECT_EQ(k.global_requests, 2u);
  EXPECT_EQ(k.global_bytes_read, 32u * 32u);  // 32 sectors for 128 useful bytes
  EXPECT_EQ(k.global_bytes_written, 128u);
  EXPECT_NEAR(k.sector_efficiency(), 256.0 / (36.0 * 32.0), 1e-12);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y_[i], x_[i * 32]);
}

TEST_F(EmuCostModel, SharedMemoryBankConflictsAreCounted) {
  emu::CostModelScope scope;
  emu_test::launch_cost_shared(y_.data(), 32, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const emu::KernelCost conflicted = cost_of(scope, "cost_shared_kernel");
  if (!model_or_no_traffic(conflicted)) return;
  EXPECT_EQ(conflicted.shared_requests, 2u);
  EXPECT_DOUBLE_EQ(conflicted.bank_conflicts_per_request(), 31.0);  // 32 words in bank 0
  EXPECT_EQ(conflicted.global_requests, 1u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y_[i], static_cast<float>(i));
}

TEST_F(EmuCostModel, ConflictFreeSharedAccessesTakeOneWavefront) {
  emu::CostModelScope scope;
  emu_test::launch_cost_shared(y_.data(), 1, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const emu::KernelCost k = cost_of(scope, "cost_shared_kernel");
  if (!model_or_no_traffic(k)) return;
  EXPECT_EQ(k.shared_requests, 2u);
  EXPECT_EQ(k.shared_wavefronts, 2u);
  EXPECT_DOUBLE_EQ(k.bank_conflicts_per_request(), 0.0);
}

TEST_F(EmuCostModel, OneBusyThreadShowsAsImbalance) {
  emu::CostModelScope scope;
  emu_test::launch_cost_imbalance(x_.data(), y_.data(), 320, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const emu::KernelCost k = cost_of(scope, "cost_imbalance_kernel");
  if (!model_or_no_traffic(k)) return;
  EXPECT_EQ(k.max_thread_accesses, 321u);         // 320 loads and one store
  EXPECT_EQ(k.thread_accesses, 321u + 31u * 2u);  // the others: one load, one store
  EXPECT_NEAR(k.imbalance(), 321.0 / ((321.0 + 62.0) / 32.0), 1e-9);
}

TEST(EmuCostModelVendor, VendorWorkIsRecordedOnlyWhileAScopeIsAlive) {
  emu::record_vendor_work("cublasSgemm_64", 100.0, 40.0, 20.0);  // no scope: dropped
  emu::CostModelScope scope;
  emu::record_vendor_work("cublasSgemm_64", 2.0 * 8 * 8 * 8, 512.0, 256.0);
  const std::vector<emu::KernelCost> costs = scope.costs();
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_TRUE(costs[0].vendor);
  EXPECT_EQ(costs[0].blocks, 1u);
  EXPECT_DOUBLE_EQ(costs[0].flops, 1024.0);
  EXPECT_EQ(costs[0].global_bytes_read, 512u);
  EXPECT_EQ(costs[0].global_bytes_written, 256u);
  EXPECT_THROW({ emu::CostModelScope second; }, Error);
}

// The embedding-bag kernels (embeddings/kernels/) on a DLRM-shaped step: tables of dimension 128,
// one Zipf(1.05) id per table and sample, row-wise Adagrad (bench/gpu_model_bench's MLPerf shape,
// four tables instead of 26). A warp per bag or per 32 bags and a block per touched row, with the
// per-bag and per-row scalars loaded once and broadcast, keep every kernel at >= 80% of the
// sectors it touches used (issue 17, target 3); before, values every lane read for itself held
// them at 42-63%.
TEST(EmuCostModelBags, DlrmShapedStepUsesEightyPercentOfItsSectors) {
  using namespace tessera::emb;
  const int64_t tables = 4, rows = 4096, batch = 48;  // 48: warps of resolve straddle tables
  std::vector<TableSpec> specs;
  for (int64_t t = 0; t < tables; ++t)
    specs.push_back({"t" + std::to_string(t), rows, 128, Pooling::Sum});
  std::mt19937 gen(11);
  std::vector<double> cdf;
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) cdf.push_back(total += std::pow(r + 1.0, -1.05));
  std::vector<std::vector<std::vector<int64_t>>> ids(static_cast<size_t>(tables));
  for (auto& table : ids)
    for (int64_t s = 0; s < batch; ++s) {
      const double x = std::uniform_real_distribution<double>(0, total)(gen);
      table.push_back(
          {std::min<int64_t>(rows - 1, std::lower_bound(cdf.begin(), cdf.end(), x) - cdf.begin())});
    }
  std::unique_ptr<Backend> be = make_backend("cuda-emu");
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::RowwiseAdagrad;
  EmbeddingCollection emb(specs, *be, opts);
  Tensor dout = Tensor::host({batch, tables * 128});
  for (int64_t i = 0; i < dout.numel(); ++i)
    dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
  const Tensor dout_d = be->to_device(dout);
  const Bags bags = bags_to(*be, make_host_bags(ids, {}));
  Tensor out;
  emu::ScopedChecks one_run(emu::EmulatorChecks{false, false, true});
  emu::CostModelScope scope;
  emb.forward(bags, out);
  emb.backward_and_update(dout_d);
  be->synchronize();
  for (const char* kernel :
       {"bag_resolve_kernel", "bag_forward_kernel", "bag_backward_update_kernel"}) {
    SCOPED_TRACE(kernel);
    const emu::KernelCost k = cost_of(scope, kernel);
    if (!model_or_no_traffic(k)) continue;
    EXPECT_GE(k.sector_efficiency(), 0.8)
        << k.global_sectors << " sectors for " << k.global_bytes_requested << " bytes";
  }
}

}  // namespace
}  // namespace tessera
