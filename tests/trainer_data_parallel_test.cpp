// The Trainer's data-parallel side (host/train/trainer.h, docs/distributed.md) in one process, so
// that it also runs in the sanitizer build (the MPI tests in tests/mpi/ do not): a process group
// of 2 ranks whose other rank is a mirror of this one (it steps on the same rows, so an all-reduce
// doubles, an all-gather repeats), and a rank 1 that replays the broadcasts rank 0 made.
//   - rank 0 of mirrored ranks trains exactly as one process (4 rows per part: the weighting's
//     products and quotients are exact), its metrics.jsonl loss is the one-process loss, and its
//     result says 2 ranks;
//   - rank 1 gets rank 0's run directory and writes nothing, never calls finish(), and ends with
//     rank 0's weights;
//   - a sparse group that exchanges its steps is handed every rank's pack (in rank order) before
//     each step, its share n_r / sum n_r = 1/2 here;
//   - a task with a sparse parameter group that cannot exchange its steps, or one that steps its
//     own optimizer, is refused by name before the first step.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "tests/data_test_util.h"
#include "tests/support/error_of.h"

namespace tessera::train {
namespace {

// Rank `rank` of 2 whose other rank holds the same values: sums double, gathers repeat. Rank 0
// records what it broadcasts; rank 1 takes rank 0's broadcasts from `replay`, in order.
class MirrorGroup final : public dist::ProcessGroup {
 public:
  MirrorGroup(int rank, std::deque<std::string>* broadcasts) : rank_(rank), b_(broadcasts) {}
  int rank() const override { return rank_; }
  int world() const override { return 2; }
  void allreduce_sum(float* d, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) d[i] *= 2;
  }
  void allreduce_sum(double* d, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) d[i] *= 2;
  }
  void broadcast(void* d, int64_t bytes, int root) override {
    ++broadcasts;
    if (rank_ == root) {
      b_->emplace_back(static_cast<const char*>(d), static_cast<size_t>(bytes));
      return;
    }
    if (b_->empty() || b_->front().size() != static_cast<size_t>(bytes))
      TESSERA_THROW(Internal, "rank 1 broadcast " << broadcasts << " of " << bytes
                                                  << " bytes has no recorded counterpart");
    std::memcpy(d, b_->front().data(), static_cast<size_t>(bytes));
    b_->pop_front();
  }
  void barrier() override {}
  void allgather(const void* s, int64_t bytes, void* r) override {
    for (int k = 0; k < 2; ++k)
      std::memcpy(static_cast<char*>(r) + k * bytes, s, static_cast<size_t>(bytes));
  }
  int broadcasts = 0;

 private:
  int rank_;
  std::deque<std::string>* b_;
};

class NoTables final : public SparseGroup {
 public:
  void set_lr_scale(float) override {}
  void step() override {}
  std::map<std::string, Tensor> training_state() override { return {}; }
  void restore_training_state(const std::map<std::string, Tensor>&) override {}
};

// A sparse group that exchanges its steps: records the shares it was asked to export with, and
// what it imported, and that every step came after its import.
class ExchangingTables final : public SparseGroup {
 public:
  void set_lr_scale(float) override {}
  void step() override {
    ++steps;
    EXPECT_EQ(imported.size(), static_cast<size_t>(steps)) << "a step without its import";
  }
  std::map<std::string, Tensor> training_state() override { return {}; }
  void restore_training_state(const std::map<std::string, Tensor>&) override {}
  bool exchanges_steps() const override { return true; }
  std::string export_step(float share) override {
    shares.push_back(share);
    return "part " + std::to_string(shares.size());
  }
  void import_steps(std::vector<std::string> packs) override { imported.push_back(packs); }
  std::vector<float> shares;
  std::vector<std::vector<std::string>> imported;
  int steps = 0;
};

