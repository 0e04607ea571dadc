// The text-generation pipeline end to end on a slice of tinyshakespeare: train (TBPTT, clipping,
// schedule, validation, artefact), then generate (streaming, seeded, top-k) and perplexity, through
// the library and through the tessera binary.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/textgen/tokenizer.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

class TextgenE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = ::testing::TempDir() + "/textgen_e2e." + std::to_string(::getpid());
    // Keyed by pid: a dead process's directory may remain under a reused pid.
    std::filesystem::remove_all(work_);
    tessera::make_directories(work_);
    config_ = work_ + "/small.json";
    tessera::write_file_atomic(config_, R"({
      "task": "textgen", "name": "slice", "seed": 7, "device": "cpu",
      "data": {"dataset": "tinyshakespeare", "file": "input.txt", "max_chars": 40000},
      "model": {"embedding_dim": 16, "hidden_size": 48, "num_layers": 2, "dropout": 0.1},
      "train": {"epochs": 3, "batch_size": 16, "seq_len": 32, "clip_norm": 1.0, "log_every": 1000,
                "optimizer": {"type": "adam", "lr": 0.01},
                "lr_schedule": {"type": "cosine", "warmup_steps": 10, "min_lr": 0.001}}
    })");
    tessera::textgen::TrainOptions o;
    o.run_dir = work_ + "/run";
    o.quiet = true;
    missing_ = tessera::test::missing_dataset("tinyshakespeare", {"input.txt"});
    if (!missing_.empty()) return;  // every test skips or fails (SetUp)
    // Recorded, and failed in SetUp: a failure here would show up in ctest as skipped tests.
    setup_error_ = tessera::test::suite_setup_error([&] {
      result_ = new tessera::textgen::Result(tessera::textgen::train(config_, o));
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
  static tessera::textgen::Result* result_;
};
std::string TextgenE2e::work_, TextgenE2e::config_, TextgenE2e::model_, TextgenE2e::missing_,
    TextgenE2e::setup_error_;
tessera::textgen::Result* TextgenE2e::result_ = nullptr;

std::string text_of(const tessera::textgen::Result& r) {
  const auto at = r.json.find("\"text\":");
  return at == std::string::npos ? "" : r.json.substr(at);
}

double json_number(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::stod(json.substr(at + key.size() + 3));
}

TEST_F(TextgenE2e, TrainingLearnsAndWritesTheRunDirectory) {
  const double val = json_number(result_->json, "validation_nats_per_char");
  // Uniform over the slice's vocabulary would be ln(~60) = 4.1 nats; a unigram model ~3.3.
  EXPECT_LT(val, 2.9) << result_->json;
  EXPECT_NEAR(json_number(result_->json, "validation_perplexity"), std::exp(val),
              1e-6 * std::exp(val));
  for (const char* f : {"/config.json", "/metrics.jsonl", "/model.tsm", "/result.json"})
    EXPECT_TRUE(std::ifstream(work_ + "/run" + f).good()) << f;
  // One metrics line per epoch, each with the validation loss and perplexity.
  std::ifstream m(work_ + "/run/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    ++lines;
    EXPECT_NE(line.find("validation_perplexity"), std::string::npos);
  }
  EXPECT_EQ(lines, 3);
}

TEST_F(TextgenE2e, SameSeedSameTextStreamed) {
  tessera::textgen::GenerateOptions o;
  o.prompt = "ROMEO:";
  o.length = 60;
  o.temperature = 0.9;
  o.top_k = 8;
  o.seed = 11;
  std::string streamed;
  int pieces = 0;
  const auto a = tessera::textgen::generate(model_, o, [&](const std::string& s) {
    streamed += s;
    ++pieces;
  });
  EXPECT_EQ(pieces, 60);  // one call per character, as it is sampled
  EXPECT_EQ(streamed.size(), 60u);
  const auto b = tessera::textgen::generate(model_, o, [](const std::string&) {});
  EXPECT_EQ(a.json, b.json);
  o.seed = 12;
  const auto c = tessera::textgen::generate(model_, o, [](const std::string&) {});
  EXPECT_NE(text_of(a), text_of(c));
  // top-k 1 is greedy: the seed no longer matters.
  o.top_k = 1;
  const auto g1 = tessera::textgen::generate(model_, o, [](const std::string&) {});
  o.seed = 99;
  const auto g2 = tessera::textgen::generate(model_, o, [](const std::string&) {});
  EXPECT_EQ(text_of(g1), text_of(g2));
}

TEST_F(TextgenE2e, PerplexityOfATextAndBadInput) {
  const std::string text = work_ + "/sample.txt";
  tessera::write_file_atomic(text,
                             "First Citizen:\nBefore we proceed any further, hear me speak.\n");
  const auto r = tessera::textgen::perplexity(model_, text, "cpu");
  const double nats = json_number(r.json, "nats_per_char");
  EXPECT_TRUE(std::isfinite(nats) && nats > 0 && nats < 4.0) << r.json;
  EXPECT_NEAR(json_number(r.json, "perplexity"), std::exp(nats), 1e-6 * std::exp(nats));
  // A character the model never saw: an error naming the file, line and column.
  tessera::write_file_atomic(text, "ab\nc\x01");
  try {
    tessera::textgen::perplexity(model_, text, "cpu");
    FAIL() << "no error";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.kind(), tessera::ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find(text + ":2:2"), std::string::npos) << e.what();
  }
  tessera::textgen::GenerateOptions o;
  o.temperature = 0;
  EXPECT_THROW(tessera::textgen::generate(model_, o, [](const std::string&) {}), tessera::Error);
}

