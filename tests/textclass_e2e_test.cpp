// The text-classification pipeline end to end on a slice of sms-spam (found through the dataset
// registry): config errors, bad rows, training that learns above chance with early stopping,
// the artefact, and the evaluate / predict round trip through the tessera binary.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/textclass/textclass.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

// The tessera CLI with `args` (no shell).
tessera::test::ProgramResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  return tessera::test::run_program(args);
}

double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::stod(json.substr(at + key.size() + 3));
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tessera::Error& e) {
    return e.what();
  }
  return "";
}

class TextclassE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = ::testing::TempDir() + "/textclass_e2e." + std::to_string(::getpid());
    // Keyed by pid: a dead process's directory may remain under a reused pid.
    std::filesystem::remove_all(work_);
    tessera::make_directories(work_);
    config_ = work_ + "/small.json";
    // 1,600 messages, stratified 75/12.5/12.5: seconds on one core.
    tessera::write_file_atomic(config_, R"({
      "task": "textclass", "name": "slice", "seed": 3, "device": "cpu",
      "data": {"dataset": "sms-spam", "train": "SMSSpamCollection", "max_rows": 1600,
               "validation_fraction": 0.125, "test_fraction": 0.125, "skip_lines": 0,
               "fold_digits": true, "max_tokens": 40, "min_count": 2},
      "model": {"embedding_dim": 16, "hidden_size": 16, "bidirectional": true, "pooling": "max",
                "dropout": 0.1},
      "train": {"epochs": 4, "batch_size": 32, "patience": 2, "log_every": 100000,
                "optimizer": {"type": "adam", "lr": 0.01}}
    })");
    tessera::textclass::TrainOptions o;
    o.run_dir = work_ + "/run";
    o.quiet = true;
    missing_ = tessera::test::missing_dataset("sms-spam", {"SMSSpamCollection"});
    if (!missing_.empty()) return;  // every test skips or fails (SetUp)
    // Recorded, and failed in SetUp: a failure here would show up in ctest as skipped tests.
    setup_error_ = tessera::test::suite_setup_error([&] {
      result_ = new tessera::textclass::Result(tessera::textclass::train(config_, o));
      model_ = work_ + "/run/model.tsm";
    });
  }
  void SetUp() override {
    if (!missing_.empty()) TESSERA_SKIP_OR_FAIL(missing_);
    ASSERT_TRUE(setup_error_.empty()) << "training the slice failed: " << setup_error_;
    ASSERT_NE(result_, nullptr);
  }
  static void TearDownTestSuite() { delete result_; }

  static std::string work_, config_, model_, missing_, setup_error_;
  static tessera::textclass::Result* result_;
};
std::string TextclassE2e::work_, TextclassE2e::config_, TextclassE2e::model_,
    TextclassE2e::missing_, TextclassE2e::setup_error_;
tessera::textclass::Result* TextclassE2e::result_ = nullptr;

TEST_F(TextclassE2e, LearnsAboveChanceAndWritesTheRunDirectory) {
  const std::string& j = result_->json;
  const auto test_at = j.find("\"test\":");
  ASSERT_NE(test_at, std::string::npos) << j;
  const std::string test = j.substr(test_at);
  // The majority class (ham) is ~87% of the slice, with macro-F1 ~0.47: the model must beat both.
  EXPECT_GT(json_number(test, "accuracy"), 0.93) << j;
  EXPECT_GT(json_number(test, "macro_f1"), 0.8) << j;
  EXPECT_EQ(json_number(test, "rows"), 200) << j;
  EXPECT_NE(test.find("\"confusion\":[["), std::string::npos) << j;
  for (const char* f : {"/config.json", "/metrics.jsonl", "/model.tsm", "/result.json"})
    EXPECT_TRUE(std::ifstream(work_ + "/run" + f).good()) << f;
  std::ifstream m(work_ + "/run/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    ++lines;
    EXPECT_NE(line.find("\"validation_accuracy\":"), std::string::npos) << line;
  }
  EXPECT_EQ(lines, json_number(j, "epochs"));
  EXPECT_TRUE(tessera::textclass::is_textclass_model(model_));
  EXPECT_FALSE(tessera::textclass::is_textclass_model(config_));
}

