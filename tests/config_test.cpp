// The JSON config layer: the shipped configs parse, every kind of mistake is reported with its
// file, line:column, JSON path and what was expected, errors are collected (not first-only), and
// the resolved config round-trips through to_json.
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kSourceDir = TESSERA_SOURCE_DIR;
const std::string kUciAdult = kSourceDir + "/pipelines/behaviour/uci-adult.json";
const std::string kCriteo = kSourceDir + "/pipelines/behaviour/criteo-sample.json";

// The message of the Error(Config) that parsing `text` throws ("" and a test failure if none).
std::string config_error(const std::string& text, const std::string& path = "cfg.json") {
  try {
    parse_behaviour_config(text, path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a config error for:\n" << text;
  return "";
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A small valid config; tests splice mistakes into copies of it.
std::string minimal(const std::string& data_extra = "", const std::string& top_extra = "") {
  return R"({
  "task": "behaviour",)" +
         top_extra + R"(
  "data": {
    "train": "train.csv",)" +
         data_extra + R"(
    "columns": [{"name": "x", "type": "numeric"}, {"name": "y", "type": "label"}]
  }
})";
}

std::string with_train(const std::string& train_body) {
  return R"({"task": "behaviour",
 "data": {"train": "t.csv", "columns": [{"name": "x", "type": "numeric"}, {"name": "y", "type": "label"}]},
 "train": )" +
         train_body + "}";
}

// ---- the shipped configs ----------------------------------------------------------------------

TEST(BehaviourConfig, UciAdultDefaultParses) {
  const BehaviourConfig c = load_behaviour_config(kUciAdult);
  EXPECT_EQ(c.name, "uci-adult-mlp");
  EXPECT_EQ(c.seed, 42);
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.data.dataset, "uci-adult");
  EXPECT_EQ(c.data.train.path, "adult.data");
  EXPECT_EQ(c.data.train.skip_lines, 0);
  ASSERT_TRUE(c.data.test.has_value());
  EXPECT_EQ(c.data.test->path, "adult.test");
  EXPECT_EQ(c.data.test->skip_lines, 1);
  EXPECT_FALSE(c.data.validation.has_value());
  EXPECT_DOUBLE_EQ(c.data.validation_fraction, 0.1);
  EXPECT_EQ(c.data.schema.format, TableFormat::Csv);
  EXPECT_EQ(c.data.schema.delimiter, ',');
  EXPECT_FALSE(c.data.schema.header);
  EXPECT_TRUE(c.data.schema.trim);
  EXPECT_EQ(c.data.schema.missing_tokens, (std::vector<std::string>{"", "?"}));

  const std::vector<std::string> names = {"age",
                                          "workclass",
                                          "fnlwgt",
                                          "education",
                                          "education-num",
                                          "marital-status",
                                          "occupation",
                                          "relationship",
                                          "race",
                                          "sex",
                                          "capital-gain",
                                          "capital-loss",
                                          "hours-per-week",
                                          "native-country",
                                          "income"};
  const auto& cols = c.data.schema.columns;
  ASSERT_EQ(cols.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(cols[i].name, names[i]) << i;
  int numeric = 0, categorical = 0;
  for (const ColumnSpec& col : cols) {
    numeric += col.type == ColumnType::Numeric;
    categorical += col.type == ColumnType::Categorical;
    const bool log =
        col.name == "fnlwgt" || col.name == "capital-gain" || col.name == "capital-loss";
    EXPECT_EQ(col.transform, log ? NumericTransform::Log1p : NumericTransform::None) << col.name;
  }
  EXPECT_EQ(numeric, 6);
  EXPECT_EQ(categorical, 8);
  EXPECT_EQ(cols[14].type, ColumnType::Label);
  EXPECT_EQ(cols[14].positive, (std::vector<std::string>{">50K", ">50K."}));
  EXPECT_EQ(cols[14].negative, (std::vector<std::string>{"<=50K", "<=50K."}));

  EXPECT_EQ(c.model.type, BehaviourModelType::Mlp);
  EXPECT_EQ(c.model.embedding_dim, 8);
  EXPECT_EQ(c.model.hidden, (std::vector<int>{128, 64}));
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.2);
  EXPECT_EQ(c.model.activation, Activation::Relu);
  EXPECT_EQ(c.train.epochs, 15);
  EXPECT_EQ(c.train.batch_size, 256);
  EXPECT_EQ(c.train.optimizer.type, OptimizerType::Adam);
  EXPECT_DOUBLE_EQ(c.train.optimizer.lr, 1e-3);
}

// The column list must match the data file's width (15 comma-separated fields).
TEST(BehaviourConfig, UciAdultColumnsMatchTheData) {
  const std::string missing = test::missing_dataset("uci-adult", {"adult.data"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string data = scheduler::find_local_dataset_file("uci-adult", "adult.data");
  std::ifstream in(data);
  ASSERT_TRUE(in) << data;
  std::string line;
  std::getline(in, line);
  const size_t fields = static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1;
  EXPECT_EQ(fields, load_behaviour_config(kUciAdult).data.schema.columns.size());
}

TEST(BehaviourConfig, CriteoSampleParses) {
  const BehaviourConfig c = load_behaviour_config(kCriteo);
  EXPECT_EQ(c.data.schema.format, TableFormat::Criteo);
  EXPECT_TRUE(c.data.schema.header);
  EXPECT_TRUE(c.data.schema.columns.empty());  // implied by the format
  EXPECT_EQ(c.data.train.path, "criteo_sample.txt");
  EXPECT_EQ(c.data.categorical.hash_buckets, 1000);
  EXPECT_LE(c.train.epochs, 3);
}

// Every config shipped under pipelines/behaviour parses (new ones are covered as they land).
TEST(BehaviourConfig, EveryShippedConfigParses) {
  const std::string dir = kSourceDir + "/pipelines/behaviour";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int parsed = 0;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    if (name == "pipeline.json") continue;  // the pipeline spec: scheduler_pipeline_test parses it
    EXPECT_NO_THROW(load_behaviour_config(dir + "/" + name)) << name;
    ++parsed;
  }
  closedir(d);
  EXPECT_GE(parsed, 2);
}

TEST(BehaviourConfig, MissingFileIsAnIoError) {
  try {
    load_behaviour_config("/nonexistent/dir/x.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.json"), std::string::npos);
  }
}

