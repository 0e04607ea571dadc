// Data-parallel training through the Trainer (host/train/trainer.h, docs/distributed.md), run
// under mpirun with 1, 2, 3 and 4 ranks (ctest does each). Every rank runs every test: a small
// MLP task of the test's own steps on its rank's part of each global batch (10 rows: parts of
// 10, 5+5, 4+3+3 (uneven), 3+2+3+2 rows), and the Trainer all-reduces the gradients weighted
// by the parts' sizes. The reference is the same training in one process (each rank runs it
// alone, with the group of one).
//
// Tolerance, from the summations. An element of the gradient is (1/B) sum_i t_i over the B rows
// of the global batch, t_i a product of a few rounded factors. One process sums the B scaled
// terms in row order; N ranks each sum their n_r terms scaled by 1/n_r, multiply by n_r, the
// ranks' results are summed and divided by B. Both are within (c + B + N + 3) eps S of the exact
// value, with S = (1/B) sum_i |t_i| (the terms' own magnitude, which the test computes beside the
// gradient), c = 8 the roundings in one term and eps = 2^-24; so they differ by at most
//   gamma S,  gamma = 2 (B + N + 11) eps.
// This is checked at every step of the data-parallel run, against the one-process gradient at
// the same weights. The weights after T plain-SGD steps differ by the steps' differences carried
// on: at most sum_t lr gamma S_t through a map w -> w - lr g(w) that is close to the identity
// here (lr 0.05 on a tanh network whose weights stay below 1), plus one rounding of each update
// (eps |w| per step, either run); the test allows 4 times that sum for the carrying, and states
// the bound it used on failure. With one rank the runs are the same arithmetic: bit-identical.
// The deterministic reduction mode (rank-order sums) is bit-identical between two runs.
#include <gtest/gtest.h>
#include <mpi.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/dist/mpi_group.h"
#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "tests/mpi/mpi_test_util.h"

namespace tessera::train {
namespace {

constexpr int64_t kRows = 60, kDim = 5, kHidden = 6, kBatch = 10;
constexpr double kLr = 0.05;
constexpr double kEps = 1.0 / (1 << 24);

dist::ProcessGroup* g_world = nullptr;          // the MPI group the tests install
std::unique_ptr<dist::ProcessGroup> g_mpi;      // MPI_Allreduce
std::unique_ptr<dist::ProcessGroup> g_ordered;  // deterministic, in pieces of 64 bytes

void install(dist::ProcessGroup* g) {
  dist::set_process_group(g ? std::make_unique<mpitest::Forwarding>(*g) : nullptr);
}

struct Data {
  std::vector<float> x, y;  // [kRows, kDim], [kRows]
  Data() {
    std::mt19937 gen(7);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int64_t i = 0; i < kRows; ++i) {
      float s = 0;
      for (int64_t j = 0; j < kDim; ++j) {
        x.push_back(n(gen));
        s += x.back() * static_cast<float>(j % 2 ? 1 : -1);
      }
      y.push_back(s + 0.3f * n(gen) > 0 ? 1.f : 0.f);
    }
  }
};

// The rows of global batch `b` of `epoch`: a permutation of the rows per epoch (a function of
// the epoch alone), cut into batches of kBatch.
std::vector<int64_t> global_batch(int64_t epoch, int64_t b) {
  std::vector<int64_t> perm(kRows);
  for (int64_t i = 0; i < kRows; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<unsigned>(100 + epoch)));
  return {perm.begin() + b * kBatch, perm.begin() + (b + 1) * kBatch};
}

// f(x) = w2 . tanh(W1 x + b1) + b2, trained with the logistic loss.
class MlpTask final : public TrainTask {
 public:
  MlpTask(Backend& be, const Data& d) : be_(be), d_(d), opt_(be, sgd(), LrSchedule{}) {
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    auto param = [&](const char* name, Shape s) {
      auto p = std::make_unique<Parameter>();
      p->name = name;
      p->value = Tensor::host(s);
      p->grad = Tensor::host(s);
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.data<float>()[i] = u(gen);
      params_.push_back(std::move(p));
    };
    param("w1", {kHidden, kDim});
    param("b1", {kHidden});
    param("w2", {kHidden});
    param("b2", {1});
    std::vector<Parameter*> ps;
    for (auto& p : params_) ps.push_back(p.get());
    opt_.attach(ps);
  }
  static OptimizerConfig sgd() {
    OptimizerConfig c;
    c.type = OptimizerType::Sgd;
    c.lr = kLr;
    c.momentum = 0;
    return c;
  }

