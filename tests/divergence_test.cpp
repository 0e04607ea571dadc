// Divergence (host/model/divergence.h): a NaN or Inf stops training, clearly, on every task, and
// train.on_nonfinite "skip_batch" drops such batches without changing any weight.
//
// Every run is made to diverge honestly, on tiny generated data (seconds in all):
//   - dense models (behaviour MLP and DLRM, textgen, textclass, image, audio, video): SGD with a
//     learning rate of 10 and weight decay 1 (the largest the configs accept) multiplies every
//     weight by about -9 each step, so within a few dozen steps the forward overflows;
//   - recommendation (MF, two-tower): a sparse learning rate of 1e36;
//   - behaviour again: one training row with a value of 3.4e38 in an unnormalised numeric
//     column (the reader accepts it: it fits a float32), which overflows the batch it is in.
// The CLI case (recommend MF through `tessera train --json`) resumes a good checkpoint over data
// that has meanwhile gained such ratings, so the divergence comes in epoch 2 with a checkpoint
// to keep.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data_test_util.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/data/clip_data.h"
#include "host/model/divergence.h"
#include "pipelines/audio/audio.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/image/image.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/video/video.h"
#include "tests/support/run_program.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

// The optimizer that blows dense weights up (see the top of the file).
const char* kBlowUp = R"({"type": "sgd", "lr": 10, "weight_decay": 1})";

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// `text` with every "$KEY" replaced by its value.
std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& subs) {
  for (const auto& [key, value] : subs)
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  return text;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

bool all_finite(const Tensor& t) {
  return t.dtype() != DType::F32 || first_non_finite(t.data<float>(), t.numel()) < 0;
}

// What a diverged run reports, once checked to be what every diverged run must leave behind.
struct Diverged {
  std::string message;
  rapidjson::Document json;
  int64_t epoch = 0, batch = 0, batches = 0, step = 0;
  std::string phase, kind, tensor;
};

enum class Leaves : uint8_t { ARun, OnlyTheResult };

// Runs `train`, which must throw TrainingDiverged, and checks the common contract: an Error of
// kind Data (exit code 1) whose message names the place; <run_dir>/result.json is the error's
// JSON, "status": "diverged"; of a training run, the resolved config is there, no model file
// was written and metrics.jsonl holds exactly the epochs finished before.
Diverged expect_divergence(const std::function<void()>& train, const std::string& run_dir,
                           Leaves leaves = Leaves::ARun) {
  Diverged d;
  try {
    train();
    ADD_FAILURE() << "training in " << run_dir << " did not diverge";
    return d;
  } catch (const TrainingDiverged& e) {
    d.message = e.what();
    std::printf("  [diverged] %s\n", d.message.c_str());
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(read_file(run_dir + "/result.json"), e.result_json() + "\n");
    d.json.Parse(e.result_json().c_str());
  }
  const rapidjson::Document& j = d.json;
  EXPECT_FALSE(j.HasParseError());
  if (j.HasParseError() || !j.IsObject()) return d;
  EXPECT_STREQ(j["status"].GetString(), "diverged");
  EXPECT_STREQ(j["command"].GetString(), "train");
  EXPECT_EQ(j["run_dir"].GetString(), run_dir);
  EXPECT_STREQ(j["error"].GetString(), d.message.c_str());
  d.epoch = j["epoch"].GetInt64();
  d.batches = j["batches"].GetInt64();
  d.step = j["step"].GetInt64();
  d.phase = j["phase"].GetString();
  d.kind = j["kind"].GetString();
  d.tensor = j["tensor"].GetString();
  EXPECT_NE(d.message.find("training diverged"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find(std::string(j["value"].GetString()) + " in "), std::string::npos)
      << d.message;
  EXPECT_NE(d.message.find("epoch " + std::to_string(d.epoch)), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("global step " + std::to_string(d.step)), std::string::npos)
      << d.message;
  if (d.phase == "batch") {
    d.batch = j["batch"].GetInt64();
    EXPECT_GE(d.batch, 1);
    EXPECT_LE(d.batch, d.batches);
    EXPECT_NE(
        d.message.find("batch " + std::to_string(d.batch) + " of " + std::to_string(d.batches)),
        std::string::npos)
        << d.message;
  } else {
    EXPECT_TRUE(j["batch"].IsNull());
  }
  if (d.kind == "loss")
    EXPECT_EQ(d.tensor, "loss");
  else
    EXPECT_NE(d.message.find(d.tensor), std::string::npos) << d.message;
  if (leaves == Leaves::OnlyTheResult) return d;
  // The resolved config names the policy (every task's writer knows the field).
  EXPECT_NE(read_file(run_dir + "/config.json")
                .find("\"on_nonfinite\": \"" + std::string(j["on_nonfinite"].GetString()) + "\""),
            std::string::npos);
  EXPECT_FALSE(fs::exists(run_dir + "/model.tsm"));
  // The epoch it diverged in is never logged.
  EXPECT_EQ(static_cast<int64_t>(lines_of(run_dir + "/metrics.jsonl").size()),
            d.phase == "model_write" ? d.epoch : d.epoch - 1);
  return d;
}

// A run that never skipped: its global step is the batch's place in the whole run.
void expect_steps_add_up(const Diverged& d) {
  if (d.phase == "batch") EXPECT_EQ(d.step, (d.epoch - 1) * d.batches + d.batch);
  EXPECT_EQ(d.json["skipped_batches"].GetInt64(), 0);
  EXPECT_STREQ(d.json["on_nonfinite"].GetString(), "stop");
}

// ---- the guard on its own ----------------------------------------------------------------------

TEST(Divergence, FirstNonFiniteFindsTheFirstNanOrInfInEveryBlock) {
  std::vector<float> v(1000, 1.5f);
  EXPECT_EQ(first_non_finite(v.data(), 1000), -1);
  for (int64_t at : {0, 255, 256, 257, 511, 999}) {
    for (float bad : {NAN, INFINITY, -INFINITY}) {
      std::vector<float> w = v;
      w[at] = bad;
      w[999] = NAN;  // a later one is not the first
      EXPECT_EQ(first_non_finite(w.data(), 1000), at);
    }
  }
  v[3] = 3.4e38f;  // large but finite
  EXPECT_EQ(first_non_finite(v.data(), 1000), -1);
  EXPECT_EQ(first_non_finite(v.data(), 0), -1);
}

TEST(Divergence, StopNamesThePlaceAndWritesTheResult) {
  TempDir dir;
  DivergenceGuard g(NonFinitePolicy::Stop, {"image", "run-a", dir.path(), true});
  g.checkpoint_saved(dir.file("checkpoint.tsc"), 2);
  g.at_batch(3, 7, 12, 31);
  EXPECT_TRUE(g.loss_ok(0.25));
  Tensor losses = Tensor::host({4});
  losses.data<float>()[2] = -INFINITY;
  const Diverged d =
      expect_divergence([&] { g.loss_ok(losses); }, dir.path(), Leaves::OnlyTheResult);
  EXPECT_EQ(d.epoch, 3);
  EXPECT_EQ(d.batch, 7);
  EXPECT_EQ(d.batches, 12);
  EXPECT_EQ(d.step, 31);
  EXPECT_EQ(d.kind, "loss");
  EXPECT_STREQ(d.json["value"].GetString(), "-Inf");
  EXPECT_EQ(d.json["index"].GetInt64(), 2);
  EXPECT_EQ(d.json["checkpoint"].GetString(), dir.file("checkpoint.tsc"));
  EXPECT_EQ(d.json["checkpoint_epoch"].GetInt64(), 2);
  EXPECT_NE(
      d.message.find("-Inf in the loss (sample 2) at epoch 3, batch 7 of 12 (global step 31)"),
      std::string::npos)
      << d.message;
  EXPECT_NE(d.message.find(dir.file("checkpoint.tsc") + " (epoch 2)"), std::string::npos)
      << d.message;
  EXPECT_NE(d.message.find("\"skip_batch\" drops such batches"), std::string::npos) << d.message;
}

TEST(Divergence, GradientsAreCheckedUnderSkipBatchOnlyUnlessTheirNormIsAtHand) {
  TempDir dir, dir2;
  auto backend = make_backend("cpu");
  Parameter p;
  p.name = "dense1.weight";
  p.value = Tensor::host({2, 3});
  p.grad = Tensor::host({2, 3});
  p.grad.data<float>()[4] = NAN;
  std::vector<Parameter*> params = {&p};

  DivergenceGuard stop(NonFinitePolicy::Stop, {"behaviour", "b", dir.path(), true});
  stop.at_batch(1, 2, 5, 2);
  EXPECT_TRUE(stop.gradients_ok(*backend, params));  // "stop" leaves them to the next loss
  const Diverged d = expect_divergence([&] { stop.grad_norm_ok(std::nan(""), *backend, params); },
                                       dir.path(), Leaves::OnlyTheResult);
  EXPECT_EQ(d.kind, "gradient");
  EXPECT_EQ(d.tensor, "dense1.weight");
  EXPECT_EQ(d.json["index"].GetInt64(), 4);
  EXPECT_TRUE(d.json["checkpoint"].IsNull());
  EXPECT_NE(d.message.find("no checkpoint was written"), std::string::npos) << d.message;

  DivergenceGuard skip(NonFinitePolicy::SkipBatch, {"behaviour", "b", dir2.path(), true});
  skip.at_batch(1, 1, 5, 1);
  EXPECT_FALSE(skip.gradients_ok(*backend, params));
  EXPECT_FALSE(skip.loss_ok(NAN));
  p.grad.data<float>()[4] = 0.f;
  EXPECT_TRUE(skip.gradients_ok(*backend, params, [] {
    return NamedTensors{{"embedding table 'x'", Tensor::host({3})}};
  }));
  EXPECT_FALSE(skip.gradients_ok(*backend, params, [] {
    Tensor t = Tensor::host({3});
    t.data<float>()[1] = INFINITY;
    return NamedTensors{{"embedding table 'x'", t}};
  }));
  EXPECT_EQ(skip.skipped_batches(), 3);
  EXPECT_FALSE(fs::exists(dir2.file("result.json")));  // skipping is not a failure

  // A weight is never skipped: no batch can undo it.
  p.value.data<float>()[0] = NAN;
  skip.at_epoch_end(1, 2);
  const Diverged w = expect_divergence([&] { skip.check_weights(*backend, params); }, dir2.path(),
                                       Leaves::OnlyTheResult);
  EXPECT_EQ(w.kind, "weight");
  EXPECT_EQ(w.phase, "epoch_end");
  EXPECT_EQ(w.json["skipped_batches"].GetInt64(), 3);
  EXPECT_NE(w.message.find("NaN in the weights of dense1.weight (element 0) at the end of epoch 1"),
            std::string::npos)
      << w.message;
  EXPECT_NE(w.message.find("no skipped batch can undo"), std::string::npos) << w.message;
}

TEST(Divergence, ResumingCountsTheBatchesSkippedBeforeTheCheckpoint) {
  TempDir dir;
  const std::string metrics = write_file(dir.file("metrics.jsonl"),
                                         "{\"epoch\":1,\"skipped_batches\":2}\n"
                                         "{\"epoch\":2,\"skipped_batches\":5}\n"
                                         "{\"epoch\":3,\"skipped_batches\":7}\n");
  DivergenceGuard g(NonFinitePolicy::SkipBatch, {"textgen", "t", dir.path(), true});
  g.resumed(dir.file("checkpoint.tsc"), 2, metrics);  // the third line is past the checkpoint
  EXPECT_EQ(g.skipped_batches(), 7);
  json::JsonWriter w;
  w.begin_object();
  g.write_result_fields(w);
  w.end_object();
  EXPECT_EQ(w.compact(),
            R"({"status":"completed","on_nonfinite":"skip_batch","skipped_batches":7})");
  // A line nested a million deep (a damaged run file) is passed over; it exhausted the JSON
  // parser's stack.
  write_file(metrics, "{\"epoch\":1,\"skipped_batches\":2}\n" + std::string(1000000, '[') +
                          std::string(1000000, ']') + "\n");
  DivergenceGuard h(NonFinitePolicy::SkipBatch, {"textgen", "t", dir.path(), true});
  h.resumed(dir.file("checkpoint.tsc"), 2, metrics);
  EXPECT_EQ(h.skipped_batches(), 2);
}

// ---- behaviour: MLP and DLRM -------------------------------------------------------------------

// x1, x2 numeric, color and shape categorical, y: a planted signal. Row `huge` (when >= 0)
// holds 3.4e38 in both numeric columns.
std::string behaviour_csv(const std::string& path, int rows, uint64_t seed, int huge) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const char* colors[] = {"red", "green", "blue"};
  const char* shapes[] = {"disc", "box"};
  std::ostringstream s;
  s << "x1,x2,color,shape,y\n";
  for (int i = 0; i < rows; ++i) {
    const double x1 = u(rng), x2 = u(rng);
    const int c = static_cast<int>(rng() % 3), k = static_cast<int>(rng() % 2);
    const int y = x1 + 0.5 * x2 + (c == 0 ? 0.5 : 0) > 0 ? 1 : 0;
    if (i == huge)
      s << "3.4e38,3.4e38,";
    else
      s << x1 << "," << x2 << ",";
    s << colors[c] << "," << shapes[k] << "," << y << "\n";
  }
  return write_file(path, s.str());
}

std::string behaviour_config(const TempDir& dir, const std::string& model,
                             const std::string& optimizer, const std::string& policy, int epochs,
                             int huge_row) {
  behaviour_csv(dir.file("train.csv"), 320, 11, huge_row);
  behaviour_csv(dir.file("valid.csv"), 80, 12, -1);
  return write_file(dir.file("config.json"), fill(R"({
    "task": "behaviour", "name": "div", "seed": 5, "device": "cpu",
    "data": {"train": "$DIR/train.csv", "validation": "$DIR/valid.csv", "test": "$DIR/valid.csv",
             "header": true,
             "columns": [{"name": "x1", "type": "numeric"}, {"name": "x2", "type": "numeric"},
                         {"name": "color", "type": "categorical"},
                         {"name": "shape", "type": "categorical"}, {"name": "y", "type": "label"}],
             "numeric": {"normalization": "none"}},
    "model": $MODEL,
    "train": {"epochs": $EPOCHS, "batch_size": 32, "optimizer": $OPT, "on_nonfinite": "$POLICY"}
  })",
                                                  {{"$DIR", dir.path()},
                                                   {"$MODEL", model},
                                                   {"$EPOCHS", std::to_string(epochs)},
                                                   {"$OPT", optimizer},
                                                   {"$POLICY", policy}}));
}