// Least squares on 4 fixed rows per step: w <- w - lr mean((w.x - y) x).
class LinearTask final : public TrainTask {
 public:
  explicit LinearTask(Backend& be, bool own_optimizer = false, bool tables = false,
                      SparseGroup* exchanging = nullptr)
      : opt_(be, sgd(), LrSchedule{}), own_(own_optimizer) {
    w_.name = "w";
    w_.value = Tensor::host_from<float>({3}, {0.5f, -0.25f, 0.125f});
    w_.grad = Tensor::host({3});
    opt_.attach({&w_});
    if (tables) opt_.add_sparse_group("tables", tables_);
    if (exchanging) opt_.add_sparse_group("tables", *exchanging);
  }
  static OptimizerConfig sgd() {
    OptimizerConfig c;
    c.type = OptimizerType::Sgd;
    c.lr = 0.1;
    c.momentum = 0;
    return c;
  }
  int64_t batches_per_epoch() override { return 3; }
  void start_epoch(int64_t) override {}
  StepResult step(StepContext& ctx) override {
    float* g = w_.grad.data<float>();
    const float* w = w_.value.data<float>();
    std::fill(g, g + 3, 0.f);
    StepResult r;
    for (int i = 0; i < 4; ++i) {
      const float x[3] = {1.f, 0.1f * static_cast<float>(i + ctx.batch), -0.3f * i};
      const float y = 0.7f * static_cast<float>(i) - 0.2f * static_cast<float>(ctx.epoch);
      const float e = w[0] * x[0] + w[1] * x[1] + w[2] * x[2] - y;
      for (int k = 0; k < 3; ++k) g[k] += e * x[k] / 4;
      r.loss_sum += 0.5 * e * e;
    }
    r.examples = 4;
    r.units = 4;
    return r;
  }
  Optimizer* optimizer() override { return own_ ? nullptr : &opt_; }
  Backend* backend() override { return &opt_.backend(); }
  double learning_rate() override { return 0.1; }
  void check_weights(DivergenceGuard&) override {}
  Metrics validate(DivergenceGuard&) override {
    const float* w = w_.value.data<float>();
    return {{"validation_norm", w[0] * w[0] + w[1] * w[1] + w[2] * w[2]}};
  }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override {
    Tensor copy = Tensor::host({3});
    std::memcpy(copy.data<float>(), w_.value.data<float>(), 3 * sizeof(float));
    return {{"w", copy}};
  }
  void restore_snapshot(const NamedTensors& s) override {
    std::memcpy(w_.value.data<float>(), s[0].second.data<float>(), 3 * sizeof(float));
  }
  void finish(FinishContext&) override { ++finished; }

  std::vector<float> weights() const {
    return {w_.value.data<float>(), w_.value.data<float>() + 3};
  }
  int finished = 0;

 private:
  Optimizer opt_;
  Parameter w_;
  NoTables tables_;
  bool own_;
};

TrainerOptions options(const std::string& run_dir) {
  TrainerOptions o;
  o.task = "test";
  o.name = "dp";
  o.run_dir = run_dir;
  o.epochs = 2;
  o.quiet = true;
  o.selection = {"validation_norm", Goal::Minimize, "", Goal::Minimize, 0};
  return o;
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

double number(const std::string& json, const char* key) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  return !d.HasParseError() && d.HasMember(key) ? d[key].GetDouble() : NAN;
}

// Trains in `group` (nullptr: one process) and restores the group of one after.
TrainResult fit(LinearTask& task, const TrainerOptions& o, std::unique_ptr<dist::ProcessGroup> g) {
  dist::set_process_group(std::move(g));
  try {
    TrainResult r = Trainer(o).fit(task);
    dist::set_process_group(nullptr);
    return r;
  } catch (...) {
    dist::set_process_group(nullptr);
    throw;
  }
}

