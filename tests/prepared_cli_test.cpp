// `tessera prep` through the binary (help, a prepare, a rerun, an append, --json) and the behaviour
// pipeline's prep stage with "prepare": true, whose prepared dataset opens and matches its data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "host/core/atomic_file.h"
#include "host/data/prepared.h"
#include "tests/support/run_program.h"

namespace tessera {
namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

std::string temp_dir(const std::string& name) {
  const std::string d = "/tmp/tessera_prepared_cli_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

struct Exec {
  int code;
  std::string out;
};
Exec exec(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  test::ProgramOptions o;
  o.merge_stderr = true;
  test::ProgramResult r = test::run_program(args, o);
  return {r.status, std::move(r.out)};
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

TEST(PreparedCli, PrepWritesRerunsUpToDateAndAppends) {
  const std::string dir = temp_dir("cli");
  const Exec help = exec({"--help"});
  EXPECT_NE(help.out.find("tessera prep CONFIG"), std::string::npos) << help.out;
  ASSERT_EQ(exec({"make-synthetic", dir + "/syn", "--layout", "criteo", "--rows", "2000"}).code, 0);
  const std::string config = dir + "/syn/config.json", out = dir + "/prepared";
  Exec first = exec({"prep", config, "--out", out, "--shard-rows", "700", "--json", "--quiet"});
  ASSERT_EQ(first.code, 0) << first.out;
  rapidjson::Document d = last_json(first.out);
  EXPECT_STREQ(d["status"].GetString(), "prepared");
  EXPECT_EQ(d["rows"]["test"].GetInt64(), 500);
  const int64_t train = d["rows"]["train"].GetInt64();
  EXPECT_EQ(train + d["rows"]["validation"].GetInt64(), 2000);
  Exec again = exec({"prep", config, "--out", out, "--shard-rows", "700", "--json"});
  EXPECT_STREQ(last_json(again.out)["status"].GetString(), "up to date") << again.out;
  Exec append = exec({"prep", config, "--out", out, "--append", dir + "/syn/test.txt", "--json"});
  ASSERT_EQ(append.code, 0) << append.out;
  rapidjson::Document a = last_json(append.out);
  EXPECT_STREQ(a["status"].GetString(), "appended");
  EXPECT_EQ(a["records_read"].GetInt64(), 500);
  EXPECT_EQ(PreparedDataset::open(out).rows("train"), train + 500);
  Exec bad = exec({"prep", config, "--shard-rows", "0"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("--shard-rows must be at least 1"), std::string::npos) << bad.out;
  std::filesystem::remove_all(dir);
}

TEST(PreparedCli, ThePipelinePrepStageWritesAPreparedDataset) {
  const std::string dir = temp_dir("stage");
  const std::string spec = dir + "/pipeline.json";
  write_file_atomic(spec, R"({"name": "p", "task": "behaviour", "stages": [
    {"name": "prep", "kind": "prep", "config": {"source": "synthetic", "synthetic_rows": 400,
                                                "prepare": true, "shard_rows": 100}}]})");
  Exec run = exec({"run", spec, "--runs-dir", dir + "/runs", "--quiet"});
  ASSERT_EQ(run.code, 0) << run.out;
  std::string manifest;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/runs"))
    if (e.path().filename() == "manifest.json" && e.path().parent_path().filename() == "prepared")
      manifest = e.path().string();
  ASSERT_FALSE(manifest.empty()) << run.out;
  const PreparedDataset data = PreparedDataset::open(std::filesystem::path(manifest).parent_path());
  EXPECT_EQ(data.rows("test"), 100);
  EXPECT_GT(data.rows("train"), 300);
  data.verify();
  std::filesystem::remove_all(dir);
}

// A config whose data.prepared names the directory `tessera prep` wrote trains on the shards and
// gives the text path's run exactly: same rows, same fitted preprocessor, same seed.
TEST(PreparedCli, TrainingOnThePreparedDirectoryEqualsTheTextPath) {
  const std::string dir = temp_dir("train");
  ASSERT_EQ(exec({"make-synthetic", dir + "/syn", "--layout", "criteo", "--rows", "3000"}).code, 0);
  const std::string config = dir + "/syn/config.json", out = dir + "/syn/prepared";
  ASSERT_EQ(exec({"prep", config, "--out", out, "--shard-rows", "500", "--quiet"}).code, 0);
  // The generated config declares data.prepared (the large-data route): one copy of it reads the
  // text instead, the other the directory written above.
  rapidjson::Document c;
  c.Parse(read_file(config).c_str());
  ASSERT_FALSE(c.HasParseError());
  c["data"].RemoveMember("prepared");
  c["data"].RemoveMember("read");
  auto write_config = [&](const std::string& path) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    c.Accept(w);
    write_file_atomic(path, buf.GetString());
  };
  const std::string text_config = dir + "/syn/config-text.json";
  write_config(text_config);
  c["data"].AddMember("prepared", rapidjson::Value(out.c_str(), c.GetAllocator()),
                      c.GetAllocator());
  const std::string prepared_config = dir + "/syn/config-prepared.json";
  write_config(prepared_config);
  auto train = [&](const std::string& cfg, const std::string& runs) {
    Exec r =
        exec({"train", cfg, "--epochs", "1", "--runs-dir", dir + "/" + runs, "--json", "--quiet"});
    EXPECT_EQ(r.code, 0) << r.out;
    return last_json(r.out);
  };
  rapidjson::Document text = train(text_config, "runs-text"),
                      shards = train(prepared_config, "runs-p");
  for (const char* split : {"validation", "test"}) {
    ASSERT_TRUE(text.HasMember(split) && shards.HasMember(split)) << split;
    for (const char* m : {"auc", "logloss"})
      EXPECT_EQ(text[split][m].GetDouble(), shards[split][m].GetDouble()) << split << " " << m;
  }
  // A shard changed after prep is refused by name, not trained on.
  std::string bytes = read_file(out + "/train-00000.tshard");
  bytes[bytes.size() / 2] ^= 0x40;
  write_file_atomic(out + "/train-00000.tshard", bytes);
  Exec bad =
      exec({"train", prepared_config, "--epochs", "1", "--runs-dir", dir + "/runs-bad", "--quiet"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("train-00000.tshard"), std::string::npos) << bad.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
