// Hybrid-parallel training with the embedding tables split across the ranks, table-wise
// (embeddings/alltoall_tables.h, docs/distributed.md "Tables split across ranks"), through the
// Trainer under mpirun at 1, 2, 3 and 4 ranks (ctest runs each). Every rank trains its contiguous
// part of each global batch of 10 rows (parts 10; 5+5; 4+3+3; 3+2+3+2) on the data-parallel dense
// towers; each table lives on one rank, which looks up and steps it for the whole global batch
// (ids and pooled rows forward, pooled gradients backward, over ProcessGroup::alltoallv).
//
// Models: DLRM (dot interaction) with Adagrad tables and with SGD tables, DCN-v2 with SGD tables,
// the two-tower recommender with SGD tables.
// Reference: one process with the tables replicated in one collection (the ordinary
// EmbeddingTables path, not the all-to-all code). Tolerance: the replicated-tables test's, for
// the same reasons: the owner's sparse step sees the one-process global batch in the one-process
// order, its gradient rows rounded once more (n_r / B and the product: 2 eps), and the dense
// towers differ by summation order only: 4 gamma sum_t D_t per weight, gamma = 2 (B + N + 11)
// eps, D_t the largest change of any weight at step t of the one-process run. At 1 rank the
// arithmetic is the one-process arithmetic: bit-identical. The deterministic reduction mode is
// bit-identical between runs.
//
// Bytes: DLRM on the Criteo layout (13 dense features, 26 tables, one id per table) is stepped
// through the Trainer; the all-to-all bytes every rank sends, summed, per sample of the global
// batch, must lie within 1.2x the analytic minimum for table-wise placement: per sample of rank r
// and table owned by another rank, its id (8 bytes) to the owner, the pooled row (4 d) back and
// its gradient (4 d) to the owner again: sum_r B_r (T - T_r) (8 + 8 d) / B, which is
// (N - 1) / N T (8 + 8 d) for equal parts.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/dist/mpi_group.h"
#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "pipelines/behaviour/dcn_model.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/recommend/rec_model.h"
#include "tests/mpi/mpi_test_util.h"

namespace tessera::train {
namespace {

constexpr int64_t kBatch = 10;
constexpr double kLr = 0.05;
constexpr int64_t kNegs = 2;
constexpr double kEps = 1.0 / (1 << 24);

dist::ProcessGroup* g_world = nullptr;
std::unique_ptr<dist::ProcessGroup> g_mpi, g_ordered;
std::unique_ptr<dist::ProcessGroup> g_fewer;  // deterministic, world ranks [0, N - 1) (N > 1)

// A DLRM problem: sizes and the rows' features.
struct Problem {
  int64_t rows = 60, batch = kBatch, dense = 3, dim = 4;
  std::vector<int64_t> table_rows = {7, 11, 5, 9, 13};
  emb::SparseOptimizer sparse = emb::SparseOptimizer::Adagrad;
  bool dcn = false;  // DCN-v2 (2 cross layers, its tables through TableFeatures) instead of DLRM
  // The two-tower recommender instead (users: table 0's ids; items: table 1's rows, kNegs fixed
  // negatives per positive; sum-of-losses gradient, sent unscaled).
  bool two_tower = false;
  std::vector<float> x, y;   // [rows, dense], [rows]
  std::vector<int64_t> cat;  // [rows, T]
  void make() {
    const int64_t T = static_cast<int64_t>(table_rows.size());
    std::mt19937 gen(11);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int64_t i = 0; i < rows; ++i) {
      float s = 0;
      for (int64_t j = 0; j < dense; ++j) {
        x.push_back(n(gen));
        s += x.back() * (j % 2 ? 1.f : -1.f);
      }
      for (int64_t t = 0; t < T; ++t) {
        // Skewed ids: rows repeat within and across the ranks' parts.
        const int64_t id = static_cast<int64_t>(std::fabs(n(gen)) * 2) % table_rows[t];
        cat.push_back(id);
        s += id % 2 ? 0.5f : -0.5f;
      }
      y.push_back(s + 0.3f * n(gen) > 0 ? 1.f : 0.f);
    }
  }
};

// The Criteo layout: 13 dense features and 26 tables (their sizes capped at 1,000 rows, which
// does not change what a table-wise step sends).
Problem criteo(int64_t dim, int64_t batch) {
  Problem p;
  p.rows = 2 * batch;
  p.batch = batch;
  p.dense = 13;
  p.dim = dim;
  p.table_rows.clear();
  for (int64_t t = 0; t < 26; ++t) p.table_rows.push_back(std::min<int64_t>(1000, 3 + 97 * t * t));
  p.make();
  return p;
}

std::vector<int64_t> global_batch(const Problem& p, int64_t epoch, int64_t b) {
  std::vector<int64_t> perm(static_cast<size_t>(p.rows));
  for (int64_t i = 0; i < p.rows; ++i) perm[static_cast<size_t>(i)] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<unsigned>(100 + epoch)));
  return {perm.begin() + b * p.batch, perm.begin() + (b + 1) * p.batch};
}