const char* kMlp = R"({"type": "mlp", "embedding_dim": 4, "hidden": [16, 8]})";
const char* kDlrm = R"({"type": "dlrm", "embedding_dim": 4, "bottom": [8], "hidden": [16]})";
const char* kAdam = R"({"type": "adam", "lr": 0.01})";

behaviour::TrainOptions behaviour_options(const std::string& run_dir) {
  behaviour::TrainOptions o;
  o.device = "cpu";
  o.quiet = true;
  o.run_dir = run_dir;
  return o;
}

class BehaviourDivergence : public ::testing::TestWithParam<const char*> {};

TEST_P(BehaviourDivergence, ExplodingWeightsStopAtTheFirstNonFiniteLoss) {
  TempDir dir;
  const std::string cfg = behaviour_config(dir, GetParam(), kBlowUp, "stop", 30, -1);
  const std::string run = dir.file("run");
  const Diverged d = expect_divergence([&] { behaviour::train(cfg, behaviour_options(run)); }, run);
  expect_steps_add_up(d);
  EXPECT_EQ(d.kind, "loss");
  EXPECT_EQ(d.batches, 10);
  EXPECT_STREQ(d.json["task"].GetString(), "behaviour");
}

TEST_P(BehaviourDivergence, AnOverflowingRowStopsItsBatchOrIsSkippedWithoutAnUpdate) {
  TempDir dir;
  const std::string cfg = behaviour_config(dir, GetParam(), kAdam, "stop", 2, 57);
  const std::string run = dir.file("run");
  const Diverged d = expect_divergence([&] { behaviour::train(cfg, behaviour_options(run)); }, run);
  expect_steps_add_up(d);
  // In the epoch that first meets the row: at its batch when the loss shows it, else (a ReLU
  // maps NaN to 0, so a NaN gradient need not reach the next losses) in the weights at the end
  // of the epoch, before anything is written.
  EXPECT_EQ(d.epoch, 1);
  EXPECT_TRUE((d.kind == "loss" && d.phase == "batch") ||
              (d.kind == "weight" && d.phase == "epoch_end"))
      << d.message;

  // Skipped instead: the batch holding the row is dropped each epoch before its non-finite
  // gradients reach a weight (else Adam's state and then the weights would turn NaN, and the
  // weight check would stop the run); the rest trains and a finite model is written.
  behaviour_config(dir, GetParam(), kAdam, "skip_batch", 2, 57);
  const behaviour::Result r = behaviour::train(cfg, behaviour_options(dir.file("skip")));
  const rapidjson::Document j = parse(r.json);
  EXPECT_STREQ(j["status"].GetString(), "completed");
  EXPECT_STREQ(j["on_nonfinite"].GetString(), "skip_batch");
  EXPECT_EQ(j["skipped_batches"].GetInt64(), 2);
  EXPECT_EQ(j["steps"].GetInt64(), 2 * 10 - 2);
  EXPECT_GT(j["validation"]["auc"].GetDouble(), 0.6);
  EXPECT_EQ(read_file(dir.file("skip/result.json")), r.json + "\n");
  for (const std::string& line : lines_of(dir.file("skip/metrics.jsonl")))
    EXPECT_EQ(parse(line)["skipped_batches"].GetInt64(), 1) << line;
  const Archive model = load_archive(dir.file("skip/model.tsm"));
  for (const auto& [name, t] : model.tensors) EXPECT_TRUE(all_finite(t)) << name;
}

