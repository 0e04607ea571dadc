// Resumable DLRM training in the behaviour pipeline, on a slice of uci-adult (found through the
// dataset registry): a run stopped after an epoch and resumed from its checkpoint ends with every
// tensor of the model file, of the final checkpoint (tables, sparse and dense optimizer state)
// and every metric identical to an uninterrupted run with the same seed, under each sparse
// optimizer; a corrupt, truncated, incomplete or foreign checkpoint is refused naming the file.
// Through the binary: `tessera train CONFIG --resume RUN_DIR` killed with SIGKILL after its first
// checkpoint and run again ends with the uninterrupted run's model file byte for byte.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/behaviour/behaviour.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kSource = TESSERA_SOURCE_DIR;
constexpr int kEpochs = 3;

std::string replaced(std::string s, const std::string& a, const std::string& b) {
  auto p = s.find(a);
  if (p == std::string::npos) throw std::runtime_error("config lacks " + a);
  return s.replace(p, a.size(), b);
}

void slice(const std::string& src, const std::string& dst, int skip, int n) {
  std::ifstream in(src);
  std::ofstream out(dst);
  std::string line;
  for (int i = 0; i < skip && std::getline(in, line); ++i) {
  }
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

class DlrmResume : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ::setenv("TESSERA_SOURCE_DIR", TESSERA_SOURCE_DIR, /*overwrite=*/0);
    const std::string missing = test::missing_dataset("uci-adult", {"adult.data", "adult.test"});
    if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
    // The files are here: a checksum mismatch is a failure.
    ResolveOptions ro;
    ro.download = DownloadPolicy::Never;
    const std::string train = resolve_dataset_file("uci-adult", "adult.data", ro);
    const std::string test = resolve_dataset_file("uci-adult", "adult.test", ro);
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name)
      if (c == '/') c = '_';  // parameterised tests are named "Test/0"
    std::string base = ::testing::TempDir();
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    work_ = base + "/dlrm_resume." + std::to_string(::getpid()) + "." + name;
    // Keyed by pid: a dead process's directory may remain under a reused pid.
    std::filesystem::remove_all(work_);
    make_directories(work_);
    slice(train, work_ + "/train.csv", 0, 1500);
    slice(test, work_ + "/test.csv", 1, 400);
  }
  void TearDown() override {
    if (!HasFailure() && !work_.empty()) std::filesystem::remove_all(work_);
  }

  // The shipped DLRM config on the slice, with `sparse` as its sparse optimizer and `lr` as the
  // dense one's learning rate.
  std::string config(const std::string& sparse, const std::string& lr = "0.001") {
    std::string c = read_file(kSource + "/pipelines/behaviour/uci-adult-dlrm.json");
    c = replaced(c, "\"dataset\": \"uci-adult\",", "");
    c = replaced(c, "\"adult.data\"", "\"" + work_ + "/train.csv\"");
    c = replaced(c, "{\"path\": \"adult.test\", \"skip_lines\": 1}", "\"" + work_ + "/test.csv\"");
    c = replaced(c, "{\"type\": \"rowwise_adagrad\", \"lr\": 0.05, \"eps\": 1e-8}", sparse);
    c = replaced(c, "\"epochs\": 15", "\"epochs\": " + std::to_string(kEpochs));
    c = replaced(c, "\"lr\": 0.001", "\"lr\": " + lr);
    const std::string path = work_ + "/config-" + std::to_string(++configs_) + ".json";
    write_file_atomic(path, c);
    return path;
  }

  behaviour::Result train(const std::string& cfg, const std::string& run_dir, int64_t stop = -1) {
    behaviour::TrainOptions o;
    o.quiet = true;
    o.device = "cpu";
    o.resume = run_dir;
    o.stop_after_epochs = stop;
    return behaviour::train(cfg, o);
  }

  // Trains `cfg` into `run` for one epoch and stops; returns the checkpoint's path.
  std::string stopped_run(const std::string& cfg, const std::string& run) {
    rapidjson::Document d = parse(train(cfg, run, 1).json);
    EXPECT_EQ(d["stopped_after_epoch"].GetInt64(), 1);
    EXPECT_FALSE(std::ifstream(run + "/model.tsm").good()) << "a stopped run wrote its model";
    return run + "/checkpoint.tsc";
  }

  // The resumption of `run` with `cfg` must fail with a message holding every one of `parts`.
  void expect_refused(const std::string& cfg, const std::string& run,
                      std::initializer_list<std::string> parts) {
    try {
      train(cfg, run);
      ADD_FAILURE() << "resuming " << run << " did not fail";
    } catch (const Error& e) {
      for (const std::string& p : parts)
        EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << p << " in: " << e.what();
    }
  }

  std::string work_;
  int configs_ = 0;
};