std::vector<int64_t> my_part(const std::vector<int64_t>& all) {
  const dist::ProcessGroup& g = dist::process_group();
  const int64_t n = static_cast<int64_t>(all.size());
  return {all.begin() + n * g.rank() / g.world(), all.begin() + n * (g.rank() + 1) / g.world()};
}

OptimizerConfig sgd() {
  OptimizerConfig c;
  c.type = OptimizerType::Sgd;
  c.lr = kLr;
  c.momentum = 0;
  return c;
}

std::vector<float> flatten(const std::map<std::string, Tensor>& m) {
  std::vector<float> w;
  for (const auto& [name, t] : m)
    if (t.dtype() == DType::F32) w.insert(w.end(), t.data<float>(), t.data<float>() + t.numel());
  return w;
}

std::unique_ptr<DlrmModel> make_dlrm(Backend& be, const Problem& p, emb::RankPlacement where) {
  DlrmSpec s;
  s.n_dense = p.dense;
  s.table_rows = p.table_rows;
  s.embedding_dim = p.dim;
  s.bottom = {5};
  s.top = {6};
  s.activation = Activation::Tanh;
  s.sparse = {p.sparse, static_cast<float>(kLr)};
  s.rank_placement = where;
  return std::make_unique<DlrmModel>(be, s, 5, p.batch);
}

std::unique_ptr<DcnModel> make_dcn(Backend& be, const Problem& p, emb::RankPlacement where) {
  DcnSpec s;
  s.n_dense = p.dense;
  s.table_rows = p.table_rows;
  s.embedding_dim = p.dim;
  s.bottom = {};
  s.top = {6};
  s.cross_layers = 2;
  s.activation = Activation::Tanh;
  s.sparse = {p.sparse, static_cast<float>(kLr)};
  s.rank_placement = where;
  return std::make_unique<DcnModel>(be, s, 5, p.batch);
}