INSTANTIATE_TEST_SUITE_P(Models, BehaviourDivergence, ::testing::Values(kMlp, kDlrm),
                         [](const auto& info) { return info.index == 0 ? "Mlp" : "Dlrm"; });

// ---- recommend: MF and two-tower ---------------------------------------------------------------

// 40 users x 60 items, user u liking items of its group (u % 3 == i % 3).
std::string ratings_csv(const std::string& path, double every_tenth) {
  std::ostringstream s;
  s << "userId,movieId,rating,timestamp\n";
  std::mt19937 rng(9);
  int row = 0;
  for (int u = 1; u <= 40; ++u)
    for (int i = 1, ts = 1000; i <= 60; ++i) {
      const bool like = u % 3 == i % 3;
      if (rng() % 100 >= (like ? 50u : 10u)) continue;
      const double r = ++row % 10 == 0 && every_tenth > 0 ? every_tenth : like ? 4.5 : 1.5;
      s << u << "," << i << "," << r << "," << ts++ << "\n";
    }
  return write_file(path, s.str());
}

std::string recommend_config(const TempDir& dir, const std::string& model,
                             const std::string& optimizer, const std::string& policy, int epochs) {
  ratings_csv(dir.file("ratings.csv"), 0);
  return write_file(
      dir.file(model + ".json"),
      fill(R"({"task": "recommend", "name": "div", "model": "$MODEL", "seed": 4,
    "data": {"path": "$DIR/ratings.csv"},
    "embeddings": {"dim": 8, "optimizer": $OPT},
    "train": {"epochs": $EPOCHS, "batch_size": 64, "on_nonfinite": "$POLICY"}
    $EVAL})",
           {{"$MODEL", model},
            {"$DIR", dir.path()},
            {"$OPT", optimizer},
            {"$EPOCHS", std::to_string(epochs)},
            {"$POLICY", policy},
            {"$EVAL", model == "two_tower"
                          ? R"(, "evaluate": {"negatives": 20, "full_ranking": false})"
                          : ""}}));
}

