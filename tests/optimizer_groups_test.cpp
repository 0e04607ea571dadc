// One optimizer over a model's parameter groups (host/model/optimizer.h): the dense group and the
// embedding tables as sparse groups under one learning rate schedule, and their state in
// checkpoints by group name (host/train/checkpoint.h: optimizer_state, restore_optimizer_state).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "embeddings/remote_shard.h"
#include "embeddings/tables.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "pipelines/recommend/rec_model.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/recommend_config.h"

namespace tessera {
namespace {

std::string temp_path(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + "/optimizer_groups_" + name + "." + std::to_string(::getpid());
}

// The schedule's formula (host/config/sections.h) in double, written out independently of
// LrSchedule::lr_at: linear warm-up over `warmup` steps, then cosine from `base` to `min_lr` at
// step `total`.
double formula_lr(double base, double min_lr, int64_t warmup, int64_t total, int64_t step) {
  if (step < warmup) return base * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const double t = std::min(1.0, static_cast<double>(step - warmup) /
                                     static_cast<double>(std::max<int64_t>(1, total - warmup)));
  return min_lr + (base - min_lr) * (1.0 + std::cos(M_PI * t)) / 2.0;
}

// Under a warm-up + cosine schedule, the embedding tables of a recommendation model (a sparse
// group with its own base lr, sparse SGD) move at every step by their base lr times the same
// multiplier as the dense group's lr: exactly (the same float operations as the multiplier the
// optimizer hands them) and within float rounding of the formula. Each step's gradient is 1 on
// every element of one looked-up row per table, so a weight moves by exactly its lr.
TEST(OptimizerGroups, ScheduleSetsTheSparseLrAsTheDenseOne) {
  auto be = make_host_backend();
  const recommend::RecommendConfig cfg = recommend::parse_recommend_config(
      R"({"task": "recommend", "name": "groups", "model": "mf", "data": {"path": "r.csv"},
          "embeddings": {"dim": 2, "optimizer": {"kind": "sgd", "lr": 0.5}}})",
      "test config");
  recommend::RecModel model(cfg, 3, 4, *be);
  Parameter dense;
  dense.name = "w";
  dense.value = Tensor::host({3});
  dense.grad = Tensor::host_from<float>({3}, {1.f, 1.f, 1.f});
  OptimizerConfig sgd;
  sgd.type = OptimizerType::Sgd;
  sgd.momentum = 0;
  sgd.lr = 0.2;
  const double min_lr = 0.02;
  const int64_t warmup = 3, total = 10;
  LrScheduleConfig sc;
  sc.type = LrScheduleType::Cosine;
  sc.warmup_steps = warmup;
  sc.min_lr = min_lr;
  Optimizer opt(*be, sgd, LrSchedule::from_config(sc, 5, total));
  opt.attach({&dense});
  opt.add_sparse_group("tables", model.sparse_group());
  const float dense_base = static_cast<float>(sgd.lr), sparse_base = 0.5f;
  std::vector<float> mults;
  for (int64_t k = 0; k < total; ++k) {
    const int32_t user = static_cast<int32_t>(k % 3), item = static_cast<int32_t>(k % 4);
    const float rating = 3.f;
    recommend::RecModel::Step s = model.mf_step(&user, &item, &rating, 1);
    for (int64_t i = 0; i < s.dout.numel(); ++i) s.dout.data<float>()[i] = 1.f;
    model.stage(s);
    const auto before = model.tables();
    const float dense_before = dense.value.data<float>()[0];
    const float mult = opt.lr_multiplier();
    opt.step();
    // The dense group's lr this step, from its weight's move (gradient 1, no momentum).
    const float dense_lr = dense_before - dense.value.data<float>()[0];
    EXPECT_NEAR(dense_lr, formula_lr(0.2, min_lr, warmup, total, k), 1e-6) << "step " << k;
    EXPECT_NEAR(mult, formula_lr(0.2, min_lr, warmup, total, k) / 0.2, 1e-6) << "step " << k;
    const float sparse_lr = sparse_base * mult;  // the sparse step's own float operation
    const auto after = model.tables();
    for (size_t t = 0; t < after.size(); ++t) {
      const int64_t row = after[t].first.rfind("user", 0) == 0 ? user : item;
      const int64_t dim = after[t].second.dim(1);
      for (int64_t d = 0; d < dim; ++d) {
        const float w0 = before[t].second.data<float>()[row * dim + d];
        const float w1 = after[t].second.data<float>()[row * dim + d];
        EXPECT_EQ(w1, w0 - sparse_lr) << after[t].first << " step " << k;
        EXPECT_NEAR(w0 - w1, sparse_base * formula_lr(0.2, min_lr, warmup, total, k) / 0.2, 2e-6)
            << after[t].first << " step " << k;
      }
    }
    EXPECT_NEAR(sparse_lr / sparse_base, dense_lr / dense_base, 2e-6) << "step " << k;
    mults.push_back(mult);
  }
  // The schedule did move the lr: a third at the first warm-up step, well down the cosine at the
  // last.
  EXPECT_LT(mults.front(), 0.34f);
  EXPECT_LT(mults.back(), 0.2f);
  EXPECT_EQ(opt.steps_taken(), total);
}