// Every tensor of two archives: same names, dtypes, shapes and bytes.
void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
  const Archive a = load_archive(a_path), b = load_archive(b_path);
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << a_path << " vs " << b_path;
  for (const auto& [name, ta] : a.tensors) {
    auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name << " missing from " << b_path;
    const Tensor& tb = it->second;
    ASSERT_EQ(ta.dtype(), tb.dtype()) << name;
    ASSERT_EQ(ta.shape(), tb.shape()) << name;
    EXPECT_EQ(std::memcmp(ta.raw(), tb.raw(), ta.bytes()), 0) << name << " differs";
  }
}

// Every logged figure but the timings, epoch by epoch, as exact text.
std::string metrics_fingerprint(const std::string& run_dir) {
  std::ostringstream s;
  s.precision(17);
  std::istringstream lines(read_file(run_dir + "/metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) {
    rapidjson::Document d = parse(line);
    const auto& v = d["validation"];
    s << "epoch " << d["epoch"].GetInt64() << " step " << d["step"].GetInt64() << " loss "
      << d["train_loss"].GetDouble() << " lr " << d["lr"].GetDouble() << " auc "
      << v["auc"].GetDouble() << " logloss " << v["logloss"].GetDouble() << " accuracy "
      << v["accuracy"].GetDouble() << "\n";
  }
  return s.str();
}

std::string result_fingerprint(const rapidjson::Document& d) {
  std::ostringstream s;
  s.precision(17);
  s << "epochs " << d["epochs"].GetInt64() << " steps " << d["steps"].GetInt64() << " best "
    << d["best_epoch"].GetInt64();
  for (const char* part : {"validation", "test"})
    for (const char* m : {"auc", "logloss", "accuracy", "ece"})
      s << " " << part << "." << m << " " << d[part][m].GetDouble();
  return s.str();
}

TEST_P(DlrmResume, StoppedAndResumedEqualsUninterrupted) {
  const std::string cfg = config(GetParam());
  const std::string ref_dir = work_ + "/ref", run_dir = work_ + "/resumed";
  rapidjson::Document ref = parse(train(cfg, ref_dir).json);
  ASSERT_EQ(ref["epochs"].GetInt64(), kEpochs);
  EXPECT_GT(ref["test"]["auc"].GetDouble(), 0.7);  // it learns (chance is 0.5)

  stopped_run(cfg, run_dir);
  rapidjson::Document res = parse(train(cfg, run_dir).json);
  // Resumed, not retrained from scratch (which would match the reference trivially).
  EXPECT_EQ(res["resumed_from_epoch"].GetInt64(), 1);
  EXPECT_EQ(result_fingerprint(res), result_fingerprint(ref));
  EXPECT_EQ(metrics_fingerprint(run_dir), metrics_fingerprint(ref_dir));
  const std::string m = metrics_fingerprint(ref_dir);
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), kEpochs) << m;
  expect_same_tensors(ref_dir + "/model.tsm", run_dir + "/model.tsm");
  // The last checkpoints too: dense and sparse optimizer state, step counters, best weights.
  expect_same_tensors(ref_dir + "/checkpoint.tsc", run_dir + "/checkpoint.tsc");
  const Archive ck = load_archive(run_dir + "/checkpoint.tsc");
  EXPECT_EQ(ck.tensors.at("state/tables/step").data<int64_t>()[0], ref["steps"].GetInt64());
  EXPECT_EQ(ck.tensors.count("state/tables/weights"), 1u);
}

INSTANTIATE_TEST_SUITE_P(SparseOptimizers, DlrmResume,
                         ::testing::Values("{\"type\": \"rowwise_adagrad\", \"lr\": 0.05}",
                                           "{\"type\": \"adagrad\", \"lr\": 0.05}",
                                           "{\"type\": \"lazy_adam\", \"lr\": 0.01}"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0   ? "RowwiseAdagrad"
                                              : info.index == 1 ? "Adagrad"
                                                                : "LazyAdam");
                         });

class DlrmCheckpointErrors : public DlrmResume {};