TEST(TrainerDataParallel, MirroredRanksTrainAsOneProcessAndOnlyRankZeroWrites) {
  testing::TempDir dir;
  auto be = make_host_backend();
  LinearTask alone(*be);
  fit(alone, options(dir.file("alone")), nullptr);

  std::deque<std::string> broadcasts;
  LinearTask lead(*be);
  const TrainResult r0 =
      fit(lead, options(dir.file("lead")), std::make_unique<MirrorGroup>(0, &broadcasts));
  EXPECT_EQ(lead.weights(), alone.weights());
  EXPECT_NE(lead.weights(), LinearTask(*be).weights());  // it trained
  EXPECT_EQ(lead.finished, 1);
  const std::vector<std::string> mine = lines(dir.file("lead") + "/metrics.jsonl");
  const std::vector<std::string> theirs = lines(dir.file("alone") + "/metrics.jsonl");
  ASSERT_EQ(mine.size(), 2u);
  ASSERT_EQ(theirs.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(number(mine[e], "train_loss"), number(theirs[e], "train_loss")) << mine[e];
    EXPECT_EQ(number(mine[e], "ranks"), 2) << mine[e];
  }
  EXPECT_EQ(number(r0.json, "ranks"), 2) << r0.json;
  EXPECT_EQ(number(r0.json, "steps"), 6) << r0.json;
  ASSERT_FALSE(broadcasts.empty());  // the run directory, flags, the validation figures

  // Rank 1 replays rank 0's broadcasts into a run with no directory of its own.
  const std::string lead_dir = r0.run_dir;
  ASSERT_EQ(std::system(("rm -rf '" + lead_dir + "'").c_str()), 0);
  LinearTask other(*be);
  auto group = std::make_unique<MirrorGroup>(1, &broadcasts);
  const TrainResult r1 = fit(other, options(""), std::move(group));
  EXPECT_EQ(r1.run_dir, lead_dir);
  struct stat st;
  EXPECT_NE(::stat(lead_dir.c_str(), &st), 0) << "rank 1 wrote into " << lead_dir;
  EXPECT_EQ(other.finished, 0);
  EXPECT_TRUE(r1.json.empty());
  EXPECT_EQ(other.weights(), lead.weights());
  EXPECT_TRUE(broadcasts.empty()) << broadcasts.size() << " of rank 0's broadcasts left over";
}

TEST(TrainerDataParallel, SparseGroupsImportEveryRanksStepBeforeTheyStep) {
  testing::TempDir dir;
  auto be = make_host_backend();
  LinearTask alone(*be);
  fit(alone, options(dir.file("alone")), nullptr);
  std::deque<std::string> b;
  ExchangingTables tables;
  LinearTask lead(*be, false, false, &tables);
  fit(lead, options(dir.file("t")), std::make_unique<MirrorGroup>(0, &b));
  EXPECT_EQ(lead.weights(), alone.weights());
  EXPECT_EQ(tables.steps, 6);
  ASSERT_EQ(tables.shares.size(), 6u);
  for (float share : tables.shares) EXPECT_EQ(share, 0.5f);  // 4 of the global batch's 8 rows
  for (size_t k = 0; k < tables.imported.size(); ++k) {
    // The mirror's other rank exported what this one did: both packs, in rank order.
    const std::string mine = "part " + std::to_string(k + 1);
    EXPECT_EQ(tables.imported[k], (std::vector<std::string>{mine, mine}));
  }
}

TEST(TrainerDataParallel, RefusesTablesAndTasksThatStepTheirOwnOptimizer) {
  testing::TempDir dir;
  auto be = make_host_backend();
  std::deque<std::string> b;
  LinearTask tables(*be, false, true);
  const std::string t = test::error_of_kind(ErrorKind::Usage, [&] {
    fit(tables, options(dir.file("t")), std::make_unique<MirrorGroup>(0, &b));
  });
  EXPECT_NE(t.find("parameter group 'tables'"), std::string::npos) << t;
  EXPECT_NE(t.find("cannot exchange its steps"), std::string::npos) << t;
  EXPECT_NE(t.find("remote_shards"), std::string::npos) << t;
  LinearTask own(*be, true);
  const std::string o = test::error_of_kind(ErrorKind::Usage, [&] {
    fit(own, options(dir.file("o")), std::make_unique<MirrorGroup>(0, &b));
  });
  EXPECT_NE(o.find("steps its own optimizer"), std::string::npos) << o;
  EXPECT_NE(o.find("2 ranks"), std::string::npos) << o;
}

}  // namespace
}  // namespace tessera::train
