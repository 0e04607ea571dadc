// The behaviour pipeline through the tessera binary: `tessera run` end to end on the synthetic
// data, --dry-run before and after, and resumption: a run killed with SIGKILL during training,
// rerun, ends with bit-identical metrics to an uninterrupted run with the same seed (the MLP on
// synthetic data, and a DLRM on uci-adult).
#include <dirent.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host/core/atomic_file.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/sched_resume_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

struct Exec {
  int code;
  std::string out;
};
// The tessera CLI with `args` (no shell), stdout and stderr together.
Exec exec(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  test::ProgramOptions o;
  o.merge_stderr = true;
  test::ProgramResult r = test::run_program(args, o);
  return {r.status, std::move(r.out)};
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto p = s.find_last_of('\n');
  return p == std::string::npos ? s : s.substr(p + 1);
}

// The first directory under `dir` whose name starts with `prefix`; "" when none.
std::string find_dir(const std::string& dir, const std::string& prefix) {
  std::string found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) found = dir + "/" + e->d_name;
    ::closedir(d);
  }
  return found;
}

std::string write_pipeline(const std::string& dir, int rows, int epochs) {
  const std::string path = dir + "/pipeline.json";
  write_file_atomic(path, R"({"name": "syn", "task": "behaviour", "stages": [
    {"name": "prep", "kind": "prep", "config": {"source": "synthetic", "synthetic_rows": )" +
                              std::to_string(rows) + R"(}},
    {"name": "train", "kind": "train", "inputs": ["prep"], "config": {"epochs": )" +
                              std::to_string(epochs) + R"(, "device": "cpu"}},
    {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]},
    {"name": "score", "kind": "batch-score", "inputs": ["train", "prep"]}]})");
  return path;
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

