// End to end on a slice of uci-adult: train -> model artefact -> evaluate -> predict, through the
// pipeline API and through the tessera binary (exit codes, --json, error messages).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/model_artefact.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kSource = TESSERA_SOURCE_DIR;
const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

// The first `n` data lines of `src` (after `skip` lines) into `dst`.
void slice(const std::string& src, const std::string& dst, int skip, int n) {
  std::ifstream in(src);
  std::ofstream out(dst);
  std::string line;
  for (int i = 0; i < skip && std::getline(in, line); ++i) {
  }
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

struct Exec {
  int code;
  std::string out;
  std::string err;
};
// The tessera CLI with `args` (no shell).
Exec exec(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  test::ProgramResult r = test::run_program(args);
  return {r.status, std::move(r.out), std::move(r.err)};
}
std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  auto p = t.find_last_of('\n');
  return p == std::string::npos ? t : t.substr(p + 1);
}

class BehaviourE2E : public ::testing::Test {
 protected:
  // Trains once per process. A failure here is recorded and fails every test (a gtest
  // SetUpTestSuite failure would otherwise show up in ctest as skipped tests).
  static void SetUpTestSuite() {
    missing_ = test::missing_dataset("uci-adult", {"adult.data", "adult.test"});
    if (!missing_.empty()) return;
    try {
      work_ = ::testing::TempDir() + "/behaviour_e2e." + std::to_string(::getpid());
      // Keyed by pid: a dead process's directory may remain under a reused pid.
      std::filesystem::remove_all(work_);
      make_directories(work_);
      slice(scheduler::find_local_dataset_file("uci-adult", "adult.data"), work_ + "/train.csv", 0,
            4000);
      slice(scheduler::find_local_dataset_file("uci-adult", "adult.test"), work_ + "/test.csv", 1,
            1500);
      // The default config with the slice's paths; a short schedule through TrainOptions.
      std::string cfg = read_file(kSource + "/pipelines/behaviour/uci-adult.json");
      auto replace = [&](const std::string& a, const std::string& b) {
        auto p = cfg.find(a);
        if (p == std::string::npos) throw std::runtime_error("default config lacks " + a);
        cfg.replace(p, a.size(), b);
      };
      replace("\"dataset\": \"uci-adult\",", "");
      replace("\"adult.data\"", "\"" + work_ + "/train.csv\"");
      replace("{\"path\": \"adult.test\", \"skip_lines\": 1}", "\"" + work_ + "/test.csv\"");
      write_file_atomic(work_ + "/config.json", cfg);
      behaviour::TrainOptions o;
      o.quiet = true;
      o.device = "cpu";
      o.epochs = 6;
      o.run_dir = work_ + "/run";
      result_ = new behaviour::Result(behaviour::train(work_ + "/config.json", o));
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { delete result_; }
  void SetUp() override {
    if (!missing_.empty()) TESSERA_SKIP_OR_FAIL(missing_);
    ASSERT_TRUE(setup_error_.empty()) << "training the slice failed: " << setup_error_;
    ASSERT_NE(result_, nullptr);
  }
  static std::string missing_, work_, setup_error_;
  static behaviour::Result* result_;
};
std::string BehaviourE2E::missing_, BehaviourE2E::work_, BehaviourE2E::setup_error_;
behaviour::Result* BehaviourE2E::result_ = nullptr;

TEST_F(BehaviourE2E, TrainingLearnsAndWritesARunDirectory) {
  auto d = parse(result_->json);
  EXPECT_EQ(std::string(d["command"].GetString()), "train");
  EXPECT_EQ(d["train_rows"].GetInt64() + d["validation_rows"].GetInt64(), 4000);
  EXPECT_EQ(d["test_rows"].GetInt64(), 1500);
  // A 4000-row slice and 6 epochs: well above chance, below the full-data target.
  EXPECT_GT(d["test"]["auc"].GetDouble(), 0.83);
  EXPECT_GT(d["test"]["accuracy"].GetDouble(), 0.78);
  EXPECT_GT(d["train_samples_per_sec"].GetDouble(), 0.0);
  for (const char* f : {"/config.json", "/metrics.jsonl", "/model.tsm", "/result.json"}) {
    std::ifstream in(work_ + "/run" + f);
    EXPECT_TRUE(in.good()) << f;
  }
  // One metrics line per epoch, each a JSON object with validation metrics.
  std::ifstream m(work_ + "/run/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    auto e = parse(line);
    EXPECT_TRUE(e.HasMember("validation"));
    ++lines;
  }
  EXPECT_EQ(lines, 6);
}

TEST_F(BehaviourE2E, EvaluateReproducesTheTestMetricsFromTheArtefact) {
  behaviour::CommonOptions o;
  o.quiet = true;
  o.device = "cpu";
  auto r = behaviour::evaluate(work_ + "/run/model.tsm", work_ + "/test.csv", o);
  auto e = parse(r.json);
  auto t = parse(result_->json);
  EXPECT_EQ(e["rows"].GetInt64(), 1500);
  EXPECT_DOUBLE_EQ(e["metrics"]["auc"].GetDouble(), t["test"]["auc"].GetDouble());
  EXPECT_DOUBLE_EQ(e["metrics"]["logloss"].GetDouble(), t["test"]["logloss"].GetDouble());
}

// The test object carries the report's plots: a ROC curve of at most 100 exact steps from (0,0)
// to (1,1) whose trapezoid area is the reported AUC (up to the thinning), and reliability bins
// that account for every test row and positive. Evaluate scores the same rows: the same points.
TEST_F(BehaviourE2E, TestMetricsCarryTheRocCurveAndReliabilityBins) {
  auto d = parse(result_->json);
  const auto& t = d["test"];
  ASSERT_TRUE(t.HasMember("roc") && t["roc"].IsArray());
  const auto& roc = t["roc"].GetArray();
  ASSERT_GE(roc.Size(), 3u);
  ASSERT_LE(roc.Size(), 100u);
  EXPECT_EQ(roc[0][0].GetDouble(), 0.0);
  EXPECT_EQ(roc[0][1].GetDouble(), 0.0);
  EXPECT_EQ(roc[roc.Size() - 1][0].GetDouble(), 1.0);
  EXPECT_EQ(roc[roc.Size() - 1][1].GetDouble(), 1.0);
  double area = 0;
  for (rapidjson::SizeType i = 1; i < roc.Size(); ++i) {
    const double dx = roc[i][0].GetDouble() - roc[i - 1][0].GetDouble();
    EXPECT_GE(dx, 0.0);
    EXPECT_GE(roc[i][1].GetDouble(), roc[i - 1][1].GetDouble());
    area += dx * (roc[i][1].GetDouble() + roc[i - 1][1].GetDouble()) / 2;
  }
  EXPECT_NEAR(area, t["auc"].GetDouble(), 0.005);
  ASSERT_TRUE(t.HasMember("calibration") && t["calibration"].IsArray());
  const auto& cal = t["calibration"].GetArray();
  ASSERT_GE(cal.Size(), 2u);
  ASSERT_LE(cal.Size(), 10u);
  double rows = 0, positives = 0, last_p = -1;
  for (const auto& b : cal) {
    ASSERT_EQ(b.Size(), 3u);
    EXPECT_GT(b[0].GetDouble(), last_p);  // bins in order of predicted probability
    last_p = b[0].GetDouble();
    EXPECT_GT(b[2].GetInt64(), 0);  // empty bins are left out
    rows += b[2].GetDouble();
    positives += b[2].GetDouble() * b[1].GetDouble();
  }
  EXPECT_EQ(rows, 1500.0);
  EXPECT_NEAR(positives, t["positives"].GetDouble(), 1e-6);
  behaviour::CommonOptions o;
  o.quiet = true;
  o.device = "cpu";
  auto e = parse(behaviour::evaluate(work_ + "/run/model.tsm", work_ + "/test.csv", o).json);
  ASSERT_TRUE(e["metrics"].HasMember("roc"));
  EXPECT_TRUE(e["metrics"]["roc"] == t["roc"]);
  EXPECT_TRUE(e["metrics"]["calibration"] == t["calibration"]);
}

TEST_F(BehaviourE2E, PredictStreamsOneScorePerRowWithoutLabels) {
  // Scoring input without the label column (the last one), as new rows arrive in production.
  std::ifstream in(work_ + "/test.csv");
  std::ofstream out(work_ + "/unlabelled.csv");
  std::string line;
  int n = 0;
  while (std::getline(in, line) && n < 700) {
    out << line.substr(0, line.find_last_of(',')) << "\n";
    ++n;
  }
  out.close();
  behaviour::PredictOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.batch_size = 256;  // several batches, the last one short
  auto r = behaviour::predict(work_ + "/run/model.tsm", work_ + "/unlabelled.csv",
                              work_ + "/scores.csv", o);
  EXPECT_EQ(parse(r.json)["rows"].GetInt64(), 700);
  std::ifstream s(work_ + "/scores.csv");
  std::getline(s, line);
  EXPECT_EQ(line, "line,score");
  int rows = 0;
  while (std::getline(s, line)) {
    int ln = 0;
    double p = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "%d,%lf", &ln, &p), 2) << line;
    EXPECT_EQ(ln, rows + 1);
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
    ++rows;
  }
  EXPECT_EQ(rows, 700);
}

