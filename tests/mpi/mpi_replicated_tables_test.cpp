// Data-parallel training of models with embedding tables, the tables replicated on every rank
// (docs/distributed.md, "Replicated tables"), through the Trainer under mpirun at 1, 2, 3 and 4
// ranks (ctest runs each). Every rank trains its contiguous part of each global batch of 10 rows
// (parts 10; 5+5; 4+3+3; 3+2+3+2); the dense gradients are all-reduced and every rank applies
// the global batch's sparse step (host/train/data_parallel.h exchange_sparse_steps). Covered:
// DLRM (dot interaction) with Adagrad tables (its accumulator squares the coalesced per-row
// gradient, so summing the ranks' updates instead of their gradients would be caught), DCN-v2,
// Wide & Deep (deep and wide tables on the same columns), the two-tower recommender and matrix
// factorisation with plain SGD tables (Adagrad's update barely changes when every
// gradient is scaled alike, so a wrong share n_r / N at equal parts would pass it unseen: with the
// share forced to 1 at 2 ranks, DCN-v2 with Adagrad stayed at 0.12 of the bound).
//
// Tolerance. One process and N ranks differ only in summation order: the dense mean over B rows
// is taken as one sum, or as N partial means weighted and summed (the MLP test's gamma =
// 2 (B + N + 11) eps relative to the terms' magnitude); the sparse step sees the same global batch
// in the same order, its pooled gradient rows rounded once more (n_r / B and the product: 2 eps).
// The terms of a step are bounded by the step's own largest change D_t (an update is lr times a
// mean of terms of one sign per row here, or Adagrad's normalised version of it), so step t adds
// at most gamma D_t, carried on through a map close to the identity (lr 0.05): the test allows
// 4 gamma sum_t D_t (the MLP test's factor 4 for the carrying) per weight, D_t measured on the
// one-process run. At 1 rank the arithmetic is the same: bit-identical. The deterministic
// reduction mode is bit-identical between runs, and the tables (weights and Adagrad state) are
// bit-identical on every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/dist/mpi_group.h"
#include "host/dist/process_group.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "pipelines/behaviour/dcn_model.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/behaviour/wide_deep_model.h"
#include "pipelines/recommend/rec_model.h"
#include "tests/mpi/mpi_test_util.h"

namespace tessera::train {
namespace {

constexpr int64_t kRows = 60, kBatch = 10, kDense = 3, kTables = 3, kDim = 4, kNegs = 2;
constexpr int64_t kTableRows[kTables] = {7, 11, 5};
constexpr double kLr = 0.05;
constexpr double kEps = 1.0 / (1 << 24);

dist::ProcessGroup* g_world = nullptr;
std::unique_ptr<dist::ProcessGroup> g_mpi, g_ordered;
std::unique_ptr<dist::ProcessGroup> g_fewer;  // deterministic, world ranks [0, N - 1) (N > 1)

enum class Kind { Dlrm, Dcn, WideDeep, TwoTower, Mf };

struct Data {
  std::vector<float> x, y;     // [kRows, kDense], [kRows]
  std::vector<int64_t> cat;    // [kRows, kTables]
  std::vector<int32_t> items;  // two-tower: [kRows, 1 + kNegs], positive first
  Data() {
    std::mt19937 gen(11);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int64_t i = 0; i < kRows; ++i) {
      float s = 0;
      for (int64_t j = 0; j < kDense; ++j) {
        x.push_back(n(gen));
        s += x.back() * (j % 2 ? 1.f : -1.f);
      }
      for (int64_t t = 0; t < kTables; ++t) {
        // Skewed ids: rows repeat within and across the ranks' parts.
        const int64_t id = static_cast<int64_t>(std::fabs(n(gen)) * 2) % kTableRows[t];
        cat.push_back(id);
        s += id % 2 ? 0.5f : -0.5f;
      }
      y.push_back(s + 0.3f * n(gen) > 0 ? 1.f : 0.f);
      for (int64_t j = 0; j <= kNegs; ++j)
        items.push_back(static_cast<int32_t>((i * 7 + j * 5 + (j ? 3 : 0)) % kTableRows[1]));
    }
  }
};

std::vector<int64_t> global_batch(int64_t epoch, int64_t b) {
  std::vector<int64_t> perm(kRows);
  for (int64_t i = 0; i < kRows; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), std::mt19937(static_cast<unsigned>(100 + epoch)));
  return {perm.begin() + b * kBatch, perm.begin() + (b + 1) * kBatch};
}