// A constant schedule without warm-up hands the tables a multiplier of exactly 1: they keep their
// configured lr bit for bit (as before the groups, when nothing scaled it).
TEST(OptimizerGroups, ConstantScheduleKeepsTheConfiguredSparseLr) {
  auto be = make_host_backend();
  const recommend::RecommendConfig cfg = recommend::parse_recommend_config(
      R"({"task": "recommend", "name": "groups", "model": "two_tower", "data": {"path": "r.csv"},
          "embeddings": {"dim": 3, "optimizer": {"kind": "adagrad", "lr": 0.07}}})",
      "test config");
  recommend::RecModel grouped(cfg, 4, 5, *be), alone(cfg, 4, 5, *be);
  OptimizerConfig reference;
  reference.type = OptimizerType::Sgd;
  reference.lr = cfg.embeddings.optimizer.lr;
  Optimizer opt(*be, reference, LrSchedule{});
  opt.add_sparse_group("tables", grouped.sparse_group());
  const int32_t users[2] = {0, 3}, items[4] = {1, 2, 4, 0};
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(opt.lr_multiplier(), 1.f);
    grouped.stage(grouped.two_tower_step(users, items, 2, 1));
    opt.step();
    alone.apply(alone.two_tower_step(users, items, 2, 1));
  }
  const auto a = grouped.tables(), b = alone.tables();
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t)
    EXPECT_EQ(std::memcmp(a[t].second.raw(), b[t].second.raw(), a[t].second.bytes()), 0)
        << a[t].first;
}

DlrmSpec small_dlrm() {
  DlrmSpec s;
  s.n_dense = 3;
  s.table_rows = {5, 7};
  s.embedding_dim = 4;
  s.bottom = {6};
  s.top = {8};
  s.sparse.kind = emb::SparseOptimizer::Adagrad;
  s.sparse.lr = 0.1f;
  return s;
}

// A DLRM and its optimizer (Adam on the MLPs, the tables as the sparse group "tables") under a
// warm-up + cosine schedule.
struct Dlrm {
  std::unique_ptr<DlrmModel> model;
  std::unique_ptr<Optimizer> opt;
  Dlrm(Backend& be, uint64_t seed) {
    model = std::make_unique<DlrmModel>(be, small_dlrm(), seed, 8);
    OptimizerConfig adam;
    adam.lr = 0.01;
    LrScheduleConfig sc;
    sc.type = LrScheduleType::Cosine;
    sc.warmup_steps = 2;
    opt = std::make_unique<Optimizer>(be, adam, LrSchedule::from_config(sc, 4, 8));
    opt->attach(model->parameters());
    opt->add_sparse_group("tables", model->sparse_group());
  }
  void train_step(Backend& be, std::mt19937& rng) {
    const int64_t b = 6;
    Tensor dense = Tensor::host({b, 3}), cat = Tensor::host({b, 2}, DType::I64);
    Tensor labels = Tensor::host({b});
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int64_t i = 0; i < dense.numel(); ++i) dense.data<float>()[i] = u(rng);
    for (int64_t i = 0; i < b; ++i) {
      labels.data<float>()[i] = static_cast<float>(i % 2);
      cat.data<int64_t>()[i * 2] = static_cast<int64_t>(rng() % 5);
      cat.data<int64_t>()[i * 2 + 1] = static_cast<int64_t>(rng() % 7);
    }
    const Tensor logits = model->forward(dense, cat, Mode::Train, 0);
    Tensor l = be.empty({b}), dl = be.empty({b, 1});
    be.bce_with_logits(logits, labels, 1.f / static_cast<float>(b), l, dl);
    model->backward(dl, DlrmModel::SparseStep::Deferred);
    opt->step();
  }
};

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    ASSERT_EQ(a[i].second.bytes(), b[i].second.bytes()) << a[i].first;
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.bytes()), 0)
        << a[i].first;
  }
}

