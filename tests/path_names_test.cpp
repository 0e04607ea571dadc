// Names from configs and model files never become more than one path component, and no path is
// ever handed to a shell (issue: "No shell, no escape").
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "host/config/json_reader.h"
#include "host/core/error.h"
#include "host/core/path_name.h"
#include "host/core/run_dir.h"
#include "host/scheduler/pipeline_spec.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/recommend/export.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/textclass/textclass_config.h"

namespace fs = std::filesystem;
using namespace tessera;

namespace {

class Scratch : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tessera-names-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

std::string config_error(const std::function<void()>& read) {
  try {
    read();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PathName, ComponentRules) {
  EXPECT_EQ(path_component_problem("user"), "");
  EXPECT_EQ(path_component_problem("user bias.v2"), "");
  EXPECT_NE(path_component_problem(""), "");
  EXPECT_NE(path_component_problem("."), "");
  EXPECT_NE(path_component_problem(".."), "");
  EXPECT_NE(path_component_problem("../evil"), "");
  EXPECT_NE(path_component_problem("a/b"), "");
  EXPECT_NE(path_component_problem("a\\b"), "");
  EXPECT_NE(path_component_problem(std::string("a\0b", 3)), "");
  EXPECT_NE(path_component_problem("a\nb"), "");
  EXPECT_NE(path_component_problem("a\x7f"), "");
  EXPECT_NE(path_component_problem(std::string(256, 'x')), "");
  EXPECT_TRUE(is_valid_run_name("uci-adult_2.mlp"));
  EXPECT_FALSE(is_valid_run_name("a b"));
  EXPECT_FALSE(is_valid_run_name(".."));
  EXPECT_FALSE(is_valid_run_name(std::string(201, 'x')));
}

TEST(PathName, ErrorShowsControlCharactersEscaped) {
  try {
    require_path_component("a\x1b[2Jb", "table name", ErrorKind::Io);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    const std::string m = e.what();
    EXPECT_NE(m.find("table name 'a\\x1b[2Jb'"), std::string::npos) << m;
    EXPECT_EQ(m.find('\x1b'), std::string::npos) << m;
  }
}

TEST_F(Scratch, RunDirRefusesANameThatLeavesTheRunsDirectory) {
  EXPECT_THROW(RunDir::create(dir_ + "/runs", "../escape"), Error);
  EXPECT_FALSE(fs::exists(dir_ + "/escape"));
  EXPECT_NO_THROW(RunDir::create(dir_ + "/runs", "fine-name"));
}

// Every task's config refuses such a run name with its place in the file (textclass and recommend
// did not check it before).
TEST_F(Scratch, TaskConfigsRefuseRunNamesThatAreNotDirectoryNames) {
  const std::string rec = dir_ + "/rec.json";
  std::ofstream(rec) << R"({"task": "recommend", "name": "../../etc", "model": "mf",
                            "data": {"path": "ratings.csv"}})";
  const std::string m1 = config_error([&] { recommend::read_recommend_config(rec); });
  EXPECT_NE(m1.find("cannot name a run directory"), std::string::npos) << m1;
  EXPECT_NE(m1.find(rec + ":1:"), std::string::npos) << m1;

  const std::string tc = dir_ + "/tc.json";
  std::ofstream(tc) << R"({"task": "textclass", "name": "a/b", "data": {"train": "x.tsv"}})";
  const std::string m2 = config_error([&] { textclass::read_textclass_config(tc); });
  EXPECT_NE(m2.find("cannot name a run directory"), std::string::npos) << m2;
}

TEST(PathName, PipelineAndStageNamesAreDirectoryNames) {
  const std::string m1 = config_error([] {
    scheduler::parse_pipeline_spec(R"({"name": "../up", "task": "image",
        "stages": [{"name": "prep", "kind": "prep"}]})",
                                   "p.json", "/tmp");
  });
  EXPECT_NE(m1.find("cannot name a run directory"), std::string::npos) << m1;
  const std::string m2 = config_error([] {
    scheduler::parse_pipeline_spec(R"({"name": "ok", "task": "image",
        "stages": [{"name": "..", "kind": "prep"}]})",
                                   "p.json", "/tmp");
  });
  EXPECT_NE(m2.find("cannot name a stage directory"), std::string::npos) << m2;
}

// fresh_subdir removed an unfinished attempt with `rm -rf '<dir>'`: a quote in the cache path
// ran the rest of the path as a command. It is std::filesystem now.
TEST_F(Scratch, FreshSubdirNeverRunsAShell) {
  const std::string work = dir_ + "/w'; touch " + dir_ + "/pwned; echo '";
  fs::create_directories(work + "/run/inner");
  std::ofstream(work + "/run/inner/file") << "old attempt";
  scheduler::StageContext ctx;
  ctx.work_dir = work;
  EXPECT_EQ(scheduler::fresh_subdir(ctx, "run"), work + "/run");
  EXPECT_FALSE(fs::exists(work + "/run"));
  EXPECT_FALSE(fs::exists(dir_ + "/pwned"));
}

// `export` writes OUTDIR/<table name>.npy with the table names of the model file: a model file
// whose table is called "../evil" is refused before anything is written.
TEST_F(Scratch, ExportRefusesTableNamesThatAreNotFileNames) {
  recommend::RecArtefact a;
  a.kind = recommend::ModelKind::TwoTower;
  a.name = "t";
  a.config_json = "{}";
  a.user_ids = {7};
  a.item_ids = {9};
  a.seen.offsets = {0, 0};
  const Tensor one = Tensor::host_from<float>({1, 1}, std::vector<float>{1.f});
  const Tensor bias = Tensor::host_from<float>({1, 1}, std::vector<float>{0.f});
  a.tables = {{"user", one}, {"item", one}, {"item_bias", bias}, {"../evil", one}};
  const std::string model = dir_ + "/model.tsm";
  recommend::save_rec_artefact(model, a);
  fs::create_directories(dir_ + "/out");
  try {
    recommend::export_model(model, recommend::ExportFormat::Npy, dir_ + "/out");
    FAIL() << "exported a table named ../evil";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("../evil"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ + "/evil.npy"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/out"));
}
