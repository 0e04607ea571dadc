// The behaviour config as declared once (pipelines/behaviour/behaviour_config.h): the example
// reads back as the defaults, the schema describes the sections, every shipped config round-trips,
// and equality and the resolved JSON leave out what they should. (tests/config_test.cpp checks
// the reader's errors.)
#include <gtest/gtest.h>

#include <dirent.h>

#include <string>
#include <utility>
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
        "(one of \"auc\", \"logloss\")", "(only a \"dlrm\" or \"dcn_v2\" model has this key",
        "    // \"cross\": {", "    // \"bottom\": [64],", "    // \"placement\": \"auto\",",
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
  EXPECT_NE(std::string(model["bottom"]["description"].GetString())
                .find("only a \"dlrm\" or \"dcn_v2\" model"),
            std::string::npos);
  EXPECT_EQ(model["type"]["enum"].Size(), 4u);
  EXPECT_STREQ(model["cross"]["properties"]["structure"]["default"].GetString(), "stacked");
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
  // Tables split across the ranks: whole tables in checkpoints either way, so not compared.
  BehaviourConfig split = dlrm;
  split.model.tables_across_ranks = emb::RankPlacement::TableWise;
  EXPECT_TRUE(split == dlrm);
  EXPECT_NE(to_json(split).find("\"tables_across_ranks\": \"split\""), std::string::npos);
  EXPECT_EQ(to_json(dlrm).find("tables_across_ranks"), std::string::npos);
  EXPECT_EQ(parse_behaviour_config(to_json(split), "back").model.tables_across_ranks,
            emb::RankPlacement::TableWise);
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

// "dcn_v2" and "wide_deep": their configs read what applies to them, refuse what does not, and
// need categorical columns (numeric ones are optional, unlike the DLRM's).
TEST(BehaviourConfigDeclared, DcnV2AndWideDeepReadTheirKeysAndRefuseTheOthers) {
  const BehaviourConfig dcn = load_behaviour_config(kBehaviourDir + "/uci-adult-dcnv2.json");
  EXPECT_EQ(dcn.model.type, BehaviourModelType::DcnV2);
  EXPECT_EQ(dcn.model.cross.layers, 3);
  EXPECT_EQ(dcn.model.cross.low_rank, 0);
  EXPECT_EQ(dcn.model.cross.structure, CrossStructure::Stacked);
  EXPECT_EQ(dcn.model.bottom, std::vector<int>({64}));
  const BehaviourConfig mlperf = load_behaviour_config(kBehaviourDir + "/mlperf-dlrm-dcnv2.json");
  EXPECT_EQ(mlperf.model.cross.low_rank, 512);
  EXPECT_EQ(mlperf.model.embedding_dim, 128);
  EXPECT_EQ(mlperf.model.bottom, std::vector<int>({512, 256}));
  EXPECT_EQ(mlperf.model.hidden, std::vector<int>({1024, 1024, 512, 256}));
  EXPECT_EQ(mlperf.model.sparse_optimizer.type, emb::SparseOptimizer::Adagrad);
  const BehaviourConfig wd = load_behaviour_config(kBehaviourDir + "/uci-adult-wide-deep.json");
  EXPECT_EQ(wd.model.type, BehaviourModelType::WideDeep);
  EXPECT_EQ(to_json(wd).find("\"cross\""), std::string::npos);
  EXPECT_EQ(to_json(wd).find("\"bottom\""), std::string::npos);
  EXPECT_NE(to_json(wd).find("\"sparse_optimizer\""), std::string::npos);

  const std::string head = R"({"task": "behaviour", "data": {"train": "t.csv", "columns": [
    {"name": "a", "type": "numeric"}, {"name": "c", "type": "categorical"},
    {"name": "y", "type": "label"}]}, "model": )";
  auto error_of = [&](const std::string& model) {
    try {
      parse_behaviour_config(head + model + "}", "m.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const BehaviourConfig parallel = parse_behaviour_config(
      head + R"({"type": "dcn_v2", "bottom": [], "cross": {"layers": 2, "low_rank": 8,
      "structure": "parallel"}})" +
          "}",
      "m.json");
  EXPECT_EQ(parallel.model.cross.structure, CrossStructure::Parallel);
  EXPECT_TRUE(parallel.model.bottom.empty());
  EXPECT_EQ(parse_behaviour_config(to_json(parallel), "back"), parallel);
  BehaviourConfig other_rank = parallel;
  other_rank.model.cross.low_rank = 4;
  EXPECT_FALSE(other_rank == parallel);
  for (const auto& [model, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"type": "wide_deep", "cross": {"layers": 2}})",
            "$.model.cross: only a \"dcn_v2\" model has this key (model.type is \"wide_deep\")"},
           {R"({"type": "wide_deep", "bottom": [8]})", "only a \"dlrm\" or \"dcn_v2\" model"},
           {R"({"type": "mlp", "cross": {"layers": 2}})", "$.model.cross: only a \"dcn_v2\""},
           {R"({"type": "dcn_v2", "cross": {"layers": 0}})", "$.model.cross.layers"},
           {R"({"type": "dcn_v2", "cross": {"structure": "side"}})",
            "expected one of \"stacked\", \"parallel\""},
           {R"({"type": "dcn", "cross": {}})", "\"dlrm\", \"dcn_v2\", \"wide_deep\""},
           {R"({"type": "mlp", "tables_across_ranks": "split"})",
            "$.model.tables_across_ranks: only a \"dlrm\", \"dcn_v2\" or \"wide_deep\" model"},
           {R"({"type": "dlrm", "shards": 2, "tables_across_ranks": "split"})",
            "$.model.tables_across_ranks: \"split\" places whole tables on the ranks"},
           {R"({"type": "wide_deep", "tables_across_ranks": "rows"})",
            "expected one of \"replicated\", \"split\""}}) {
    const std::string msg = error_of(model);
    EXPECT_NE(msg.find(expected), std::string::npos) << model << ": " << msg;
  }
  // Numeric columns are optional for both; categorical ones are not.
  const std::string only_cat = R"({"task": "behaviour", "data": {"train": "t.csv", "columns": [
    {"name": "c", "type": "categorical"}, {"name": "y", "type": "label"}]}, "model": )";
  EXPECT_NO_THROW(parse_behaviour_config(only_cat + R"({"type": "dcn_v2"}})", "m.json"));
  EXPECT_NO_THROW(parse_behaviour_config(only_cat + R"({"type": "wide_deep"}})", "m.json"));
  const std::string only_num = R"({"task": "behaviour", "data": {"train": "t.csv", "columns": [
    {"name": "a", "type": "numeric"}, {"name": "y", "type": "label"}]}, "model": )";
  for (const char* type : {"dcn_v2", "wide_deep"}) {
    try {
      parse_behaviour_config(only_num + R"({"type": ")" + type + "\"}}", "m.json");
      ADD_FAILURE() << type << " without categorical columns accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("$.model.type: a \"") + type +
                                           "\" model needs at least one categorical column"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace tessera
