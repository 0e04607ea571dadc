// The image and text-generation tasks' stage kinds under the scheduler, end to end on small
// slices of the real datasets (sklearn-digits, tinyshakespeare): the shipped pipelines parse and
// plan, a run trains, evaluates and deploys, a rerun is cached, and the report shows the image
// run's confusion matrix.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "host/core/atomic_file.h"
#include "host/scheduler/commands.h"
#include "host/scheduler/scheduler.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/stages.h"
#include "pipelines/textgen/stages.h"
#include "tests/support/skips.h"

namespace tessera::scheduler {
namespace {

const std::string kSource = TESSERA_SOURCE_DIR;

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/schedtask_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

StageRegistry registry() {
  StageRegistry r;
  image::register_stages(r);
  textgen::register_stages(r);
  return r;
}

TEST(TaskPipelines, TheShippedImageAndTextgenPipelinesParse) {
  for (const char* p : {"/pipelines/image/pipeline.json", "/pipelines/image/digits-pipeline.json",
                        "/pipelines/textgen/pipeline.json"}) {
    const PipelineSpec s = load_pipeline_spec(kSource + p);
    for (const StageSpec& st : s.stages) EXPECT_NO_THROW(registry().find(s.task, st)) << p;
  }
}

TEST(TaskPipelines, DigitsTrainsWithAConfusionMatrixInTheReportAndRerunsFromTheCache) {
  const std::string missing = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("digits");
  // The shipped config on its first 300 training images.
  std::string config = read_file(kSource + "/pipelines/image/sklearn-digits.json");
  const std::string classes = "\"classes\": 10";
  ASSERT_NE(config.find(classes), std::string::npos);
  config.replace(config.find(classes), classes.size(), classes + ", \"max_train_images\": 300");
  write_file_atomic(dir + "/digits.json", config);
  const std::string spec = dir + "/pipeline.json";
  write_file_atomic(spec, R"({"name": "digits", "task": "image", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "digits.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"], "config": {"epochs": 1}},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"],
       "config": {"images": ")" +
                              find_local_dataset_file("sklearn-digits", "digits.csv.gz") +
                              R"("}}]})");
  RunOptions o;
  o.runs_dir = dir + "/runs";
  o.quiet = true;
  o.device = "cpu";
  const PipelineRun run = run_pipeline(load_pipeline_spec(spec), registry(), o);
  ASSERT_EQ(run.stages.size(), 3u);
  EXPECT_NE(run.result_json.find("confusion_matrix"), std::string::npos);
  const std::string html = render_report_html(run.run_dir);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find("macro_f1"), std::string::npos);  // every numeric metric is listed
  // metrics.jsonl came up to the run directory: one epoch, one curve point.
  EXPECT_NE(read_file(run.run_dir + "/metrics.jsonl").find("\"epoch\":1"), std::string::npos);
  for (const StageRecord& s : run_pipeline(load_pipeline_spec(spec), registry(), o).stages)
    EXPECT_FALSE(s.ran) << s.plan.name;
}

TEST(TaskPipelines, TextgenTrainsEvaluatesOnTheHeldOutTextAndSamples) {
  const std::string missing = test::missing_dataset("tinyshakespeare", {"input.txt"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("textgen");
  write_file_atomic(dir + "/tiny.json", R"({"task": "textgen", "name": "tiny", "seed": 1,
      "device": "cpu",
      "data": {"dataset": "tinyshakespeare", "file": "input.txt", "max_chars": 20000},
      "model": {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1},
      "train": {"epochs": 1, "batch_size": 8, "seq_len": 16, "runs_dir": "runs"}})");
  write_file_atomic(dir + "/pipeline.json", R"({"name": "tg", "task": "textgen", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "tiny.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]},
      {"name": "sample", "kind": "batch-score", "inputs": ["train"],
       "config": {"prompts": ["ROMEO:"], "length": 20}}]})");
  RunOptions o;
  o.runs_dir = dir + "/runs";
  o.quiet = true;
  const PipelineRun run = run_pipeline(load_pipeline_spec(dir + "/pipeline.json"), registry(), o);
  ASSERT_EQ(run.stages.size(), 4u);
  // The held-out text is the last 10% of the 20,000 characters, cut at a line start.
  const std::string validation = read_file(run.stages[0].outputs.file("validation"));
  EXPECT_GT(validation.size(), 1500u);
  EXPECT_LE(validation.size(), 2000u);
  EXPECT_NE(run.stages[2].outputs.result_json.find("perplexity"), std::string::npos)
      << run.stages[2].outputs.result_json;
  const std::string samples = read_file(run.stages[3].outputs.file("samples"));
  EXPECT_EQ(samples.rfind("ROMEO:", 0), 0u) << samples;
  EXPECT_GT(samples.size(), 20u);
}

}  // namespace
}  // namespace tessera::scheduler
