// Prep's vocabulary count in bounded memory (docs/prepared-format.md, "Counting in bounded
// memory"): the count-min sketch never under-estimates and is the same however its adds are
// split between threads; the counters' memory bound holds; a fit pushed over its budget gives
// the exact fit's preprocessor byte for byte (checked against the serial exact fit, which has no
// budget), at 1 and 3 threads, with its counting memory under the budget while the distinct
// tokens grow 10x; budgets too small to work with are refused with a clear error.
#include <gtest/gtest.h>

#include "rapidjson/document.h"

#include <cstdio>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/count_sketch.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared_writer.h"
#include "host/data/preprocessor.h"
#include "pipelines/behaviour/prep.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(CountMinSketch, NeverUnderestimatesAndIsTheSameForAnySplitOfTheAdds) {
  // 20000 keys with counts 1..50 in a sketch of width 4096: many collisions, so estimates exceed
  // the counts, but never fall below them.
  std::vector<uint64_t> keys;
  std::vector<uint64_t> counts;
  for (uint64_t i = 0; i < 20000; ++i) {
    keys.push_back(CountMinSketch::key_of(static_cast<int64_t>(i % 3), math::mix64(i)));
    counts.push_back(1 + i % 50);
  }
  CountMinSketch serial(4096 * CountMinSketch::kDepth * 2);
  ASSERT_EQ(serial.width(), 4096);
  for (size_t i = 0; i < keys.size(); ++i) serial.add(keys[i], counts[i]);
  // The same adds, one at a time, from 4 threads in interleaved order.
  CountMinSketch shared(serial.bytes());
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&, t] {
      for (size_t i = t; i < keys.size(); i += 4)
        for (uint64_t n = 0; n < counts[i]; ++n) shared.add(keys[i]);
    });
  for (std::thread& th : pool) th.join();
  int64_t over = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t e = serial.estimate(keys[i]);
    ASSERT_GE(e, counts[i]) << i;
    EXPECT_EQ(shared.estimate(keys[i]), e) << i;
    over += e > counts[i];
  }
  EXPECT_GT(over, 100);  // the sketch is small on purpose: the test sees collisions
}

TEST(CountMinSketch, SaturatesAtTheTopAndReachesAnyMinCountThere) {
  CountMinSketch s(CountMinSketch::kMinWidth * CountMinSketch::kDepth * 2);
  const uint64_t key = CountMinSketch::key_of(0, 42);
  s.add(key, 60000);
  EXPECT_EQ(s.estimate(key), 60000u);
  EXPECT_FALSE(s.may_reach(key, 60001));
  s.add(key, 60000);
  EXPECT_EQ(s.estimate(key), CountMinSketch::kSaturated);
  EXPECT_TRUE(s.may_reach(key, 1000000000));
  try {
    CountMinSketch tiny(1000);
    FAIL() << "a 1000-byte sketch was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fewer than the minimum 4096"), std::string::npos)
        << e.what();
  }
}

TEST(CategoryCounts, TheMemoryBoundTakenAheadHolds) {
  CategoryCounts c({1, 1, 0}, {1, 1, 1});
  uint64_t x = 7;
  for (int round = 0; round < 12; ++round) {
    const int64_t rows = 100 + round * 700;
    std::vector<std::vector<std::string>> tokens(static_cast<size_t>(rows));
    int64_t bytes = 0;
    for (auto& row : tokens) {
      for (int k = 0; k < 3; ++k) {
        x = math::mix64(x);
        row.push_back(std::string(1 + x % 30, static_cast<char>('a' + x % 26)) +
                      std::to_string(x % 100000));
        bytes += static_cast<int64_t>(row.back().size());
      }
    }
    const int64_t bound = c.bytes_bound(rows, bytes);
    for (const auto& row : tokens) c.add({row[0], row[1], row[2]});
    EXPECT_LE(c.bytes(), bound) << "round " << round;
    EXPECT_GT(c.bytes(), 0);
  }
}