TEST_F(TextgenE2e, CliGenerateStreamsAndIsDeterministic) {
  const std::vector<std::string> argv = {
      kBinary,         "generate", model_,    "--prompt", "the ",   "--length", "40",
      "--temperature", "0.8",      "--top-k", "5",        "--seed", "3",        "--json"};
  const tessera::test::ProgramResult ra = tessera::test::run_program(argv);
  const tessera::test::ProgramResult rb = tessera::test::run_program(argv);
  EXPECT_EQ(ra.status, 0) << ra.err;
  EXPECT_EQ(rb.status, 0) << rb.err;
  const std::string& a = ra.out;
  EXPECT_EQ(a, rb.out);
  // Last line: the JSON object; before it, the 40 streamed characters.
  const auto last = a.rfind("{\"command\":\"generate\"");
  ASSERT_NE(last, std::string::npos) << a;
  EXPECT_GE(last, 40u);
}

std::string last_line_of(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// evaluate MODEL TEXT: perplexity's measure of the file, with bits per character; predict MODEL
// INPUT OUTPUT: per line, the greedy continuation `generate --top-k 1` gives from that prompt.
TEST_F(TextgenE2e, CliEvaluateAndPredict) {
  const std::string text = work_ + "/eval.txt";
  tessera::write_file_atomic(text, "ROMEO:\nWhat say you, sir?\n\nFirst Citizen:\n");
  const auto ppl = tessera::textgen::perplexity(model_, text, "cpu");
  const tessera::test::ProgramResult ev =
      tessera::test::run_program({kBinary, "evaluate", model_, text, "--json"});
  ASSERT_EQ(ev.status, 0) << ev.err;
  const std::string ej = last_line_of(ev.out);
  EXPECT_NE(ej.find("\"command\":\"evaluate\",\"task\":\"textgen\""), std::string::npos) << ej;
  const double nats = json_number(ppl.json, "nats_per_char");
  EXPECT_DOUBLE_EQ(json_number(ej, "nats_per_char"), nats);
  EXPECT_NEAR(json_number(ej, "bits_per_char"), nats / std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(json_number(ej, "perplexity"), json_number(ppl.json, "perplexity"));

  const std::string out = work_ + "/predicted.tsv";
  const tessera::test::ProgramResult pr = tessera::test::run_program(
      {kBinary, "predict", model_, text, out, "--length", "12", "--json"});
  ASSERT_EQ(pr.status, 0) << pr.err;
  EXPECT_EQ(json_number(last_line_of(pr.out), "rows"), 4.0) << pr.out;
  std::ifstream in(out);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      fields.push_back(line.substr(start, tab - start));
    fields.push_back(line.substr(start));
    rows.push_back(fields);
  }
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"line", "next", "probability", "continuation"}));
  // Line 1 "ROMEO:": the continuation is greedy generation from that prompt (newlines escaped).
  tessera::textgen::GenerateOptions g;
  g.prompt = "ROMEO:";
  g.length = 12;
  g.top_k = 1;
  std::string greedy;
  tessera::textgen::generate(model_, g, [&](const std::string& piece) { greedy += piece; });
  std::string escaped;
  for (char c : greedy) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  ASSERT_EQ(rows[1].size(), 4u);
  EXPECT_EQ(rows[1][0], "1");
  EXPECT_EQ(rows[1][3], escaped);
  EXPECT_EQ(rows[1][3].rfind(rows[1][1], 0), 0u);  // the next token starts the continuation
  const double p = std::stod(rows[1][2]);
  EXPECT_TRUE(p > 0 && p <= 1) << rows[1][2];
  EXPECT_EQ(rows[3][0], "3");  // the empty line is a row too

  // A character the model never saw: the file, line and column, in the message and the JSON.
  const std::string bad = work_ + "/bad_predict.txt";
  tessera::write_file_atomic(bad, "ab\nc\x01d\n");
  const tessera::test::ProgramResult br =
      tessera::test::run_program({kBinary, "predict", model_, bad, work_ + "/none.tsv", "--json"});
  EXPECT_EQ(br.status, 1);
  const std::string err = last_line_of(br.out);
  EXPECT_NE(err.find("\"file\":\"" + bad + "\",\"line\":2,\"column\":2"), std::string::npos) << err;
  EXPECT_NE(br.err.find(bad + ":2:2: character 0x1"), std::string::npos) << br.err;
  EXPECT_FALSE(std::filesystem::exists(work_ + "/none.tsv"));
  // evaluate on such a file: the same place.
  const tessera::test::ProgramResult be =
      tessera::test::run_program({kBinary, "evaluate", model_, bad, "--json"});
  EXPECT_EQ(be.status, 1);
  EXPECT_NE(be.err.find(bad + ":2:2"), std::string::npos) << be.err;
}

