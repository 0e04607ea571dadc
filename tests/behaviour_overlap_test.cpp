// Encoding the test file on a host thread while the model trains (TestPrep::Overlapped, the
// default) gives exactly the results of encoding it before training; a bad test row still stops
// the run with an error naming the file and line.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/synthetic.h"

namespace tessera::behaviour {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/overlap_" + name + "." + std::to_string(::getpid());
  std::system(("rm -rf '" + d + "'").c_str());
  make_directories(d);
  return d;
}

std::string member(const std::string& json, const char* key) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  EXPECT_TRUE(d.IsObject() && d.HasMember(key)) << json;
  if (!d.IsObject() || !d.HasMember(key)) return "";
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  d[key].Accept(w);
  return sb.GetString();
}

Result train_with(const std::string& config, const std::string& run_dir, TestPrep prep) {
  TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.epochs = 2;
  o.run_dir = run_dir;
  o.test_prep = prep;
  return train(config, o);
}

TEST(TestPrepOverlap, OverlappedEncodingGivesTheSameModelAndMetrics) {
  const std::string dir = temp_dir("same");
  SyntheticOptions so;
  so.train_rows = 3000;
  so.test_rows = 2000;
  const std::string config = write_synthetic_dataset(dir + "/data", so);
  const Result a = train_with(config, dir + "/before", TestPrep::BeforeTraining);
  const Result b = train_with(config, dir + "/overlapped", TestPrep::Overlapped);
  EXPECT_EQ(member(a.json, "test_prep"), "\"before_training\"");
  EXPECT_EQ(member(b.json, "test_prep"), "\"overlapped\"");
  EXPECT_EQ(member(a.json, "test_rows"), "2000");
  for (const char* k : {"test", "validation", "test_rows", "test_unseen_categories"})
    EXPECT_EQ(member(a.json, k), member(b.json, k)) << k;
  EXPECT_TRUE(read_file(dir + "/before/model.tsm") == read_file(dir + "/overlapped/model.tsm"))
      << "the model artefacts differ";
}

TEST(TestPrepOverlap, ABadTestRowStillStopsTheRunNamingTheLine) {
  const std::string dir = temp_dir("bad");
  SyntheticOptions so;
  so.train_rows = 2000;
  so.test_rows = 500;
  const std::string config = write_synthetic_dataset(dir + "/data", so);
  const std::string test = dir + "/data/test.csv";
  std::string text = read_file(test);
  text += "not,a,valid,row\n";
  write_file_atomic(test, text);
  try {
    train_with(config, dir + "/run", TestPrep::Overlapped);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test.csv:502"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::behaviour
