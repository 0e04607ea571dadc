// The text-classification, recommendation and audio tasks' stage kinds under the scheduler, end
// to end on small slices of the real datasets (sms-spam, ml-latest-small, fsdd): the shipped
// pipelines parse and plan, a run preps, trains, evaluates and deploys in dependency order, each
// evaluation agrees with the test metrics training reported on the same rows, and a rerun is
// taken whole from the cache.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/scheduler/scheduler.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/audio/stages.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/stages.h"
#include "pipelines/textclass/stages.h"
#include "tests/support/skips.h"

namespace tessera::scheduler {
namespace {

const std::string kSource = TESSERA_SOURCE_DIR;

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/schedtask2_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

StageRegistry registry() {
  StageRegistry r;
  textclass::register_stages(r);
  recommend::register_stages(r);
  audio::register_stages(r);
  return r;
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

std::vector<std::string> stage_names(const PipelineRun& run) {
  std::vector<std::string> names;
  for (const StageRecord& s : run.stages) names.push_back(s.plan.name);
  return names;
}

// Runs the pipeline twice: the first run executes every stage in order, the second none.
PipelineRun run_twice(const std::string& spec, const std::string& dir,
                      const std::vector<std::string>& order) {
  RunOptions o;
  o.runs_dir = dir + "/runs";
  o.quiet = true;
  o.device = "cpu";
  o.jobs = 1;
  const PipelineRun run = run_pipeline(load_pipeline_spec(spec), registry(), o);
  EXPECT_EQ(stage_names(run), order);
  for (const StageRecord& s : run.stages) {
    EXPECT_TRUE(s.ran) << s.plan.name;
    for (const auto& [name, path] : s.outputs.files)
      EXPECT_TRUE(std::filesystem::is_regular_file(path)) << s.plan.name << " " << name;
  }
  const PipelineRun again = run_pipeline(load_pipeline_spec(spec), registry(), o);
  EXPECT_EQ(stage_names(again), order);
  for (const StageRecord& s : again.stages) EXPECT_FALSE(s.ran) << s.plan.name;
  return run;
}

size_t count_lines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(TaskPipelines2, TheShippedPipelinesParseAndPlan) {
  const std::string dir = temp_dir("plan");
  for (const char* p : {"/pipelines/textclass/pipeline.json", "/pipelines/recommend/pipeline.json",
                        "/pipelines/audio/pipeline.json"}) {
    const PipelineSpec s = load_pipeline_spec(kSource + p);
    RunOptions o;
    o.runs_dir = dir + "/runs";
    // Planning validates every stage's config and reads the task config; it creates nothing.
    const std::vector<PlannedStage> plan = plan_pipeline(s, registry(), o);
    EXPECT_EQ(plan.size(), s.stages.size()) << p;
    for (const PlannedStage& st : plan) EXPECT_EQ(st.state, StageState::Pending) << p;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs"));
}

TEST(TaskPipelines2, AStageConfigWithAnUnknownKeyIsRefusedWhenPlanned) {
  const std::string dir = temp_dir("badkey");
  write_file_atomic(dir + "/pipeline.json", R"({"name": "r", "task": "recommend", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": ")" +
                                                kSource +
                                                "/pipelines/recommend/movielens-mf.json\"}},"
                                                R"(
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "top", "kind": "recommend", "inputs": ["train"], "config": {"kk": 5}}]})");
  RunOptions o;
  o.runs_dir = dir + "/runs";
  try {
    plan_pipeline(load_pipeline_spec(dir + "/pipeline.json"), registry(), o);
    FAIL() << "planned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kk"), std::string::npos) << e.what();
  }
}

