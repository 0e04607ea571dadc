// The Trainer's side of deferred input checks and device-memory statistics (host/train/
// trainer.cpp): Backend::check_deferred() every 100 steps and at each epoch's end, a deferred
// error stops training where it is raised, and a backend's memory statistics end the summary and
// result.json. A recording backend stands in for the CUDA one (no op of it is run).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "tests/data_test_util.h"
#include "tests/support/error_of.h"

namespace tessera::train {
namespace {

class RecordingBackend final : public Backend {
 public:
  std::string name() const override { return "recording"; }
  Device device() const override { return Device{}; }
  void synchronize() override {}
  void check_deferred() override {
    ++checks;
    if (checks == fail_at_check)
      TESSERA_THROW(Data, "embedding id 7 at position 2 is outside the table's rows [0, 5)");
  }
  std::optional<DeviceMemoryStats> memory_stats() const override {
    if (!has_stats) return std::nullopt;
    DeviceMemoryStats s;
    s.peak_bytes_in_use = 3 << 20;
    s.bytes_reserved = 4 << 20;
    s.raw_allocations = 2;
    s.cache_hits = 6;
    s.cache_misses = 2;
    return s;
  }

  int checks = 0;
  int fail_at_check = -1;
  bool has_stats = true;

 protected:
#define TESSERA_TEST_UNUSED_OP(ret, name, params)               \
  ret name##_impl params override {                             \
    TESSERA_THROW(Internal, #name " is not used by this test"); \
  }
  TESSERA_BACKEND_OPS(TESSERA_TEST_UNUSED_OP)
#undef TESSERA_TEST_UNUSED_OP
};

// `batches` steps per epoch; records how many checks the backend had seen before each step.
class CountingTask final : public TrainTask {
 public:
  CountingTask(RecordingBackend& backend, int64_t batches)
      : backend_(backend), batches_(batches), opt_(backend, OptimizerConfig{}, LrSchedule{}) {}
  int64_t batches_per_epoch() override { return batches_; }
  void start_epoch(int64_t) override {}
  StepResult step(StepContext&) override {
    checks_before_step.push_back(backend_.checks);
    StepResult r;
    r.examples = 1;
    r.loss_sum = 0.5;
    r.units = 1;
    return r;
  }
  Optimizer* optimizer() override { return &opt_; }
  double learning_rate() override { return opt_.current_lr(); }
  void check_weights(DivergenceGuard&) override {}
  Metrics validate(DivergenceGuard&) override { return {}; }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override { return {}; }
  void restore_snapshot(const NamedTensors&) override {}
  void finish(FinishContext&) override {}

  std::vector<int> checks_before_step;

 private:
  RecordingBackend& backend_;
  int64_t batches_;
  Optimizer opt_;
};

TrainerOptions options(const testing::TempDir& dir, int64_t epochs) {
  TrainerOptions o;
  o.task = "test";
  o.name = "deferred";
  o.runs_dir = dir.path();
  o.epochs = epochs;
  o.quiet = true;
  return o;
}

TEST(TrainerDeferredChecks, EveryHundredStepsAndAtEachEpochsEnd) {
  testing::TempDir dir;
  RecordingBackend backend;
  CountingTask task(backend, 250);
  const TrainResult r = Trainer(options(dir, 2)).fit(task);
  // Per epoch: after steps 100 and 200, and after the last (250).
  EXPECT_EQ(backend.checks, 6);
  ASSERT_EQ(task.checks_before_step.size(), 500u);
  EXPECT_EQ(task.checks_before_step[99], 0);
  EXPECT_EQ(task.checks_before_step[100], 1);
  EXPECT_EQ(task.checks_before_step[200], 2);
  EXPECT_EQ(task.checks_before_step[249], 2);
  EXPECT_EQ(task.checks_before_step[250], 3) << "the epoch's end checks before the next epoch";
  EXPECT_EQ(task.checks_before_step[350], 4);
  EXPECT_FALSE(r.stopped);
}

TEST(TrainerDeferredChecks, ADeferredErrorStopsTrainingWhereItIsRaised) {
  testing::TempDir dir;
  RecordingBackend backend;
  backend.fail_at_check = 2;
  CountingTask task(backend, 250);
  const std::string what =
      test::error_of_kind(ErrorKind::Data, [&] { (void)Trainer(options(dir, 2)).fit(task); });
  EXPECT_NE(what.find("embedding id 7 at position 2"), std::string::npos) << what;
  EXPECT_EQ(task.checks_before_step.size(), 200u) << "no step after the check that failed";
}

TEST(TrainerDeferredChecks, MemoryStatisticsEndTheSummaryAndTheResult) {
  testing::TempDir dir;
  RecordingBackend backend;
  CountingTask task(backend, 3);
  const TrainResult r = Trainer(options(dir, 1)).fit(task);
  EXPECT_NE(r.summary.find("device memory: peak 3.0 MiB in use, 4.0 MiB reserved; 8 "
                           "allocations, 75.0% from the cache, 2 cudaMalloc, 0 cudaFree\n"),
            std::string::npos)
      << r.summary;
  EXPECT_NE(r.json.find("\"device_memory\":{\"bytes_in_use\":0,\"peak_bytes_in_use\":3145728,"),
            std::string::npos)
      << r.json;
  std::ifstream in(r.run_dir + "/result.json");
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_NE(file.str().find("\"cache_hits\":6"), std::string::npos) << file.str();

  RecordingBackend host_like;  // a backend without an allocator adds nothing
  host_like.has_stats = false;
  CountingTask plain(host_like, 3);
  const TrainResult p = Trainer(options(dir, 1)).fit(plain);
  EXPECT_EQ(p.summary.find("device memory"), std::string::npos) << p.summary;
  EXPECT_EQ(p.json.find("device_memory"), std::string::npos) << p.json;
}

}  // namespace
}  // namespace tessera::train