TEST(TextgenTokenizer, WordsRoundTripAndRareWordsAreUnknown) {
  using tessera::textgen::Tokenizer;
  using tessera::textgen::TokenizerKind;
  const std::string text = "Thou art, thou art\nnot I'll-be.";
  std::string joined;
  for (const std::string& w : tessera::textgen::split_words(text)) joined += w;
  EXPECT_EQ(joined, text);
  const Tokenizer t = Tokenizer::build(TokenizerKind::Word, text, 2);
  // "Thou" and "thou" are different words, each seen once: unknown at min_count 2.
  EXPECT_EQ(t.token(0), "<unk>");
  EXPECT_GE(t.id_of("art"), 1);
  EXPECT_GE(t.id_of(" "), 1);
  EXPECT_EQ(t.id_of("Thou"), -1);
  const std::vector<int32_t> ids = t.encode("art zebra", "x");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[2], 0);  // unknown word
  const Tokenizer c = Tokenizer::build(TokenizerKind::Char, "abca");
  EXPECT_EQ(c.size(), 3);
  EXPECT_THROW(c.encode("abd", "x"), tessera::Error);
}

TEST(TextgenWord, WordLevelTrainsAndGenerates) {
  const std::string missing = tessera::test::missing_dataset("tinyshakespeare", {"input.txt"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string work = ::testing::TempDir() + "/textgen_word." + std::to_string(::getpid());
  // Keyed by pid: a dead process's directory may remain under a reused pid.
  std::filesystem::remove_all(work);
  tessera::make_directories(work);
  tessera::write_file_atomic(work + "/word.json", R"({
    "task": "textgen", "name": "words", "seed": 2, "device": "cpu",
    "data": {"dataset": "tinyshakespeare", "file": "input.txt", "max_chars": 30000,
             "tokenizer": "word", "min_count": 3},
    "model": {"embedding_dim": 16, "hidden_size": 32, "num_layers": 1},
    "train": {"epochs": 2, "batch_size": 8, "seq_len": 16, "optimizer": {"type": "adam", "lr": 0.01}}
  })");
  tessera::textgen::TrainOptions o;
  o.run_dir = work + "/run";
  o.quiet = true;
  const auto r = tessera::textgen::train(work + "/word.json", o);
  EXPECT_NE(r.json.find("\"tokenizer\":\"word\""), std::string::npos) << r.json;
  const double per_token = json_number(r.json, "validation_nats_per_token");
  const double per_char = json_number(r.json, "validation_nats_per_char");
  EXPECT_TRUE(std::isfinite(per_token) && per_char < per_token) << r.json;
  tessera::textgen::GenerateOptions g;
  g.prompt = "the ";
  g.length = 12;
  g.seed = 4;
  int pieces = 0;
  tessera::textgen::generate(work + "/run/model.tsm", g, [&](const std::string&) { ++pieces; });
  EXPECT_EQ(pieces, 12);  // one call per word-level token
}

TEST(TextgenConfig, ErrorsNameTheField) {
  const std::string p =
      ::testing::TempDir() + "/bad_textgen." + std::to_string(::getpid()) + ".json";
  tessera::write_file_atomic(
      p, R"({"task": "textgen", "data": {}, "train": {"seq_len": 0, "clipnorm": 1}})");
  EXPECT_TRUE(tessera::textgen::is_textgen_config(p));
  try {
    tessera::textgen::train(p, {});
    FAIL() << "no error";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.kind(), tessera::ErrorKind::Config);
    const std::string m = e.what();
    EXPECT_NE(m.find("seq_len"), std::string::npos) << m;
    EXPECT_NE(m.find("clipnorm"), std::string::npos) << m;
  }
}

}  // namespace