TEST(TaskPipelines2, TextclassEvaluatesAndPredictsTheTestSplitTrainingHeldOut) {
  const std::string missing = test::missing_dataset("sms-spam", {"SMSSpamCollection"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("textclass");
  write_file_atomic(dir + "/sms.json", R"({"task": "textclass", "name": "sms-slice", "seed": 1,
      "device": "cpu",
      "data": {"dataset": "sms-spam", "train": "SMSSpamCollection", "validation_fraction": 0.1,
               "test_fraction": 0.1, "skip_lines": 0, "max_rows": 600, "min_count": 2,
               "max_tokens": 40},
      "model": {"embedding_dim": 16, "hidden_size": 16, "num_layers": 1, "pooling": "max"},
      "train": {"epochs": 1, "batch_size": 32, "runs_dir": "runs",
                "optimizer": {"type": "adam", "lr": 0.005}}})");
  write_file_atomic(dir + "/pipeline.json", R"({"name": "tc", "task": "textclass", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "sms.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]},
      {"name": "predict", "kind": "batch-score", "inputs": ["train", "prep"]}]})");
  const PipelineRun run =
      run_twice(dir + "/pipeline.json", dir, {"prep", "train", "evaluate", "predict"});
  ASSERT_EQ(run.stages.size(), 4u);
  // 10% of each class of the 600 rows, as training split them.
  const size_t test_rows = count_lines(read_file(run.stages[0].outputs.file("test")));
  EXPECT_GE(test_rows, 59u);
  EXPECT_LE(test_rows, 61u);
  EXPECT_EQ(count_lines(read_file(run.stages[0].outputs.file("texts"))), test_rows);
  const rapidjson::Document tr = parse(run.stages[1].outputs.result_json);
  const rapidjson::Document ev = parse(run.stages[2].outputs.result_json);
  ASSERT_TRUE(tr.HasMember("test")) << run.stages[1].outputs.result_json;
  EXPECT_EQ(tr["test"]["rows"].GetInt64(), static_cast<int64_t>(test_rows));
  EXPECT_EQ(ev["rows"].GetInt64(), static_cast<int64_t>(test_rows));
  // The same rows through the same model: the same figures as training's own test pass.
  // (The loss tells the rows apart even where a weak model predicts one class everywhere.)
  EXPECT_DOUBLE_EQ(ev["loss"].GetDouble(), tr["test"]["loss"].GetDouble());
  EXPECT_DOUBLE_EQ(ev["accuracy"].GetDouble(), tr["test"]["accuracy"].GetDouble());
  EXPECT_TRUE(ev["confusion"] == tr["test"]["confusion"]);
  // predictions.tsv: a header and one row per test text.
  EXPECT_EQ(count_lines(read_file(run.stages[3].outputs.file("predictions"))), test_rows + 1);
}