// ---- syntax errors ----------------------------------------------------------------------------

TEST(ConfigErrors, SyntaxErrorNamesFileLineColumn) {
  // Line 3 starts a member without a comma after line 2's: the parser stops at its quote.
  const std::string text = "{\n  \"task\": \"behaviour\"\n  \"seed\": 1\n}\n";
  const std::string msg = config_error(text, "conf/x.json");
  EXPECT_EQ(msg.rfind("conf/x.json:3:3: JSON syntax error: Missing a comma or '}'", 0), 0u) << msg;
}

TEST(ConfigErrors, SyntaxErrorColumnsCountCharactersNotBytes) {
  // "é" is two bytes; the stray "x" is the 15th character of line 2.
  const std::string text = "{\n  \"name\": \"é\" x\n}";
  const std::string msg = config_error(text);
  EXPECT_NE(msg.find("cfg.json:2:15: JSON syntax error"), std::string::npos) << msg;
}

TEST(ConfigErrors, OtherSyntaxErrors) {
  EXPECT_NE(config_error("").find("cfg.json:1:1: JSON syntax error: The document is empty"),
            std::string::npos);
  EXPECT_NE(config_error("{} {}").find("cfg.json:1:4: JSON syntax error: The document root must "
                                       "not be followed by other values"),
            std::string::npos);
  EXPECT_NE(config_error(std::string("{\"task\": \"behaviour\"}\n\0\n{", 26))
                .find("cfg.json:2:1: JSON syntax error: NUL byte"),
            std::string::npos);
  EXPECT_NE(config_error("{\"a\": [1, 2,]}").find("cfg.json:1:13: JSON syntax error"),
            std::string::npos);
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  EXPECT_NE(config_error(deep).find("nesting deeper than 128 levels"), std::string::npos);
}

// A text that ends inside a UTF-8 sequence: rapidjson takes every continuation byte the lead
// byte announces before checking them, which read past the end of the text (found by
// tests/fuzz/fuzz_pipeline_spec; an over-read under ASan). Now a syntax error at the string.
TEST(ConfigErrors, TruncatedUtf8AtTheEndIsASyntaxError) {
  for (const std::string tail : {"\xEF", "\xEF\xBB", "\xF0\x9F\x98", "\xC3"}) {
    const std::string msg = config_error("{\n  \"name\": \"recom" + tail);
    EXPECT_EQ(msg.rfind("cfg.json:2:", 0), 0u) << msg;
    EXPECT_NE(msg.find("JSON syntax error: Invalid encoding in string"), std::string::npos) << msg;
  }
}

// Numbers are converted exactly (they must survive parse -> write -> parse), including the ones
// rapidjson's own full-precision path mishandled: a zero significand with an exponent called
// clz(0), undefined behaviour (found by tests/fuzz/fuzz_config and fuzz_pipeline_spec).
TEST(JsonReader, NumbersReadAsRapidjsonTypesThem) {
  const std::unique_ptr<json::Document> doc = json::parse(
      "[0e100, 0E109, -0.0e5, 1e-400, 0.1, 2.2250738585072014e-308, 4.9e-324, 4294967295,"
      " 4294967296, -2147483648, -2147483649, 18446744073709551615, 18446744073709551616,"
      " 1.7976931348623157e308, 123.456e-2]",
      "n.json");
  const rapidjson::Value& a = doc->json;
  ASSERT_TRUE(a.IsArray());
  ASSERT_EQ(a.Size(), 15u);
  for (int i : {0, 1, 2, 3}) {
    EXPECT_TRUE(a[i].IsDouble() && a[i].GetDouble() == 0.0) << i;
  }
  EXPECT_TRUE(std::signbit(a[2].GetDouble()));
  EXPECT_EQ(a[4].GetDouble(), 0.1);
  EXPECT_EQ(a[5].GetDouble(), 2.2250738585072014e-308);
  EXPECT_EQ(a[6].GetDouble(), 4.9e-324);
  EXPECT_TRUE(a[7].IsUint() && a[7].GetUint() == 4294967295u);
  EXPECT_TRUE(a[8].IsUint64() && !a[8].IsUint() && a[8].GetUint64() == 4294967296u);
  EXPECT_TRUE(a[9].IsInt() && a[9].GetInt() == INT32_MIN);
  EXPECT_TRUE(a[10].IsInt64() && !a[10].IsInt() && a[10].GetInt64() == -2147483649LL);
  EXPECT_TRUE(a[11].IsUint64() && a[11].GetUint64() == UINT64_MAX);
  EXPECT_TRUE(a[12].IsDouble() && a[12].GetDouble() == 18446744073709551616.0);
  EXPECT_EQ(a[13].GetDouble(), 1.7976931348623157e308);
  EXPECT_EQ(a[14].GetDouble(), 1.23456);
  // Too large for a double: a syntax error at the number, as rapidjson words it.
  for (const char* big : {"9.9e308", "-1e309", "1" /* followed by 400 zeros */}) {
    std::string text = std::string("{\"a\": ") + big;
    if (std::string(big) == "1") text += std::string(400, '0');
    EXPECT_EQ(config_error(text + "}"),
              "cfg.json:1:7: JSON syntax error: Number too big to be stored in double.")
        << big;
  }
}

