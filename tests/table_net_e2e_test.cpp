// DCN-v2 and Wide & Deep through the binary as a user runs them: a synthetic Criteo-layout config
// switched to each model type trains, and `tessera evaluate` on its model file gives the test
// metrics the training run reported (the artefact restores the model it saved).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "host/core/atomic_file.h"
#include "tests/support/run_program.h"

namespace tessera {
namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

test::ProgramResult tessera(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  test::ProgramOptions o;
  o.merge_stderr = true;
  return test::run_program(args, o);
}

rapidjson::Document last_json(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const size_t p = s.find_last_of('\n');
  rapidjson::Document d;
  d.Parse((p == std::string::npos ? s : s.substr(p + 1)).c_str());
  EXPECT_TRUE(!d.HasParseError() && d.IsObject()) << out;
  return d;
}

// The synthetic config with model.type and the fields of that type replaced.
std::string config_for(const std::string& base, const std::string& dir, const char* model_json) {
  rapidjson::Document c;
  c.Parse(read_file(base).c_str());
  rapidjson::Document m(&c.GetAllocator());
  m.Parse(model_json);
  c["model"].CopyFrom(m, c.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  c.Accept(w);
  const std::string path = dir + "/config-" + std::to_string(std::hash<std::string>{}(model_json));
  write_file_atomic(path + ".json", buf.GetString());
  return path + ".json";
}

class TableNetE2e : public ::testing::TestWithParam<const char*> {};

TEST_P(TableNetE2e, TrainsAndItsModelFileEvaluatesToTheSameTestMetrics) {
  const std::string dir = "/tmp/tessera_table_net_e2e." + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(tessera({"make-synthetic", dir, "--layout", "criteo", "--rows", "3000"}).status, 0);
  // Its config trains from the prepared directory it declares (the large-data route).
  ASSERT_EQ(tessera({"prep", dir + "/config.json", "--quiet"}).status, 0);
  const std::string cfg = config_for(dir + "/config.json", dir, GetParam());
  const test::ProgramResult run =
      tessera({"train", cfg, "--epochs", "2", "--runs-dir", dir + "/runs", "--json", "--quiet"});
  ASSERT_EQ(run.status, 0) << run.out;
  const rapidjson::Document r = last_json(run.out);
  ASSERT_TRUE(r.HasMember("test") && r.HasMember("model")) << run.out;
  const double auc = r["test"]["auc"].GetDouble();
  EXPECT_TRUE(std::isfinite(auc) && auc > 0.5) << "the planted signal is learnt: " << run.out;
  const test::ProgramResult ev =
      tessera({"evaluate", r["model"].GetString(), dir + "/test.txt", "--json"});
  ASSERT_EQ(ev.status, 0) << ev.out;
  EXPECT_NEAR(last_json(ev.out)["metrics"]["auc"].GetDouble(), auc, 1e-9) << ev.out;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Models, TableNetE2e,
    ::testing::Values(
        R"({"type": "dcn_v2", "embedding_dim": 8, "hidden": [32], "bottom": [16],
            "cross": {"layers": 2, "low_rank": 4, "structure": "parallel"}})",
        R"({"type": "wide_deep", "embedding_dim": 8, "hidden": [32, 16]})"));

}  // namespace
}  // namespace tessera
