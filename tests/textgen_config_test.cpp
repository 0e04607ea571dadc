// The textgen config declared once (host/config/declare.h): the example reads back as the
// defaults, every shipped config parses and round-trips, the older data spellings ("file",
// "path") still read, errors keep their place and wording, and the data files (DataFiles: a
// validation file, a test file scored after training, skip_lines) are honoured by train.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/textgen/textgen_config.h"
#include "tests/data_test_util.h"

namespace tessera::textgen {
namespace {

using tessera::testing::TempDir;
using tessera::testing::write_file;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TextgenConfig parse(const std::string& data, const std::string& train = "{}") {
  return parse_textgen_config(
      R"({"task": "textgen", "data": )" + data + R"(, "train": )" + train + "}", "t.json");
}

TEST(TextgenConfigDeclared, ExampleReadsBackAsTheDefaults) {
  const std::string example = textgen_config_example();
  const TextgenConfig back = parse_textgen_config(example, "ex.json");
  EXPECT_TRUE(back == TextgenConfig{}) << example;
  EXPECT_EQ(to_json(back), to_json(TextgenConfig{}));
  EXPECT_EQ(back.data.dataset, "tinyshakespeare");
  EXPECT_EQ(back.data.train.path, "input.txt");
  for (const char* key : {"\"validation_fraction\"", "\"min_count\"", "\"lr_schedule\"",
                          "\"output_dropout\"", "\"test\""})
    EXPECT_NE(example.find(key), std::string::npos) << key << "\n" << example;
  const std::string schema = textgen_config_schema();
  EXPECT_NE(schema.find("\"additionalProperties\""), std::string::npos);
  EXPECT_NE(schema.find("\"tokenizer\""), std::string::npos);
}

TEST(TextgenConfigDeclared, ShippedConfigsParseAndRoundTrip) {
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(TESSERA_SOURCE_DIR) +
                                                           "/pipelines/textgen")) {
    if (e.path().extension() != ".json" || e.path().filename() == "pipeline.json") continue;
    ++seen;
    const std::string path = e.path().string();
    const TextgenConfig c = read_textgen_config(path);
    const std::string written = to_json(c);
    const TextgenConfig back = parse_textgen_config(written, path);
    EXPECT_TRUE(back == c) << path;
    EXPECT_EQ(to_json(back), written) << path;
    EXPECT_EQ(resolved_config(written, path), written) << path;
  }
  EXPECT_GT(seen, 0);
}

TEST(TextgenConfigDeclared, ResolvedConfigKeepsItsShape) {
  const std::string w = to_json(parse(R"({"tokenizer": "word", "min_count": 3})"));
  // Key order of the resolved file: root, then data's files before how they are read.
  const std::vector<std::string> order = {
      "\"task\"",          "\"name\"",      "\"seed\"",      "\"device\"",
      "\"data\"",          "\"dataset\"",   "\"train\"",     "\"validation_fraction\"",
      "\"max_chars\"",     "\"tokenizer\"", "\"min_count\"", "\"model\"",
      "\"embedding_dim\"", "\"epochs\"",    "\"optimizer\"", "\"lr_schedule\"",
      "\"on_nonfinite\""};
  size_t at = 0;
  for (const std::string& key : order) {
    const size_t found = w.find(key, at);
    ASSERT_NE(found, std::string::npos) << key << " after " << at << "\n" << w;
    at = found;
  }
  // Char models write no min_count (it does not apply).
  EXPECT_EQ(to_json(parse("{}")).find("min_count"), std::string::npos);
}

TEST(TextgenConfigDeclared, OlderDataKeysStillRead) {
  // "file": a file of the dataset (the default tinyshakespeare).
  TextgenConfig c = parse(R"({"file": "other.txt"})");
  EXPECT_EQ(c.data.dataset, "tinyshakespeare");
  EXPECT_EQ(c.data.train.path, "other.txt");
  std::string w = to_json(c);
  EXPECT_NE(w.find("\"train\": \"other.txt\""), std::string::npos) << w;
  EXPECT_EQ(w.find("\"file\""), std::string::npos) << w;
  // "path": a local file, whatever the dataset.
  c = parse(R"({"dataset": "tinyshakespeare", "file": "input.txt", "path": "/d/t.txt"})");
  EXPECT_TRUE(c.data.dataset.empty());
  EXPECT_EQ(c.data.train.path, "/d/t.txt");
  w = to_json(c);
  EXPECT_EQ(w.find("\"path\""), std::string::npos) << w;
  EXPECT_EQ(w.find("\"dataset\""), std::string::npos) << w;
  EXPECT_TRUE(parse_textgen_config(w, "again.json") == c);
  // "train" without "dataset": a local file; with it, a file of the dataset.
  EXPECT_TRUE(parse(R"({"train": "mine.txt"})").data.dataset.empty());
  EXPECT_EQ(parse(R"({"dataset": "tinyshakespeare", "train": "input.txt"})").data.dataset,
            "tinyshakespeare");
  // Both spellings at once.
  const std::string m = error_of([] { parse(R"({"file": "a.txt", "train": "b.txt"})"); });
  EXPECT_NE(m.find("$.data.file: \"file\" is the older spelling of \"train\""), std::string::npos)
      << m;
}