// Positions count code points across the index's 256-byte strides, and a long one-line document
// is read in linear time (each value's position was found by scanning its line from the start:
// 800 KB on one line took minutes; found by fuzzing the config reader on a long line).
TEST(ConfigErrors, PositionsOnLongLines) {
  std::string accents;
  for (int i = 0; i < 300; ++i) accents += "\xC3\xA9";  // 300 x U+00E9, 600 bytes
  const std::string msg = config_error("{\"name\": \"" + accents + "\", \"seed\": x}");
  // {"name": " is 10 code points, then 300, then ", "seed": (11) puts x at column 322.
  EXPECT_EQ(msg.rfind("cfg.json:1:322: JSON syntax error", 0), 0u) << msg;

  std::string line = "[";
  for (int i = 0; i < 400000; ++i) line += "1,";
  const std::string long_msg = config_error(line + "x]");
  EXPECT_EQ(long_msg.rfind("cfg.json:1:800002: JSON syntax error", 0), 0u) << long_msg;
  const std::unique_ptr<json::Document> doc = json::parse(line + "1]", "long.json");
  EXPECT_EQ(doc->json.Size(), 400001u);
  EXPECT_EQ(doc->map.value("$[400000]").column, 800002);
}

TEST(ConfigErrors, CommentsAreAllowed) {
  const std::string text =
      "// uci adult, small\n" + minimal("\n    /* the default */ \"header\": false,");
  EXPECT_FALSE(parse_behaviour_config(text, "c.json").data.schema.header);
}

TEST(ConfigRouting, TaskOfTextAndFile) {
  EXPECT_TRUE(json::text_has_task("// a comment\n{\"task\": \"audio\", \"x\": 1}", "audio"));
  EXPECT_FALSE(json::text_has_task("{\"task\": \"audio\"}", "image"));
  EXPECT_FALSE(json::text_has_task("{\"task\": \"aud\"}", "audio"));  // no prefix match
  EXPECT_FALSE(json::text_has_task("{\"task\": 3}", "audio"));
  EXPECT_FALSE(json::text_has_task("[\"audio\"]", "audio"));
  EXPECT_FALSE(json::text_has_task("{\"task\": \"audio\"", "audio"));  // truncated
  EXPECT_FALSE(json::text_has_task("", "audio"));
  // Nested far deeper than any config: refused without exhausting the stack.
  EXPECT_FALSE(json::text_has_task(std::string(200000, '[') + std::string(200000, ']'), "audio"));
  EXPECT_FALSE(json::text_has_task("{\"a\": " + std::string(200000, '[') + "}", "audio"));
  EXPECT_TRUE(json::file_has_task(kUciAdult, "behaviour"));
  EXPECT_FALSE(json::file_has_task(kUciAdult, "recommend"));
  EXPECT_FALSE(json::file_has_task(kSourceDir + "/no/such/config.json", "behaviour"));
}

TEST(ConfigRouting, ReadDocumentReportsEveryErrorAndUnreadKeys) {
  struct Two {
    int64_t a = 0, b = 0;
  };
  auto read = [](json::ObjectReader& r, Two& t) {
    t.a = r.integer<int64_t>("a", 0, json::IntBounds::closed(0, 9));
    t.b = r.integer<int64_t>("b", 0, json::IntBounds::closed(0, 9));
  };
  const Two ok = json::read_document<Two>("{\"a\": 3, \"b\": 4}", "two.json", read);
  EXPECT_EQ(ok.a, 3);
  EXPECT_EQ(ok.b, 4);
  try {
    json::read_document<Two>("{\"a\": 30,\n \"b\": 4,\n \"c\": 1}", "two.json", read);
    FAIL() << "bad document accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("two.json:1:7: $.a: expected an integer in [0, 9], got 30"),
              std::string::npos)
        << msg;  // out of range
    EXPECT_NE(msg.find("two.json:3:2: $.c: unknown key"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2 errors)"), std::string::npos) << msg;
  }
}

// ---- per-field errors -------------------------------------------------------------------------

TEST(ConfigErrors, UnknownKeySuggestsTheClosest) {
  const std::string msg = config_error(with_train(R"({"epochs": 2,
   "optimiser": {"type": "adam"}})"));
  // The key is on line 4, column 4.
  EXPECT_NE(msg.find("cfg.json:4:4: $.train.optimiser: unknown key \"optimiser\"; did you mean "
                     "\"optimizer\"? (allowed keys: \"epochs\", \"batch_size\""),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("\"runs_dir\", \"prefetch\", \"on_nonfinite\")"), std::string::npos) << msg;
}

TEST(ConfigErrors, UnknownKeyWithoutACloseMatchListsAllowedKeys) {
  const std::string msg = config_error(minimal("", "\n  \"colour\": \"blue\","));
  EXPECT_NE(
      msg.find("$.colour: unknown key \"colour\" (allowed keys: \"task\", \"name\", \"seed\", "
               "\"device\", \"data\", \"model\", \"train\")"),
      std::string::npos)
      << msg;
}