TEST_F(TextclassE2e, EvaluateAndPredictRoundTrip) {
  // A labelled file with a header, taken from the dataset (these rows were in training: the test
  // is about consistency, not generalisation).
  std::ifstream src(tessera::resolve_dataset_file("sms-spam", "SMSSpamCollection"));
  std::string line, labelled = "label\ttext\n", texts;
  std::vector<std::string> labels;
  for (int i = 0; i < 300 && std::getline(src, line); ++i) {
    labelled += line + "\n";
    labels.push_back(line.substr(0, line.find('\t')));
    texts += line.substr(line.find('\t') + 1) + "\n";
  }
  texts += "\n";  // an empty line is still classified (as a lone <pad>)
  const std::string data = work_ + "/eval.tsv", input = work_ + "/input.txt",
                    output = work_ + "/out.tsv";
  tessera::write_file_atomic(data, labelled);
  tessera::write_file_atomic(input, texts);
  const auto ev = cli({"evaluate", model_, data, "--json"});
  ASSERT_EQ(ev.status, 0) << ev.out << ev.err;
  const std::string ej = last_line(ev.out);
  EXPECT_EQ(json_number(ej, "rows"), 300) << ej;
  EXPECT_NE(ej.find("\"header_skipped\":true"), std::string::npos) << ej;
  const auto predicted = cli({"predict", model_, input, output, "--json", "--batch-size", "64"});
  ASSERT_EQ(predicted.status, 0) << predicted.out << predicted.err;
  const std::string& pr = predicted.out;
  EXPECT_EQ(json_number(last_line(pr), "rows"), 301) << pr;
  EXPECT_EQ(json_number(last_line(pr), "empty_lines"), 1) << pr;
  std::ifstream out(output);
  std::string header;
  std::getline(out, header);
  EXPECT_EQ(header, "line\tlabel\tp_ham\tp_spam");
  int n = 0, agree = 0;
  while (std::getline(out, line)) {
    std::istringstream f(line);
    std::string no, label;
    double p0 = 0, p1 = 0;
    f >> no >> label >> p0 >> p1;
    EXPECT_EQ(std::stoi(no), n + 1);
    EXPECT_NEAR(p0 + p1, 1.0, 1e-4) << line;
    EXPECT_EQ(label, p0 >= p1 ? "ham" : "spam") << line;
    if (n < 300) agree += label == labels[static_cast<size_t>(n)];
    ++n;
  }
  EXPECT_EQ(n, 301);
  // predict's labels reproduce evaluate's accuracy exactly (same model, same buckets' math).
  EXPECT_NEAR(agree / 300.0, json_number(ej, "accuracy"), 1e-12);
  // The train command detects the config and keeps --json.
  const auto trained = cli(
      {"train", config_, "--epochs", "1", "--quiet", "--json", "--run-dir", work_ + "/run-cli"});
  ASSERT_EQ(trained.status, 0) << trained.out << trained.err;
  const std::string& tr = trained.out;
  EXPECT_NE(last_line(tr).find("\"task\":\"textclass\""), std::string::npos) << tr;
}

TEST_F(TextclassE2e, BadInputNamesFileAndLine) {
  const std::string bad = work_ + "/bad.tsv";
  tessera::write_file_atomic(bad, "ham\thello\nmaybe\twhat is this\n");
  tessera::textclass::RunOptions o;
  std::string e = error_of([&] { tessera::textclass::evaluate(model_, bad, o); });
  EXPECT_NE(e.find(bad + ":2: label 'maybe'"), std::string::npos) << e;
  EXPECT_NE(e.find("'ham', 'spam'"), std::string::npos) << e;
  tessera::write_file_atomic(bad, "ham\thello\nspam without a tab\n");
  e = error_of([&] { tessera::textclass::evaluate(model_, bad, o); });
  EXPECT_NE(e.find(bad + ":2: expected 'label<TAB>text'"), std::string::npos) << e;
  // The binary reports it and exits 1; nothing is written by a failed predict.
  EXPECT_EQ(cli({"evaluate", model_, bad}).status, 1);
  const std::string missing_out = work_ + "/never.tsv";
  EXPECT_EQ(cli({"predict", model_, work_ + "/no-such-input", missing_out}).status, 1);
  EXPECT_FALSE(std::ifstream(missing_out).good());
}

TEST_F(TextclassE2e, ConfigErrorsNamePathExpectedAndChoices) {
  const std::string cfg = work_ + "/bad.json";
  tessera::write_file_atomic(cfg, R"({
    "task": "textclass",
    "data": {"dataset": "sms-spam", "train": "SMSSpamCollection", "validation_fraction": 0.1,
             "min_cuont": 2},
    "model": {"pooling": "avg", "hidden_size": 0},
    "train": {"epochs": 1}
  })");
  tessera::textclass::TrainOptions o;
  o.quiet = true;
  const std::string e = error_of([&] { tessera::textclass::train(cfg, o); });
  EXPECT_NE(e.find(cfg + ":4:"), std::string::npos) << e;
  EXPECT_NE(e.find("$.data.min_cuont"), std::string::npos) << e;
  EXPECT_NE(e.find("min_count"), std::string::npos) << e;  // the suggestion
  EXPECT_NE(e.find("$.model.pooling"), std::string::npos) << e;
  EXPECT_NE(e.find("\"mean\", \"max\", \"last\""), std::string::npos) << e;
  EXPECT_NE(e.find("$.model.hidden_size"), std::string::npos) << e;
  tessera::write_file_atomic(cfg, R"({"task": "textclass", "data": {"train": "x.tsv"},
                                      "train": {}})");
  const std::string e2 = error_of([&] { tessera::textclass::train(cfg, o); });
  EXPECT_NE(e2.find("validation_fraction"), std::string::npos) << e2;
  EXPECT_EQ(cli({"train", cfg}).status, 2);
}

}  // namespace
