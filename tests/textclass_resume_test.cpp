// Text classification resumes after kill -9 exactly where it stopped, through the binary: a run
// killed with SIGKILL once its first checkpoint exists, continued with `tessera train CONFIG
// --resume RUN_DIR`, ends with the uninterrupted run's model file byte for byte and its metrics
// (every line of metrics.jsonl but the timings, the test figures).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "host/core/atomic_file.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace {

namespace fs = std::filesystem;
const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// metrics.jsonl without the fields that measure time.
std::vector<std::string> metrics_without_timings(const std::string& path) {
  std::vector<std::string> out;
  const std::string text = tessera::read_file(path);
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    rapidjson::Document d;
    d.Parse(text.substr(at, nl - at).c_str());
    EXPECT_TRUE(d.IsObject()) << path;
    if (d.IsObject())
      for (const char* k : {"epoch_seconds", "train_tokens_per_s", "elapsed_seconds"})
        d.RemoveMember(k);
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    d.Accept(w);
    out.emplace_back(b.GetString());
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

TEST(TextclassResume, KilledRunResumesBitIdenticallyThroughTheBinary) {
  const std::string missing = tessera::test::missing_dataset("sms-spam", {"SMSSpamCollection"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = ::testing::TempDir() + "textclass_resume." + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config = dir + "/config.json";
  // Long enough an epoch (~0.3-1 s) for the kill to land inside the run; dropout on, so the
  // resumed run must also restore the step its dropout seeds come from.
  tessera::write_file_atomic(config, R"({
    "task": "textclass", "name": "resume", "seed": 5, "device": "cpu",
    "data": {"dataset": "sms-spam", "train": "SMSSpamCollection", "max_rows": 2400,
             "validation_fraction": 0.125, "test_fraction": 0.125, "skip_lines": 0,
             "max_tokens": 40, "min_count": 2},
    "model": {"embedding_dim": 24, "hidden_size": 24, "bidirectional": true, "pooling": "max",
              "dropout": 0.2},
    "train": {"epochs": 5, "batch_size": 32, "patience": 0, "log_every": 100000,
              "optimizer": {"type": "adam", "lr": 0.01}}
  })");
  const tessera::test::ProgramResult ref = tessera::test::run_program(
      {kBinary, "train", config, "--run-dir", dir + "/whole", "--quiet", "--json"});
  ASSERT_EQ(ref.status, 0) << ref.err;

  const std::string killed = dir + "/killed";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    ::execl(kBinary.c_str(), "tessera", "train", config.c_str(), "--run-dir", killed.c_str(),
            "--quiet", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  bool ended = false;
  while (std::chrono::steady_clock::now() < deadline && !fs::exists(killed + "/checkpoint.tsc")) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ended = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_FALSE(ended) << "the run ended before it could be killed";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_FALSE(fs::exists(killed + "/model.tsm")) << "training finished before the kill";

  const tessera::test::ProgramResult resumed = tessera::test::run_program(
      {kBinary, "train", config, "--resume", killed, "--quiet", "--json"});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  rapidjson::Document r, w;
  r.Parse(last_line(resumed.out).c_str());
  w.Parse(last_line(ref.out).c_str());
  ASSERT_TRUE(r.IsObject() && w.IsObject()) << resumed.out;
  EXPECT_GE(r["resumed_from_epoch"].GetInt64(), 1);
  EXPECT_LT(r["resumed_from_epoch"].GetInt64(), 5);
  EXPECT_EQ(r["steps"].GetInt64(), w["steps"].GetInt64());
  EXPECT_EQ(r["validation_accuracy"].GetDouble(), w["validation_accuracy"].GetDouble());
  EXPECT_EQ(r["test"]["accuracy"].GetDouble(), w["test"]["accuracy"].GetDouble());
  EXPECT_EQ(r["test"]["loss"].GetDouble(), w["test"]["loss"].GetDouble());
  EXPECT_EQ(tessera::read_file(killed + "/model.tsm"),
            tessera::read_file(dir + "/whole/model.tsm"));
  EXPECT_EQ(metrics_without_timings(killed + "/metrics.jsonl"),
            metrics_without_timings(dir + "/whole/metrics.jsonl"));
  // A checkpoint of another config is refused by name, not resumed.
  tessera::write_file_atomic(config,
                             tessera::read_file(config).replace(
                                 tessera::read_file(config).find("\"seed\": 5"), 9, "\"seed\": 6"));
  const tessera::test::ProgramResult other = tessera::test::run_program(
      {kBinary, "train", config, "--resume", killed, "--quiet", "--json"});
  EXPECT_EQ(other.status, 1) << other.err;
  EXPECT_NE(other.err.find("another configuration"), std::string::npos) << other.err;
  if (!HasFailure()) fs::remove_all(dir);
}

}  // namespace