TEST(ConfigErrors, WrongType) {
  std::string msg = config_error(with_train(R"({"epochs": "10"})"));
  EXPECT_NE(msg.find("$.train.epochs: expected an integer in [1, 100000], got a string (\"10\")"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"header\": 1,"));
  EXPECT_NE(msg.find("$.data.header: expected true or false, got 1"), std::string::npos) << msg;
  msg = config_error(minimal("", "\n  \"model\": [1],"));
  EXPECT_NE(msg.find("$.model: expected an object, got an array"), std::string::npos) << msg;
  msg = config_error(minimal("", "\n  \"model\": {\"hidden\": 64},"));
  EXPECT_NE(msg.find("$.model.hidden: expected an array, got 64"), std::string::npos) << msg;
  msg = config_error(minimal("", "\n  \"model\": {\"hidden\": [64, \"32\"]},"));
  EXPECT_NE(msg.find("$.model.hidden[1]: expected an integer in [1, 65536], got a string (\"32\")"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"test\": 5,"));
  EXPECT_NE(msg.find("$.data.test: expected a file path (a string) or an object"),
            std::string::npos)
      << msg;
  msg = config_error("[1, 2]");
  EXPECT_NE(msg.find("cfg.json:1:1: $: expected an object, got an array"), std::string::npos)
      << msg;
}

TEST(ConfigErrors, IntegersMayBeWrittenAsWholeDoubles) {
  const BehaviourConfig c =
      parse_behaviour_config(with_train(R"({"epochs": 2.0, "batch_size": 1e3})"), "c");
  EXPECT_EQ(c.train.epochs, 2);
  EXPECT_EQ(c.train.batch_size, 1000);
  const std::string msg = config_error(with_train(R"({"epochs": 2.5})"));
  EXPECT_NE(msg.find("$.train.epochs: expected an integer in [1, 100000], got 2.5"),
            std::string::npos)
      << msg;
}

TEST(ConfigErrors, OutOfRange) {
  std::string msg = config_error(minimal("", "\n  \"model\": {\"dropout\": 1.5},"));
  EXPECT_NE(msg.find("$.model.dropout: expected a number in [0, 0.95], got 1.5"), std::string::npos)
      << msg;
  msg = config_error(with_train(R"({"optimizer": {"lr": 0}})"));
  EXPECT_NE(msg.find("$.train.optimizer.lr: expected a number in (0, 10], got 0"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"validation_fraction\": 0.95,"));
  EXPECT_NE(msg.find("$.data.validation_fraction: expected a number in [0, 0.9], got 0.95"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("", "\n  \"seed\": -1,"));
  EXPECT_NE(msg.find("$.seed: expected an integer >= 0, got -1"), std::string::npos) << msg;
  msg = config_error(minimal("", "\n  \"model\": {\"embedding_dim\": 2048},"));
  EXPECT_NE(msg.find("$.model.embedding_dim: expected an integer in [1, 1024], got 2048"),
            std::string::npos)
      << msg;
}

// libsvm_features sizes every densified row: bounded by the feature limit of the reader
// (host/data/libsvm.h, 2^16), not 2^30 (4 GiB a row).
TEST(ConfigErrors, LibsvmFeaturesWithinTheReadersLimit) {
  const std::string head = R"({"task": "behaviour", "data": {"train": "t.svm", "format": "libsvm",
    "validation_fraction": 0.2, "libsvm_features": )";
  const std::string msg = config_error(head + "65537}}");
  EXPECT_NE(msg.find("$.data.libsvm_features: expected an integer in [0, 65536], got 65537"),
            std::string::npos)
      << msg;
  EXPECT_EQ(parse_behaviour_config(head + "65536}}", "cfg.json").data.schema.libsvm_features,
            65536);
}

// A DLRM without numeric or categorical inputs is refused from the config, at model.type with
// its line and column, not after the data is read (where the model's constructor said it without
// a place).
TEST(ConfigErrors, DlrmInputsAreCheckedAgainstTheColumns) {
  const std::string no_categorical = minimal("", "\n  \"model\": {\"type\": \"dlrm\"},");
  std::string msg = config_error(no_categorical);
  EXPECT_NE(msg.find("cfg.json:3:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("$.model.type: a \"dlrm\" model needs at least one categorical column"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("numeric column"), std::string::npos) << msg;
  // All-categorical data (no bottom MLP) and libSVM rows (sparse tables) are DLRM inputs too.
  EXPECT_NO_THROW(parse_behaviour_config(R"({"task": "behaviour", "model": {"type": "dlrm"},
    "data": {"train": "t.csv", "columns": [{"name": "c", "type": "categorical"},
                                           {"name": "y", "type": "label"}]}})",
                                         "cfg.json"));
  EXPECT_NO_THROW(parse_behaviour_config(R"({"task": "behaviour", "model": {"type": "dlrm"},
    "data": {"train": "t.svm", "format": "libsvm", "validation_fraction": 0.2}})",
                                         "cfg.json"));
  EXPECT_NO_THROW(parse_behaviour_config(R"({"task": "behaviour", "model": {"type": "dlrm"},
    "data": {"train": "t.csv", "columns": [{"name": "x", "type": "numeric"},
    {"name": "c", "type": "categorical"}, {"name": "y", "type": "label"}]}})",
                                         "cfg.json"));
}