TEST_F(BehaviourE2E, MalformedRowsStopWithFileLineAndFieldOrAreSkippedAndCounted) {
  std::string text = read_file(work_ + "/test.csv");
  // Line 3 gets a non-numeric age.
  size_t p = 0;
  for (int i = 0; i < 2; ++i) p = text.find('\n', p) + 1;
  text.replace(p, text.find(',', p) - p, "forty");
  write_file_atomic(work_ + "/bad.csv", text);
  behaviour::CommonOptions o;
  o.quiet = true;
  o.device = "cpu";
  try {
    behaviour::evaluate(work_ + "/run/model.tsm", work_ + "/bad.csv", o);
    FAIL() << "a malformed row was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(msg.find("bad.csv:3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("age"), std::string::npos) << msg;
    EXPECT_NE(msg.find("forty"), std::string::npos) << msg;
  }
  o.on_error = "skip";
  auto r = parse(behaviour::evaluate(work_ + "/run/model.tsm", work_ + "/bad.csv", o).json);
  EXPECT_EQ(r["bad_rows_skipped"].GetInt64(), 1);
  EXPECT_EQ(r["rows"].GetInt64(), 1499);
}

TEST_F(BehaviourE2E, CliJsonIsTheLastStdoutLineAndErrorsExitNonZero) {
  Exec e = exec({"evaluate", work_ + "/run/model.tsm", work_ + "/test.csv", "--device", "cpu",
                 "--json", "--quiet"});
  ASSERT_EQ(e.code, 0) << e.err;
  auto d = parse(last_line(e.out));
  EXPECT_EQ(d["rows"].GetInt64(), 1500);

  Exec missing = exec({"evaluate", work_ + "/nope.tsm", work_ + "/test.csv"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.tsm"), std::string::npos) << missing.err;

  Exec cuda =
      exec({"evaluate", work_ + "/run/model.tsm", work_ + "/test.csv", "--device", "cuda:7"});
  EXPECT_NE(cuda.code, 0);
  EXPECT_NE(cuda.err.find("cuda"), std::string::npos) << cuda.err;
}

// The other two input layouts the pipeline reads: the Criteo Kaggle sample and libSVM rows.
TEST(BehaviourFormats, CriteoSampleTrainsAndEvaluates) {
  const std::string missing = test::missing_dataset("ctr-format-samples", {"criteo_sample.txt"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string work = ::testing::TempDir() + "/criteo_e2e." + std::to_string(::getpid());
  behaviour::TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.run_dir = work;
  ::setenv("TESSERA_SOURCE_DIR", kSource.c_str(), 0);
  auto r = parse(behaviour::train(kSource + "/pipelines/behaviour/criteo-sample.json", o).json);
  EXPECT_EQ(r["train_rows"].GetInt64() + r["validation_rows"].GetInt64(), 200);
  behaviour::CommonOptions e;
  e.quiet = true;
  e.device = "cpu";
  e.skip_lines = 0;  // the header is part of the layout (header: true)
  const std::string sample =
      scheduler::find_local_dataset_file("ctr-format-samples", "criteo_sample.txt");
  auto ev = parse(behaviour::evaluate(work + "/model.tsm", sample, e).json);
  EXPECT_EQ(ev["rows"].GetInt64(), 200);
  EXPECT_GT(ev["metrics"]["auc"].GetDouble(), 0.5);
}

TEST(BehaviourFormats, LibSvmRowsTrainAndEvaluate) {
  const std::string work = ::testing::TempDir() + "/libsvm_e2e." + std::to_string(::getpid());
  // Keyed by pid: a dead process's directory may remain under a reused pid.
  std::filesystem::remove_all(work);
  make_directories(work);
  // Label = [x1 + x3 - x5 > 0] over sparse rows with 1-based indices.
  auto rows = [](int n, unsigned seed) {
    std::ostringstream o;
    unsigned s = seed;
    auto next = [&]() {
      s = s * 1103515245u + 12345u;
      return (s >> 8) % 1000 / 500.0 - 1.0;
    };
    for (int i = 0; i < n; ++i) {
      double x1 = next(), x3 = next(), x5 = next();
      o << (x1 + x3 - x5 > 0 ? "+1" : "-1") << " 1:" << x1 << " 3:" << x3 << " 5:" << x5
        << (i % 3 == 0 ? " 7:1" : "") << "\n";
    }
    return o.str();
  };
  write_file_atomic(work + "/train.svm", rows(3000, 1));
  write_file_atomic(work + "/test.svm", rows(500, 2) + "+1 1:0.5 9:2\n");  // index 9 unseen
  write_file_atomic(work + "/config.json", R"({"task": "behaviour", "name": "svm",
    "data": {"train": ")" + work + R"(/train.svm", "test": ")" +
                                               work + R"(/test.svm",
             "format": "libsvm"},
    "model": {"hidden": [16], "dropout": 0},
    "train": {"epochs": 5, "batch_size": 64, "optimizer": {"type": "adam", "lr": 0.01}}})");
  behaviour::TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.run_dir = work + "/run";
  auto r = parse(behaviour::train(work + "/config.json", o).json);
  EXPECT_EQ(r["test_rows"].GetInt64(), 501);
  EXPECT_GT(r["test"]["auc"].GetDouble(), 0.95);
  behaviour::CommonOptions e;
  e.quiet = true;
  e.device = "cpu";
  auto ev = parse(behaviour::evaluate(work + "/run/model.tsm", work + "/test.svm", e).json);
  EXPECT_DOUBLE_EQ(ev["metrics"]["auc"].GetDouble(), r["test"]["auc"].GetDouble());
}

TEST(Cli, HelpAndUsageErrors) {
  Exec h = exec({"train", "--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("tessera train CONFIG"), std::string::npos);
  for (const char* c : {"evaluate", "predict"}) EXPECT_EQ(exec({c, "--help"}).code, 0) << c;
  EXPECT_EQ(exec({"--help"}).code, 0);
  Exec bad = exec({"train"});
  EXPECT_EQ(bad.code, 2);
  Exec unknown = exec({"frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  Exec opt = exec({"train", "x.json", "--bogus"});
  EXPECT_EQ(opt.code, 2);
  EXPECT_NE(opt.err.find("--bogus"), std::string::npos);
}

TEST(Cli, ConfigErrorsNameThePathAndExitTwo) {
  const std::string p =
      ::testing::TempDir() + "/bad_config." + std::to_string(::getpid()) + ".json";
  write_file_atomic(
      p,
      R"({"task": "behaviour", "model": {"activation": "swish"}, "data": {"train": "x.csv", "columns": [{"name": "y", "type": "label"}]}})");
  Exec e = exec({"train", p});
  EXPECT_EQ(e.code, 2);
  EXPECT_NE(e.err.find("$.model.activation"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("relu"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace tessera
