// The video task's stage kinds under the scheduler (pipelines/video/stages.h), end to end on a
// tiny generated Moving Fashion-MNIST set (seconds): the shipped pipeline parses and plans, a run
// preps (writing the generated test clips), trains, evaluates and batch-scores in dependency
// order, the evaluation agrees with the test metrics training reported on the same clips, the
// scores file has a row per test clip that agrees with the evaluation, and a rerun is taken whole
// from the cache.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/scheduler.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/video/stages.h"
#include "tests/support/skips.h"

namespace tessera::scheduler {
namespace {

const std::string kSource = TESSERA_SOURCE_DIR;
const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/schedvideo_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

StageRegistry registry() {
  StageRegistry r;
  video::register_stages(r);
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

// A per-frame model on 4 frames of 32x32, labelled by the item's class; one epoch.
std::string tiny_config(int64_t test_clips) {
  return R"({"task": "video", "name": "tiny-video", "seed": 5,
    "data": {"generate": {"kind": "moving-fashion-mnist", "label": "class", "clips": 160,
                          "test_clips": )" +
         std::to_string(test_clips) + R"(, "source_dir": ")" + kFashionDir + R"("},
             "frames": 4, "height": 32, "width": 32, "validation_fraction": 0.1},
    "model": {"layers": [
      {"type": "frames_to_batch"},
      {"type": "conv", "filters": 6, "kernel": 3, "stride": 2, "padding": 1, "activation": "relu"},
      {"type": "global_avgpool"},
      {"type": "temporal_avgpool"}]},
    "train": {"epochs": 1, "batch_size": 16, "eval_batch_size": 32,
              "optimizer": {"type": "adam", "lr": 0.003}}})";
}

const char* kPipeline = R"({"name": "vid", "task": "video", "stages": [
    {"name": "prep", "kind": "prep", "config": {"config": "video.json"}},
    {"name": "train", "kind": "train", "inputs": ["prep"]},
    {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]},
    {"name": "score", "kind": "batch-score", "inputs": ["train", "prep"]}]})";

TEST(VideoPipelineStages, TheShippedPipelineParsesAndPlans) {
  const std::string dir = temp_dir("plan");
  const PipelineSpec s = load_pipeline_spec(kSource + "/pipelines/video/pipeline.json");
  RunOptions o;
  o.runs_dir = dir + "/runs";
  // Planning validates every stage's config and reads the task config; it creates nothing.
  const std::vector<PlannedStage> plan = plan_pipeline(s, registry(), o);
  ASSERT_EQ(plan.size(), 4u);
  for (const PlannedStage& st : plan) EXPECT_EQ(st.state, StageState::Pending);
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs"));
}

TEST(VideoPipelineStages, PrepTrainEvaluateScoreThenARerunFromTheCache) {
  const std::string missing =
      test::missing_files(kFashionDir, {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
                          "Debian's dataset-fashion-mnist");
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("run");
  write_file_atomic(dir + "/video.json", tiny_config(48));
  write_file_atomic(dir + "/pipeline.json", kPipeline);
  RunOptions o;
  o.runs_dir = dir + "/runs";
  o.quiet = true;
  o.device = "cpu";
  o.jobs = 1;
  const std::vector<std::string> order = {"prep", "train", "evaluate", "score"};
  const PipelineRun run = run_pipeline(load_pipeline_spec(dir + "/pipeline.json"), registry(), o);
  ASSERT_EQ(stage_names(run), order);
  for (const StageRecord& s : run.stages) {
    EXPECT_TRUE(s.ran) << s.plan.name;
    for (const auto& [name, path] : s.outputs.files)
      EXPECT_TRUE(std::filesystem::is_regular_file(path)) << s.plan.name << " " << name;
  }
  const rapidjson::Document prep = parse(run.stages[0].outputs.result_json);
  EXPECT_EQ(prep["clips"].GetInt64(), 48);
  // "T-shirt/top" cannot name a folder: its clips go in "T-shirt_top".
  const std::string test = prep["test"].GetString();
  int64_t on_disk = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(test))
    on_disk += e.path().extension() == ".tclip";
  EXPECT_EQ(on_disk, 48);
  EXPECT_TRUE(std::filesystem::is_directory(test + "/T-shirt_top"));

  const rapidjson::Document tr = parse(run.stages[1].outputs.result_json);
  const rapidjson::Document ev = parse(run.stages[2].outputs.result_json);
  const rapidjson::Document sc = parse(run.stages[3].outputs.result_json);
  EXPECT_EQ(ev["clips"].GetInt64(), 48);
  // The written clips are the ones training tested on, pixel for pixel (u8 is lossless here).
  EXPECT_DOUBLE_EQ(ev["metrics"]["accuracy"].GetDouble(), tr["test"]["accuracy"].GetDouble());

  // One row per clip; the rows whose top class is their folder's give the evaluated accuracy.
  std::istringstream rows(read_file(run.stages[3].outputs.file("predictions")));
  std::string line;
  std::getline(rows, line);
  EXPECT_EQ(line, "clip\tfolder\tclass\tprobability");
  int64_t n = 0, right = 0;
  while (std::getline(rows, line)) {
    std::vector<std::string> f;
    std::istringstream cells(line);
    for (std::string c; std::getline(cells, c, '\t');) f.push_back(c);
    ASSERT_EQ(f.size(), 4u) << line;
    const double p = std::stod(f[3]);
    EXPECT_GT(p, 0.099) << line;  // the top of 10 classes
    EXPECT_LE(p, 1.0) << line;
    std::string cls = f[2];
    std::replace(cls.begin(), cls.end(), '/', '_');
    right += cls == f[1];
    ++n;
  }
  EXPECT_EQ(n, 48);
  EXPECT_EQ(sc["clips"].GetInt64(), 48);
  EXPECT_NEAR(static_cast<double>(right) / n, ev["metrics"]["accuracy"].GetDouble(), 1e-9);

  const PipelineRun again = run_pipeline(load_pipeline_spec(dir + "/pipeline.json"), registry(), o);
  EXPECT_EQ(stage_names(again), order);
  for (const StageRecord& s : again.stages) EXPECT_FALSE(s.ran) << s.plan.name;
}

TEST(VideoPipelineStages, WithoutTestClipsTheEvaluateStageAsksForAFolder) {
  const std::string missing =
      test::missing_files(kFashionDir, {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
                          "Debian's dataset-fashion-mnist");
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("notest");
  // Generated without test clips: prep has no test folder, so evaluate must name one.
  write_file_atomic(dir + "/video.json", tiny_config(0));
  write_file_atomic(dir + "/pipeline.json", kPipeline);
  RunOptions o;
  o.runs_dir = dir + "/runs";
  o.quiet = true;
  o.device = "cpu";
  o.jobs = 1;
  try {
    run_pipeline(load_pipeline_spec(dir + "/pipeline.json"), registry(), o);
    FAIL() << "evaluated without a test folder";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("evaluate"), std::string::npos) << what;
    EXPECT_NE(what.find("name a folder of clips with \"data\""), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace tessera::scheduler