TEST(ConfigErrors, BadEnumListsTheChoices) {
  std::string msg = config_error(minimal("", "\n  \"model\": {\"activation\": \"gelu\"},"));
  EXPECT_NE(msg.find("$.model.activation: expected one of \"relu\", \"tanh\", \"sigmoid\", got "
                     "\"gelu\"; did you mean \"relu\"?"),
            std::string::npos)
      << msg;
  msg = config_error(with_train(R"({"optimizer": {"type": "adm"}})"));
  EXPECT_NE(msg.find("$.train.optimizer.type: expected one of \"adam\", \"adamw\", \"sgd\", got "
                     "\"adm\"; did you mean \"adam\"?"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("", "\n  \"model\": {\"type\": \"wide_and_deep\"},"));
  EXPECT_NE(msg.find("$.model.type: expected one of \"mlp\", \"dlrm\", \"dcn_v2\", \"wide_deep\", "
                     "got \"wide_and_deep\""),
            std::string::npos)
      << msg;
  msg = config_error(minimal("", "\n  \"device\": \"gpu\","));
  EXPECT_NE(msg.find("$.device: expected one of \"auto\", \"cpu\", \"cuda\", \"cuda:N\""),
            std::string::npos)
      << msg;
  msg = config_error(R"({"task": "behavior"})");
  EXPECT_NE(msg.find("$.task: expected one of \"behaviour\", got \"behavior\"; did you mean "
                     "\"behaviour\"?"),
            std::string::npos)
      << msg;
}

TEST(ConfigErrors, DeviceSpellings) {
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"}) {
    EXPECT_EQ(
        parse_behaviour_config(minimal("", std::string("\n  \"device\": \"") + ok + "\","), "c")
            .device,
        ok);
  }
  for (const char* bad : {"cuda:", "cuda:x", "CUDA", "cuda:-1"}) {
    config_error(minimal("", std::string("\n  \"device\": \"") + bad + "\","));
  }
}

TEST(ConfigErrors, MissingRequired) {
  std::string msg = config_error(R"({"data": {"train": "a.csv", "columns": []}})");
  EXPECT_NE(msg.find("cfg.json:1:1: $.task: missing required key \"task\""), std::string::npos)
      << msg;
  msg = config_error(R"({"task": "behaviour"})");
  EXPECT_NE(msg.find("$.data: missing required key \"data\""), std::string::npos) << msg;
  msg = config_error(
      R"({"task": "behaviour", "data": {"columns": [{"name": "y", "type": "label"}]}})");
  EXPECT_NE(msg.find("$.data.train: missing required key \"train\""), std::string::npos) << msg;
  msg = config_error(R"({"task": "behaviour", "data": {"train": "a.csv"}})");
  EXPECT_NE(msg.find("$.data.columns: missing required key \"columns\""), std::string::npos) << msg;
  msg = config_error(R"({"task": "behaviour", "data": {"train": {"skip_lines": 1},
    "columns": [{"type": "label"}, {"name": "x"}]}})");
  EXPECT_NE(msg.find("$.data.train.path: missing required key \"path\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("$.data.columns[0].name: missing required key \"name\""), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("$.data.columns[1].type: missing required key \"type\""), std::string::npos)
      << msg;
}

TEST(ConfigErrors, DuplicateKey) {
  const std::string msg = config_error("{\"task\": \"behaviour\",\n \"seed\": 1,\n \"seed\": 2}");
  EXPECT_NE(msg.find("cfg.json:3:2: $.seed: duplicate key \"seed\" (first given at line 2)"),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("unknown key \"seed\""), std::string::npos) << msg;
}

// ---- cross-field checks -----------------------------------------------------------------------

TEST(ConfigErrors, CrossFieldOptimizer) {
  std::string msg = config_error(with_train(R"({"optimizer": {"type": "adam", "momentum": 0.9}})"));
  EXPECT_NE(msg.find("$.train.optimizer.momentum: only applies to \"sgd\" (this optimizer is "
                     "\"adam\")"),
            std::string::npos)
      << msg;
  msg = config_error(with_train(R"({"optimizer": {"type": "sgd", "beta2": 0.99}})"));
  EXPECT_NE(msg.find("$.train.optimizer.beta2: only applies to \"adam\" and \"adamw\" (this "
                     "optimizer is \"sgd\")"),
            std::string::npos)
      << msg;
  msg = config_error(
      with_train(R"({"optimizer": {"type": "sgd", "momentum": 0, "nesterov": true}})"));
  EXPECT_NE(msg.find("$.train.optimizer.nesterov: needs momentum > 0"), std::string::npos) << msg;
  // A misspelt type is reported alone: we cannot know which fields would apply.
  msg = config_error(with_train(R"({"optimizer": {"type": "sdg", "momentum": 0.5}})"));
  EXPECT_EQ(split_lines(msg).size(), 1u) << msg;
}

TEST(ConfigErrors, CrossFieldSchedule) {
  std::string msg = config_error(with_train(R"({"lr_schedule": {"type": "step"}})"));
  EXPECT_NE(msg.find("$.train.lr_schedule: the \"step\" schedule needs \"step_epochs\" >= 1"),
            std::string::npos)
      << msg;
  msg = config_error(with_train(R"({"lr_schedule": {"type": "constant", "min_lr": 0.0001}})"));
  EXPECT_NE(msg.find("$.train.lr_schedule.min_lr: only applies to the \"cosine\" schedule"),
            std::string::npos)
      << msg;
  msg = config_error(with_train(
      R"({"optimizer": {"lr": 0.01}, "lr_schedule": {"type": "cosine", "min_lr": 0.1}})"));
  EXPECT_NE(msg.find("$.train.lr_schedule.min_lr: must not exceed the optimizer's lr (0.01)"),
            std::string::npos)
      << msg;
}

