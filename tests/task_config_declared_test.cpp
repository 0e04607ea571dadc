// The recommend and textclass configs declared once (host/config/declare.h): each example reads
// back as the defaults, every shipped config parses and round-trips, the older recommend data
// keys still read, and the textclass data layout keys are checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "host/config/json_reader.h"
#include "host/core/error.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/textclass/textclass_config.h"

namespace tessera {
namespace {

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

std::vector<std::string> shipped(const std::string& folder) {
  std::vector<std::string> out;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(TESSERA_SOURCE_DIR) + "/" + folder)) {
    const std::string p = e.path().string();
    if (e.path().extension() == ".json" && e.path().filename() != "pipeline.json") out.push_back(p);
  }
  EXPECT_FALSE(out.empty()) << folder;
  return out;
}

TEST(RecommendConfigDeclared, ExampleReadsBackAsTheDefaults) {
  const std::string example = recommend::recommend_config_example();
  const recommend::RecommendConfig back = recommend::parse_recommend_config(example, "ex.json");
  EXPECT_TRUE(back == recommend::RecommendConfig{}) << example;
  EXPECT_EQ(recommend::to_json(back), recommend::to_json(recommend::RecommendConfig{}));
  for (const char* key : {"\"test_fraction\"", "\"lr_schedule\"", "\"negatives\"", "\"k\""})
    EXPECT_NE(example.find(key), std::string::npos) << key << "\n" << example;
  EXPECT_NE(recommend::recommend_config_schema().find("\"additionalProperties\""),
            std::string::npos);
}

TEST(RecommendConfigDeclared, ShippedConfigsParseAndRoundTrip) {
  for (const std::string& path : shipped("pipelines/recommend")) {
    const recommend::RecommendConfig c = recommend::read_recommend_config(path);
    const std::string written = recommend::to_json(c);
    const recommend::RecommendConfig back = recommend::parse_recommend_config(written, path);
    EXPECT_TRUE(back == c) << path;
    EXPECT_EQ(recommend::to_json(back), written) << path;
    EXPECT_EQ(c.data.dataset, "ml-latest-small") << path;
    EXPECT_EQ(c.data.train.path, "ratings.csv") << path;
  }
}

TEST(RecommendConfigDeclared, OlderDataKeysStillRead) {
  using recommend::parse_recommend_config;
  // "path": a local file, whatever the dataset; "file": a file of the dataset.
  auto c = parse_recommend_config(
      R"({"task": "recommend", "model": "mf", "data": {"dataset": "ml-latest-small",
          "path": "/d/r.csv", "test": "/d/t.csv"}})",
      "a.json");
  EXPECT_EQ(c.data.train.path, "/d/r.csv");
  EXPECT_TRUE(c.data.dataset.empty());
  // A model trained before "train" stores "file" with an empty "path".
  c = parse_recommend_config(R"({"task": "recommend", "model": "mf", "data": {"dataset": "ml-100k",
          "file": "u.data", "path": ""}})",
                             "b.json");
  EXPECT_EQ(c.data.dataset, "ml-100k");
  EXPECT_EQ(c.data.train.path, "u.data");
  const std::string written = recommend::to_json(c);
  EXPECT_NE(written.find("\"train\": \"u.data\""), std::string::npos) << written;
  EXPECT_EQ(written.find("\"file\""), std::string::npos) << written;
  // "train" without a dataset is a local file.
  c = parse_recommend_config(R"({"task": "recommend", "model": "mf", "data": {"train": "x.csv"}})",
                             "c.json");
  EXPECT_TRUE(c.data.dataset.empty());
  const std::string both = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf",
      "data": {"train": "x.csv", "path": "y.csv"}})",
                           "d.json");
  });
  EXPECT_NE(both.find("d.json:2:"), std::string::npos) << both;
  EXPECT_NE(both.find("$.data.path: \"path\" is the older spelling of \"train\""),
            std::string::npos)
      << both;
  const std::string skip = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf",
      "data": {"train": {"path": "x.csv", "skip_lines": 1}}})",
                           "e.json");
  });
  EXPECT_NE(skip.find("$.data.train.skip_lines"), std::string::npos) << skip;
}

