// The behaviour config as declared once (pipelines/behaviour/behaviour_config.h): the example
// reads back as the defaults, the schema describes the sections, every shipped config round-trips,
// and equality and the resolved JSON leave out what they should. (tests/config_test.cpp checks
// the reader's errors.)
#include <gtest/gtest.h>

#include <dirent.h>

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "host/core/error.h"
#include "pipelines/behaviour/behaviour_config.h"

namespace tessera {
namespace {

const std::string kBehaviourDir = std::string(TESSERA_SOURCE_DIR) + "/pipelines/behaviour";

// The defaults plus what the example gives for the required keys.
BehaviourConfig example_defaults() {
  BehaviourConfig c;
  c.data.train.path = "train.csv";
  c.data.schema.columns = {{"age", ColumnType::Numeric, NumericTransform::None, {}, {}},
                           {"city", ColumnType::Categorical, NumericTransform::None, {}, {}},
                           {"clicked", ColumnType::Label, NumericTransform::None, {}, {}}};
  return c;
}

TEST(BehaviourConfigDeclared, TheExampleReadsBackAsTheDefaults) {
  const std::string example = behaviour_config_example();
  const BehaviourConfig back = parse_behaviour_config(example, "example.json");
  EXPECT_TRUE(back == example_defaults()) << example << "\nread back as\n" << to_json(back);
  EXPECT_EQ(to_json(back), to_json(example_defaults()));
  BehaviourConfig other = example_defaults();
  other.train.epochs = 11;
  EXPECT_FALSE(back == other);
  // Documented, with what does not apply to the defaults commented out after the reason.
  for (const char* text :
       {"// passes over the training data", "\"epochs\": 10,", "\"delimiter\": \",\",",
        "(one of \"auc\", \"logloss\")", "(only a \"dlrm\" model has this key",
        "    // \"bottom\": [64],", "    // \"placement\": \"auto\",",
        "      // \"momentum\": 0.9,", "    // \"libsvm_features\": 0,",
        "    // \"dataset\": \"\",", "    // \"test\": \"\","}) {
    EXPECT_NE(example.find(text), std::string::npos) << text << " in\n" << example;
  }
}

TEST(BehaviourConfigDeclared, TheSchemaDescribesEverySection) {
  const std::string schema = behaviour_config_schema();
  rapidjson::Document d;
  d.Parse(schema.c_str());
  ASSERT_FALSE(d.HasParseError()) << schema;
  EXPECT_STREQ(d["title"].GetString(), "tessera behaviour config");
  std::vector<std::string> required;
  for (const auto& r : d["required"].GetArray()) required.emplace_back(r.GetString());
  EXPECT_EQ(required, (std::vector<std::string>{"task", "data"}));
  const auto& p = d["properties"];
  EXPECT_STREQ(p["task"]["const"].GetString(), "behaviour");
  const auto& data = p["data"]["properties"];
  EXPECT_TRUE(data["train"]["oneOf"].IsArray());
  EXPECT_EQ(data["validation_fraction"]["maximum"].GetDouble(), 0.9);
  EXPECT_STREQ(data["columns"]["items"]["properties"]["type"]["enum"][2].GetString(), "label");
  EXPECT_STREQ(data["delimiter"]["default"].GetString(), ",");
  const auto& model = p["model"]["properties"];
  EXPECT_EQ(model["placement"]["enum"].Size(), 4u);
  EXPECT_STREQ(model["sparse_optimizer"]["properties"]["type"]["default"].GetString(),
               "rowwise_adagrad");
  EXPECT_NE(std::string(model["bottom"]["description"].GetString()).find("only a \"dlrm\" model"),
            std::string::npos);
  EXPECT_EQ(p["train"]["properties"]["epochs"]["maximum"].GetInt(), 100000);
}

// Every config under pipelines/behaviour (but the pipeline spec) parses, and parse(to_json(c))
// is c with to_json a fixed point.
TEST(BehaviourConfigDeclared, EveryShippedConfigRoundTrips) {
  DIR* dir = opendir(kBehaviourDir.c_str());
  ASSERT_NE(dir, nullptr) << kBehaviourDir;
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 &&
        name != "pipeline.json")
      names.push_back(name);
  }
  closedir(dir);
  EXPECT_GE(names.size(), 4u);
  for (const std::string& name : names) {
    const BehaviourConfig c = load_behaviour_config(kBehaviourDir + "/" + name);
    const std::string text = to_json(c);
    const BehaviourConfig back = parse_behaviour_config(text, name + " (resolved)");
    EXPECT_TRUE(back == c) << name << "\n" << text;
    EXPECT_EQ(to_json(back), text) << name;
  }
}

TEST(BehaviourConfigDeclared, EqualityLeavesOutOnlyWhatDoesNotChangeResults) {
  const BehaviourConfig dlrm = load_behaviour_config(kBehaviourDir + "/uci-adult-dlrm.json");
  BehaviourConfig sharded = dlrm;
  sharded.model.shards = 4;
  sharded.model.placement = emb::ShardPlacement::Row;
  sharded.model.remote_shards = true;
  EXPECT_TRUE(sharded == dlrm);
  const std::string text = to_json(sharded);
  EXPECT_NE(text.find("\"shards\": 4"), std::string::npos) << text;
  EXPECT_NE(text.find("\"placement\": \"row\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"remote_shards\": true"), std::string::npos) << text;
  EXPECT_EQ(to_json(dlrm).find("remote_shards"), std::string::npos);  // written only when set
  BehaviourConfig lr = dlrm;
  lr.model.sparse_optimizer.lr = 0.5;
  EXPECT_FALSE(lr == dlrm);
  BehaviourConfig delimiter = dlrm;
  delimiter.data.schema.delimiter = ';';
  EXPECT_FALSE(delimiter == dlrm);
  EXPECT_NE(to_json(delimiter).find("\"delimiter\": \";\""), std::string::npos);
}

TEST(BehaviourConfigDeclared, TheResolvedDataSectionWritesWhatApplies) {
  const BehaviourConfig c = parse_behaviour_config(R"({"task": "behaviour", "data": {
    "train": "t.svm", "validation": "v.svm", "format": "libsvm", "libsvm_features": 9}})",
                                                   "d.json");
  const std::string text = to_json(c);
  for (const char* absent : {"\"dataset\"", "\"derive\"", "\"validation_fraction\"",
                             "\"delimiter\"", "\"columns\"", "\"bin_edges\"", "\"test\""}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent << " in\n" << text;
  }
  for (const char* present :
       {"\"train\": \"t.svm\"", "\"validation\": \"v.svm\"", "\"libsvm_features\": 9"}) {
    EXPECT_NE(text.find(present), std::string::npos) << present << " in\n" << text;
  }
  EXPECT_EQ(c.data.validation_fraction, 0.0);
}

}  // namespace
}  // namespace tessera