TEST(TextgenConfigDeclared, ErrorsKeepTheirPlaceAndWording) {
  const std::string m = error_of([] {
    parse_textgen_config(R"({"task": "textgen",
  "data": {"min_count": 3, "validation": "v.txt", "validation_fraction": 0.2},
  "train": {"seq_len": 0, "clipnorm": 1,
            "optimizer": {"type": "adam", "lr": 0.001, "momentum": 0.5},
            "lr_schedule": {"type": "cosine", "min_lr": 0.01}}})",
                         "bad.json");
  });
  for (const char* part : {"bad.json:2:", "$.data.min_count: applies to the word tokenizer only",
                           "$.data.validation_fraction: give either a \"validation\" file or",
                           "$.train.seq_len", "bad.json:3:", "clipnorm", "clip_norm",
                           "$.train.optimizer.momentum: only applies to \"sgd\"",
                           "$.train.lr_schedule.min_lr: must not exceed the optimizer's lr"})
    EXPECT_NE(m.find(part), std::string::npos) << part << "\n" << m;
  // No validation text at all.
  const std::string z = error_of([] { parse(R"({"validation_fraction": 0})"); });
  EXPECT_NE(z.find("$.data.validation_fraction: every epoch is measured on validation text"),
            std::string::npos)
      << z;
  const std::string t = error_of(
      [] { parse_textgen_config(R"({"task": "textclass", "data": {}, "train": {}})", "x.json"); });
  EXPECT_NE(t.find("$.task"), std::string::npos) << t;
  EXPECT_NE(error_of([] {
              parse_textgen_config(R"({"task": "textgen", "data": {}})", "x.json");
            }).find("$.train"),
            std::string::npos);
}

TEST(TextgenConfigDeclared, ReadTextSkipsLinesAndCuts) {
  TempDir dir;
  const std::string p = write_file(dir.file("t.txt"), "header\nsecond\nthe text\nmore");
  EXPECT_EQ(read_text(p, FileSpec{p, 2}, 0), "the text\nmore");
  EXPECT_EQ(read_text(p, FileSpec{p, 2}, 5), "the t");
  EXPECT_EQ(read_text(p, FileSpec{p, 9}, 0), "");
  EXPECT_EQ(read_text(p, FileSpec{p, 0}, 0), "header\nsecond\nthe text\nmore");
}

std::string words(uint32_t seed, size_t chars) {
  std::mt19937 rng(seed);
  const char* w[] = {"the ", "cat ", "sat ", "on ", "a ", "mat ", "and ", "purred\n"};
  std::string text;
  while (text.size() < chars) text += w[rng() % 8];
  return text;
}

double number(const rapidjson::Document& d, const char* key) {
  EXPECT_TRUE(d.HasMember(key) && d[key].IsNumber()) << key;
  return d.HasMember(key) && d[key].IsNumber() ? d[key].GetDouble() : NAN;
}

// A validation file replaces the held-out share, and a test file is scored after training with
// the model's weights: what `perplexity MODEL TEST` reports of the same file.
TEST(TextgenConfigDeclared, TrainUsesTheValidationAndTestFiles) {
  TempDir dir;
  write_file(dir.file("train.txt"), "a skipped header line\n" + words(1, 3000));
  write_file(dir.file("valid.txt"), words(2, 600));
  const std::string test = write_file(dir.file("test.txt"), words(3, 500));
  const std::string config = write_file(dir.file("c.json"), R"({
    "task": "textgen", "name": "files", "seed": 2, "device": "cpu",
    "data": {"train": {"path": ")" + dir.file("train.txt") + R"(", "skip_lines": 1},
             "validation": ")" + dir.file("valid.txt") + R"(", "test": ")" +
                                                                test + R"("},
    "model": {"embedding_dim": 8, "hidden_size": 16, "num_layers": 1},
    "train": {"epochs": 2, "batch_size": 4, "seq_len": 16, "runs_dir": ")" +
                                                                dir.path() + R"("}})");
  TrainOptions o;
  o.run_dir = dir.file("run");
  o.quiet = true;
  const Result r = train(config, o);
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  ASSERT_FALSE(d.HasParseError()) << r.json;
  ASSERT_TRUE(d.HasMember("test") && d["test"].IsString()) << r.json;
  EXPECT_EQ(std::string(d["test"].GetString()), test);
  const double per_token = number(d, "test_nats_per_token");
  EXPECT_TRUE(std::isfinite(per_token) && per_token > 0) << r.json;
  EXPECT_NEAR(number(d, "test_perplexity"), std::exp(per_token), 1e-9 * std::exp(per_token));
  rapidjson::Document p;
  p.Parse(perplexity(dir.file("run/model.tsm"), test, "cpu").json.c_str());
  ASSERT_FALSE(p.HasParseError());
  EXPECT_NEAR(number(p, "nats_per_token"), per_token, 1e-6 * per_token);
  EXPECT_NEAR(number(p, "nats_per_char"), number(d, "test_nats_per_char"), 1e-6 * per_token);
  EXPECT_NE(r.summary.find("test "), std::string::npos) << r.summary;
  // The resolved config in the run directory names the files as given.
  const std::string resolved = read_file(dir.file("run/config.json"));
  EXPECT_NE(resolved.find("\"skip_lines\": 1"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("valid.txt"), std::string::npos) << resolved;
  EXPECT_EQ(resolved.find("validation_fraction"), std::string::npos) << resolved;
}

TEST(TextgenConfigDeclared, TooLittleValidationTextIsADataErrorNamingTheFile) {
  TempDir dir;
  write_file(dir.file("train.txt"), words(1, 2000));
  const std::string valid = write_file(dir.file("valid.txt"), "a");
  const std::string config = write_file(dir.file("c.json"), R"({
    "task": "textgen", "device": "cpu",
    "data": {"train": ")" + dir.file("train.txt") + R"(", "validation": ")" +
                                                                valid + R"("},
    "train": {"epochs": 1, "batch_size": 4, "seq_len": 8}})");
  TrainOptions o;
  o.run_dir = dir.file("run");
  o.quiet = true;
  try {
    train(config, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find(valid + ": 1 characters of validation text"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tessera::textgen