// DLRM or DCN-v2 on the logistic loss, each rank on its part of every global batch.
class DlrmTask final : public TrainTask {
 public:
  DlrmTask(Backend& be, const Problem& p, emb::RankPlacement where)
      : be_(be), p_(p), opt_(be, sgd(), LrSchedule{}) {
    if (p.two_tower) {
      rec_ = std::make_unique<recommend::RecModel>(rec_config(p), p.table_rows[0], p.table_rows[1],
                                                   be, where);
      opt_.add_sparse_group("tables", rec_->sparse_group());
      return;
    }
    if (p.dcn)
      dcn_ = make_dcn(be, p, where);
    else
      m_ = make_dlrm(be, p, where);
    opt_.attach(m_ ? m_->parameters() : dcn_->parameters());
    opt_.add_sparse_group("tables", m_ ? m_->sparse_group() : dcn_->sparse_group());
  }
  static recommend::RecommendConfig rec_config(const Problem& p) {
    recommend::RecommendConfig c;
    c.model = recommend::ModelKind::TwoTower;
    c.embeddings.dim = p.dim;
    c.embeddings.optimizer = {p.sparse, static_cast<float>(kLr)};
    c.train.negatives = kNegs;
    return c;
  }
  int64_t batches_per_epoch() override { return p_.rows / p_.batch; }
  void start_epoch(int64_t) override {}
  bool start_epoch_at(int64_t, int64_t) override { return true; }
  StepResult step(StepContext& ctx) override {
    const std::vector<int64_t> rows = my_part(global_batch(p_, ctx.epoch, ctx.batch));
    StepResult r;
    if (rows.empty()) return r;
    r.loss_sum = rec_ ? two_tower_step(rows) : forward_backward(rows);
    r.examples = static_cast<int64_t>(rows.size()) * (rec_ ? 1 + kNegs : 1);
    r.units = r.examples;
    return r;
  }
  Optimizer* optimizer() override { return &opt_; }
  double learning_rate() override { return opt_.current_lr(); }
  void check_weights(DivergenceGuard&) override {}
  Metrics validate(DivergenceGuard&) override { return {{"validation_loss", 0.0}}; }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override { return {}; }
  void restore_snapshot(const NamedTensors&) override {}
  void finish(FinishContext&) override {}
  // Collective when the tables are split: every rank calls it.
  std::vector<float> weights() {
    if (rec_) {
      std::vector<float> w;
      for (const auto& [name, t] : rec_->tables())
        w.insert(w.end(), t.data<float>(), t.data<float>() + t.numel());
      return w;
    }
    return flatten(m_ ? m_->snapshot() : dcn_->snapshot());
  }
  DlrmModel* dlrm() { return m_.get(); }

 private:
  double two_tower_step(const std::vector<int64_t>& rows) {
    const int64_t n = static_cast<int64_t>(rows.size()), T = p_.cat.size() / p_.rows;
    std::vector<int32_t> u, it;
    for (int64_t r : rows) {
      u.push_back(static_cast<int32_t>(p_.cat[r * T]));
      for (int64_t j = 0; j <= kNegs; ++j)
        it.push_back(static_cast<int32_t>((r * 7 + j * 5 + (j ? 3 : 0)) % p_.table_rows[1]));
    }
    const recommend::RecModel::Step s = rec_->two_tower_step(u.data(), it.data(), n, kNegs);
    rec_->stage(s);
    double loss = 0;
    for (int64_t i = 0; i < s.loss.numel(); ++i) loss += s.loss.data<float>()[i];
    return loss;
  }
  double forward_backward(const std::vector<int64_t>& rows) {
    const int64_t n = static_cast<int64_t>(rows.size()), T = p_.cat.size() / p_.rows;
    Tensor dense = Tensor::host({n, p_.dense}), cat = Tensor::host({n, T}, DType::I64);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(dense.data<float>() + i * p_.dense, &p_.x[rows[i] * p_.dense], p_.dense * 4);
      std::memcpy(cat.data<int64_t>() + i * T, &p_.cat[rows[i] * T], T * 8);
    }
    const Tensor z = be_.to_host(m_ ? m_->forward(dense, cat, Mode::Train, 0)
                                    : dcn_->forward(dense, cat, Mode::Train, 0));
    Tensor dl = Tensor::host({n, 1});
    double loss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float v = z.data<float>()[i], y = p_.y[static_cast<size_t>(rows[i])];
      loss += std::max(v, 0.f) - v * y + std::log1p(std::exp(-std::fabs(v)));
      dl.data<float>()[i] = (1.f / (1.f + std::exp(-v)) - y) / static_cast<float>(n);
    }
    if (m_)
      m_->backward(dl, DlrmModel::SparseStep::Deferred);
    else
      dcn_->backward(dl);
    return loss;
  }
  Backend& be_;
  const Problem& p_;
  std::unique_ptr<DlrmModel> m_;
  std::unique_ptr<DcnModel> dcn_;
  std::unique_ptr<recommend::RecModel> rec_;
  Optimizer opt_;
};