  int64_t batches_per_epoch() override { return kRows / kBatch; }
  void start_epoch(int64_t epoch) override { epoch_ = epoch; }
  bool start_epoch_at(int64_t epoch, int64_t batch) override {
    epoch_ = epoch;
    return true;  // batches are a function of (epoch, batch)
  }
  StepResult step(StepContext& ctx) override {
    const std::vector<int64_t> all = global_batch(ctx.epoch, ctx.batch);
    const dist::ProcessGroup& g = dist::process_group();
    const int64_t n = static_cast<int64_t>(all.size());
    const std::vector<int64_t> mine(all.begin() + n * g.rank() / g.world(),
                                    all.begin() + n * (g.rank() + 1) / g.world());
    before_ = weights();
    last_batch_ = all;
    StepResult r;
    r.loss_sum = gradient(mine, grad_ptrs(), nullptr);
    r.examples = static_cast<int64_t>(mine.size());
    r.units = r.examples;
    return r;
  }
  Optimizer* optimizer() override { return &opt_; }
  double learning_rate() override { return opt_.current_lr(); }
  void check_weights(DivergenceGuard& guard) override {
    std::vector<Parameter*> ps;
    for (auto& p : params_) ps.push_back(p.get());
    guard.check_weights(be_, ps);
  }
  Metrics validate(DivergenceGuard&) override {
    std::vector<int64_t> rows(kRows);
    for (int64_t i = 0; i < kRows; ++i) rows[i] = i;
    std::vector<std::vector<float>> scratch(params_.size());
    std::vector<float*> ptrs;
    for (size_t k = 0; k < params_.size(); ++k) {
      scratch[k].resize(static_cast<size_t>(params_[k]->value.numel()));
      ptrs.push_back(scratch[k].data());
    }
    return {{"validation_loss", gradient(rows, ptrs, nullptr) / kRows}};
  }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override { return {}; }
  void restore_snapshot(const NamedTensors&) override {}
  void finish(FinishContext&) override {}

  std::vector<float> weights() const {
    std::vector<float> w;
    for (const auto& p : params_)
      w.insert(w.end(), p->value.data<float>(), p->value.data<float>() + p->value.numel());
    return w;
  }
  std::vector<float> gradients() const {
    std::vector<float> w;
    for (const auto& p : params_)
      w.insert(w.end(), p->grad.data<float>(), p->grad.data<float>() + p->grad.numel());
    return w;
  }
  // The one-process gradient of the last global batch at the weights before its step, and S.
  void reference_gradient(std::vector<float>& grad, std::vector<double>& magnitude) {
    const std::vector<float> now = weights();
    set_weights(before_);
    std::vector<std::vector<float>> g(params_.size());
    std::vector<float*> ptrs;
    for (size_t k = 0; k < params_.size(); ++k) {
      g[k].resize(static_cast<size_t>(params_[k]->value.numel()));
      ptrs.push_back(g[k].data());
    }
    magnitude.assign(now.size(), 0.0);
    gradient(last_batch_, ptrs, &magnitude);
    set_weights(now);
    grad.clear();
    for (const auto& part : g) grad.insert(grad.end(), part.begin(), part.end());
  }

 private:
  std::vector<float*> grad_ptrs() {
    std::vector<float*> out;
    for (auto& p : params_) out.push_back(p->grad.data<float>());
    return out;
  }
  void set_weights(const std::vector<float>& w) {
    size_t at = 0;
    for (auto& p : params_)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.data<float>()[i] = w[at++];
  }
  // The mean loss gradient over `rows` into out (w1, b1, w2, b2); returns the summed loss.
  // `magnitude`: (1/n) sum_i |t_i| per element, the terms without their signs.
  double gradient(const std::vector<int64_t>& rows, const std::vector<float*>& out,
                  std::vector<double>* magnitude);