recommend::TrainOptions recommend_options(const std::string& run_dir) {
  recommend::TrainOptions o;
  o.device = "cpu";
  o.quiet = true;
  o.run_dir = run_dir;
  return o;
}

class RecommendDivergence : public ::testing::TestWithParam<const char*> {};

TEST_P(RecommendDivergence, AHugeSparseLearningRateStops) {
  TempDir dir;
  const std::string cfg =
      recommend_config(dir, GetParam(), R"({"kind": "lazy_adam", "lr": 1e36})", "stop", 20);
  const std::string run = dir.file("run");
  const Diverged d = expect_divergence([&] { recommend::train(cfg, recommend_options(run)); }, run);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "recommend");
  if (d.phase == "batch") {
    EXPECT_TRUE(d.kind == "loss" || d.kind == "gradient") << d.kind;
  } else {
    EXPECT_EQ(d.kind, "weight");
  }
  if (d.kind != "loss") EXPECT_EQ(d.tensor.rfind("embedding table '", 0), 0u) << d.tensor;
  // Every finished epoch left a checkpoint, named as the last good one.
  if (d.epoch - (d.phase == "batch" ? 1 : 0) > 0) {
    EXPECT_EQ(d.json["checkpoint"].GetString(), run + "/checkpoint.tsc");
  } else {
    EXPECT_TRUE(d.json["checkpoint"].IsNull());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, RecommendDivergence, ::testing::Values("mf", "two_tower"),
                         [](const auto& info) { return std::string(info.param); });