// CSV rows: label, x, a, b, c. a: 40 common tokens or (half the rows) a token of its own;
// b: tokens that each occur 1..6 times (min_count 3 splits them); c: 1 in 4 rows a common
// token, else one of 1500 * scale rarer ones. Distinct tokens grow with `scale` (rows 8000 *
// scale).
std::string make_rows(int scale, uint64_t seed) {
  std::ostringstream s;
  uint64_t x = seed;
  auto next = [&] { return (x = math::mix64(x)); };
  const int rows = 8000 * scale;
  int b_token = 0, b_left = 0;
  for (int r = 0; r < rows; ++r) {
    if (b_left == 0) b_left = 1 + static_cast<int>(next() % 6), ++b_token;
    --b_left;
    s << next() % 2 << ',' << next() % 1000 << ',';
    if (next() % 2 == 0)
      s << "common" << next() % 40;
    else
      s << "own" << r;
    s << ",b" << b_token << ',';
    if (next() % 4 == 0)
      s << "c" << next() % 20;
    else
      s << "rare" << next() % (1500 * scale);
    s << '\n';
  }
  return s.str();
}

TableSchema csv_schema() {
  TableSchema s;
  s.columns = {{"label", ColumnType::Label},
               {"x", ColumnType::Numeric},
               {"a", ColumnType::Categorical},
               {"b", ColumnType::Categorical},
               {"c", ColumnType::Categorical}};
  return s;
}

PreprocessOptions options(int64_t budget) {
  PreprocessOptions o;
  o.categorical.min_count = 3;
  o.categorical_overrides["c"].min_count = 2;
  o.fit_memory_bytes = budget;
  return o;
}

struct Fit {
  std::string json;
  FitMemoryStats stats;
};

Fit fit(const std::string& path, int64_t budget, int threads) {
  Fit f;
  f.json = fit_preprocessor_threads(FileSpec{path, 0}, csv_schema(), options(budget), {}, threads,
                                    nullptr, &f.stats)
               .to_json_string();
  return f;
}

TEST(PrepBoundedCount, OverTheBudgetTheVocabularyIsTheExactOneAtAnyThreadCount) {
  TempDir tmp;
  std::map<int, int64_t> exact_peak;
  for (int scale : {1, 10}) {
    const std::string path =
        write_file(tmp.file("train" + std::to_string(scale) + ".csv"), make_rows(scale, 5));
    // The reference: the serial fit, exact, with no budget at all.
    const std::string want =
        fit_preprocessor(FileSpec{path, 0}, csv_schema(), options(int64_t{1} << 40), {})
            .to_json_string();
    const Fit exact = fit(path, 0, 2);  // auto: at least 512 MB
    EXPECT_FALSE(exact.stats.sketched);
    EXPECT_GE(exact.stats.budget_bytes, int64_t{512} << 20);
    EXPECT_EQ(exact.json, want);
    exact_peak[scale] = exact.stats.peak_bytes;
    // 6 MB: the exact count of 1x fits in it (but for a block's worth of duplicates at 3
    // threads), that of 10x does not.
    const int64_t budget = int64_t{6} << 20;
    for (int threads : {1, 3}) {
      const Fit bounded = fit(path, budget, threads);
      if (scale == 10) EXPECT_TRUE(bounded.stats.sketched) << threads << " threads";
      EXPECT_EQ(bounded.json, want) << scale << " x, " << threads << " threads";
      EXPECT_LE(bounded.stats.peak_bytes, budget);
      EXPECT_LE(bounded.stats.peak_bound_bytes, budget - budget / 4);
      const Preprocessor p = Preprocessor::from_json_string(bounded.json);
      int64_t kept = 0;
      for (const CategoricalColumnModel& c : p.categorical_columns()) kept += c.vocabulary.size();
      if (bounded.stats.sketched) {
        EXPECT_EQ(bounded.stats.sketch_bytes, budget / 4);
        // The candidates: every kept token, and few of the rest (a: 40 common of 4000 * scale
        // distinct; b: about 3 in 7 of its tokens reach 3; c: those seen twice).
        EXPECT_GE(bounded.stats.candidates, kept);
        EXPECT_LE(bounded.stats.candidates, kept + kept / 10 + 50) << scale << " x";
      }
      std::printf(
          "scale %d, %d threads: exact counters %lld bytes; %s: peak %lld bytes "
          "(budget %lld), %lld candidates for %lld kept tokens\n",
          scale, threads, static_cast<long long>(exact.stats.peak_bytes),
          bounded.stats.sketched ? "sketched" : "exact",
          static_cast<long long>(bounded.stats.peak_bytes), static_cast<long long>(budget),
          static_cast<long long>(bounded.stats.candidates), static_cast<long long>(kept));
    }
  }
  // Exact counting grows with the distinct tokens; the bounded count stayed under its budget.
  EXPECT_GT(exact_peak[10], 5 * exact_peak[1]);
  EXPECT_GT(exact_peak[10], int64_t{6} << 20);
}