std::string shared_dir() {
  static const std::string dir = mpitest::make_shared_dir(*g_world, "tessera_mpi_st");
  return dir;
}

struct Trained {
  std::vector<float> weights;
  double change_sum = 0;  // sum over steps of the largest change of any weight (D_t)
  int64_t steps = 0;
  dist::CommStats comm;         // this rank's, over the run
  int64_t held = 0, total = 0;  // table elements on this rank, in the model
  std::vector<int> owners;
};

dist::CommStats minus(dist::CommStats a, const dist::CommStats& b) {
  a.alltoall_bytes -= b.alltoall_bytes;
  a.alltoall_calls -= b.alltoall_calls;
  a.allreduce_bytes -= b.allreduce_bytes;
  a.allgather_bytes -= b.allgather_bytes;
  a.allgather_calls -= b.allgather_calls;
  return a;
}

// `epochs` epochs in `group` (nullptr: this process alone, tables in one collection), the model
// made inside the group; everything read before the group is taken down.
Trained train(const Problem& p, dist::ProcessGroup* group, const std::string& run,
              emb::RankPlacement where, int64_t epochs = 2, TrainerOptions o = {}) {
  dist::set_process_group(group ? std::make_unique<mpitest::Forwarding>(*group) : nullptr);
  Trained out;
  try {
    auto be = make_host_backend();
    DlrmTask task(*be, p, where);
    o.task = "mpi-sharded-tables-test";
    o.name = "st";
    if (o.run_dir.empty())
      o.run_dir =
          shared_dir() + "/" + run + (group ? "" : "-rank" + std::to_string(g_world->rank()));
    o.epochs = epochs;
    o.quiet = true;
    std::vector<float> before = task.weights();
    o.after_step = [&](int64_t, bool) {
      const std::vector<float> now = task.weights();
      double d = 0;
      for (size_t i = 0; i < now.size(); ++i)
        d = std::max(d, std::fabs(double(now[i]) - before[i]));
      out.change_sum += d;
      before = now;
      ++out.steps;
    };
    const dist::CommStats c0 = dist::process_group().stats();
    Trainer(o).fit(task);
    out.comm = minus(dist::process_group().stats(), c0);
    out.weights = task.weights();
    if (const emb::AllToAllTables* s = task.dlrm() ? task.dlrm()->split_tables() : nullptr) {
      out.held = s->held_elements();
      for (int64_t t = 0; t < s->layout().num_tables(); ++t) out.owners.push_back(s->owner(t));
      out.total = s->layout().total_elements();
    }
  } catch (...) {
    dist::set_process_group(nullptr);
    throw;
  }
  dist::set_process_group(nullptr);
  return out;
}

void expect_close(const Trained& dp, const Trained& ref, int world, int64_t batch,
                  const char* what) {
  ASSERT_EQ(dp.weights.size(), ref.weights.size());
  if (world == 1) {
    EXPECT_EQ(dp.weights, ref.weights) << what << ": one rank is the one-process arithmetic";
    return;
  }
  const double gamma = 2.0 * static_cast<double>(batch + world + 11) * kEps;
  const double tol = 4 * gamma * ref.change_sum;
  double worst = 0;
  for (size_t i = 0; i < ref.weights.size(); ++i) {
    const double diff = std::fabs(double(dp.weights[i]) - ref.weights[i]);
    worst = std::max(worst, diff / tol);
    EXPECT_LE(diff, tol) << what << " weight " << i << ": " << dp.weights[i] << " vs "
                         << ref.weights[i] << " (bound " << tol << ")";
  }
  if (g_world->rank() == 0)
    std::printf("[ %s, %d ranks ] worst difference / bound = %.3g (bound %.3g)\n", what, world,
                worst, tol);
}