  Backend& be_;
  const Data& d_;
  Optimizer opt_;
  std::vector<std::unique_ptr<Parameter>> params_;
  int64_t epoch_ = 0;
  std::vector<float> before_;
  std::vector<int64_t> last_batch_;
};

double MlpTask::gradient(const std::vector<int64_t>& rows, const std::vector<float*>& out,
                         std::vector<double>* magnitude) {
  const float* w1 = params_[0]->value.data<float>();
  const float* b1 = params_[1]->value.data<float>();
  const float* w2 = params_[2]->value.data<float>();
  const float b2 = params_[3]->value.data<float>()[0];
  for (size_t k = 0; k < params_.size(); ++k)
    std::fill(out[k], out[k] + params_[k]->value.numel(), 0.f);
  const float inv = rows.empty() ? 0.f : 1.f / static_cast<float>(rows.size());
  double loss = 0;
  auto add = [&](size_t k, int64_t i, float term, float unscaled) {
    out[k][i] += term;
    if (!magnitude) return;
    int64_t off = 0;
    for (size_t j = 0; j < k; ++j) off += params_[j]->value.numel();
    (*magnitude)[static_cast<size_t>(off + i)] += std::fabs(unscaled) / rows.size();
  };
  for (const int64_t r : rows) {
    const float* x = &d_.x[static_cast<size_t>(r * kDim)];
    float h[kHidden], z = b2;
    for (int64_t j = 0; j < kHidden; ++j) {
      float a = b1[j];
      for (int64_t k = 0; k < kDim; ++k) a += w1[j * kDim + k] * x[k];
      h[j] = std::tanh(a);
      z += w2[j] * h[j];
    }
    const float y = d_.y[static_cast<size_t>(r)];
    loss += std::max(z, 0.f) - z * y + std::log1p(std::exp(-std::fabs(z)));
    const float e = 1.f / (1.f + std::exp(-z)) - y;  // dloss/dz
    const float dz = e * inv;
    add(3, 0, dz, e);
    for (int64_t j = 0; j < kHidden; ++j) {
      add(2, j, dz * h[j], e * h[j]);
      const float dh = dz * w2[j] * (1.f - h[j] * h[j]);
      const float uh = e * w2[j] * (1.f - h[j] * h[j]);
      add(1, j, dh, uh);
      for (int64_t k = 0; k < kDim; ++k) add(0, j * kDim + k, dh * x[k], uh * x[k]);
    }
  }
  return loss;
}

struct Trained {
  std::vector<float> weights;
  std::vector<std::string> metrics;  // rank 0's metrics.jsonl lines
  int64_t gradient_checks = 0;
  double worst_ratio = 0;    // max |g_dp - g_ref| / (gamma S) over every step and element
  double carried_bound = 0;  // sum over steps of max(lr gamma S) + eps |w|
};

// A directory every rank names alike (rank 0's, made once for the whole test binary).
std::string shared_dir() {
  static const std::string dir = mpitest::make_shared_dir(*g_world, "tessera_mpi_dp");
  return dir;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Trains 2 epochs of 6 global batches in `group` (nullptr: this process alone).
Trained train(dist::ProcessGroup* group, const std::string& run, TrainerOptions o = {}) {
  install(group);
  const int world = group ? group->world() : 1;
  auto be = make_host_backend();
  Data data;
  MlpTask task(*be, data);
  Trained out;
  o.task = "mpi-test";
  o.name = "dp";
  if (o.run_dir.empty())
    o.run_dir = group ? shared_dir() + "/" + run
                      : shared_dir() + "/" + run + "-rank" + std::to_string(g_world->rank());
  o.epochs = 2;
  o.quiet = true;
  const double gamma = 2.0 * static_cast<double>(kBatch + world + 11) * kEps;
  o.after_step = [&](int64_t, bool) {
    std::vector<float> ref;
    std::vector<double> mag;
    task.reference_gradient(ref, mag);
    const std::vector<float> got = task.gradients();
    double step_bound = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double bound = gamma * mag[i];
      step_bound = std::max(step_bound, kLr * bound);
      const double diff = std::fabs(static_cast<double>(got[i]) - ref[i]);
      out.worst_ratio = std::max(out.worst_ratio, bound > 0 ? diff / bound : diff > 0 ? 1e30 : 0);
    }
    double wmax = 0;
    for (float w : task.weights()) wmax = std::max(wmax, static_cast<double>(std::fabs(w)));
    out.carried_bound += step_bound + 2 * kEps * wmax;
    ++out.gradient_checks;
  };
  try {
    Trainer(o).fit(task);
  } catch (...) {
    install(nullptr);
    throw;
  }
  install(nullptr);
  out.weights = task.weights();
  if (g_world->rank() == 0 || !group) out.metrics = read_lines(o.run_dir + "/metrics.jsonl");
  return out;
}