TEST(RecommendDivergence, SkippedBatchesChangeNoWeight) {
  // After the first step the touched rows are huge, so nearly every later batch overflows and
  // is skipped: once none trains, an epoch must leave the tables and their optimizer state
  // exactly as they were. One run of 2 epochs against one of 3 (the same up to epoch 2).
  TempDir dir;
  const char* opt = R"({"kind": "lazy_adam", "lr": 1e36})";
  const std::string cfg2 = recommend_config(dir, "mf", opt, "skip_batch", 2);
  const recommend::Result r2 = recommend::train(cfg2, recommend_options(dir.file("two")));
  const std::string cfg3 = recommend_config(dir, "mf", opt, "skip_batch", 3);
  const recommend::Result r3 = recommend::train(cfg3, recommend_options(dir.file("three")));
  const std::vector<std::string> lines = lines_of(dir.file("three/metrics.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  const int64_t batches = (parse(lines[2])["skipped_batches"].GetInt64());
  EXPECT_GT(batches, 0);
  EXPECT_EQ(parse(r3.json)["skipped_batches"].GetInt64(),
            parse(r2.json)["skipped_batches"].GetInt64() + batches);
  EXPECT_EQ(parse(r3.json)["steps"].GetInt64(), parse(r2.json)["steps"].GetInt64());
  const Archive a = load_archive(dir.file("two/checkpoint.tsc"));
  const Archive b = load_archive(dir.file("three/checkpoint.tsc"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    const Tensor& u = b.tensors.at(name);
    ASSERT_EQ(t.numel(), u.numel()) << name;
    EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.bytes()), 0) << name;
    EXPECT_TRUE(all_finite(t)) << name;
  }
}

// ---- text: generation and classification -------------------------------------------------------

std::string textgen_config(const TempDir& dir, const std::string& policy) {
  std::string text;
  std::mt19937 rng(3);
  const char* words[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "purred\n"};
  while (text.size() < 4000) text += words[rng() % 8];
  write_file(dir.file("text.txt"), text);
  return write_file(dir.file("textgen.json"),
                    fill(R"({
    "task": "textgen", "name": "div", "seed": 2, "device": "cpu",
    "data": {"path": "$DIR/text.txt"},
    "model": {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1},
    "train": {"epochs": 20, "batch_size": 4, "seq_len": 16, "optimizer": $OPT,
              "on_nonfinite": "$POLICY"}
  })",
                         {{"$DIR", dir.path()}, {"$OPT", kBlowUp}, {"$POLICY", policy}}));
}

std::string textclass_config(const TempDir& dir, const std::string& policy) {
  std::ostringstream tsv;
  std::mt19937 rng(4);
  const char* good[] = {"great", "lovely", "fine", "superb"};
  const char* bad[] = {"awful", "dull", "poor", "grim"};
  for (int i = 0; i < 120; ++i) {
    const bool pos = i % 2 == 0;
    tsv << (pos ? "pos" : "neg") << "\tthe film was " << (pos ? good : bad)[rng() % 4] << " and "
        << (pos ? good : bad)[rng() % 4] << "\n";
  }
  write_file(dir.file("reviews.tsv"), tsv.str());
  return write_file(dir.file("textclass.json"),
                    fill(R"({
    "task": "textclass", "name": "div", "seed": 2, "device": "cpu",
    "data": {"train": "$DIR/reviews.tsv", "validation_fraction": 0.2, "skip_lines": 0},
    "model": {"embedding_dim": 8, "hidden_size": 8},
    "train": {"epochs": 30, "batch_size": 8, "patience": 0, "optimizer": $OPT,
              "on_nonfinite": "$POLICY"}
  })",
                         {{"$DIR", dir.path()}, {"$OPT", kBlowUp}, {"$POLICY", policy}}));
}