TEST_F(DlrmCheckpointErrors, CorruptOrTruncatedCheckpointIsRefused) {
  const std::string cfg = config("{\"type\": \"lazy_adam\", \"lr\": 0.01}");
  const std::string run = work_ + "/run";
  const std::string ck = stopped_run(cfg, run);
  const std::string good = read_file(ck);
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x5a;
  write_file_atomic(ck, bad);
  expect_refused(cfg, run, {ck, "not a valid tessera file"});
  write_file_atomic(ck, good.substr(0, good.size() - 100));
  expect_refused(cfg, run, {ck, "not a valid tessera file"});
}

TEST_F(DlrmCheckpointErrors, CheckpointOfAnotherConfigIsRefused) {
  const std::string run = work_ + "/run";
  const std::string ck = stopped_run(config("{\"type\": \"adagrad\", \"lr\": 0.05}"), run);
  expect_refused(config("{\"type\": \"adagrad\", \"lr\": 0.05}", "0.002"), run,
                 {ck, "another configuration"});
  expect_refused(config("{\"type\": \"lazy_adam\", \"lr\": 0.05}"), run,
                 {ck, "another configuration"});
}

TEST_F(DlrmCheckpointErrors, CheckpointWithoutTheSparseOptimizerStateIsRefused) {
  const std::string cfg = config("{\"type\": \"adagrad\", \"lr\": 0.05}");
  const std::string run = work_ + "/run";
  const std::string ck = stopped_run(cfg, run);
  // The same checkpoint with the Adagrad accumulators dropped (a valid archive).
  Archive a = load_archive(ck);
  ASSERT_EQ(a.tensors.erase("state/tables/state0"), 1u);
  save_archive(ck, a.meta_json, {a.tensors.begin(), a.tensors.end()});
  expect_refused(cfg, run, {ck, "embedding state lacks 'state0'", "adagrad"});
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Runs `argv` and kills it with SIGKILL once `file` exists; false when it ended first.
bool killed_once_written(const std::vector<std::string>& argv, const std::string& file) {
  const pid_t pid = ::fork();
  EXPECT_GE(pid, 0);
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (std::chrono::steady_clock::now() < deadline && !std::filesystem::exists(file)) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  return true;
}

class DlrmResumeCli : public DlrmResume {};

TEST_F(DlrmResumeCli, KilledRunResumesBitIdenticallyThroughTheBinary) {
  // The whole of adult.data, so an epoch takes long enough (~0.1-0.4 s) for the kill to land
  // inside the run.
  ResolveOptions ro;
  ro.download = DownloadPolicy::Never;
  slice(resolve_dataset_file("uci-adult", "adult.data", ro), work_ + "/train.csv", 0, 1 << 20);
  const std::string cfg = config("{\"type\": \"lazy_adam\", \"lr\": 0.01}");
  const std::string binary = std::string(TESSERA_BINARY_DIR) + "/tessera";
  const std::string whole = work_ + "/whole", killed = work_ + "/killed";
  auto train_cli = [&](const std::string& run) {
    return test::run_program(
        {binary, "train", cfg, "--resume", run, "--device", "cpu", "--quiet", "--json"});
  };
  const test::ProgramResult ref = train_cli(whole);
  ASSERT_EQ(ref.status, 0) << ref.err;
  ASSERT_TRUE(
      killed_once_written({binary, "train", cfg, "--resume", killed, "--device", "cpu", "--quiet"},
                          killed + "/checkpoint.tsc"))
      << "the run ended before it could be killed";
  ASSERT_FALSE(std::ifstream(killed + "/model.tsm").good()) << "training finished before the kill";

  const test::ProgramResult resumed = train_cli(killed);
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const rapidjson::Document r = parse(last_line(resumed.out)), w = parse(last_line(ref.out));
  EXPECT_GE(r["resumed_from_epoch"].GetInt64(), 1);
  EXPECT_LT(r["resumed_from_epoch"].GetInt64(), kEpochs);
  EXPECT_EQ(result_fingerprint(r), result_fingerprint(w));
  EXPECT_EQ(metrics_fingerprint(killed), metrics_fingerprint(whole));
  EXPECT_EQ(read_file(killed + "/model.tsm"), read_file(whole + "/model.tsm"));
  expect_same_tensors(whole + "/checkpoint.tsc", killed + "/checkpoint.tsc");
}

}  // namespace
}  // namespace tessera