// A checkpoint holds both groups by name (the dense parameters with Adam's slots, the tables with
// their Adagrad slot and step), and a round trip through the checkpoint file restores both into a
// differently initialised model: the same state, the same schedule position, and the same next
// step as the model that was never interrupted.
TEST(OptimizerGroups, CheckpointRoundTripRestoresBothGroups) {
  auto be = make_host_backend();
  std::mt19937 rng(3);
  Dlrm a(*be, 11);
  for (int i = 0; i < 3; ++i) a.train_step(*be, rng);
  const NamedTensors state = train::optimizer_state(*be, *a.opt);
  std::vector<std::string> names;
  for (const auto& [name, t] : state) names.push_back(name);
  for (const char* want : {"value/top0.weight", "state1/top0.weight", "state2/bottom0.bias",
                           "tables/weights", "tables/state0", "tables/step"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;

  const std::string path = temp_path("roundtrip");
  train::LoopState loop;
  loop.task = "behaviour";
  loop.tag = "t";
  loop.step = a.opt->steps_taken();
  train::save_training_checkpoint(path, loop, state, {});
  const train::TrainingCheckpoint c = train::load_training_checkpoint(path, "behaviour", "t");
  ::unlink(path.c_str());

  Dlrm b(*be, 99);
  for (const auto& [name, t] : c.state) EXPECT_TRUE(train::is_optimizer_tensor(*b.opt, name));
  EXPECT_FALSE(train::is_optimizer_tensor(*b.opt, "value/no.such.parameter"));
  EXPECT_FALSE(train::is_optimizer_tensor(*b.opt, "global_mean"));
  train::restore_optimizer_state(*be, *b.opt, c.state, c.loop.step, "test checkpoint");
  EXPECT_EQ(b.opt->steps_taken(), 3);
  EXPECT_EQ(b.opt->lr_multiplier(), a.opt->lr_multiplier());
  expect_same(train::optimizer_state(*be, *b.opt), state);

  std::mt19937 rng_a(5), rng_b(5);
  a.train_step(*be, rng_a);
  b.train_step(*be, rng_b);
  expect_same(train::optimizer_state(*be, *b.opt), train::optimizer_state(*be, *a.opt));
}

// A checkpoint that lacks a group's tensor is refused naming the group and the tensor.
TEST(OptimizerGroups, RestoreNamesTheGroupOfAMissingTensor) {
  auto be = make_host_backend();
  Dlrm a(*be, 1);
  NamedTensors state = train::optimizer_state(*be, *a.opt);
  NamedTensors without;
  for (const auto& named : state)
    if (named.first != "tables/state0") without.push_back(named);
  try {
    train::restore_optimizer_state(*be, *a.opt, without, 0, "test checkpoint");
    ADD_FAILURE() << "a checkpoint without the tables' slot was restored";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    const std::string m = e.what();
    EXPECT_NE(m.find("test checkpoint"), std::string::npos) << m;
    EXPECT_NE(m.find("'tables'"), std::string::npos) << m;
    EXPECT_NE(m.find("state0"), std::string::npos) << m;
  }
}

// Group names key checkpoint state: the dense group's slot names, names that are not names, and
// a name given twice are refused.
TEST(OptimizerGroups, GroupNamesMustBeDistinctNames) {
  auto be = make_host_backend();
  DlrmModel m(*be, small_dlrm(), 1, 4), n(*be, small_dlrm(), 2, 4);
  Optimizer opt(*be, OptimizerConfig{}, LrSchedule{});
  opt.add_sparse_group("tables", m.sparse_group());
  for (const char* bad : {"tables", "value", "state1", "", "a/b"})
    EXPECT_THROW(opt.add_sparse_group(bad, n.sparse_group()), Error) << bad;
  opt.add_sparse_group("more_tables", n.sparse_group());
  EXPECT_EQ(opt.sparse_groups().size(), 2u);
}

// recommend's "train.lr_schedule": read against embeddings.optimizer.lr (min_lr may not exceed
// it), written back only when it is not the default constant one, so default configs (and their
// resume keys) are what they were.
TEST(OptimizerGroups, RecommendConfigReadsTheSchedule) {
  const std::string head =
      R"({"task": "recommend", "name": "s", "model": "mf", "data": {"path": "r.csv"},
          "embeddings": {"optimizer": {"kind": "sgd", "lr": 0.1}})";
  const recommend::RecommendConfig plain =
      recommend::parse_recommend_config(head + "}", "plain config");
  EXPECT_EQ(plain.train.lr_schedule, LrScheduleConfig{});
  EXPECT_EQ(recommend::to_json(plain).find("lr_schedule"), std::string::npos);
  const recommend::RecommendConfig cos = recommend::parse_recommend_config(
      head + R"(, "train": {"lr_schedule": {"type": "cosine", "warmup_steps": 5,
                "min_lr": 0.01}}})",
      "cosine config");
  EXPECT_EQ(cos.train.lr_schedule.type, LrScheduleType::Cosine);
  EXPECT_EQ(cos.train.lr_schedule.warmup_steps, 5);
  EXPECT_EQ(cos.train.lr_schedule.min_lr, 0.01);
  const recommend::RecommendConfig again =
      recommend::parse_recommend_config(recommend::to_json(cos), "written config");
  EXPECT_EQ(again.train.lr_schedule, cos.train.lr_schedule);
  try {
    recommend::parse_recommend_config(
        head + R"(, "train": {"lr_schedule": {"type": "cosine", "min_lr": 0.5}}})", "bad config");
    ADD_FAILURE() << "min_lr above the tables' lr was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("min_lr"), std::string::npos) << e.what();
  }
}