TEST(ConfigErrors, CrossFieldData) {
  std::string msg =
      config_error(minimal("\n    \"categorical\": {\"min_count\": 5, \"hash_buckets\": 100},"));
  EXPECT_NE(msg.find("$.data.categorical.hash_buckets: hash_buckets > 0 and min_count > 1 exclude "
                     "each other"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"validation\": \"v.csv\", \"validation_fraction\": 0.2,"));
  EXPECT_NE(msg.find("$.data.validation_fraction: give either a \"validation\" file or "
                     "\"validation_fraction\""),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"format\": \"criteo\","));
  EXPECT_NE(msg.find("$.data.columns: columns are implied by the \"criteo\" format"),
            std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"format\": \"libsvm\", \"delimiter\": \" \","));
  EXPECT_NE(msg.find("$.data.delimiter: libsvm data is whitespace separated"), std::string::npos)
      << msg;
  msg = config_error(minimal("\n    \"validation_fraction\": 0,",
                             "\n  \"train\": {\"early_stopping\": {\"patience\": 3}},"));
  EXPECT_NE(msg.find("$.train.early_stopping.patience: early stopping needs validation data"),
            std::string::npos)
      << msg;
}

TEST(ConfigErrors, CrossFieldColumns) {
  auto with_columns = [](const std::string& cols) {
    return R"({"task": "behaviour", "data": {"train": "t.csv", "columns": [)" + cols + "]}}";
  };
  std::string msg = config_error(with_columns(R"({"name": "x", "type": "numeric"})"));
  EXPECT_NE(msg.find("$.data.columns: no label column"), std::string::npos) << msg;
  msg = config_error(with_columns(
      R"({"name": "a", "type": "label"}, {"name": "x", "type": "numeric"}, {"name": "b", "type": "label"})"));
  EXPECT_NE(msg.find("$.data.columns[2].type: a second label column (the first is "
                     "$.data.columns[0])"),
            std::string::npos)
      << msg;
  msg = config_error(
      with_columns(R"({"name": "y", "type": "label"}, {"name": "z", "type": "ignore"})"));
  EXPECT_NE(msg.find("$.data.columns: no feature columns"), std::string::npos) << msg;
  msg = config_error(with_columns(
      R"({"name": "x", "type": "numeric"}, {"name": "x", "type": "categorical"}, {"name": "y", "type": "label"})"));
  EXPECT_NE(
      msg.find("$.data.columns[1].name: duplicate column name \"x\" (also $.data.columns[0])"),
      std::string::npos)
      << msg;
  msg = config_error(with_columns(
      R"({"name": "c", "type": "categorical", "transform": "log1p"}, {"name": "y", "type": "label"})"));
  EXPECT_NE(msg.find("$.data.columns[0].transform: only applies to numeric columns (this column is "
                     "\"categorical\")"),
            std::string::npos)
      << msg;
  msg = config_error(with_columns(
      R"({"name": "x", "type": "numeric", "positive": ["1"]}, {"name": "y", "type": "label", "positive": ["1"]})"));
  EXPECT_NE(msg.find("$.data.columns[0].positive: only applies to the label column"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("$.data.columns[1].negative: give both \"positive\" and \"negative\""),
            std::string::npos)
      << msg;
  msg = config_error(with_columns(
      R"({"name": "x", "type": "numeric"}, {"name": "y", "type": "label", "positive": ["1", "yes"], "negative": ["0", "yes"]})"));
  EXPECT_NE(msg.find("$.data.columns[1].negative: token \"yes\" is both positive and negative"),
            std::string::npos)
      << msg;
  // A misspelt column type does not also produce "no label column".
  msg = config_error(
      with_columns(R"({"name": "x", "type": "numeric"}, {"name": "y", "type": "lable"})"));
  EXPECT_EQ(split_lines(msg).size(), 1u) << msg;
  EXPECT_NE(msg.find("got \"lable\"; did you mean \"label\"?"), std::string::npos) << msg;
}

TEST(ConfigErrors, Delimiter) {
  EXPECT_EQ(
      parse_behaviour_config(minimal("\n    \"delimiter\": \"\\t\","), "c").data.schema.delimiter,
      '\t');
  EXPECT_EQ(
      parse_behaviour_config(minimal("\n    \"delimiter\": \"\\\\t\","), "c").data.schema.delimiter,
      '\t');
  EXPECT_EQ(
      parse_behaviour_config(minimal("\n    \"delimiter\": \";\","), "c").data.schema.delimiter,
      ';');
  const std::string msg = config_error(minimal("\n    \"delimiter\": \"::\","));
  EXPECT_NE(msg.find("$.data.delimiter: expected a single character"), std::string::npos) << msg;
}

TEST(ConfigErrors, RunName) {
  const std::string msg = config_error(minimal("", "\n  \"name\": \"../evil\","));
  EXPECT_NE(msg.find("$.name: \"../evil\" cannot name a run directory"), std::string::npos) << msg;
}

// ---- collection -------------------------------------------------------------------------------

TEST(ConfigErrors, AllErrorsAreCollectedInFileOrder) {
  const std::string text = R"({
  "task": "behaviour",
  "seed": "seven",
  "data": {
    "train": "t.csv",
    "fromat": "csv",
    "columns": [{"name": "x", "type": "numeric"}, {"name": "y", "type": "label"}]
  },
  "model": {"dropout": 2, "activation": "softmax"},
  "train": {"epochs": 0, "optimizer": {"type": "adam", "momentum": 0.9}}
})";
  const std::string msg = config_error(text, "multi.json");
  const std::vector<std::string> lines = split_lines(msg);
  ASSERT_EQ(lines.size(), 7u) << msg;
  EXPECT_EQ(lines[0], "invalid config multi.json (6 errors):");
  EXPECT_EQ(lines[1].rfind("multi.json:3:11: $.seed: expected an integer >= 0", 0), 0u) << msg;
  EXPECT_EQ(lines[2].rfind("multi.json:6:5: $.data.fromat: unknown key \"fromat\"; did you mean "
                           "\"format\"?",
                           0),
            0u)
      << msg;
  EXPECT_EQ(lines[3].rfind("multi.json:9:24: $.model.dropout: expected a number in [0, 0.95]", 0),
            0u)
      << msg;
  EXPECT_EQ(lines[4].rfind("multi.json:9:41: $.model.activation: expected one of", 0), 0u) << msg;
  EXPECT_EQ(lines[5].rfind("multi.json:10:23: $.train.epochs: expected an integer in [1, 100000], "
                           "got 0",
                           0),
            0u)
      << msg;
  EXPECT_EQ(
      lines[6].rfind("multi.json:10:68: $.train.optimizer.momentum: only applies to \"sgd\"", 0),
      0u)
      << msg;
}

