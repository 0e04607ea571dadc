// The whole training loop on the CUDA backend (the real CudaBackend on the emulated runtime,
// device "cuda-emu"): behaviour::train and image::train on tiny generated files, through the
// Trainer, under on_nonfinite "stop". Between the Trainer's loss reads (every loss_read_every
// steps; TrainerOptions::after_step says which steps ended in one) a steady-state step -- the
// task's forward, loss, backward, the optimizer step, the batch's upload and the Trainer's
// Backend::loss_accumulate -- never reads the loss back, and waits for the device only where
// another package's code still does (named at each test), counted by the emulated runtime
// (cuda/emu/runtime_counters.h). The first steps of the run (plans, caches, the allocator's
// first blocks) and of each epoch (its start) are not checked; each read step must read. DLRM's
// step is another package's work and is not asserted here.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#endif

#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/image/image.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// What the emulated runtime counted over each batch (from the previous after_step to this one).
struct StepCount {
  int64_t step = 0;
  bool read = false;
  emu::RuntimeCounters counters;
};

// Hooks `o` to record every batch's counters.
template <typename Options>
void record_steps(Options& o, std::vector<StepCount>& steps, int64_t read_every) {
  o.loss_read_every = read_every;
  o.after_step = [&steps](int64_t step, bool read) {
    steps.push_back({step, read, emu::runtime_counters()});
    emu::reset_runtime_counters();
  };
  emu::reset_runtime_counters();
}

// How often `c` waited for the device, by the emulated runtime's kind.
uint64_t waits(const emu::RuntimeCounters& c, const std::string& kind) {
  const auto it = c.synchronisations_by_kind.find(kind);
  return it == c.synchronisations_by_kind.end() ? 0 : it->second;
}

// The loss read: a copy into pageable host memory (Backend::to_host), a wait for the stream.
constexpr const char* kRead = "cudaMemcpyAsync to pageable host";

// Every step after the first `warmup` of the run that is neither an epoch's first (its batch
// order, its feed) nor ends in a read: never a read of the loss, and no wait beyond `allowed`
// (kind -> most per step: what other packages' code still waits for, see the tests). Every read
// step reads. Returns how many steps were checked.
int check_steady_state(const std::vector<StepCount>& steps, int64_t batches, int warmup,
                       const std::map<std::string, uint64_t>& allowed, const std::string& what) {
  int checked = 0, reads = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepCount& s = steps[i];
    if (s.read) {
      ++reads;
      EXPECT_GE(waits(s.counters, kRead), 1u) << what << ": the read after step " << s.step;
      continue;
    }
    const bool first_of_epoch = (s.step - 1) % batches == 0;
    if (static_cast<int>(i) < warmup || first_of_epoch) continue;
    ++checked;
    EXPECT_EQ(waits(s.counters, kRead), 0u) << what << ": step " << s.step << " read back";
    for (const auto& [kind, n] : s.counters.synchronisations_by_kind) {
      const auto a = allowed.find(kind);
      EXPECT_LE(n, a == allowed.end() ? 0u : a->second)
          << what << ": step " << s.step << " waits (" << kind << "):\n"
          << s.counters.describe();
    }
    EXPECT_GT(s.counters.launches, 0u) << what << ": step " << s.step << " launched nothing";
  }
  EXPECT_GT(reads, 0) << what;
  return checked;
}

// Two numeric and two categorical columns and a label that depends on them.
std::string behaviour_csv(const std::string& path, int rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const char* colors[] = {"red", "green", "blue"};
  const char* shapes[] = {"disc", "box"};
  std::ostringstream s;
  s << "x1,x2,color,shape,y\n";
  for (int i = 0; i < rows; ++i) {
    const double x1 = u(rng), x2 = u(rng);
    const int c = static_cast<int>(rng() % 3), k = static_cast<int>(rng() % 2);
    s << x1 << "," << x2 << "," << colors[c] << "," << shapes[k] << ","
      << (x1 + 0.5 * x2 + (c == 0 ? 0.5 : 0) > 0 ? 1 : 0) << "\n";
  }
  return write_file(path, s.str());
}