TEST(RecommendConfigDeclared, LrScheduleWrittenOnlyWhenSetAndCheckedAgainstTheTablesLr) {
  using recommend::parse_recommend_config;
  const auto plain = parse_recommend_config(R"({"task": "recommend", "model": "mf"})", "p.json");
  EXPECT_EQ(recommend::to_json(plain).find("lr_schedule"), std::string::npos);
  const auto cosine = parse_recommend_config(
      R"({"task": "recommend", "model": "mf", "embeddings": {"optimizer": {"lr": 0.5}},
          "train": {"lr_schedule": {"type": "cosine", "min_lr": 0.1}}})",
      "c.json");
  EXPECT_EQ(cosine.train.lr_schedule.type, LrScheduleType::Cosine);
  EXPECT_TRUE(parse_recommend_config(recommend::to_json(cosine), "w.json") == cosine);
  EXPECT_FALSE(cosine == plain);
  const std::string e = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf",
          "train": {"lr_schedule": {"type": "cosine", "min_lr": 0.1}}})",
                           "m.json");
  });
  EXPECT_NE(e.find("$.train.lr_schedule.min_lr: must not exceed the optimizer's lr"),
            std::string::npos)
      << e;
}

TEST(TextclassConfigDeclared, ExampleReadsBackAsTheDefaultsWithItsPlaceholders) {
  const std::string example = textclass::textclass_config_example();
  const textclass::TextclassConfig back = textclass::parse_textclass_config(example, "ex.json");
  textclass::TextclassConfig expected;
  expected.data.train.path = "train.tsv";
  expected.data.validation_fraction = 0.1;
  EXPECT_TRUE(back == expected) << example;
  for (const char* key : {"\"label_column\"", "\"text_column\"", "\"strip_markup\"",
                          "\"delimiter\"", "\"header\"", "\"on_error\"", "\"lstm_dropout\""})
    EXPECT_NE(example.find(key), std::string::npos) << key << "\n" << example;
  EXPECT_NE(textclass::textclass_config_schema().find("\"label_column\""), std::string::npos);
}

TEST(TextclassConfigDeclared, ShippedConfigsParseAndRoundTrip) {
  for (const std::string& path : shipped("pipelines/textclass")) {
    const textclass::TextclassConfig c = textclass::read_textclass_config(path);
    const std::string written = textclass::to_json(c);
    const textclass::TextclassConfig back = textclass::parse_textclass_config(written, path);
    EXPECT_TRUE(back == c) << path;
    EXPECT_EQ(textclass::to_json(back), written) << path;
    // The layout keys are written only when set: these configs resolve as before them.
    for (const char* key :
         {"delimiter", "header", "label_column", "text_column", "strip_markup", "on_error"})
      EXPECT_EQ(written.find(std::string("\"") + key + "\""), std::string::npos) << key << written;
    EXPECT_TRUE(c.data.layout.rest_is_text());
  }
}

TEST(TextclassConfigDeclared, LayoutKeysReadWriteAndAreChecked) {
  using textclass::parse_textclass_config;
  const auto c = parse_textclass_config(R"({"task": "textclass", "train": {},
      "data": {"train": "t.csv", "validation_fraction": 0.2, "delimiter": ",", "header": true,
               "label_column": "sentiment", "text_column": 2, "strip_markup": true,
               "on_error": "skip"}})",
                                        "l.json");
  EXPECT_EQ(c.data.layout.delimiter, ',');
  EXPECT_EQ(c.data.layout.header, std::optional<bool>(true));
  ASSERT_TRUE(c.data.layout.label_column.has_value());
  EXPECT_EQ(c.data.layout.label_column->name, "sentiment");
  ASSERT_TRUE(c.data.layout.text_column.has_value());
  EXPECT_EQ(c.data.layout.text_column->index, 2);
  EXPECT_TRUE(c.data.tokenizer.strip_markup);
  EXPECT_EQ(c.data.layout.on_error, BadRowPolicy::Skip);
  EXPECT_TRUE(parse_textclass_config(textclass::to_json(c), "w.json") == c)
      << textclass::to_json(c);
  const std::string e = error_of([] {
    parse_textclass_config(R"({"task": "textclass", "train": {},
      "data": {"train": "t.csv", "validation_fraction": 0.2,
               "label_column": "sentiment", "text_column": 0, "delimiter": "ab"}})",
                           "bad.json");
  });
  EXPECT_NE(e.find("$.data.label_column: a column named by the header needs \"header\": true"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("$.data.delimiter: expected a single character"), std::string::npos) << e;
  const std::string same = error_of([] {
    parse_textclass_config(R"({"task": "textclass", "train": {},
      "data": {"train": "t.csv", "validation_fraction": 0.2, "text_column": 0}})",
                           "same.json");
  });
  EXPECT_NE(same.find("$.data.text_column: the label and the text are the same column"),
            std::string::npos)
      << same;
  const std::string none = error_of([] {
    parse_textclass_config(R"({"task": "textclass", "train": {}, "data": {"train": "t.csv"}})",
                           "none.json");
  });
  EXPECT_NE(none.find("$.data: needs \"validation\""), std::string::npos) << none;
}

}  // namespace
}  // namespace tessera