// This rank's contiguous part of `all`, in rank order.
std::vector<int64_t> my_part(const std::vector<int64_t>& all) {
  const dist::ProcessGroup& g = dist::process_group();
  const int64_t n = static_cast<int64_t>(all.size());
  return {all.begin() + n * g.rank() / g.world(), all.begin() + n * (g.rank() + 1) / g.world()};
}

emb::SparseOptimizerConfig adagrad() {
  return {emb::SparseOptimizer::Adagrad, static_cast<float>(kLr)};
}
emb::SparseOptimizerConfig plain_sgd() {
  return {emb::SparseOptimizer::Sgd, static_cast<float>(kLr)};
}

OptimizerConfig sgd() {
  OptimizerConfig c;
  c.type = OptimizerType::Sgd;
  c.lr = kLr;
  c.momentum = 0;
  return c;
}

// The model under test behind one face: a step on some rows (the gradient kept for the
// optimizer), its weights as one vector, its sparse group.
class Net {
 public:
  virtual ~Net() = default;
  // The summed loss over `rows`; the gradient is that of the mean loss (two-tower: of the sum).
  virtual double step(const std::vector<int64_t>& rows) = 0;
  virtual std::vector<Parameter*> parameters() = 0;
  virtual SparseGroup& group() = 0;
  virtual std::vector<float> weights() = 0;
  virtual int64_t examples(int64_t rows) const { return rows; }
};

std::vector<float> flatten(const std::map<std::string, Tensor>& m) {
  std::vector<float> w;
  for (const auto& [name, t] : m)
    if (t.dtype() == DType::F32) w.insert(w.end(), t.data<float>(), t.data<float>() + t.numel());
  return w;
}

// DLRM or DCN-v2 on the logistic loss: logits forward, (sigmoid - y) / n back.
template <typename Model>
class BehaviourNet final : public Net {
 public:
  BehaviourNet(Backend& be, const Data& d, std::unique_ptr<Model> m)
      : be_(be), d_(d), m_(std::move(m)) {}
  double step(const std::vector<int64_t>& rows) override {
    const int64_t n = static_cast<int64_t>(rows.size());
    Tensor dense = Tensor::host({n, kDense}), cat = Tensor::host({n, kTables}, DType::I64);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(dense.data<float>() + i * kDense, &d_.x[rows[i] * kDense], kDense * 4);
      std::memcpy(cat.data<int64_t>() + i * kTables, &d_.cat[rows[i] * kTables], kTables * 8);
    }
    const Tensor z = be_.to_host(m_->forward(dense, cat, Mode::Train, 0));
    Tensor dl = Tensor::host({n, 1});
    double loss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float v = z.data<float>()[i], y = d_.y[static_cast<size_t>(rows[i])];
      loss += std::max(v, 0.f) - v * y + std::log1p(std::exp(-std::fabs(v)));
      dl.data<float>()[i] = (1.f / (1.f + std::exp(-v)) - y) / static_cast<float>(n);
    }
    backward(dl);
    return loss;
  }
  std::vector<Parameter*> parameters() override { return m_->parameters(); }
  SparseGroup& group() override { return m_->sparse_group(); }
  std::vector<float> weights() override { return flatten(m_->snapshot()); }

 private:
  void backward(const Tensor& dl);
  Backend& be_;
  const Data& d_;
  std::unique_ptr<Model> m_;
};

template <>
void BehaviourNet<DlrmModel>::backward(const Tensor& dl) {
  m_->backward(dl, DlrmModel::SparseStep::Deferred);
}
template <>
void BehaviourNet<DcnModel>::backward(const Tensor& dl) {
  m_->backward(dl);
}
template <>
void BehaviourNet<WideDeepModel>::backward(const Tensor& dl) {
  m_->backward(dl);
}

