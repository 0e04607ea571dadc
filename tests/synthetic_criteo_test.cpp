// The synthetic Criteo-like generator (pipelines/behaviour/synthetic_criteo.h): the Criteo
// layout, determinism in the seed, power-law id frequencies, and a signal a DLRM trained on it
// through the behaviour pipeline (its own generated config) picks up well above chance.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/synthetic_criteo.h"

namespace tessera {
namespace {

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> f;
  std::string cur;
  std::istringstream in(line);
  while (std::getline(in, cur, sep)) f.push_back(cur);
  if (!line.empty() && line.back() == sep) f.emplace_back();
  return f;
}

TEST(SyntheticCriteo, LayoutDeterminismPowerLawAndALearnableSignal) {
  const std::string dir = ::testing::TempDir() + "/synth_criteo." + std::to_string(::getpid());
  behaviour::CriteoSyntheticOptions o;
  o.train_rows = 20000;
  o.test_rows = 5000;
  o.max_vocab = 5000;
  const std::string cfg = behaviour::write_synthetic_criteo(dir + "/a", o);
  behaviour::write_synthetic_criteo(dir + "/b", o);
  const std::string train = read_file(dir + "/a/train.txt");
  EXPECT_EQ(train, read_file(dir + "/b/train.txt")) << "not deterministic in the seed";

  std::istringstream in(train);
  std::string line;
  int64_t rows = 0, positives = 0, missing = 0;
  size_t biggest_table = 0;
  std::vector<std::map<std::string, int64_t>> per(26);
  while (std::getline(in, line)) {
    auto f = split(line, '\t');
    ASSERT_EQ(f.size(), 40u) << "line " << rows + 1 << ": " << line;
    ASSERT_TRUE(f[0] == "0" || f[0] == "1") << line;
    positives += f[0] == "1";
    for (int k = 1; k <= 13; ++k) missing += f[static_cast<size_t>(k)].empty();
    for (int c = 0; c < 26; ++c) {
      const std::string& tok = f[static_cast<size_t>(14 + c)];
      ASSERT_EQ(tok.size(), 8u) << tok;
      ++per[static_cast<size_t>(c)][tok];
    }
    ++rows;
  }
  EXPECT_EQ(rows, o.train_rows);
  const double rate = static_cast<double>(positives) / static_cast<double>(rows);
  EXPECT_GT(rate, 0.1);
  EXPECT_LT(rate, 0.5);
  EXPECT_NEAR(static_cast<double>(missing) / (13.0 * static_cast<double>(rows)), 0.1, 0.02);
  for (size_t c = 0; c < per.size(); ++c)
    if (per[c].size() > per[biggest_table].size()) biggest_table = c;
  // Power law: in the largest table the most frequent id is far above the mean frequency and
  // most distinct ids are rare.
  std::vector<int64_t> counts;
  for (const auto& kv : per[biggest_table]) counts.push_back(kv.second);
  std::sort(counts.rbegin(), counts.rend());
  const double mean = static_cast<double>(rows) / static_cast<double>(counts.size());
  EXPECT_GT(static_cast<double>(counts[0]), 50 * mean);
  const int64_t singletons = std::count(counts.begin(), counts.end(), int64_t{1});
  EXPECT_GT(singletons, static_cast<int64_t>(counts.size()) / 4);

  // The generated DLRM config learns the planted signal (chance is 0.5).
  behaviour::TrainOptions t;
  t.quiet = true;
  t.device = "cpu";
  t.epochs = 3;
  t.run_dir = dir + "/run";
  behaviour::Result r = behaviour::train(cfg, t);
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  ASSERT_TRUE(d.IsObject()) << r.json;
  std::cout << r.summary;
  EXPECT_GT(d["test"]["auc"].GetDouble(), 0.62) << r.summary;
}

}  // namespace
}  // namespace tessera