TEST(EmuTrainerSteadyState, BehaviourMlpStepsBetweenLossReadsNeverReadTheLoss) {
  TempDir dir;
  behaviour_csv(dir.file("train.csv"), 640, 11);
  behaviour_csv(dir.file("valid.csv"), 64, 12);
  const std::string cfg = write_file(dir.file("config.json"), R"({
    "task": "behaviour", "name": "steady", "seed": 5, "device": "cpu",
    "data": {"train": ")" + dir.file("train.csv") + R"(", "validation": ")" +
                                                                  dir.file("valid.csv") + R"(",
             "test": ")" + dir.file("valid.csv") + R"(", "header": true,
             "columns": [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"},
                         {"name": "color", "type": "categorical"},
                         {"name": "shape", "type": "categorical"}, {"name": "y", "type": "label"}],
             "numeric": {"normalization": "none"}},
    "model": {"type": "mlp", "embedding_dim": 4, "hidden": [16, 8], "dropout": 0.1},
    "train": {"epochs": 2, "batch_size": 32, "optimizer": {"type": "adam", "lr": 0.01},
              "on_nonfinite": "stop"}
  })");
  behaviour::TrainOptions o;
  o.device = "cuda-emu";  // the configs cannot name it; the run's device can
  o.quiet = true;
  o.run_dir = dir.file("run");
  std::vector<StepCount> steps;
  record_steps(o, steps, 5);
  const behaviour::Result r = behaviour::train(cfg, o);
  EXPECT_NE(r.json.find("\"status\":\"completed\""), std::string::npos) << r.json;
  ASSERT_EQ(steps.size(), 40u) << "640 rows in batches of 32, two epochs";
  // Reads after every 5th step of an epoch and at its end (20).
  for (const StepCount& s : steps)
    EXPECT_EQ(s.read, ((s.step - 1) % 20 + 1) % 5 == 0) << "step " << s.step;
  // The one wait left is the batch stager's (host/backend/batch_stager.cpp, not this package's):
  // before refilling a slot of its ring of three it waits for the batch two steps back to have
  // been consumed (cuda/pinned_stager.cpp wait_consumed), which paces the host at most two
  // batches ahead of the device.
  EXPECT_GE(check_steady_state(steps, 20, 2, {{"cudaEventSynchronize", 1}}, "behaviour MLP"), 25);
}

// sklearn-digits layout: 64 pixels in [0, 16] and a label.
std::string digits_csv(const std::string& path, int rows) {
  std::mt19937 rng(6);
  std::ostringstream s;
  for (int i = 0; i < rows; ++i) {
    const int label = i % 2;
    for (int p = 0; p < 64; ++p)
      s << ((p % 8 < 4) == (label == 0) ? 12 + rng() % 5 : rng() % 4) << ",";
    s << label << "\n";
  }
  return write_file(path, s.str());
}

TEST(EmuTrainerSteadyState, CnnStepsBetweenLossReadsNeverReadTheLoss) {
  TempDir dir;
  digits_csv(dir.file("digits.csv"), 120);
  const std::string cfg = write_file(dir.file("image.json"), R"({
    "task": "image", "name": "steady", "seed": 2, "device": "cpu",
    "data": {"format": "digits_csv", "train": ")" + dir.file("digits.csv") +
                                                                 R"(",
             "test_fraction": 0.2, "validation_fraction": 0.2, "classes": 10},
    "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1, "bias": false},
                         {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"}]},
    "train": {"epochs": 2, "batch_size": 8, "optimizer": {"type": "sgd", "lr": 0.05},
              "on_nonfinite": "stop"}
  })");
  image::TrainOptions o;
  o.device = "cuda-emu";  // the configs cannot name it; the run's device can
  o.quiet = true;
  o.run_dir = dir.file("run");
  std::vector<StepCount> steps;
  record_steps(o, steps, 4);
  (void)image::train(cfg, o);
  ASSERT_FALSE(steps.empty());
  const int64_t batches = static_cast<int64_t>(steps.size()) / 2;
  // The batch goes up through the stager as the MLP's does: its ring's pacing is the one wait.
  EXPECT_GE(check_steady_state(steps, batches, 2, {{"cudaEventSynchronize", 1}}, "CNN"), 8);
}

}  // namespace
}  // namespace tessera