// Shards in other processes follow the schedule too (their update requests carry the step's
// factor): mf with a warm-up and cosine decay, its tables on 2 row-wise shards behind loopback
// channels (every call encoded as between processes), reports the same RMSE to the last bit as
// with the shards in process, and not the RMSE of a constant lr.
TEST(OptimizerGroups, RecommendRemoteShardsFollowTheSchedule) {
  const std::string ratings = temp_path("remote_ratings.csv");
  {
    std::ofstream out(ratings);
    out << "userId,movieId,rating,timestamp\n";
    std::mt19937 gen(5);
    for (int u = 1; u <= 40; ++u)
      for (int i = 1; i <= 30; ++i)
        if (gen() % 3 == 0) out << u << "," << i << "," << (1 + (u * i + gen() % 2) % 5) << ",0\n";
  }
  auto rmse = [&](const std::string& name, const std::string& schedule, bool remote) {
    const std::string path = temp_path(name + ".json");
    std::ofstream(path)
        << R"({"task": "recommend", "name": "r", "model": "mf", "data": {"train": ")" << ratings
        << R"("}, "embeddings": {"dim": 8, "shards": 2,
        "placement": "row", "remote_shards": )"
        << (remote ? "true" : "false") << R"(,
        "optimizer": {"kind": "sgd", "lr": 0.1}},
        "train": {"epochs": 3, "batch_size": 64, "lr_schedule": )"
        << schedule << "}}";
    recommend::TrainOptions o;
    o.quiet = true;
    o.runs_dir = temp_path(name + "_runs");
    const std::string json = recommend::train(path, o).json;
    ::unlink(path.c_str());
    rapidjson::Document d;
    d.Parse(json.c_str());
    EXPECT_TRUE(d.IsObject() && d.HasMember("metrics")) << json;
    return d["metrics"]["test_rmse"].GetDouble();
  };
  const std::string schedule = R"({"type": "cosine", "warmup_steps": 3})";
  const double local = rmse("local", schedule, false);
  auto host = make_host_backend();
  emb::set_remote_shard_factory(
      emb::remote_shard_factory([&](int) { return emb::make_loopback_channel(*host); }),
      "loopback");
  const double remote = rmse("remote", schedule, true);
  const double constant = rmse("constant", R"({"type": "constant"})", true);
  emb::set_remote_shard_factory(nullptr, "");
  EXPECT_TRUE(std::isfinite(local)) << local;
  EXPECT_EQ(remote, local);
  EXPECT_NE(constant, local);
  ::unlink(ratings.c_str());
  for (const char* name : {"local", "remote", "constant"})
    std::filesystem::remove_all(temp_path(std::string(name) + "_runs"));
}

}  // namespace
}  // namespace tessera