void equals_one_process(emb::SparseOptimizer sparse, bool dcn, const char* what,
                        bool two_tower = false) {
  Problem p;
  p.sparse = sparse;
  p.dcn = dcn;
  p.two_tower = two_tower;
  p.make();
  const Trained ref = train(p, nullptr, std::string(what) + "-ref", emb::RankPlacement::Replicated);
  const Trained dp =
      train(p, g_mpi.get(), std::string(what) + "-dp", emb::RankPlacement::TableWise);
  EXPECT_EQ(dp.steps, 12);
  EXPECT_GT(ref.change_sum, 0) << "the steps changed nothing";
  expect_close(dp, ref, g_world->world(), p.batch, what);
  if (g_world->world() > 1) EXPECT_GT(dp.comm.alltoall_calls, 0) << "no all-to-all ran";
  // The replicated exchange all-gathers once a step; the Trainer's own are once a run.
  EXPECT_LT(dp.comm.allgather_calls, dp.steps) << "the split tables' step went through all-gathers";
}

// Adagrad squares the per-row sum of the global batch's gradient: summing the ranks' updates
// instead would be caught. Plain SGD tables catch a wrong share n_r / B (Adagrad's update is
// nearly invariant to a common scale of its gradient).
TEST(ShardedTables, DlrmWithAdagradTablesEqualsTheOneProcessModel) {
  equals_one_process(emb::SparseOptimizer::Adagrad, false, "dlrm-adagrad");
}
TEST(ShardedTables, DlrmWithSgdTablesEqualsTheOneProcessModel) {
  equals_one_process(emb::SparseOptimizer::Sgd, false, "dlrm-sgd");
}
// DCN-v2's tables go through TableFeatures (shared with Wide & Deep), not DLRM's own code.
TEST(ShardedTables, DcnV2WithSgdTablesEqualsTheOneProcessModel) {
  equals_one_process(emb::SparseOptimizer::Sgd, true, "dcn-sgd");
}

// The two-tower recommender: user and item tables, no dense part; its gradient is a sum, which
// the ranks send unscaled (the replicated mode's rule).
TEST(ShardedTables, TwoTowerWithSgdTablesEqualsTheOneProcessModel) {
  equals_one_process(emb::SparseOptimizer::Sgd, false, "two-tower-sgd", /*two_tower=*/true);
}

TEST(ShardedTables, DeterministicModeIsBitIdenticalBetweenRuns) {
  Problem p;
  p.make();
  const Trained a = train(p, g_ordered.get(), "det-a", emb::RankPlacement::TableWise);
  const Trained b = train(p, g_ordered.get(), "det-b", emb::RankPlacement::TableWise);
  EXPECT_EQ(a.weights, b.weights);
}

// Each rank holds its own tables and no other: the elements of its owned tables, summing to the
// model's over the ranks; with more than one rank, fewer than all.
TEST(ShardedTables, EachRankHoldsOnlyItsTables) {
  Problem p;
  p.make();
  const Trained t = train(p, g_mpi.get(), "held", emb::RankPlacement::TableWise, 1);
  int64_t mine = 0;
  for (size_t k = 0; k < t.owners.size(); ++k)
    if (t.owners[k] == g_world->rank()) mine += p.table_rows[k] * p.dim;
  EXPECT_EQ(t.held, mine);
  double all = static_cast<double>(t.held);
  g_world->allreduce_sum(&all, 1);
  EXPECT_EQ(static_cast<int64_t>(all), t.total);
  if (g_world->world() > 1) EXPECT_LT(t.held, t.total);
  if (g_world->world() > 1 && g_world->world() <= 5) EXPECT_GT(t.held, 0);  // the planner spreads
}

struct Stop {};