// The exploding optimizer under "skip_batch": the batches whose loss turned non-finite are
// dropped, but the update just before them had finite gradients and still overflowed a weight
// (lr 10 times a gradient, plus the decay). No skip can undo that: the run stops at that epoch's
// end naming the weight, after the same updates as the "stop" run `stopped` made.
void expect_skipping_cannot_undo_the_overflow(const Diverged& stopped,
                                              const std::function<void()>& train,
                                              const std::string& run_dir) {
  ASSERT_EQ(stopped.phase, "batch");
  const Diverged s = expect_divergence(train, run_dir);
  EXPECT_STREQ(s.json["on_nonfinite"].GetString(), "skip_batch");
  EXPECT_EQ(s.phase, "epoch_end");
  EXPECT_EQ(s.kind, "weight");
  EXPECT_EQ(s.epoch, stopped.epoch);
  EXPECT_EQ(s.step, stopped.step - 1);
  EXPECT_GE(s.json["skipped_batches"].GetInt64(), 1);
  EXPECT_NE(s.message.find("no skipped batch can undo"), std::string::npos) << s.message;
}

TEST(TextgenDivergence, ExplodingWeightsStop) {
  TempDir dir;
  const std::string cfg = textgen_config(dir, "stop");
  textgen::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  const Diverged d = expect_divergence([&] { textgen::train(cfg, o); }, o.run_dir);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "textgen");
  EXPECT_TRUE(d.kind == "loss" || d.kind == "gradient") << d.kind;
  textgen_config(dir, "skip_batch");  // the same run, skipping
  expect_skipping_cannot_undo_the_overflow(
      d,
      [&] {
        o.run_dir = dir.file("skip");
        textgen::train(cfg, o);
      },
      dir.file("skip"));
}

TEST(TextclassDivergence, ExplodingWeightsStop) {
  TempDir dir;
  const std::string cfg = textclass_config(dir, "stop");
  textclass::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  const Diverged d = expect_divergence([&] { textclass::train(cfg, o); }, o.run_dir);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "textclass");
  // textclass checkpoints every finished epoch (the Trainer's): the last one is named, and loads.
  ASSERT_GE(d.epoch, 2);
  EXPECT_EQ(d.json["checkpoint"].GetString(), o.run_dir + "/checkpoint.tsc");
  EXPECT_EQ(d.json["checkpoint_epoch"].GetInt64(), d.epoch - 1);
  EXPECT_NO_THROW(load_archive(o.run_dir + "/checkpoint.tsc"));
  textclass_config(dir, "skip_batch");  // the same run, skipping
  expect_skipping_cannot_undo_the_overflow(
      d,
      [&] {
        o.run_dir = dir.file("skip");
        textclass::train(cfg, o);
      },
      dir.file("skip"));
}

// ---- image, audio, video (one training loop: image::train_on) ---------------------------------

// sklearn-digits layout: 64 pixels in [0, 16] and a label; class 0 bright on the left, class 1
// on the right.
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

std::string image_config(const TempDir& dir, const std::string& optimizer,
                         const std::string& policy, int epochs) {
  digits_csv(dir.file("digits.csv"), 60);
  return write_file(dir.file("image.json"), fill(R"({
    "task": "image", "name": "div", "seed": 2, "device": "cpu",
    "data": {"format": "digits_csv", "train": "$DIR/digits.csv", "test_fraction": 0.2,
             "validation_fraction": 0.2, "classes": 10},
    "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1, "bias": false},
                         {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"}]},
    "train": {"epochs": $EPOCHS, "batch_size": 8, "optimizer": $OPT, "on_nonfinite": "$POLICY"}
  })",
                                                 {{"$DIR", dir.path()},
                                                  {"$EPOCHS", std::to_string(epochs)},
                                                  {"$OPT", optimizer},
                                                  {"$POLICY", policy}}));
}

TEST(ImageDivergence, ExplodingWeightsStopAndTheLastCheckpointStays) {
  TempDir dir;
  const std::string cfg = image_config(dir, kBlowUp, "stop", 40);
  image::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");  // every run checkpoints each epoch
  const Diverged d = expect_divergence([&] { image::train(cfg, o); }, o.run_dir);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "image");
  // 39 training images in batches of 8: it diverged after epoch 1, whose checkpoint is named
  // and still loads, every weight finite.
  ASSERT_GE(d.epoch, 2);
  const int64_t kept = d.phase == "batch" ? d.epoch - 1 : d.epoch;
  EXPECT_EQ(d.json["checkpoint"].GetString(), o.run_dir + "/checkpoint.tsc");
  EXPECT_EQ(d.json["checkpoint_epoch"].GetInt64(), kept);
  const Archive ck = load_archive(o.run_dir + "/checkpoint.tsc");
  EXPECT_EQ(parse(ck.meta_json)["epochs_done"].GetInt64(), kept);
  for (const auto& [name, t] : ck.tensors) EXPECT_TRUE(all_finite(t)) << name;
}

