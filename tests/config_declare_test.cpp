// Config sections declared once (host/config/declare.h): the reader, writer, equality, example
// and JSON Schema all come from one fields() list. Checked on a small section that uses every
// kind of field, and on the shared optimizer and schedule sections.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include "host/config/declare.h"
#include "host/config/sections.h"
#include "host/core/error.h"

namespace tessera {
namespace {

enum class Shape : uint8_t { Round, Square };
const json::Choices<Shape>& shape_choices() {
  static const json::Choices<Shape> c = {{"round", Shape::Round}, {"square", Shape::Square}};
  return c;
}

struct Inner {
  int count = 3;
  std::vector<std::string> tags = {"a"};
};

struct Outer {
  std::string name = "x";
  Shape shape = Shape::Round;
  double radius = 1.5;  // round only
  int side = 2;         // square only
  bool flag = false;
  int shards = 1;  // not compared
  std::vector<int> widths = {4, 8};
  Inner inner;
  std::vector<Inner> items;
  std::optional<FileSpec> file;
  OptimizerConfig optimizer;
};

template <typename V>
void fields(V& v, Inner& c) {
  using config::F;
  v.integer(F("count", "how many"), c.count, json::IntBounds::closed(1, 10));
  v.string_list(F("tags", "labels"), c.tags);
}

template <typename V>
void fields(V& v, Outer& c) {
  using config::F;
  v.constant(F("task", "what this is").required(), "demo");
  v.string(F("name", "a name"), c.name, json::Text::NonEmpty);
  v.choice(F("shape", "the shape"), c.shape, shape_choices());
  v.when(c.shape == Shape::Round, "only a round shape has a radius",
         [&] { v.number(F("radius", "the radius"), c.radius, json::Bounds::positive()); });
  v.when(c.shape == Shape::Square, "",
         [&] { v.integer(F("side", "the side"), c.side, json::IntBounds::closed(1, 100)); });
  v.boolean(F("flag", "a flag").written_if(c.flag), c.flag);
  v.integer(F("shards", "not part of identity").not_compared(), c.shards,
            json::IntBounds::closed(1, 64));
  v.integer_list(F("widths", "layer widths"), c.widths, json::IntBounds::closed(1, 1024),
                 json::IntBounds::closed(0, 8));
  v.section(F("inner", "an inner section"), c.inner);
  v.section_list(F("items", "a list of sections"), c.items);
  v.custom(F("file", "a data file"), c.file, config::file_codec());
  v.section(F("optimizer", "the optimizer"), c.optimizer);
  v.check(c.inner.count <= static_cast<int>(c.widths.size()) + 5, "inner.count",
          "must not exceed the number of widths + 5");
}

Outer read(const std::string& text) {
  return config::read_config<Outer>(text, "demo.json");
}

std::string error_of(const std::string& text) {
  try {
    read(text);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return "";
}

TEST(ConfigDeclare, ReadsEveryKindOfFieldAndKeepsDefaults) {
  const Outer c = read(R"({"task": "demo", "shape": "square", "side": 7, "flag": true,
    "widths": [1, 2], "inner": {"count": 5}, "items": [{"count": 2, "tags": []}],
    "file": {"path": "f.csv", "skip_lines": 1}, "optimizer": {"type": "sgd", "lr": 0.5}})");
  EXPECT_EQ(c.name, "x");
  EXPECT_EQ(c.shape, Shape::Square);
  EXPECT_EQ(c.side, 7);
  EXPECT_TRUE(c.flag);
  EXPECT_EQ(c.widths, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.inner.count, 5);
  EXPECT_EQ(c.inner.tags, (std::vector<std::string>{"a"}));
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].count, 2);
  EXPECT_TRUE(c.items[0].tags.empty());
  ASSERT_TRUE(c.file.has_value());
  EXPECT_EQ(c.file->path, "f.csv");
  EXPECT_EQ(c.file->skip_lines, 1);
  EXPECT_EQ(c.optimizer.type, OptimizerType::Sgd);
  EXPECT_EQ(c.optimizer.lr, 0.5);
}