// The two-tower recommender (bce over each positive and its kNegs fixed negatives).
class TwoTowerNet final : public Net {
 public:
  TwoTowerNet(Backend& be, const Data& d, bool mf = false)
      : d_(d), mf_(mf), m_(config(mf), kTableRows[0], kTableRows[1], be) {}
  static recommend::RecommendConfig config(bool mf) {
    recommend::RecommendConfig c;
    c.model = mf ? recommend::ModelKind::Mf : recommend::ModelKind::TwoTower;
    c.embeddings.dim = kDim;
    c.embeddings.optimizer = plain_sgd();
    c.train.negatives = kNegs;
    return c;
  }
  double step(const std::vector<int64_t>& rows) override {
    if (mf_) return mf_step(rows);
    const int64_t n = static_cast<int64_t>(rows.size());
    std::vector<int32_t> u, it;
    for (int64_t r : rows) {
      u.push_back(static_cast<int32_t>(d_.cat[r * kTables]));
      for (int64_t j = 0; j <= kNegs; ++j) it.push_back(d_.items[r * (1 + kNegs) + j]);
    }
    const recommend::RecModel::Step s = m_.two_tower_step(u.data(), it.data(), n, kNegs);
    m_.stage(s);
    double loss = 0;
    for (int64_t i = 0; i < s.loss.numel(); ++i) loss += s.loss.data<float>()[i];
    return loss;
  }
  std::vector<Parameter*> parameters() override { return {}; }
  SparseGroup& group() override { return m_.sparse_group(); }
  std::vector<float> weights() override {
    std::vector<float> w;
    for (const auto& [name, t] : m_.tables())
      w.insert(w.end(), t.data<float>(), t.data<float>() + t.numel());
    return w;
  }
  int64_t examples(int64_t rows) const override { return mf_ ? rows : rows * (1 + kNegs); }

 private:
  // MF on explicit ratings 1..5 made from the labels and a column.
  double mf_step(const std::vector<int64_t>& rows) {
    std::vector<int32_t> u, it;
    std::vector<float> y;
    for (int64_t r : rows) {
      u.push_back(static_cast<int32_t>(d_.cat[r * kTables]));
      it.push_back(d_.items[r * (1 + kNegs)]);
      y.push_back(1.f + 3.f * d_.y[static_cast<size_t>(r)] + static_cast<float>(r % 2));
    }
    const int64_t n = static_cast<int64_t>(rows.size());
    const recommend::RecModel::Step s = m_.mf_step(u.data(), it.data(), y.data(), n);
    m_.stage(s);
    double loss = 0;
    for (int64_t i = 0; i < s.loss.numel(); ++i) loss += s.loss.data<float>()[i];
    return loss;
  }
  const Data& d_;
  bool mf_;
  recommend::RecModel m_;
};

std::unique_ptr<Net> make_net(Kind kind, Backend& be, const Data& d) {
  if (kind == Kind::TwoTower || kind == Kind::Mf)
    return std::make_unique<TwoTowerNet>(be, d, kind == Kind::Mf);
  if (kind == Kind::Dlrm) {
    DlrmSpec s;
    s.n_dense = kDense;
    s.table_rows.assign(kTableRows, kTableRows + kTables);
    s.embedding_dim = kDim;
    s.bottom = {5};
    s.top = {6};
    s.activation = Activation::Tanh;
    s.sparse = adagrad();
    return std::make_unique<BehaviourNet<DlrmModel>>(be, d,
                                                     std::make_unique<DlrmModel>(be, s, 5, kBatch));
  }
  if (kind == Kind::WideDeep) {  // deep and wide tables read the same columns
    WideDeepSpec s;
    s.n_dense = kDense;
    s.table_rows.assign(kTableRows, kTableRows + kTables);
    s.embedding_dim = kDim;
    s.top = {6};
    s.activation = Activation::Tanh;
    s.sparse = plain_sgd();
    return std::make_unique<BehaviourNet<WideDeepModel>>(
        be, d, std::make_unique<WideDeepModel>(be, s, 5, kBatch));
  }
  DcnSpec s;
  s.n_dense = kDense;
  s.table_rows.assign(kTableRows, kTableRows + kTables);
  s.embedding_dim = kDim;
  s.bottom = {};
  s.top = {6};
  s.cross_layers = 2;
  s.activation = Activation::Tanh;
  s.sparse = plain_sgd();
  return std::make_unique<BehaviourNet<DcnModel>>(be, d,
                                                  std::make_unique<DcnModel>(be, s, 5, kBatch));
}

