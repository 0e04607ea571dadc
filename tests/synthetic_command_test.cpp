// `make-synthetic --layout criteo` as a command (pipelines/commands.h synthetic_command): the size
// and table options, their errors, the JSON it reports; and the pipeline it writes, run through
// the binary, whose prep stage prepares the directory the config's data.prepared names before
// training reads it.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/prepared.h"
#include "pipelines/commands.h"
#include "tests/support/run_program.h"

namespace tessera {
namespace {

std::string temp_dir(const std::string& name) {
  const std::string d = "/tmp/tessera_synthetic_cmd_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  return d;
}

CliArgs args(const std::string& dir, std::map<std::string, std::string> options) {
  CliArgs a;
  a.command = "make-synthetic";
  a.positionals = {dir};
  a.options = std::move(options);
  return a;
}

// The message of the Usage error `a` gives ("" when it gives none).
std::string usage_error(const CliArgs& a) {
  try {
    cli::synthetic_command(a);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
    return e.what();
  }
  return "";
}

TEST(SyntheticCommand, SizeAndTableOptionsAndTheirErrors) {
  const std::string dir = temp_dir("opts");
  const CommandResult r = cli::synthetic_command(args(dir, {{"--layout", "criteo"},
                                                            {"--size", "3M"},
                                                            {"--threads", "2"},
                                                            {"--max-table-rows", "700"},
                                                            {"--min-count", "3"}}));
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  ASSERT_TRUE(d.IsObject()) << r.json;
  const int64_t bytes = d["bytes"].GetInt64();
  EXPECT_NEAR(static_cast<double>(bytes), 3.0 * (1 << 20), 0.03 * 3.0 * (1 << 20)) << r.json;
  EXPECT_EQ(bytes, static_cast<int64_t>(std::filesystem::file_size(dir + "/train.txt") +
                                        std::filesystem::file_size(dir + "/test.txt")));
  EXPECT_GT(d["mb_per_s"].GetDouble(), 0.0);
  EXPECT_EQ(d["threads"].GetInt(), 2);
  EXPECT_EQ(d["test_rows"].GetInt64(), d["train_rows"].GetInt64() / 4);
  ASSERT_EQ(d["table_rows"].Size(), 26u);
  EXPECT_EQ(d["table_rows"][0].GetInt64(), 700);
  EXPECT_EQ(d["table_rows"][5].GetInt64(), 3);
  EXPECT_NE(read_file(dir + "/config.json").find("\"min_count\": 3"), std::string::npos);

  EXPECT_NE(usage_error(args(dir, {{"--layout", "criteo"}, {"--size", "12X"}})).find("40G"),
            std::string::npos);
  EXPECT_NE(usage_error(args(dir, {{"--layout", "criteo"}, {"--size", "-1G"}})).find("--size"),
            std::string::npos);
  EXPECT_NE(usage_error(args(dir, {{"--layout", "criteo"}, {"--size", "1G"}, {"--rows", "500"}}))
                .find("one of --rows and --size"),
            std::string::npos);
  EXPECT_NE(usage_error(args(dir, {{"--layout", "criteo"}, {"--max-table-rows", "0"}}))
                .find("--max-table-rows must be at least 1"),
            std::string::npos);
  EXPECT_NE(usage_error(args(dir, {{"--size", "1G"}})).find("--layout criteo only"),
            std::string::npos);
  // The behaviour layout takes --seed: another seed, other rows.
  cli::synthetic_command(args(dir + "/s7", {{"--rows", "200"}}));
  cli::synthetic_command(args(dir + "/s8", {{"--rows", "200"}, {"--seed", "8"}}));
  EXPECT_NE(read_file(dir + "/s7/train.csv"), read_file(dir + "/s8/train.csv"));
  std::filesystem::remove_all(dir);
}

TEST(SyntheticCommand, ItsPipelinePreparesWhereTheConfigSaysThenTrainsAndEvaluates) {
  const std::string dir = temp_dir("pipeline");
  cli::synthetic_command(args(dir, {{"--layout", "criteo"},
                                    {"--rows", "3000"},
                                    {"--max-table-rows", "2000"},
                                    {"--threads", "2"}}));
  const std::string binary = std::string(TESSERA_BINARY_DIR) + "/tessera";
  test::ProgramOptions o;
  o.merge_stderr = true;
  const test::ProgramResult run = test::run_program(
      {binary, "run", dir + "/pipeline.json", "--runs-dir", dir + "/runs", "--quiet", "--json"}, o);
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_NE(run.out.find("AUC"), std::string::npos) << run.out;
  const PreparedDataset data = PreparedDataset::open(dir + "/prepared");
  EXPECT_EQ(data.rows("test"), 750);
  EXPECT_EQ(data.rows("train") + data.rows("validation"), 3000);
  // `tessera prep CONFIG` with no --out finds the same directory, already up to date.
  const test::ProgramResult prep =
      test::run_program({binary, "prep", dir + "/config.json", "--json"}, o);
  ASSERT_EQ(prep.status, 0) << prep.out;
  EXPECT_NE(prep.out.find("\"status\":\"up to date\""), std::string::npos) << prep.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