TEST(ImageDivergence, SkippedBatchesLeaveWeightsAndBatchNormStatisticsAsTheyWere) {
  // Under skip_batch the exploding run ends up skipping every batch; an epoch of skipped
  // batches must then change nothing, batch-norm running statistics included (the training
  // forward updates them; a dropped batch's update is undone).
  TempDir dir;
  const std::string cfg = image_config(dir, kBlowUp, "skip_batch", 12);
  image::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  std::vector<Archive> checkpoints;
  o.after_checkpoint = [&](int64_t) {
    checkpoints.push_back(load_archive(o.run_dir + "/checkpoint.tsc"));
  };
  const rapidjson::Document j = parse(image::train(cfg, o).json);
  EXPECT_STREQ(j["status"].GetString(), "completed");
  ASSERT_EQ(checkpoints.size(), 12u);
  const std::vector<std::string> lines = lines_of(o.run_dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 12u);
  const int64_t per_epoch = (39 + 7) / 8;
  EXPECT_EQ(parse(lines.back())["skipped_batches"].GetInt64(), per_epoch);
  EXPECT_EQ(j["steps"].GetInt64() + j["skipped_batches"].GetInt64(), 12 * per_epoch);
  const Archive& a = checkpoints[10];
  const Archive& b = checkpoints[11];
  int compared = 0;
  for (const auto& [name, t] : a.tensors) {
    // The training state (host/train/checkpoint.h): weights, and batch-norm statistics.
    if (name.rfind("state/value/", 0) != 0 && name.rfind("state/running/", 0) != 0) continue;
    const Tensor& u = b.tensors.at(name);
    ASSERT_EQ(t.bytes(), u.bytes()) << name;
    EXPECT_EQ(std::memcmp(t.raw(), u.raw(), t.bytes()), 0) << name;
    EXPECT_TRUE(all_finite(t)) << name;
    ++compared;
  }
  EXPECT_GE(compared, 4);  // conv weight, batch-norm gamma/beta, head, running statistics
}

// A mono 16-bit PCM WAV of a tone.
void write_tone(const std::string& path, double hz, int n, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<double> noise(0, 0.02);
  std::string d;
  auto put = [](std::string& s, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 255);
  };
  for (int i = 0; i < n; ++i)
    put(d,
        static_cast<uint16_t>(static_cast<int16_t>(
            std::lround((0.5 * std::sin(2 * M_PI * hz * i / 8000.0) + noise(rng)) * 32767))),
        2);
  std::string h = "RIFF";
  put(h, static_cast<uint32_t>(36 + d.size()), 4);
  h += "WAVEfmt ";
  put(h, 16, 4);
  put(h, 1, 2);     // PCM
  put(h, 1, 2);     // mono
  put(h, 8000, 4);  // sample rate
  put(h, 16000, 4);
  put(h, 2, 2);
  put(h, 16, 2);
  h += "data";
  put(h, static_cast<uint32_t>(d.size()), 4);
  write_file(path, h + d);
}

TEST(AudioDivergence, ExplodingWeightsStop) {
  TempDir dir;
  fs::create_directories(dir.file("wav"));
  for (int label = 0; label < 2; ++label)
    for (int index = 0; index < 8; ++index)
      write_tone(
          dir.file("wav/" + std::to_string(label) + "_spk_" + std::to_string(index) + ".wav"),
          label == 0 ? 440 : 1500, 1600, label * 100 + index);
  const std::string cfg =
      write_file(dir.file("audio.json"), fill(R"({
    "task": "audio", "name": "div", "seed": 2, "device": "cpu",
    "data": {"dir": "$DIR/wav", "test_max_index": 1, "validation_fraction": 0, "classes": 2},
    "features": {"sample_rate": 8000, "n_fft": 128, "win_length": 128, "hop_length": 64,
                 "n_mels": 16, "fmin": 20, "frames": 16},
    "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
                         {"type": "relu"}, {"type": "flatten"}]},
    "train": {"epochs": 40, "batch_size": 4, "optimizer": $OPT}
  })",
                                              {{"$DIR", dir.path()}, {"$OPT", kBlowUp}}));
  audio::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  const Diverged d = expect_divergence([&] { audio::train(cfg, o); }, o.run_dir);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "audio");
  EXPECT_EQ(d.batches, 3);  // 12 training recordings in batches of 4
}

TEST(VideoDivergence, ExplodingWeightsStop) {
  TempDir dir;
  for (int i = 0; i < 24; ++i) {
    const bool right = i % 2 == 0;
    const std::string cdir = dir.file(std::string("clips/") + (right ? "r" : "l"));
    fs::create_directories(cdir);
    Clip c;
    c.frames = 3;
    c.height = c.width = 12;
    c.pixels.assign(static_cast<size_t>(c.size()), 0.f);
    for (int t = 0; t < 3; ++t)
      for (int y = 0; y < 12; ++y)
        c.pixels[(t * 12 + y) * 12 + (right ? 3 + 2 * t : 8 - 2 * t)] = 1;
    write_clip_tensor(cdir + "/c" + std::to_string(i) + ".tclip", c);
  }
  const std::string cfg =
      write_file(dir.file("video.json"), fill(R"({
    "task": "video", "name": "div", "seed": 2, "device": "cpu",
    "data": {"dir": "$DIR/clips", "test_fraction": 0.25, "validation_fraction": 0,
             "frames": 3, "height": 12, "width": 12},
    "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 5, "padding": 2,
                          "activation": "relu"}, {"type": "global_avgpool"}]},
    "train": {"epochs": 40, "batch_size": 6, "optimizer": $OPT}
  })",
                                              {{"$DIR", dir.path()}, {"$OPT", kBlowUp}}));
  video::TrainOptions o;
  o.quiet = true;
  o.run_dir = dir.file("run");
  const Diverged d = expect_divergence([&] { video::train(cfg, o); }, o.run_dir);
  expect_steps_add_up(d);
  EXPECT_STREQ(d.json["task"].GetString(), "video");
  EXPECT_EQ(d.batches, 3);  // 18 training clips in batches of 6
}