TEST(PrepBoundedCount, ASwitchInTheMiddleOfPassOneKeepsTheCountsSoFar) {
  TempDir tmp;
  const std::string path = write_file(tmp.file("train.csv"), make_rows(10, 9));
  const std::string want =
      fit_preprocessor(FileSpec{path, 0}, csv_schema(), options(int64_t{1} << 40), {})
          .to_json_string();
  for (int threads : {1, 3}) {
    const Fit f = fit(path, int64_t{12} << 20, threads);
    EXPECT_TRUE(f.stats.sketched) << threads;
    EXPECT_GT(f.stats.exact_records, 0) << threads;  // blocks counted exactly, then poured
    EXPECT_LT(f.stats.exact_records, 80000) << threads;
    EXPECT_LE(f.stats.peak_bound_bytes, (int64_t{12} << 20) - (int64_t{3} << 20));
    EXPECT_EQ(f.json, want) << threads;
  }
}

TEST(PrepBoundedCount, BudgetsTooSmallAreRefusedWithAReason) {
  TempDir tmp;
  const std::string path = write_file(tmp.file("train.csv"), make_rows(10, 3));
  auto error_of = [&](const PreprocessOptions& o) -> std::string {
    try {
      fit_preprocessor_threads(FileSpec{path, 0}, csv_schema(), o, {}, 2);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      return e.what();
    }
    return "no error";
  };
  const std::string tiny = error_of(options(100000));
  EXPECT_NE(tiny.find("data.fit_memory_mb: the fit's budget of 100000 bytes is below the minimum"),
            std::string::npos)
      << tiny;
  // min_count 1 on a: every one of its 40000 own tokens is a candidate, which 384 KB of counters
  // cannot hold.
  PreprocessOptions every = options(int64_t{512} << 10);
  every.categorical_overrides["a"].min_count = 1;
  const std::string over = error_of(every);
  EXPECT_NE(over.find("counting the vocabulary's candidates"), std::string::npos) << over;
  EXPECT_NE(over.find("min_count 1 keeps every token of: a"), std::string::npos) << over;
}

// data.fit_memory_mb reaches prep's fit from a behaviour config: at 4 MB the 10x rows go over it,
// and the directory equals the one prepared within the default budget, file for file.
TEST(PrepBoundedCount, TheConfigFieldSetsTheBudgetOfTesseraPrep) {
  TempDir tmp;
  const std::string train = write_file(tmp.file("train.csv"), make_rows(10, 4));
  auto config = [&](const std::string& name, const std::string& extra) {
    return write_file(tmp.file(name), R"({"task": "behaviour", "name": "t", "seed": 1,
      "data": {"train": ")" + train + R"(", "validation_fraction": 0.1, "format": "csv",
        "columns": [{"name": "label", "type": "label"}, {"name": "x", "type": "numeric"},
                    {"name": "a", "type": "categorical"}, {"name": "b", "type": "categorical"},
                    {"name": "c", "type": "categorical"}],
        "categorical": {"min_count": 3})" +
                                          extra + R"(},
      "model": {"type": "mlp", "embedding_dim": 4, "hidden": [8]},
      "train": {"epochs": 1, "batch_size": 256}})");
  };
  auto prep = [&](const std::string& cfg, const std::string& out) {
    behaviour::PrepCommandOptions o;
    o.out = tmp.file(out);
    o.threads = 2;
    o.quiet = true;
    rapidjson::Document d;
    d.Parse(behaviour::prep(cfg, o).json.c_str());
    EXPECT_TRUE(d.HasMember("fit")) << out;
    return d.HasMember("fit") && d["fit"]["sketched"].GetBool();
  };
  EXPECT_FALSE(prep(config("default.json", ""), "default"));
  EXPECT_TRUE(prep(config("small.json", R"(, "fit_memory_mb": 4)"), "small"));
  for (const char* file : {"preprocessor.json", "manifest.json", "train-00000.tshard"}) {
    EXPECT_EQ(read_file(tmp.file(std::string("small/") + file)),
              read_file(tmp.file(std::string("default/") + file)))
        << file;
  }
}

}  // namespace
}  // namespace tessera
