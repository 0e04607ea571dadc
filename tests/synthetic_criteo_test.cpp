// The synthetic Criteo-like generator (pipelines/behaviour/synthetic_criteo.h): the Criteo
// layout, files identical for any thread count, the Criteo 1TB table profile under its cap,
// power-law id frequencies (the Zipf sampler against its exact distribution), the size target,
// and a signal a DLRM trained on it through its own generated config (prepared first, as the
// config's data.prepared says) picks up well above chance.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/data/prepared.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic_criteo.h"

namespace tessera {
namespace {

std::string temp_dir(const std::string& name) {
  const std::string d =
      ::testing::TempDir() + "/synth_criteo_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  return d;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> f;
  std::string cur;
  std::istringstream in(line);
  while (std::getline(in, cur, sep)) f.push_back(cur);
  if (!line.empty() && line.back() == sep) f.emplace_back();
  return f;
}

TEST(SyntheticCriteo, ZipfSamplerDrawsItsDistribution) {
  struct Case {
    int64_t n;
    double s;
  };
  for (const Case c : {Case{1, 1.05}, Case{3, 2.0}, Case{10, 1.0}, Case{10, 1.05}, Case{50, 0.6}}) {
    behaviour::ZipfSampler zipf(c.n, c.s);
    uint64_t state = 12345;
    auto uniform = [&] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
    };
    const int draws = 200000;
    std::vector<int64_t> seen(static_cast<size_t>(c.n) + 1, 0);
    for (int i = 0; i < draws; ++i) {
      const int64_t k = zipf(uniform);
      ASSERT_TRUE(k >= 1 && k <= c.n) << k;
      ++seen[static_cast<size_t>(k)];
    }
    double norm = 0;
    for (int64_t k = 1; k <= c.n; ++k) norm += std::pow(static_cast<double>(k), -c.s);
    for (int64_t k = 1; k <= std::min<int64_t>(c.n, 10); ++k) {
      const double p = std::pow(static_cast<double>(k), -c.s) / norm;
      const double sd = std::sqrt(draws * p * (1 - p));
      EXPECT_NEAR(static_cast<double>(seen[static_cast<size_t>(k)]), draws * p, 5 * sd + 1)
          << "n " << c.n << " s " << c.s << " rank " << k;
    }
  }
}

TEST(SyntheticCriteo, FilesAreTheSameForAnyThreadCountAndFollowTheProfile) {
  const std::string dir = temp_dir("threads");
  behaviour::CriteoSyntheticOptions o;
  o.train_rows = 20000;  // three chunks, the last one short
  o.test_rows = 5000;
  o.max_table_rows = 3000;
  o.threads = 1;
  const behaviour::CriteoSyntheticResult one = behaviour::write_synthetic_criteo(dir + "/a", o);
  o.threads = 4;
  const behaviour::CriteoSyntheticResult four = behaviour::write_synthetic_criteo(dir + "/b", o);
  const std::string train = read_file(dir + "/a/train.txt");
  EXPECT_EQ(train, read_file(dir + "/b/train.txt")) << "depends on the thread count";
  EXPECT_EQ(read_file(dir + "/a/test.txt"), read_file(dir + "/b/test.txt"));
  EXPECT_EQ(one.bytes, four.bytes);
  EXPECT_EQ(one.bytes, static_cast<int64_t>(train.size() + read_file(dir + "/a/test.txt").size()));
  o.seed = 8;
  behaviour::write_synthetic_criteo(dir + "/c", o);
  EXPECT_NE(train, read_file(dir + "/c/train.txt")) << "the seed changes nothing";

  // The Criteo 1TB sizes, capped.
  const auto& full = behaviour::criteo_1tb_table_rows();
  EXPECT_EQ(full[5], 3);
  EXPECT_EQ(full[19], 292775614);
  ASSERT_EQ(one.table_rows.size(), 26u);
  for (size_t c = 0; c < 26; ++c) EXPECT_EQ(one.table_rows[c], std::min<int64_t>(full[c], 3000));

  std::istringstream in(train);
  std::string line;
  int64_t rows = 0, positives = 0, missing = 0;
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
  for (size_t c = 0; c < 26; ++c)
    EXPECT_LE(static_cast<int64_t>(per[c].size()), one.table_rows[c]) << "table " << c;
  EXPECT_EQ(per[5].size(), 3u);  // 3 ids, every one drawn in 20000 rows
  // Power law in a capped table (3000 ids): the most frequent id is far above the mean frequency
  // and a good part of the distinct ids are rare.
  std::vector<int64_t> counts;
  for (const auto& kv : per[0]) counts.push_back(kv.second);
  std::sort(counts.rbegin(), counts.rend());
  const double mean = static_cast<double>(rows) / static_cast<double>(counts.size());
  EXPECT_GT(static_cast<double>(counts[0]), 50 * mean);
  const int64_t rare =
      std::count_if(counts.begin(), counts.end(), [](int64_t n) { return n <= 2; });
  EXPECT_GT(rare, static_cast<int64_t>(counts.size()) / 10);
  std::filesystem::remove_all(dir);
}

TEST(SyntheticCriteo, ASizeTargetGivesThatManyBytes) {
  const std::string dir = temp_dir("size");
  behaviour::CriteoSyntheticOptions o;
  o.target_bytes = int64_t{6} << 20;
  o.threads = 3;
  const behaviour::CriteoSyntheticResult r = behaviour::write_synthetic_criteo(dir, o);
  const auto on_disk = static_cast<int64_t>(std::filesystem::file_size(dir + "/train.txt") +
                                            std::filesystem::file_size(dir + "/test.txt"));
  EXPECT_EQ(r.bytes, on_disk);
  EXPECT_NEAR(static_cast<double>(on_disk), static_cast<double>(o.target_bytes),
              0.03 * static_cast<double>(o.target_bytes));
  EXPECT_EQ(r.test_rows, r.train_rows / 4);
  EXPECT_GT(r.seconds, 0.0);
  std::filesystem::remove_all(dir);
}

TEST(SyntheticCriteo, ItsConfigIsPreparedThenTrainedAndLearnsThePlantedSignal) {
  const std::string dir = temp_dir("train");
  behaviour::CriteoSyntheticOptions o;
  o.train_rows = 20000;
  o.test_rows = 5000;
  o.max_table_rows = 5000;
  const behaviour::CriteoSyntheticResult gen = behaviour::write_synthetic_criteo(dir, o);
  const BehaviourConfig cfg = load_behaviour_config(gen.config);
  EXPECT_EQ(cfg.data.prepared, std::filesystem::canonical(dir).string() + "/prepared");
  EXPECT_EQ(cfg.data.read, DataRead::Auto);
  EXPECT_EQ(cfg.data.categorical.min_count, o.min_count);
  EXPECT_TRUE(std::filesystem::exists(gen.pipeline));

  // `tessera prep CONFIG` writes where the config says, and training reads it from there.
  behaviour::PrepCommandOptions po;
  po.quiet = true;
  behaviour::prep(gen.config, po);
  const PreparedDataset data = PreparedDataset::open(cfg.data.prepared);
  EXPECT_EQ(data.rows("test"), o.test_rows);
  EXPECT_EQ(data.rows("train") + data.rows("validation"), o.train_rows);

  behaviour::TrainOptions t;
  t.quiet = true;
  t.device = "cpu";
  t.epochs = 3;
  t.run_dir = dir + "/run";
  behaviour::Result r = behaviour::train(gen.config, t);
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  ASSERT_TRUE(d.IsObject()) << r.json;
  std::cout << r.summary;
  // Chance is 0.5; this size (20000 rows, tables capped at 5000) gave 0.609 when written.
  EXPECT_GT(d["test"]["auc"].GetDouble(), 0.58) << r.summary;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