// ---- to_json round trip -----------------------------------------------------------------------

void expect_round_trip(const BehaviourConfig& c) {
  const std::string text = to_json(c);
  const BehaviourConfig again = parse_behaviour_config(text, "<to_json>");
  EXPECT_TRUE(again == c) << text;
  EXPECT_EQ(to_json(again), text);  // a fixed point
}

TEST(BehaviourConfigJson, RoundTripsTheShippedConfigs) {
  expect_round_trip(load_behaviour_config(kUciAdult));
  expect_round_trip(load_behaviour_config(kCriteo));
}

TEST(BehaviourConfigJson, RoundTripsEveryAlternative) {
  const std::string text = R"({
  "task": "behaviour", "name": "alt", "seed": 9007199254740993, "device": "cuda:1",
  "data": {
    "train": {"path": "/data/train.svm", "skip_lines": 2}, "validation": "v.svm", "test": "t.svm",
    "format": "libsvm", "header": true, "trim": false, "missing": [], "on_error": "skip",
    "libsvm_features": 123,
    "categorical": {"hash_buckets": 1048576}, "numeric": {"normalization": "minmax"}
  },
  "model": {"embedding_dim": 3, "hidden": [], "dropout": 0.3333333333333333, "activation": "tanh"},
  "train": {
    "epochs": 1, "batch_size": 7, "eval_batch_size": 9,
    "optimizer": {"type": "sgd", "lr": 0.1234567890123, "momentum": 0.5, "nesterov": true,
                  "weight_decay": 3e-7},
    "lr_schedule": {"type": "step", "warmup_steps": 100, "step_epochs": 2, "gamma": 0.5},
    "early_stopping": {"metric": "logloss", "patience": 2},
    "log_every": 1, "runs_dir": "/tmp/runs dir", "prefetch": 0, "on_nonfinite": "skip_batch"
  }
})";
  const BehaviourConfig c = parse_behaviour_config(text, "alt.json");
  EXPECT_EQ(c.seed, 9007199254740993);  // beyond 2^53: kept as an integer, not a double
  EXPECT_EQ(c.data.schema.format, TableFormat::LibSvm);
  EXPECT_EQ(c.data.validation_fraction, 0.0);
  EXPECT_TRUE(c.model.hidden.empty());
  EXPECT_EQ(c.train.optimizer.lr, 0.1234567890123);
  EXPECT_EQ(c.model.dropout, 1.0 / 3.0);
  EXPECT_EQ(c.train.on_nonfinite, NonFinitePolicy::SkipBatch);
  expect_round_trip(c);
  BehaviourConfig stop = c;
  stop.train.on_nonfinite = NonFinitePolicy::Stop;
  EXPECT_FALSE(stop == c);  // equality sees the field

  BehaviourConfig cosine = c;
  cosine.train.optimizer.type = OptimizerType::AdamW;
  cosine.train.optimizer.momentum = OptimizerConfig{}.momentum;  // does not apply to adamw
  cosine.train.optimizer.nesterov = false;
  cosine.train.optimizer.beta2 = 0.98;
  cosine.train.lr_schedule = LrScheduleConfig{};
  cosine.train.lr_schedule.type = LrScheduleType::Cosine;
  cosine.train.lr_schedule.min_lr = 1e-5;
  cosine.data.schema.format = TableFormat::Csv;
  cosine.data.schema.libsvm_features = 0;
  cosine.data.schema.delimiter = '\t';
  cosine.data.schema.columns = {
      {"n", ColumnType::Numeric, NumericTransform::Log1p, {}, {}},
      {"c", ColumnType::Categorical, NumericTransform::None, {}, {}},
      {"skip \"me\"", ColumnType::Ignore, NumericTransform::None, {}, {}},
      {"y", ColumnType::Label, NumericTransform::None, {}, {}},  // numeric label
  };
  expect_round_trip(cosine);
}

TEST(BehaviourConfigJson, ResolvedConfigFillsInDefaults) {
  const BehaviourConfig c = parse_behaviour_config(minimal(), "m.json");
  const std::string text = to_json(c);
  for (const char* key :
       {"\"eval_batch_size\": 4096",
        "\"lr_schedule\": {\"type\": \"constant\", "
        "\"warmup_steps\": 0}",
        "\"validation_fraction\": 0.1", "\"missing\": [\"\", \"?\", \"NA\"]", "\"eps\": 1e-8",
        "\"name\": \"behaviour\"", "\"on_nonfinite\": \"stop\""}) {
    EXPECT_NE(text.find(key), std::string::npos) << key << " in\n" << text;
  }
  EXPECT_EQ(text.find("momentum"), std::string::npos) << text;  // adam: does not apply
}