TEST(ConfigDeclare, WriterRoundTripsAndLeavesOutWhatDoesNotApply) {
  const Outer c = read(R"({"task": "demo", "shape": "square", "side": 7,
    "file": "data.csv", "optimizer": {"type": "sgd"}})");
  const std::string text = config::write_config(c);
  EXPECT_EQ(text.find("\"radius\""), std::string::npos) << text;  // round only
  EXPECT_EQ(text.find("\"flag\""), std::string::npos) << text;    // written only when set
  EXPECT_EQ(text.find("\"beta1\""), std::string::npos) << text;   // adam only
  EXPECT_NE(text.find("\"file\": \"data.csv\""), std::string::npos) << text;
  EXPECT_TRUE(config::same_config(read(text), c)) << text;
}

TEST(ConfigDeclare, EqualityIgnoresOnlyFieldsMarkedNotCompared) {
  Outer a = read(R"({"task": "demo"})");
  Outer b = a;
  b.shards = 8;
  EXPECT_TRUE(config::same_config(a, b));
  b.radius = 2.5;
  EXPECT_FALSE(config::same_config(a, b));
  b = a;
  b.optimizer.lr = 0.25;
  EXPECT_FALSE(config::same_config(a, b));
  b = a;
  b.items.push_back(Inner{});
  EXPECT_FALSE(config::same_config(a, b));
}