double json_number(const std::string& line, const char* key) {
  rapidjson::Document d;
  d.Parse(line.c_str());
  return !d.HasParseError() && d.HasMember(key) ? d[key].GetDouble() : NAN;
}

void expect_close(const Trained& dp, const Trained& ref, int world) {
  ASSERT_EQ(dp.weights.size(), ref.weights.size());
  EXPECT_EQ(dp.gradient_checks, 12);
  EXPECT_LE(dp.worst_ratio, 1.0) << "a step's all-reduced gradient left gamma S of the "
                                    "one-process gradient (ratio "
                                 << dp.worst_ratio << ")";
  const double tol = 4 * dp.carried_bound;
  for (size_t i = 0; i < ref.weights.size(); ++i) {
    if (world == 1)
      EXPECT_EQ(dp.weights[i], ref.weights[i]) << "weight " << i << ", one rank";
    else
      EXPECT_NEAR(dp.weights[i], ref.weights[i], tol) << "weight " << i << " (bound " << tol << ")";
  }
}

TEST(DataParallel, EveryRankTrainsToTheOneProcessModel) {
  const Trained ref = train(nullptr, "ref-a");
  const Trained dp = train(g_mpi.get(), "dp-a");
  expect_close(dp, ref, g_world->world());
  // The gradients differ from the weights' start: the steps did something.
  EXPECT_NE(dp.weights, MlpTask(*make_host_backend(), Data()).weights());
  if (g_world->rank() == 0) {
    ASSERT_EQ(dp.metrics.size(), 2u);
    ASSERT_EQ(ref.metrics.size(), 2u);
    for (size_t e = 0; e < 2; ++e) {  // the epoch's loss over every rank's rows, as one process
      const double a = json_number(dp.metrics[e], "train_loss");
      const double b = json_number(ref.metrics[e], "train_loss");
      EXPECT_NEAR(a, b, 1e-5 * std::fabs(b)) << dp.metrics[e];
      EXPECT_NEAR(json_number(dp.metrics[e], "validation_loss"),
                  json_number(ref.metrics[e], "validation_loss"), 1e-4);
    }
  }
}

TEST(DataParallel, DeterministicReductionIsBitIdenticalBetweenRuns) {
  const Trained a = train(g_ordered.get(), "det-a");
  const Trained b = train(g_ordered.get(), "det-b");
  EXPECT_EQ(a.weights, b.weights);
  const Trained ref = train(nullptr, "ref-det");
  expect_close(a, ref, g_world->world());
  if (g_world->world() > 1) {
    // Each step all-reduced 49 floats (48 weights' gradients and the count) in 64-byte pieces.
    EXPECT_GT(g_ordered->stats().allreduce_bytes, 0);
  }
}