class TableTask final : public TrainTask {
 public:
  TableTask(Backend& be, Kind kind, const Data& d)
      : be_(be), net_(make_net(kind, be, d)), opt_(be, sgd(), LrSchedule{}) {
    opt_.attach(net_->parameters());
    opt_.add_sparse_group("tables", net_->group());
  }
  int64_t batches_per_epoch() override { return kRows / kBatch; }
  void start_epoch(int64_t epoch) override { epoch_ = epoch; }
  bool start_epoch_at(int64_t epoch, int64_t) override {
    epoch_ = epoch;
    return true;
  }
  StepResult step(StepContext& ctx) override {
    const std::vector<int64_t> mine = my_part(global_batch(ctx.epoch, ctx.batch));
    StepResult r;
    if (mine.empty()) return r;
    r.loss_sum = net_->step(mine);
    r.examples = net_->examples(static_cast<int64_t>(mine.size()));
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
  std::vector<float> weights() { return net_->weights(); }
  // Every sparse state tensor (tables and Adagrad accumulators) as one vector.
  std::vector<float> sparse_state() { return flatten(net_->group().training_state()); }

 private:
  Backend& be_;
  std::unique_ptr<Net> net_;
  Optimizer opt_;
  int64_t epoch_ = 0;
};

std::string shared_dir() {
  static const std::string dir = mpitest::make_shared_dir(*g_world, "tessera_mpi_rt");
  return dir;
}

struct Trained {
  std::vector<float> weights, sparse_state;
  double change_sum = 0;  // sum over steps of the largest change of any weight (D_t)
  int64_t steps = 0;
  int64_t allgather_bytes = 0;
};

// 2 epochs of 6 global batches in `group` (nullptr: this process alone).
Trained train(Kind kind, dist::ProcessGroup* group, const std::string& run, TrainerOptions o = {}) {
  dist::set_process_group(group ? std::make_unique<mpitest::Forwarding>(*group) : nullptr);
  auto be = make_host_backend();
  Data data;
  TableTask task(*be, kind, data);
  Trained out;
  o.task = "mpi-tables-test";
  o.name = "rt";
  if (o.run_dir.empty())
    o.run_dir = shared_dir() + "/" + run + (group ? "" : "-rank" + std::to_string(g_world->rank()));
  o.epochs = 2;
  o.quiet = true;
  std::vector<float> before = task.weights();
  o.after_step = [&](int64_t, bool) {
    const std::vector<float> now = task.weights();
    double d = 0;
    for (size_t i = 0; i < now.size(); ++i) d = std::max(d, std::fabs(double(now[i]) - before[i]));
    out.change_sum += d;
    before = now;
    ++out.steps;
  };
  const int64_t bytes0 = group ? group->stats().allgather_bytes : 0;
  try {
    Trainer(o).fit(task);
  } catch (...) {
    dist::set_process_group(nullptr);
    throw;
  }
  dist::set_process_group(nullptr);
  out.weights = task.weights();
  out.sparse_state = task.sparse_state();
  if (group) out.allgather_bytes = group->stats().allgather_bytes - bytes0;
  return out;
}

void expect_close(const Trained& dp, const Trained& ref, int world, const char* what) {
  ASSERT_EQ(dp.weights.size(), ref.weights.size());
  if (world == 1) {
    EXPECT_EQ(dp.weights, ref.weights) << what << ": one rank is the one-process arithmetic";
    return;
  }
  const double gamma = 2.0 * static_cast<double>(kBatch + world + 11) * kEps;
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

// The tables and their optimizer state are the same bits on every rank.
void expect_same_on_every_rank(const std::vector<float>& state, const char* what) {
  const std::string mine(reinterpret_cast<const char*>(state.data()), state.size() * 4);
  const std::vector<std::string> all = g_world->allgatherv(mine);
  for (size_t r = 0; r < all.size(); ++r)
    EXPECT_TRUE(all[r] == all[0]) << what << ": rank " << r << "'s tables differ from rank 0's";
}

void equals_one_process(Kind kind, const char* what) {
  const Trained ref = train(kind, nullptr, std::string(what) + "-ref");
  const Trained dp = train(kind, g_mpi.get(), std::string(what) + "-dp");
  EXPECT_EQ(dp.steps, 12);
  EXPECT_GT(ref.change_sum, 0) << "the steps changed nothing";
  expect_close(dp, ref, g_world->world(), what);
  expect_same_on_every_rank(dp.sparse_state, what);
  if (g_world->world() > 1) EXPECT_GT(dp.allgather_bytes, 0) << "no sparse step was exchanged";
}

TEST(ReplicatedTables, DlrmEqualsTheOneProcessModel) {
  equals_one_process(Kind::Dlrm, "dlrm");
}
TEST(ReplicatedTables, DcnV2EqualsTheOneProcessModel) {
  equals_one_process(Kind::Dcn, "dcn");
}
TEST(ReplicatedTables, WideAndDeepEqualsTheOneProcessModel) {
  equals_one_process(Kind::WideDeep, "wide-deep");
}
TEST(ReplicatedTables, TwoTowerEqualsTheOneProcessModel) {
  equals_one_process(Kind::TwoTower, "two-tower");
}

TEST(ReplicatedTables, MatrixFactorisationEqualsTheOneProcessModel) {
  equals_one_process(Kind::Mf, "mf");
}

TEST(ReplicatedTables, DeterministicModeIsBitIdenticalBetweenRuns) {
  const Trained a = train(Kind::Dlrm, g_ordered.get(), "det-a");
  const Trained b = train(Kind::Dlrm, g_ordered.get(), "det-b");
  EXPECT_EQ(a.weights, b.weights);
  EXPECT_EQ(a.sparse_state, b.sparse_state);
}

struct Stop {};

// A checkpoint after step 4 of epoch 1, at this world size N, resumed at N ranks (bit-identical
// in deterministic mode), at N - 1 ranks and by one process alone (within the bound).
TEST(ReplicatedTables, MidEpochCheckpointResumesAtAnotherWorldSize) {
  TrainerOptions o;
  o.checkpoint_every_steps = 4;
  o.resumable = true;
  o.run_dir = shared_dir() + "/whole";
  const Trained whole = train(Kind::Dlrm, g_ordered.get(), "whole", o);
  const Trained ref = train(Kind::Dlrm, nullptr, "whole-ref");
  o.run_dir = shared_dir() + "/cut";
  o.after_checkpoint = [](int64_t epochs) {
    if (epochs == 0) throw Stop{};
  };
  EXPECT_THROW(train(Kind::Dlrm, g_ordered.get(), "cut", o), Stop);
  o.after_checkpoint = nullptr;
  g_world->barrier();
  const std::string alone = shared_dir() + "/alone-rank" + std::to_string(g_world->rank());
  EXPECT_EQ(std::system(("mkdir -p " + alone + " && cp " + shared_dir() + "/cut/checkpoint.tsc " +
                         alone + "/")
                            .c_str()),
            0);
  const std::string fewer = shared_dir() + "/fewer";
  if (g_world->rank() == 0)
    EXPECT_EQ(std::system(("mkdir -p " + fewer + " && cp " + shared_dir() + "/cut/checkpoint.tsc " +
                           fewer + "/")
                              .c_str()),
              0);
  g_world->barrier();
  if (g_fewer) {  // N - 1 ranks resume the N-rank checkpoint (3 -> 2 in the 3-rank run)
    TrainerOptions m = o;
    m.run_dir = fewer;
    const Trained resumed_fewer = train(Kind::Dlrm, g_fewer.get(), "fewer", m);
    EXPECT_EQ(resumed_fewer.steps, 8);
    expect_close(resumed_fewer, ref, g_world->world(), "resumed at N - 1 ranks");
  }
  g_world->barrier();
  TrainerOptions one = o;
  one.run_dir = alone;
  const Trained resumed_alone = train(Kind::Dlrm, nullptr, "alone", one);
  const Trained resumed = train(Kind::Dlrm, g_ordered.get(), "cut", o);
  EXPECT_EQ(resumed.steps, 8);
  EXPECT_EQ(resumed.weights, whole.weights) << "resumed at the same world size";
  EXPECT_EQ(resumed.sparse_state, whole.sparse_state);
  // The one-process resume of the N-rank checkpoint differs from the one-process run only by the
  // first 4 steps' summation order: within the bound.
  expect_close(resumed_alone, ref, g_world->world(), "resumed alone");
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
      *world, RUN_ALL_TESTS(), "mpi_replicated_tables_test", tessera::train::shared_dir());
  tessera::train::g_fewer.reset();
  tessera::train::g_ordered.reset();
  tessera::train::g_mpi.reset();
  tessera::train::g_world = nullptr;
  world.reset();
  MPI_Finalize();
  return worst;
}