// Every validation figure of every epoch, and the final test metrics, as exact text.
std::string metrics_fingerprint(const std::string& run_dir, const rapidjson::Document& result) {
  std::ostringstream s;
  s.precision(17);
  std::istringstream lines(read_file(run_dir + "/metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) {
    rapidjson::Document d = parse(line);
    s << "epoch " << d["epoch"].GetInt64() << " loss " << d["train_loss"].GetDouble() << " auc "
      << d["validation"]["auc"].GetDouble() << " logloss " << d["validation"]["logloss"].GetDouble()
      << "\n";
  }
  const auto& m = result["stages"]["evaluate"]["result"]["metrics"];
  s << "test auc " << m["auc"].GetDouble() << " logloss " << m["logloss"].GetDouble()
    << " accuracy " << m["accuracy"].GetDouble() << "\n";
  return s.str();
}

TEST(SchedulerBehaviour, RunsEndToEndThenEverythingIsCached) {
  const std::string dir = temp_dir("e2e");
  const std::string spec = write_pipeline(dir, 2000, 2);
  const std::string runs = dir + "/runs";
  Exec dry = exec({"run", spec, "--runs-dir", runs, "--dry-run", "--json"});
  ASSERT_EQ(dry.code, 0) << dry.out;
  EXPECT_EQ(dry.out.find("\"state\":\"cached\""), std::string::npos) << dry.out;
  Exec r = exec({"run", spec, "--runs-dir", runs, "--quiet", "--json"});
  ASSERT_EQ(r.code, 0) << r.out;
  rapidjson::Document d = parse(last_line(r.out));
  const std::string run_dir = d["run_dir"].GetString();
  EXPECT_FALSE(d["stages"]["train"]["cached"].GetBool());
  EXPECT_GT(d["stages"]["evaluate"]["result"]["metrics"]["auc"].GetDouble(), 0.6);
  EXPECT_EQ(d["stages"]["score"]["result"]["rows"].GetInt64(), 500);
  EXPECT_EQ(d["report"].GetString(), run_dir + "/report.html");
  for (const char* f : {"report.html", "curves.png", "train/model.tsm", "train/checkpoint.tsc",
                        "score/scores.csv", "pipeline.json", "environment.json", "metrics.jsonl",
                        "config.json", "result.json", "stages.jsonl"})
    EXPECT_TRUE(exists(run_dir + "/" + f)) << f;
  dry = exec({"run", spec, "--runs-dir", runs, "--dry-run", "--json"});
  ASSERT_EQ(dry.code, 0) << dry.out;
  rapidjson::Document p = parse(last_line(dry.out));
  for (const auto& st : p["stages"].GetArray()) EXPECT_STREQ(st["state"].GetString(), "cached");
  r = exec({"run", spec, "--runs-dir", runs, "--quiet", "--json"});
  ASSERT_EQ(r.code, 0) << r.out;
  rapidjson::Document again = parse(last_line(r.out));
  for (const char* st : {"prep", "train", "evaluate", "score"})
    EXPECT_TRUE(again["stages"][st]["cached"].GetBool()) << st;

  Exec list = exec({"runs", "--runs-dir", dir + "/runs", "--json"});
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_EQ(parse(last_line(list.out))["runs"].GetArray().Size(), 2u) << list.out;
  Exec rep = exec({"report", run_dir});
  ASSERT_EQ(rep.code, 0) << rep.out;
  const std::string html = read_file(run_dir + "/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no network
}

TEST(SchedulerBehaviour, TheShippedPipelinePlansWithOrWithoutTheDataset) {
  const std::string dir = temp_dir("shipped");
  Exec dry = exec({"run", std::string(TESSERA_SOURCE_DIR) + "/pipelines/behaviour/pipeline.json",
                   "--runs-dir", dir + "/runs", "--dry-run", "--json"});
  ASSERT_EQ(dry.code, 0) << dry.out;
  rapidjson::Document p = parse(last_line(dry.out));
  ASSERT_EQ(p["stages"].GetArray().Size(), 4u);
  for (const auto& st : p["stages"].GetArray()) EXPECT_STREQ(st["state"].GetString(), "pending");
  EXPECT_FALSE(exists(dir + "/runs"));  // a dry run creates nothing
}

TEST(SchedulerBehaviour, BadStageConfigFailsBeforeAnythingRuns) {
  const std::string dir = temp_dir("badcfg");
  const std::string path = dir + "/p.json";
  write_file_atomic(path, R"({"name": "syn", "task": "behaviour", "stages": [
    {"name": "prep", "kind": "prep", "config": {"source": "synthetic"}},
    {"name": "train", "kind": "train", "inputs": ["prep"], "config": {"epoch": 3}}]})");
  Exec r = exec({"run", path, "--runs-dir", dir + "/runs"});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("stage 'train' config"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch"), std::string::npos) << r.out;
  EXPECT_FALSE(exists(dir + "/runs/cache"));
}

// Runs `spec` in its own runs dir `runs` and kills it with SIGKILL once its train stage's first
// checkpoint exists; returns the train stage's directory.
std::string run_killed_after_first_checkpoint(const std::string& spec, const std::string& runs) {
  const pid_t pid = ::fork();
  EXPECT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::execl(kBinary.c_str(), "tessera", "run", spec.c_str(), "--runs-dir", runs.c_str(), "--quiet",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string train_dir;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (train_dir.empty()) train_dir = find_dir(runs + "/cache", "train-");
    if (!train_dir.empty() && exists(train_dir + "/checkpoint.tsc")) break;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ADD_FAILURE() << "the run ended before it could be killed";
      return train_dir;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  EXPECT_FALSE(exists(train_dir + "/manifest.json")) << "training finished before the kill";
  EXPECT_FALSE(exists(train_dir + "/model.tsm"));
  return train_dir;
}

// The reference run of `spec`, then a run killed during training and rerun: the rerun resumes
// (from epoch 1..epochs-1) and ends with the reference's metrics, bit for bit.
void expect_killed_run_resumes_exactly(const std::string& dir, const std::string& spec,
                                       int epochs) {
  Exec ref = exec({"run", spec, "--runs-dir", dir + "/ref", "--quiet", "--json"});
  ASSERT_EQ(ref.code, 0) << ref.out;
  rapidjson::Document ref_d = parse(last_line(ref.out));
  const std::string expected = metrics_fingerprint(ref_d["run_dir"].GetString(), ref_d);

  const std::string runs = dir + "/killed";
  run_killed_after_first_checkpoint(spec, runs);
  if (::testing::Test::HasFailure()) return;
  Exec resumed = exec({"run", spec, "--runs-dir", runs, "--quiet", "--json"});
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  rapidjson::Document d = parse(last_line(resumed.out));
  const int64_t from = d["stages"]["train"]["result"]["resumed_from_epoch"].GetInt64();
  EXPECT_GE(from, 1);
  EXPECT_LT(from, epochs);
  EXPECT_TRUE(d["stages"]["prep"]["cached"].GetBool());
  EXPECT_FALSE(d["stages"]["train"]["cached"].GetBool());
  EXPECT_EQ(metrics_fingerprint(d["run_dir"].GetString(), d), expected);
}

TEST(SchedulerBehaviour, KilledTrainingResumesToBitIdenticalMetrics) {
  const std::string dir = temp_dir("kill");
  // Big enough that an epoch takes a while (~0.1-0.3 s on the CPU), so the kill lands mid-run.
  const int kEpochs = 6;
  expect_killed_run_resumes_exactly(dir, write_pipeline(dir, 40000, kEpochs), kEpochs);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

// The same for a DLRM (embedding tables + sparse optimizer state in the checkpoint) on the
// whole of uci-adult (~0.1-0.4 s an epoch on the CPU).
TEST(SchedulerBehaviour, KilledDlrmTrainingResumesToBitIdenticalMetrics) {
  const std::string config =
      std::string(TESSERA_SOURCE_DIR) + "/pipelines/behaviour/uci-adult-dlrm.json";
  const std::string dir = temp_dir("kill_dlrm");
  const std::string probe = dir + "/probe.json";
  write_file_atomic(probe, R"({"name": "probe", "task": "behaviour", "stages": [
    {"name": "prep", "kind": "prep", "config": {"source": "dataset", "config": ")" +
                               config + R"("}}]})");
  const std::string missing = test::missing_dataset("uci-adult", {"adult.data", "adult.test"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  // The data is here, so the dry run must plan (the CLI finds it as this process does).
  const Exec dry = exec({"run", probe, "--runs-dir", dir + "/probe", "--dry-run"});
  ASSERT_EQ(dry.code, 0) << dry.out;
  const int kEpochs = 4;
  const std::string spec = dir + "/pipeline.json";
  write_file_atomic(spec, R"({"name": "dlrm", "task": "behaviour", "stages": [
    {"name": "prep", "kind": "prep", "config": {"source": "dataset", "config": ")" +
                              config +
                              R"("}},
    {"name": "train", "kind": "train", "inputs": ["prep"], "config": {"epochs": )" +
                              std::to_string(kEpochs) + R"(, "device": "cpu"}},
    {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]}]})");
  expect_killed_run_resumes_exactly(dir, spec, kEpochs);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