// A checkpoint after step 4 of epoch 1 at this world size N (written by rank 0 from the split
// tables' gathered state), resumed at N ranks (bit-identical in deterministic mode), at N - 1
// ranks with the tables split over those, and by one process with its tables in one collection
// (both within the bound of the one-process run).
TEST(ShardedTables, MidEpochCheckpointResumesAtAnotherWorldSize) {
  Problem p;
  p.make();
  const emb::RankPlacement split = emb::RankPlacement::TableWise;
  TrainerOptions o;
  o.checkpoint_every_steps = 4;
  o.resumable = true;
  o.run_dir = shared_dir() + "/whole";
  const Trained whole = train(p, g_ordered.get(), "whole", split, 2, o);
  const Trained ref = train(p, nullptr, "whole-ref", emb::RankPlacement::Replicated);
  o.run_dir = shared_dir() + "/cut";
  o.after_checkpoint = [](int64_t epochs) {
    if (epochs == 0) throw Stop{};
  };
  EXPECT_THROW(train(p, g_ordered.get(), "cut", split, 2, o), Stop);
  o.after_checkpoint = nullptr;
  g_world->barrier();
  namespace fs = std::filesystem;
  const std::string alone = shared_dir() + "/alone-rank" + std::to_string(g_world->rank());
  fs::create_directories(alone);
  fs::copy_file(shared_dir() + "/cut/checkpoint.tsc", alone + "/checkpoint.tsc");
  const std::string fewer = shared_dir() + "/fewer";
  if (g_world->rank() == 0) {
    fs::create_directories(fewer);
    fs::copy_file(shared_dir() + "/cut/checkpoint.tsc", fewer + "/checkpoint.tsc");
  }
  g_world->barrier();
  if (g_fewer) {  // N - 1 ranks resume the N-rank checkpoint, their tables placed anew
    TrainerOptions m = o;
    m.run_dir = fewer;
    const Trained resumed_fewer = train(p, g_fewer.get(), "fewer", split, 2, m);
    EXPECT_EQ(resumed_fewer.steps, 8);
    expect_close(resumed_fewer, ref, g_world->world(), p.batch, "resumed at N - 1 ranks");
  }
  g_world->barrier();
  TrainerOptions one = o;
  one.run_dir = alone;
  const Trained resumed_alone = train(p, nullptr, "alone", emb::RankPlacement::Replicated, 2, one);
  EXPECT_EQ(resumed_alone.steps, 8);
  const Trained resumed = train(p, g_ordered.get(), "cut", split, 2, o);
  EXPECT_EQ(resumed.steps, 8);
  EXPECT_EQ(resumed.weights, whole.weights) << "resumed at the same world size";
  expect_close(resumed_alone, ref, g_world->world(), p.batch, "resumed alone");
}

// The all-to-all bytes per sample on the Criteo layout against the analytic minimum.
void bytes_against_minimum(int64_t dim, int64_t batch) {
  const Problem p = criteo(dim, batch);
  const Trained t =
      train(p, g_mpi.get(), "bytes-" + std::to_string(dim), emb::RankPlacement::TableWise, 1);
  const int N = g_world->world();
  const int64_t T = static_cast<int64_t>(p.table_rows.size());
  double sent = static_cast<double>(t.comm.alltoall_bytes);
  g_world->allreduce_sum(&sent, 1);
  double minimum = 0;  // per global batch: sum_r B_r (T - T_r) (8 + 8 d)
  for (int r = 0; r < N; ++r) {
    const int64_t B_r = batch * (r + 1) / N - batch * r / N;
    int64_t T_r = 0;
    for (int o : t.owners) T_r += o == r ? 1 : 0;
    minimum += static_cast<double>(B_r * (T - T_r) * (8 + 8 * dim));
  }
  const double steps = static_cast<double>(t.steps);
  const double per_sample = sent / steps / static_cast<double>(batch);
  const double min_per_sample = minimum / static_cast<double>(batch);
  if (g_world->rank() == 0)
    std::printf(
        "{\"ranks\": %d, \"tables\": %lld, \"dim\": %lld, \"batch\": %lld, "
        "\"alltoall_bytes_per_sample\": %.2f, \"minimum_per_sample\": %.2f, "
        "\"ratio\": %.4f, \"dense_allreduce_bytes_per_sample_rank0\": %.2f}\n",
        N, static_cast<long long>(T), static_cast<long long>(dim), static_cast<long long>(batch),
        per_sample, min_per_sample, N > 1 ? per_sample / min_per_sample : 0.0,
        static_cast<double>(t.comm.allreduce_bytes) / steps / static_cast<double>(batch));
  if (N == 1) {
    EXPECT_EQ(sent, 0) << "one rank sends nothing to others";
    return;
  }
  EXPECT_EQ(t.steps, 2);
  EXPECT_GE(per_sample, min_per_sample) << "below the analytic minimum: the count is wrong";
  EXPECT_LE(per_sample, 1.2 * min_per_sample);
}