// The collectives themselves: integer-valued sums (exact in any order) over vectors that take
// several buckets and do not divide by the world size, in both modes; a broadcast from the last
// rank; strings of different lengths gathered in rank order.
TEST(MpiGroup, CollectivesGiveTheirDefinitions) {
  const int rank = g_world->rank(), world = g_world->world();
  for (dist::ProcessGroup* g : {g_mpi.get(), g_ordered.get()}) {
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{1001}}) {
      std::vector<double> d(static_cast<size_t>(n));
      std::vector<float> f(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        d[static_cast<size_t>(i)] = static_cast<double>((rank + 1) * (i + 3));
        f[static_cast<size_t>(i)] = static_cast<float>((rank + 1) * (i % 17));
      }
      g->allreduce_sum(d.data(), n);
      g->allreduce_sum(f.data(), n);
      const int64_t ranks_sum = static_cast<int64_t>(world) * (world + 1) / 2;
      for (int64_t i = 0; i < n; ++i) {
        // EXPECT, not ASSERT: a rank that left the test early would leave the others waiting.
        EXPECT_EQ(d[static_cast<size_t>(i)], static_cast<double>(ranks_sum * (i + 3))) << i;
        EXPECT_EQ(f[static_cast<size_t>(i)], static_cast<float>(ranks_sum * (i % 17))) << i;
      }
    }
  }
  int64_t value = rank == world - 1 ? 12345 : -1;
  g_world->broadcast(&value, sizeof value, world - 1);
  EXPECT_EQ(value, 12345);
  const std::vector<std::string> all =
      dist::allgather_strings(*g_world, std::string(static_cast<size_t>(rank), 'a' + rank));
  ASSERT_EQ(all.size(), static_cast<size_t>(world));
  for (int r = 0; r < world; ++r)
    EXPECT_EQ(all[static_cast<size_t>(r)], std::string(static_cast<size_t>(r), 'a' + r));
}

struct Stop {};

// A checkpoint inside epoch 1 (after 4 of its 6 steps), taken at this world size, resumed by
// one process alone and by this world size: both end where the uninterrupted run does.
TEST(DataParallel, MidEpochCheckpointResumesAtAnotherWorldSize) {
  TrainerOptions o;
  o.checkpoint_every_steps = 4;
  o.resumable = true;
  o.run_dir = shared_dir() + "/whole";
  const Trained whole = train(g_ordered.get(), "whole", o);
  o.run_dir = shared_dir() + "/cut";
  o.after_checkpoint = [](int64_t epochs) {
    if (epochs == 0) throw Stop{};  // the first checkpoint, inside epoch 1
  };
  EXPECT_THROW(train(g_ordered.get(), "cut", o), Stop);
  o.after_checkpoint = nullptr;
  g_world->barrier();
  // One process: its own copy of the checkpoint.
  const std::string alone = shared_dir() + "/alone-rank" + std::to_string(g_world->rank());
  EXPECT_EQ(std::system(("mkdir -p " + alone + " && cp " + shared_dir() + "/cut/checkpoint.tsc " +
                         alone + "/")
                            .c_str()),
            0);
  g_world->barrier();
  TrainerOptions one = o;
  one.run_dir = alone;
  const Trained resumed_alone = train(nullptr, "alone", one);
  const Trained resumed = train(g_ordered.get(), "cut", o);
  EXPECT_EQ(resumed.weights, whole.weights) << "resumed at the same world size";
  EXPECT_EQ(resumed.gradient_checks, 8);  // steps 5-12
  Trained carried = resumed_alone;
  carried.gradient_checks = 12;
  carried.carried_bound = whole.carried_bound;
  expect_close(carried, whole, g_world->world());
}

}  // namespace

}  // namespace tessera::train

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  auto world = tessera::dist::make_mpi_group();
  tessera::train::g_world = world.get();
  tessera::train::g_mpi = tessera::dist::make_mpi_group();
  tessera::dist::MpiGroupOptions det;
  det.deterministic = true;
  det.bucket_bytes = 64;
  tessera::train::g_ordered = tessera::dist::make_mpi_group(det);
  tessera::mpitest::report_from_rank0(world->rank());
  const int worst = tessera::mpitest::worst_result(
      *world, RUN_ALL_TESTS(), "mpi_data_parallel_test", tessera::train::shared_dir());
  tessera::train::g_ordered.reset();
  tessera::train::g_mpi.reset();
  tessera::train::g_world = nullptr;
  world.reset();
  MPI_Finalize();
  return worst;
}
