// The command line through the binary: the task registry lists every task in --help, a config is
// dispatched by its "task" and a model file by its header, and with --json an error is one JSON
// object saying its kind, the file and, for a config, the line, column and JSON path of the first
// problem, with the exit codes main.cpp documents (2 usage/config, 1 job failure).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/train/repeats.h"
#include "pipelines/task.h"
#include "tests/support/run_program.h"

namespace {

namespace fs = std::filesystem;
using tessera::test::run_program;
const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

std::string scratch(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "cli_test." + std::to_string(::getpid());
  fs::create_directories(dir);
  return dir + "/" + name;
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// The "error" object of a --json run's last stdout line.
rapidjson::Document error_object(const std::string& out) {
  rapidjson::Document d;
  d.Parse(last_line(out).c_str());
  EXPECT_TRUE(d.IsObject() && d.HasMember("error")) << out;
  return d;
}

TEST(Cli, HelpListsEveryRegisteredTaskWithItsVerbs) {
  const auto r = run_program({kBinary, "--help"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto& registry = tessera::tasks();
  ASSERT_EQ(registry.all().size(), 7u);
  for (const tessera::Task& t : registry.all()) {
    EXPECT_NE(r.out.find("  " + t.name + " "), std::string::npos) << t.name;
    EXPECT_TRUE(static_cast<bool>(t.train)) << t.name;
    for (const auto& [verb, fn] : t.model_verbs) {
      EXPECT_TRUE(static_cast<bool>(fn)) << t.name << " " << verb;
      EXPECT_NE(r.out.find(verb), std::string::npos) << verb;
    }
  }
}

TEST(Cli, ConfigErrorAsJsonNamesFileLineColumnAndPath) {
  const std::string cfg = scratch("bad_epochs.json");
  tessera::write_file_atomic(
      cfg, "{\n  \"task\": \"behaviour\",\n  \"train\": {\"epochs\": \"x\"}\n}\n");
  const auto r = run_program({kBinary, "train", cfg, "--json", "--quiet"});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  const rapidjson::Document d = error_object(r.out);
  const auto& e = d["error"];
  EXPECT_STREQ(e["kind"].GetString(), "config");
  EXPECT_EQ(std::string(e["file"].GetString()), cfg);
  // The first problem in file order: "data" is missing (reported at the object's start, 1:1),
  // before the bad epochs on line 3.
  EXPECT_EQ(e["line"].GetInt(), 1);
  EXPECT_STREQ(e["json_path"].GetString(), "$.data");
  const std::string message = e["message"].GetString();
  EXPECT_NE(message.find(":3:"), std::string::npos) << message;
  EXPECT_NE(message.find("$.train.epochs"), std::string::npos) << message;
}

TEST(Cli, UnknownTaskListsTheRegisteredOnes) {
  const std::string cfg = scratch("unknown_task.json");
  tessera::write_file_atomic(cfg, "{\"task\": \"forecast\"}\n");
  const auto r = run_program({kBinary, "train", cfg, "--json"});
  EXPECT_EQ(r.status, 2);
  const rapidjson::Document d = error_object(r.out);
  const auto& e = d["error"];
  EXPECT_EQ(e["line"].GetInt(), 1);
  EXPECT_EQ(e["column"].GetInt(), 10);
  EXPECT_STREQ(e["json_path"].GetString(), "$.task");
  const std::string message = e["message"].GetString();
  for (const std::string& name : tessera::tasks().names())
    EXPECT_NE(message.find('"' + name + '"'), std::string::npos) << name;
}

TEST(Cli, ANonModelFileIsAnIoErrorNamingIt) {
  const std::string notmodel = scratch("not_a_model.tsm");
  tessera::write_file_atomic(notmodel, "{\"task\": \"behaviour\"}\n");
  const auto r = run_program({kBinary, "evaluate", notmodel, "data.csv", "--json"});
  EXPECT_EQ(r.status, 1);
  const rapidjson::Document d = error_object(r.out);
  EXPECT_STREQ(d["error"]["kind"].GetString(), "io");
  EXPECT_EQ(std::string(d["error"]["file"].GetString()), notmodel);
}

TEST(Cli, VerbsComeFromTheRegistryAndPositionalsAreCounted) {
  // A textgen model answers generate and perplexity beside evaluate and predict (every task
  // does), not recommend.
  const auto& textgen = tessera::tasks().find("textgen", "test");
  EXPECT_EQ(textgen.model_verbs.count("recommend"), 0u);
  EXPECT_EQ(textgen.model_verbs.count("generate"), 1u);
  for (const tessera::Task& t : tessera::tasks().all())
    for (const char* verb : {"evaluate", "predict"})
      EXPECT_EQ(t.model_verbs.count(verb), 1u) << t.name << " " << verb;
  const auto r = run_program({kBinary, "train"});
  EXPECT_EQ(r.status, 2);  // a missing CONFIG
  const auto extra = run_program({kBinary, "train", "a.json", "b.json"});
  EXPECT_EQ(extra.status, 2);
}

// --seeds trains once per seed, each run in its own directory with the seed in its resolved
// config, and reports each figure's mean and sample standard deviation over the runs, recomputed
// here from the runs' own results.
TEST(Cli, SeedsTrainOncePerSeedAndReportMeanAndSpread) {
  const std::string dir = scratch("seeds");
  fs::remove_all(dir);
  ASSERT_EQ(run_program({kBinary, "make-synthetic", dir, "--rows", "1500"}).status, 0);
  const auto r = run_program({kBinary, "train", dir + "/config.json", "--seeds", "3,7", "--epochs",
                              "1", "--runs-dir", dir + "/runs", "--quiet", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  rapidjson::Document d;
  d.Parse(last_line(r.out).c_str());
  ASSERT_TRUE(d.IsObject()) << r.out;
  ASSERT_EQ(d["runs"].Size(), 2u);
  double auc[2];
  for (int i = 0; i < 2; ++i) {
    const auto& run = d["runs"][i];
    auc[i] = run["test"]["auc"].GetDouble();
    rapidjson::Document cfg;
    cfg.Parse(tessera::read_file(std::string(run["run_dir"].GetString()) + "/config.json").c_str());
    EXPECT_EQ(cfg["seed"].GetInt(), i == 0 ? 3 : 7);
  }
  EXPECT_NE(d["runs"][0]["run_dir"], d["runs"][1]["run_dir"]);
  EXPECT_NE(auc[0], auc[1]);  // different seeds, different initial weights and split
  EXPECT_DOUBLE_EQ(d["mean"]["test.auc"].GetDouble(), (auc[0] + auc[1]) / 2);
  EXPECT_NEAR(d["std"]["test.auc"].GetDouble(), std::fabs(auc[0] - auc[1]) / std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(d["min"]["test.auc"].GetDouble(), std::min(auc[0], auc[1]));
  EXPECT_NE(r.out.find("test.auc: "), std::string::npos) << r.out;
  // Refused combinations and lists.
  EXPECT_EQ(run_program(
                {kBinary, "train", dir + "/config.json", "--seeds", "1,2", "--run-dir", dir + "/x"})
                .status,
            2);
  EXPECT_EQ(run_program({kBinary, "train", dir + "/config.json", "--seeds", "1,,2"}).status, 2);
}

TEST(Repeats, SeedListsAreCheckedAndStatisticsAreTheSampleOnes) {
  EXPECT_EQ(tessera::train::parse_seed_list("1,2,3"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(tessera::train::parse_seed_list("0"), (std::vector<int64_t>{0}));
  for (const char* bad : {"", "1,", ",1", "1,1", "-1", "1.5", "a", "1 2"})
    EXPECT_THROW(tessera::train::parse_seed_list(bad), tessera::Error) << bad;
  const auto r = tessera::train::summarize_repeats(
      {1, 2, 3}, {{"", R"({"a":{"b":1},"c":[5],"s":"x","n":2})"},
                  {"", R"({"a":{"b":2},"c":[6],"s":"y","n":2})"},
                  {"", R"({"a":{"b":6},"c":[7],"s":"z","n":2})"}});
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  EXPECT_DOUBLE_EQ(d["mean"]["a.b"].GetDouble(), 3.0);
  EXPECT_DOUBLE_EQ(d["std"]["a.b"].GetDouble(), std::sqrt(7.0));  // (4 + 1 + 9) / 2
  EXPECT_DOUBLE_EQ(d["std"]["n"].GetDouble(), 0.0);
  EXPECT_FALSE(d["mean"].HasMember("c"));  // arrays are left out
  EXPECT_FALSE(d["mean"].HasMember("s"));
}

// --time-budget is the Trainer's, so every task takes it (before, only the text tasks did; the
// others refused it): a budget already spent when training starts (it counts from the Trainer's
// start) stops a behaviour run before its first epoch and says so in the result.
TEST(Cli, TimeBudgetStopsAnyTasksTraining) {
  const std::string dir = scratch("budget");
  fs::remove_all(dir);
  ASSERT_EQ(run_program({kBinary, "make-synthetic", dir, "--rows", "3000"}).status, 0);
  const auto r = run_program({kBinary, "train", dir + "/config.json", "--time-budget", "0.000001",
                              "--runs-dir", dir + "/runs", "--quiet", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  rapidjson::Document d;
  d.Parse(last_line(r.out).c_str());
  ASSERT_TRUE(d.IsObject()) << r.out;
  EXPECT_TRUE(d["out_of_time"].GetBool());
  EXPECT_EQ(d["epochs"].GetInt(), 0);
  EXPECT_EQ(d["steps"].GetInt(), 0);
  const auto full = run_program({kBinary, "train", dir + "/config.json", "--epochs", "1",
                                 "--runs-dir", dir + "/runs", "--quiet", "--json"});
  ASSERT_EQ(full.status, 0) << full.err;
  d.Parse(last_line(full.out).c_str());
  EXPECT_FALSE(d["out_of_time"].GetBool());
  EXPECT_EQ(d["epochs"].GetInt(), 1);
  EXPECT_GT(d["steps"].GetInt(), 0);
}

}  // namespace