TEST(ConfigDeclare, ErrorsNameLineJsonPathAndWhyAFieldDoesNotApply) {
  const std::string msg = error_of(R"({"task": "demo",
    "radius": 2, "shape": "square",
    "side": 1000,
    "optimizer": {"type": "adam", "momentum": 0.5},
    "inner": {"count": 9, "colour": 1},
    "widths": []})");
  EXPECT_NE(msg.find("demo.json:2:15: $.radius: only a round shape has a radius"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("demo.json:3:13: $.side: expected an integer in [1, 100]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("$.optimizer.momentum: only applies to \"sgd\" (this optimizer is \"adam\")"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("$.inner.colour"), std::string::npos) << msg;  // unknown key
  EXPECT_NE(msg.find("$.inner.count: must not exceed the number of widths + 5"), std::string::npos)
      << msg;
}

TEST(ConfigDeclare, AnEmptyWhyLeavesTheKeyUnknownAndAMisspeltChoiceSilencesWhen) {
  // "side" outside the square branch has no reason given: it is an unknown key.
  EXPECT_NE(error_of(R"({"task": "demo", "side": 3})").find("$.side: unknown key"),
            std::string::npos);
  // With the shape misspelt nobody knows whether radius applies: one error, about the shape.
  const std::string msg = error_of(R"({"task": "demo", "shape": "rond", "radius": 3})");
  EXPECT_NE(msg.find("did you mean \"round\""), std::string::npos) << msg;
  EXPECT_EQ(msg.find("$.radius"), std::string::npos) << msg;
  EXPECT_NE(error_of(R"({"task": "other"})").find("$.task"), std::string::npos);
  EXPECT_NE(error_of(R"({})").find("missing required key"), std::string::npos);
}

TEST(ConfigDeclare, TheExampleReadsBackAsTheDefaultsAndDocumentsEveryField) {
  const std::string example = config::example_config<Outer>("A demo config.");
  const Outer back = read(example);  // comments are accepted; commented-out fields are not read
  EXPECT_TRUE(config::same_config(back, Outer{})) << example;
  for (const char* key : {"\"radius\"", "\"side\"", "\"momentum\"", "\"beta1\"", "\"file\"",
                          "\"items\"", "// the radius", "(one of \"round\", \"square\")"}) {
    EXPECT_NE(example.find(key), std::string::npos) << key << "\n" << example;
  }
  // What does not apply to the defaults is shown commented out, after the reason.
  EXPECT_NE(example.find("  // \"side\": 2,"), std::string::npos) << example;
  EXPECT_NE(example.find("    // \"momentum\": 0.9,"), std::string::npos) << example;
  // So is a key written only when set, when it is not (an unset value may not read back).
  EXPECT_NE(example.find("  // \"flag\": false,"), std::string::npos) << example;
}

TEST(ConfigDeclare, TheSchemaDescribesTypesBoundsChoicesAndRequiredKeys) {
  const std::string schema = config::schema_config<Outer>("demo");
  rapidjson::Document d;
  d.Parse(schema.c_str());
  ASSERT_FALSE(d.HasParseError()) << schema;
  EXPECT_STREQ(d["$schema"].GetString(), "https://json-schema.org/draft/2020-12/schema");
  EXPECT_FALSE(d["additionalProperties"].GetBool());
  const auto& p = d["properties"];
  EXPECT_STREQ(p["task"]["const"].GetString(), "demo");
  EXPECT_EQ(d["required"].Size(), 1u);
  EXPECT_STREQ(d["required"][0].GetString(), "task");
  EXPECT_EQ(p["shape"]["enum"].Size(), 2u);
  EXPECT_TRUE(p["radius"]["exclusiveMinimum"].IsNumber());
  EXPECT_EQ(p["side"]["maximum"].GetInt(), 100);
  EXPECT_EQ(p["widths"]["maxItems"].GetInt(), 8);
  EXPECT_STREQ(p["inner"]["type"].GetString(), "object");
  EXPECT_EQ(p["inner"]["properties"]["count"]["default"].GetInt(), 3);
  EXPECT_STREQ(p["items"]["items"]["type"].GetString(), "object");
  EXPECT_TRUE(p["file"]["oneOf"].IsArray());
  EXPECT_EQ(p["optimizer"]["properties"]["type"]["enum"].Size(), 3u);
  EXPECT_NE(std::string(p["radius"]["description"].GetString()).find("only a round shape"),
            std::string::npos);
}

struct Renamed {
  DataFiles data;
  int width = 1;
};
template <typename V>
void fields(V& v, Renamed& c) {
  using config::F;
  v.integer(F("width", "renamed from size").formerly("size"), c.width,
            json::IntBounds::closed(1, 9));
  v.section(F("data", "the data files"), c.data);
}

TEST(ConfigDeclare, AnOlderSpellingIsReadAndWrittenUnderTheNewKey) {
  const auto c =
      config::read_config<Renamed>(R"({"size": 4, "data": {"train": "t.csv"}})", "r.json");
  EXPECT_EQ(c.width, 4);
  const std::string text = config::write_config(c);
  EXPECT_NE(text.find("\"width\": 4"), std::string::npos) << text;
  EXPECT_EQ(text.find("\"size\""), std::string::npos) << text;
  try {
    config::read_config<Renamed>(R"({"size": 4, "width": 5, "data": {"train": "t"}})", "r.json");
    ADD_FAILURE() << "both spellings accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("$.size: \"size\" is the older spelling of \"width\""),
              std::string::npos)
        << e.what();
  }
}

TEST(ConfigDeclare, DataFilesTakeAValidationFileOrAFractionNotBoth) {
  const auto a = config::read_config<Renamed>(
      R"({"data": {"train": "t.csv", "validation": "v.csv", "test": {"path": "x", "skip_lines": 2}}})",
      "d.json");
  EXPECT_EQ(a.data.validation_fraction, 0.0);
  ASSERT_TRUE(a.data.test.has_value());
  EXPECT_EQ(a.data.test->skip_lines, 2);
  EXPECT_EQ(config::write_config(a).find("validation_fraction"), std::string::npos);
  try {
    config::read_config<Renamed>(
        R"({"data": {"train": "t", "validation": "v", "validation_fraction": 0.2}})", "d.json");
    ADD_FAILURE() << "validation and validation_fraction both accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("$.data.validation_fraction: give either"),
              std::string::npos)
        << e.what();
  }
  try {
    config::read_config<Renamed>(R"({"data": {}})", "d.json");
    ADD_FAILURE() << "missing train accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("$.data.train"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