TEST(TaskPipelines2, RecommendEvaluatesListsAndExportsATwoTowerModel) {
  const std::string missing = test::missing_dataset("ml-latest-small", {"ratings.csv"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("recommend");
  write_file_atomic(dir + "/tt.json", R"({"task": "recommend", "name": "tt-slice",
      "model": "two_tower", "seed": 3,
      "data": {"dataset": "ml-latest-small", "file": "ratings.csv", "max_rows": 5000},
      "embeddings": {"dim": 8, "optimizer": {"kind": "adagrad", "lr": 0.1}},
      "train": {"epochs": 2, "batch_size": 256, "negatives": 2},
      "evaluate": {"k": 5, "negatives": 20, "full_ranking": true}})");
  write_file_atomic(dir + "/pipeline.json", R"({"name": "rec", "task": "recommend", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "tt.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]},
      {"name": "recommend", "kind": "recommend", "inputs": ["train"], "config": {"k": 3}},
      {"name": "export", "kind": "export", "inputs": ["train"], "config": {"format": "npy"}}]})");
  const PipelineRun run =
      run_twice(dir + "/pipeline.json", dir, {"prep", "train", "evaluate", "recommend", "export"});
  ASSERT_EQ(run.stages.size(), 5u);
  const rapidjson::Document tr = parse(run.stages[1].outputs.result_json);
  const rapidjson::Document ev = parse(run.stages[2].outputs.result_json);
  // The evaluate stage loaded model.tsm and measured it on the rebuilt held-out split: the same
  // numbers training measured on its own split, computed a second time.
  EXPECT_TRUE(ev["metrics"] == tr["metrics"]) << run.stages[2].outputs.result_json;
  EXPECT_TRUE(ev["metrics"].HasMember("hr_full"));
  EXPECT_GT(ev["metrics"]["hr_sampled"].GetDouble(), 0.0);
  EXPECT_EQ(std::string(ev["ratings"].GetString()),
            find_local_dataset_file("ml-latest-small", "ratings.csv"));
  // ... and from the model, not from training's result: the same model with its user vectors
  // negated ranks the other way round, and evaluates differently.
  {
    recommend::RecArtefact a = recommend::load_rec_artefact(run.stages[1].outputs.file("model"));
    for (auto& [name, t] : a.tables)
      if (name == "user")
        for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = -t.data<float>()[i];
    recommend::save_rec_artefact(dir + "/negated.tsm", a);
    const rapidjson::Document z = parse(
        recommend::evaluate_held_out(dir + "/negated.tsm", ev["ratings"].GetString()).json);
    EXPECT_NE(z["metrics"]["ndcg_sampled"].GetDouble(), ev["metrics"]["ndcg_sampled"].GetDouble());
    // Ratings the model was not trained on are refused, not measured.
    write_file_atomic(dir + "/other.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,3.0,2\n");
    EXPECT_THROW(recommend::evaluate_held_out(dir + "/negated.tsm", dir + "/other.csv"), Error);
  }
  // topk.csv: a header, then 3 items for every user.
  const int64_t users = ev["users"].GetInt64();
  EXPECT_GT(users, 10);
  EXPECT_EQ(static_cast<int64_t>(count_lines(read_file(run.stages[3].outputs.file("topk")))),
            3 * users + 1);
  for (const char* f :
       {"user.npy", "user_ids.npy", "item.npy", "item_ids.npy", "item_bias.npy", "manifest.json"})
    EXPECT_EQ(run.stages[4].outputs.files.count(f), 1u) << f;
  // The exported files reached the run directory.
  EXPECT_TRUE(std::filesystem::exists(run.run_dir + "/export/user.npy"));
}

TEST(TaskPipelines2, AudioTrainsOnAnFsddSliceAndEvaluatesTheTestSplit) {
  const std::string missing = test::missing_dataset("fsdd", {"recordings/0_george_0.wav"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("audio");
  // The training files with index 5 only (60) and the 300 test files; a tiny CNN, one epoch.
  write_file_atomic(dir + "/fsdd.json", R"({"task": "audio", "name": "fsdd-tiny", "seed": 3,
      "data": {"dataset": "fsdd", "max_index": 5, "validation_fraction": 0.0, "classes": 10},
      "features": {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80,
                   "n_mels": 16, "fmin": 20, "frames": 32},
      "model": {"layers": [
        {"type": "conv", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "relu"}, {"type": "maxpool", "kernel": 2},
        {"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"}]},
      "train": {"epochs": 1, "batch_size": 16, "eval_batch_size": 100,
                "optimizer": {"type": "adam", "lr": 0.002}}})");
  write_file_atomic(dir + "/pipeline.json", R"({"name": "au", "task": "audio", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "fsdd.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]}]})");
  const PipelineRun run = run_twice(dir + "/pipeline.json", dir, {"prep", "train", "evaluate"});
  ASSERT_EQ(run.stages.size(), 3u);
  const rapidjson::Document prep = parse(run.stages[0].outputs.result_json);
  EXPECT_EQ(prep["recordings"].GetInt64(), 360);  // 6 speakers x 10 digits x index 0-5
  EXPECT_STREQ(prep["test"].GetString(), "fsdd:test");
  const rapidjson::Document tr = parse(run.stages[1].outputs.result_json);
  const rapidjson::Document ev = parse(run.stages[2].outputs.result_json);
  EXPECT_EQ(tr["train_images"].GetInt64(), 60);
  EXPECT_EQ(ev["recordings"].GetInt64(), 300);
  EXPECT_DOUBLE_EQ(ev["metrics"]["accuracy"].GetDouble(), tr["test"]["accuracy"].GetDouble());
}

}  // namespace
}  // namespace tessera::scheduler