// Every collective forwarded but alltoallv: ProcessGroup's own (through allgatherv), which a
// group without a personalised exchange of its own uses.
class BaseAlltoallv final : public dist::ProcessGroup {
 public:
  explicit BaseAlltoallv(dist::ProcessGroup& g) : g_(g) {}
  int rank() const override { return g_.rank(); }
  int world() const override { return g_.world(); }
  void allreduce_sum(float* d, int64_t n) override { g_.allreduce_sum(d, n); }
  void allreduce_sum(double* d, int64_t n) override { g_.allreduce_sum(d, n); }
  void broadcast(void* d, int64_t b, int root) override { g_.broadcast(d, b, root); }
  void barrier() override { g_.barrier(); }
  void allgather(const void* s, int64_t b, void* r) override { g_.allgather(s, b, r); }
  std::vector<std::string> allgatherv(const std::string& s) override { return g_.allgatherv(s); }

 private:
  dist::ProcessGroup& g_;
};

// Part j of rank r: (3 r + j) % 5 bytes of one letter per (r, j); empty parts included.
std::string part(int r, int j) {
  return std::string(static_cast<size_t>((3 * r + j) % 5), static_cast<char>('a' + 4 * r + j));
}

TEST(ShardedTables, AlltoallvDeliversEachPartToItsRankAndCountsWhatLeaves) {
  const int N = g_world->world(), me = g_world->rank();
  std::vector<std::string> send, expected;
  int64_t leaving = 0;
  for (int j = 0; j < N; ++j) {
    send.push_back(part(me, j));
    expected.push_back(part(j, me));
    if (j != me) leaving += static_cast<int64_t>(send.back().size()) + 8;
  }
  const dist::CommStats before = g_mpi->stats();
  EXPECT_EQ(g_mpi->alltoallv(send), expected);
  EXPECT_EQ(g_mpi->stats().alltoall_calls - before.alltoall_calls, 1);
  EXPECT_EQ(g_mpi->stats().alltoall_bytes - before.alltoall_bytes, leaving);
  BaseAlltoallv base(*g_mpi);
  EXPECT_EQ(base.alltoallv(send), expected) << "the default, through allgatherv";
  send.push_back("one part too many");
  EXPECT_THROW(g_mpi->alltoallv(send), Error);
  EXPECT_THROW(base.alltoallv(send), Error);
}

// Without MPI (the group of one, its alltoallv the identity) the split tables are one process.
TEST(ShardedTables, OneProcessWithoutMpiIsBitIdentical) {
  Problem p;
  p.make();
  const Trained ref = train(p, nullptr, "alone-ref", emb::RankPlacement::Replicated);
  const Trained split = train(p, nullptr, "alone-split", emb::RankPlacement::TableWise);
  EXPECT_EQ(split.weights, ref.weights);
  EXPECT_EQ(split.held, split.total);
}

TEST(ShardedTables, CriteoLayoutBytesWithinTheTargetOfTheMinimum) {
  bytes_against_minimum(16, 256);
  bytes_against_minimum(128, 64);
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
  if (world->world() > 1) {
    det.ranks = world->world() - 1;
    tessera::train::g_fewer = tessera::dist::make_mpi_group(det);
  }
  tessera::mpitest::report_from_rank0(world->rank());
  const int worst = tessera::mpitest::worst_result(
      *world, RUN_ALL_TESTS(), "mpi_sharded_tables_test", tessera::train::shared_dir());
  tessera::train::g_fewer.reset();
  tessera::train::g_ordered.reset();
  tessera::train::g_mpi.reset();
  tessera::train::g_world = nullptr;
  world.reset();
  MPI_Finalize();
  return worst;
}
