// Encoding the test file on a host thread while the model trains (TestPrep::Overlapped, the
// default) gives exactly the results of encoding it before training; a bad test row still stops
// the run with an error naming the file and line.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "host/backend/backend.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/synthetic.h"
#include "tests/support/gpu_skips.h"

namespace tessera::behaviour {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/overlap_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
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

// Training batches reach a CUDA backend through pinned staging slots and a copy stream
// (pipelines/behaviour/train_feed.h): the trained model must score like the host's. cuBLAS and
// atomics reorder float sums, so the figures agree closely, not bit for bit.
double test_metric(const Result& r, const char* metric) {
  rapidjson::Document d;
  d.Parse(r.json.c_str(), r.json.size());
  EXPECT_TRUE(d.IsObject() && d.HasMember("test")) << r.json;
  if (!d.IsObject() || !d.HasMember("test")) return NAN;
  return d["test"][metric].GetDouble();
}

void expect_cuda_trains_like_the_host(const std::string& name, bool dlrm) {
  std::string why;
  if (!cuda_available(&why)) TESSERA_NEEDS_GPU_SKIP(why);
  const std::string dir = temp_dir(name);
  SyntheticOptions so;
  so.train_rows = 6000;
  so.test_rows = 2000;
  std::string config = write_synthetic_dataset(dir + "/data", so);
  if (dlrm) {
    std::string text = read_file(config);
    const std::string mlp = "\"model\": {\"hidden\": [64, 32], \"dropout\": 0.1}";
    ASSERT_NE(text.find(mlp), std::string::npos) << text;
    text.replace(text.find(mlp), mlp.size(),
                 "\"model\": {\"type\": \"dlrm\", \"embedding_dim\": 8, \"bottom\": [16], "
                 "\"hidden\": [32], \"dropout\": 0.1}");
    config = dir + "/dlrm.json";
    write_file_atomic(config, text);
  }
  TrainOptions o;
  o.quiet = true;
  o.epochs = 3;
  o.test_prep = TestPrep::BeforeTraining;
  o.device = "cpu";
  o.run_dir = dir + "/cpu";
  const Result host = train(config, o);
  o.device = "cuda";
  o.run_dir = dir + "/cuda";
  const Result cuda = train(config, o);
  const double auc_host = test_metric(host, "auc"), auc_cuda = test_metric(cuda, "auc");
  EXPECT_GT(auc_host, 0.6) << host.summary;  // the planted signal was learnt at all
  EXPECT_NEAR(auc_cuda, auc_host, 0.01) << cuda.summary;
  EXPECT_NEAR(test_metric(cuda, "logloss"), test_metric(host, "logloss"), 0.01) << cuda.summary;
}

TEST(BatchStagingCuda, MlpTrainedOnCudaScoresLikeTheHost) {
  expect_cuda_trains_like_the_host("cuda_mlp", /*dlrm=*/false);
}

TEST(BatchStagingCuda, DlrmTrainedOnCudaScoresLikeTheHost) {
  expect_cuda_trains_like_the_host("cuda_dlrm", /*dlrm=*/true);
}

}  // namespace
}  // namespace tessera::behaviour