// ---- the reader framework on its own -----------------------------------------------------------

TEST(JsonReader, EditDistanceAndSuggestions) {
  EXPECT_EQ(json::edit_distance("", "abc"), 3u);
  EXPECT_EQ(json::edit_distance("optimiser", "optimizer"), 1u);
  EXPECT_EQ(json::edit_distance("ba", "ab"), 1u);  // a transposition is one edit
  EXPECT_EQ(json::edit_distance("Adam", "adam"), 0u);
  EXPECT_EQ(json::closest_match("batchsize", {"epochs", "batch_size", "eval_batch_size"}),
            "batch_size");
  EXPECT_EQ(json::closest_match("hidden_layers", {"hidden", "dropout"}), "hidden");
  EXPECT_EQ(json::closest_match("colour", {"task", "name", "seed"}), "");
}

TEST(JsonReader, PathsQuoteNonIdentifierKeys) {
  EXPECT_EQ(json::child_path("$", "a_b1"), "$.a_b1");
  EXPECT_EQ(json::child_path("$.x", "my key"), "$.x[\"my key\"]");
  EXPECT_EQ(json::element_path("$.x", 3), "$.x[3]");
  auto doc = json::parse("{\"a\": {\"odd key\": [1, {\"z\": true}]}}", "p.json");
  json::ObjectReader root = doc->root();
  json::ObjectReader a = root.object("a");
  a.finish();
  root.finish();
  const std::vector<std::string> lines = doc->errors.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("p.json:1:8: $.a[\"odd key\"]: unknown key \"odd key\"", 0), 0u)
      << lines[0];
}

TEST(JsonReader, ListsAndBoundsAndFallbacks) {
  auto doc = json::parse(R"({"xs": [1, 2.5, 3], "names": ["a", ""], "k": 7, "r": 0.5, "e": null})",
                         "l.json");
  json::ObjectReader r = doc->root();
  EXPECT_EQ(r.number_list("xs", {}, json::Bounds::closed(0, 3)), (std::vector<double>{1, 2.5, 3}));
  EXPECT_EQ(r.string_list("names", {"fallback"}, json::Text::NonEmpty),
            (std::vector<std::string>{"fallback"}));
  EXPECT_EQ(r.integer<int>("k", 0, json::IntBounds::closed(0, 5)), 0);  // out of range: fallback
  EXPECT_EQ(r.number("r", 1.0, json::Bounds::positive()), 0.5);
  EXPECT_EQ(r.string("e", "dflt"), "dflt");  // null is not a string
  EXPECT_EQ(r.integer<int>("absent", 11), 11);
  EXPECT_EQ(r.kind("xs"), json::JsonKind::Array);
  EXPECT_EQ(r.kind("nope"), json::JsonKind::Absent);
  r.finish();
  const std::vector<std::string> lines = doc->errors.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("$.names[1]: expected a non-empty string, got a string (\"\")"),
            std::string::npos);
  EXPECT_NE(lines[1].find("$.k: expected an integer in [0, 5], got 7"), std::string::npos);
  EXPECT_NE(lines[2].find("$.e: expected a string, got null"), std::string::npos);
}

TEST(JsonReader, FinishRunsOnDestructionAndNotTwice) {
  auto doc = json::parse(R"({"a": 1, "b": {"c": 2}})", "f.json");
  {
    json::ObjectReader r = doc->root();
    r.integer("a", 0);
    json::ObjectReader b = r.object("b");
    json::ObjectReader moved = std::move(b);  // only the new owner reports
  }
  const std::vector<std::string> lines = doc->errors.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("$.b.c: unknown key \"c\" (this object takes no keys)"),
            std::string::npos)
      << lines[0];
}

TEST(JsonWriter, PrettyKeepsShortContainersOnOneLine) {
  json::JsonWriter w;
  w.begin_object();
  w.field("name", "x").field("list", std::vector<int>{1, 2, 3});
  w.key("nested")
      .begin_object()
      .field("pi", 3.14159)
      .field("tiny", 1e-8)
      .field("ok", true)
      .end_object();
  w.key("long").begin_array();
  for (int i = 0; i < 30; ++i) w.value("item");
  w.end_array();
  w.end_object();
  const std::string text = w.pretty(60);
  EXPECT_NE(text.find("\n  \"list\": [1, 2, 3],\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\"nested\": {\"pi\": 3.14159, \"tiny\": 1e-8, \"ok\": true}"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\"long\": [\n    \"item\",\n"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  // Every integer type writes as an integer.
  json::JsonWriter ints;
  ints.begin_array()
      .value(1u)
      .value(2LL)
      .value(size_t{3})
      .value(int16_t{-4})
      .value(uint64_t{1} << 63);
  ints.end_array();
  EXPECT_EQ(ints.compact(), "[1,2,3,-4,9223372036854775808]");
  // Writing an incomplete document, or a NaN, is a bug in the caller: an Internal error.
  json::JsonWriter open;
  open.begin_object();
  EXPECT_THROW(open.compact(), Error);
  json::JsonWriter nan;
  EXPECT_THROW(nan.value(std::nan("")), Error);
  json::JsonWriter misuse;
  misuse.begin_object();
  EXPECT_THROW(misuse.value(1), Error);  // a value where a key is due
  EXPECT_THROW(misuse.end_array(), Error);
}

}  // namespace
}  // namespace tessera