// ---- the config field --------------------------------------------------------------------------

TEST(Divergence, EveryTasksConfigReadsTheFieldAndNamesItsChoices) {
  TempDir dir;
  // audio and video read their train section with the image task's reader.
  const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> tasks = {
      {behaviour_config(dir, kMlp, kAdam, "skip", 1, -1),
       [&](const std::string& c) { behaviour::train(c, behaviour_options(dir.file("b"))); }},
      {recommend_config(dir, "mf", R"({"kind": "sgd"})", "skip", 1),
       [&](const std::string& c) { recommend::train(c, recommend_options(dir.file("r"))); }},
      {textgen_config(dir, "skip"), [](const std::string& c) { textgen::train(c, {}); }},
      {textclass_config(dir, "skip"), [](const std::string& c) { textclass::train(c, {}); }},
      {image_config(dir, kBlowUp, "skip", 1), [](const std::string& c) { image::train(c, {}); }},
  };
  for (const auto& [config, train] : tasks) {
    try {
      train(config);
      ADD_FAILURE() << config << " was accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::Config) << m;
      EXPECT_NE(m.find(config + ":"), std::string::npos) << m;
      EXPECT_NE(m.find("$.train.on_nonfinite: expected one of \"stop\", \"skip_batch\", got "
                       "\"skip\""),
                std::string::npos)
          << m;
    }
  }
  EXPECT_FALSE(fs::exists(dir.file("b")));  // refused before anything was made
}

// ---- through the binary ------------------------------------------------------------------------

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

// The tessera CLI with `args` (an argument vector, no shell).
CliRun run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  test::ProgramResult p = test::run_program(args);
  CliRun r;
  r.exit_code = p.status;
  r.out = std::move(p.out);
  r.err = std::move(p.err);
  return r;
}

std::string last_line(const std::string& text) {
  const size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

TEST(CliDivergence, ExitCodeOneResultJsonAndTheCheckpointStays) {
  ASSERT_TRUE(fs::exists(kBinary)) << kBinary << " is not built (the tessera target)";
  TempDir dir;
  const std::string cfg = recommend_config(dir, "mf", R"({"kind": "sgd", "lr": 0.05})", "stop", 3);
  const std::string run = dir.file("run");
  const CliRun first =
      run_cli({"train", cfg, "--epochs", "1", "--run-dir", run, "--json", "--quiet"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string checkpoint = run + "/checkpoint.tsc";
  const std::string good_checkpoint = read_file(checkpoint);
  const std::string first_model = read_file(run + "/model.tsm");

  // The data gains ratings of 1e30 (finite: the reader takes them); resumed, epoch 2 diverges.
  ratings_csv(dir.file("ratings.csv"), 1e30);
  const CliRun bad = run_cli({"train", cfg, "--resume", run, "--json", "--quiet"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("tessera: data error: training diverged"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("at epoch 2, batch "), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("the last good checkpoint is " + checkpoint + " (epoch 1)"),
            std::string::npos)
      << bad.err;
  const rapidjson::Document j = parse(last_line(bad.out));
  ASSERT_TRUE(j.IsObject()) << bad.out;
  EXPECT_EQ(last_line(bad.out) + "\n", read_file(run + "/result.json"));
  EXPECT_STREQ(j["status"].GetString(), "diverged");
  EXPECT_EQ(j["epoch"].GetInt64(), 2);
  EXPECT_STREQ(j["phase"].GetString(), "batch");
  EXPECT_GE(j["step"].GetInt64(), j["batches"].GetInt64() + 1);
  EXPECT_TRUE(std::string(j["kind"].GetString()) == "loss" ||
              std::string(j["kind"].GetString()) == "gradient")
      << j["kind"].GetString();
  EXPECT_EQ(j["checkpoint"].GetString(), checkpoint);
  EXPECT_EQ(j["checkpoint_epoch"].GetInt64(), 1);
  EXPECT_NE(bad.err.find(std::string("global step ") + std::to_string(j["step"].GetInt64())),
            std::string::npos);

  // The epoch-1 checkpoint is untouched, and resumes once the data is mended.
  EXPECT_EQ(read_file(checkpoint), good_checkpoint);
  EXPECT_EQ(read_file(run + "/model.tsm"), first_model);  // the first run's, not rewritten
  EXPECT_EQ(lines_of(run + "/metrics.jsonl").size(), 1u);
  ratings_csv(dir.file("ratings.csv"), 0);
  const CliRun mended = run_cli({"train", cfg, "--resume", run, "--json", "--quiet"});
  ASSERT_EQ(mended.exit_code, 0) << mended.err;
  const rapidjson::Document m = parse(last_line(mended.out));
  EXPECT_STREQ(m["status"].GetString(), "completed");
  EXPECT_EQ(m["skipped_batches"].GetInt64(), 0);
  EXPECT_TRUE(fs::exists(run + "/model.tsm"));
}

}  // namespace
}  // namespace tessera
