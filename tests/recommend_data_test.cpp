// The recommendation pipeline's data side: the ratings reader (bad rows name file:line and
// field), dense ids, the random split, leave-last-out, negative sampling, the ranking metrics
// (against hand-computed values) and the config's errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "data_test_util.h"
#include "host/core/error.h"
#include "host/data/ratings_data.h"
#include "pipelines/recommend/interactions.h"
#include "pipelines/recommend/rank_metrics.h"
#include "pipelines/recommend/recommend_config.h"

namespace tessera::recommend {
namespace {

using tessera::testing::TempDir;
using tessera::testing::write_file;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RatingsReader, ReadsHeaderCrlfTabsAndMissingTimestamps) {
  TempDir dir;
  const auto csv = write_file(dir.file("r.csv"),
                              "userId,movieId,rating,timestamp\r\n1,10,4.5,100\r\n2,20,3,200\r\n");
  const data::RatingsData d = data::read_ratings(csv);
  EXPECT_TRUE(d.header);
  ASSERT_EQ(d.rows.size(), 2u);
  EXPECT_EQ(d.rows[0].user, 1);
  EXPECT_EQ(d.rows[0].item, 10);
  EXPECT_FLOAT_EQ(d.rows[0].rating, 4.5f);
  EXPECT_EQ(d.rows[1].timestamp, 200);
  const auto tsv = write_file(dir.file("u.data"), "7\t8\t5\n9\t8\t1\n");
  const data::RatingsData t = data::read_ratings(tsv);
  EXPECT_FALSE(t.header);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1].user, 9);
  EXPECT_EQ(t.rows[1].timestamp, 0);
}

TEST(RatingsReader, BadRowsNameFileLineAndField) {
  TempDir dir;
  const auto p = write_file(dir.file("bad.csv"),
                            "userId,movieId,rating,timestamp\n1,10,4,1\n"
                            "1,11,x,2\n1,12\n3,abc,2,5\n4,5,2,nan\n");
  const std::string e = error_of([&] { data::read_ratings(p); });
  EXPECT_NE(e.find(p + ":3 (rating)"), std::string::npos) << e;
  data::RatingsReadOptions skip;
  skip.on_error = data::RatingsOnError::Skip;
  const data::RatingsData d = data::read_ratings(p, skip);
  EXPECT_EQ(d.rows.size(), 1u);
  EXPECT_EQ(d.skipped, 4);
  ASSERT_EQ(d.skip_reasons.size(), 4u);
  EXPECT_NE(d.skip_reasons[1].find(":4 (row): expected 3 or 4 fields"), std::string::npos);
  EXPECT_NE(d.skip_reasons[2].find(":5 (item)"), std::string::npos);
  EXPECT_NE(d.skip_reasons[3].find(":6 (timestamp)"), std::string::npos);
  const auto empty = write_file(dir.file("empty.csv"), "userId,movieId,rating\n");
  EXPECT_NE(error_of([&] { data::read_ratings(empty); }).find("no ratings"), std::string::npos);
}

// user 5: rows at t=5, 9, 7 (t=9 held out); user 3: two rows at t=4 (tie: the later row);
// user 8: one row (stays in train).
Interactions fixture() {
  std::vector<data::Rating> rows = {{5, 100, 4, 5}, {3, 300, 2, 4}, {5, 200, 3, 9},
                                    {8, 100, 5, 1}, {5, 300, 1, 7}, {3, 100, 5, 4}};
  return index_interactions(rows);
}

TEST(Interactions, DenseIdsAreSortedRawIds) {
  const Interactions d = fixture();
  EXPECT_EQ(d.user_ids, (std::vector<int64_t>{3, 5, 8}));
  EXPECT_EQ(d.item_ids, (std::vector<int64_t>{100, 200, 300}));
  EXPECT_EQ(d.user, (std::vector<int32_t>{1, 0, 1, 2, 1, 0}));
  EXPECT_EQ(d.item, (std::vector<int32_t>{0, 2, 1, 0, 2, 0}));
}

TEST(Interactions, LeaveLastOutHoldsOutEachUsersLatest) {
  const Interactions d = fixture();
  const Split s = leave_last_out(d);
  EXPECT_EQ(s.test, (std::vector<int64_t>{2, 5}));  // user 5's t=9; user 3's later t=4 row
  EXPECT_EQ(s.train, (std::vector<int64_t>{0, 1, 3, 4}));
}

TEST(Interactions, RandomSplitIsSeededDisjointAndSized) {
  const Split a = random_split(1000, 0.1, 7), b = random_split(1000, 0.1, 7),
              c = random_split(1000, 0.1, 8);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);
  EXPECT_EQ(a.test.size(), 100u);
  EXPECT_EQ(a.train.size(), 900u);
  std::vector<int64_t> all = a.train;
  all.insert(all.end(), a.test.begin(), a.test.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(all[i], i);
}

TEST(Interactions, NegativesAreUnseenDistinctAndSeeded) {
  std::vector<data::Rating> rows;
  for (int u = 0; u < 5; ++u)
    for (int i = 0; i < 40; i += 1 + u) rows.push_back({u, i, 3, i});
  const Interactions d = index_interactions(rows);
  std::vector<int64_t> everything(static_cast<size_t>(d.size()));
  for (int64_t r = 0; r < d.size(); ++r) everything[r] = r;
  const UserItems all = user_items(d, everything);
  Split s = leave_last_out(d);
  s.test.erase(s.test.begin());  // user 0 saw every item (checked below)
  const auto n1 = sample_negatives(d, s.test, all, 10, 3),
             n2 = sample_negatives(d, s.test, all, 10, 3);
  EXPECT_EQ(n1, n2);
  for (size_t t = 0; t < s.test.size(); ++t) {
    std::set<int32_t> seen;
    for (int j = 0; j < 10; ++j) {
      const int32_t item = n1[t * 10 + j];
      EXPECT_FALSE(all.contains(d.user[s.test[t]], item));
      EXPECT_TRUE(seen.insert(item).second);
    }
  }
  // User 0 saw all 40 items: nothing is left to sample.
  EXPECT_NE(error_of([&] { sample_negatives(d, {0}, all, 1, 3); }).find("fewer than 1"),
            std::string::npos);
}

TEST(RankMetrics, MatchHandComputedValues) {
  const float neg[] = {0.1f, 0.5f, 0.9f, 0.5f};
  EXPECT_EQ(rank_of(0.95f, neg, 4), 0);
  EXPECT_EQ(rank_of(0.6f, neg, 4), 1);
  EXPECT_EQ(rank_of(0.5f, neg, 4), 3);  // ties count against the positive
  EXPECT_DOUBLE_EQ(ndcg_at(0, 10), 1.0);
  EXPECT_NEAR(ndcg_at(1, 10), 0.6309297535714575, 1e-15);   // 1 / log2(3)
  EXPECT_NEAR(ndcg_at(9, 10), 0.28906482631788782, 1e-15);  // 1 / log2(11)
  EXPECT_DOUBLE_EQ(ndcg_at(10, 10), 0.0);
  EXPECT_DOUBLE_EQ(hit_at(9, 10), 1.0);
  EXPECT_DOUBLE_EQ(hit_at(10, 10), 0.0);
  const RankSummary s = summarise_ranks({0, 2, 15, 1}, 10);
  EXPECT_DOUBLE_EQ(s.hr, 0.75);
  EXPECT_NEAR(s.ndcg, (1.0 + 0.5 + 0.6309297535714575) / 4, 1e-15);
  // At K = 1 .. 20: rank 0 counts from K = 1, rank 1 from 2, rank 2 from 3, rank 15 from 16.
  ASSERT_EQ(s.hr_at.size(), 20u);
  ASSERT_EQ(s.ndcg_at.size(), 20u);
  EXPECT_DOUBLE_EQ(s.hr_at[0], 0.25);
  EXPECT_DOUBLE_EQ(s.hr_at[1], 0.5);
  EXPECT_DOUBLE_EQ(s.hr_at[14], 0.75);
  EXPECT_DOUBLE_EQ(s.hr_at[15], 1.0);
  EXPECT_DOUBLE_EQ(s.ndcg_at[0], 0.25);
  EXPECT_NEAR(s.ndcg_at[1], (1.0 + 0.6309297535714575) / 4, 1e-15);
  EXPECT_NEAR(s.ndcg_at[19], (1.0 + 0.5 + 0.6309297535714575 + 1.0 / std::log2(17.0)) / 4, 1e-15);
  EXPECT_DOUBLE_EQ(summarise_ranks({}, 10).hr_at[19], 0.0);
}

// The curve at K is the summary at cut-off K, on random ranks (some beyond 20).
TEST(RankMetrics, CurveAtKEqualsTheSummaryAtK) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int64_t> rank(0, 40);
  std::vector<int64_t> ranks(500);
  for (int64_t& r : ranks) r = rank(rng);
  const RankSummary s = summarise_ranks(ranks, 10);
  for (int64_t k = 1; k <= kRankCurveMaxK; ++k) {
    const RankSummary at = summarise_ranks(ranks, k);
    EXPECT_NEAR(s.hr_at[k - 1], at.hr, 1e-12) << k;
    EXPECT_NEAR(s.ndcg_at[k - 1], at.ndcg, 1e-12) << k;
  }
}

TEST(RecommendConfig, ErrorsNamePathExpectedAndChoices) {
  const std::string e = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "svd",
      "embeddings": {"dimm": 8, "optimizer": {"kind": "adam"}},
      "train": {"negatives": 4}})",
                           "c.json");
  });
  EXPECT_NE(e.find("c.json:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("$.model"), std::string::npos) << e;
  EXPECT_NE(e.find("\"two_tower\""), std::string::npos) << e;
  EXPECT_NE(e.find("$.embeddings.dimm"), std::string::npos) << e;
  EXPECT_NE(e.find("\"dim\""), std::string::npos) << e;
  EXPECT_NE(e.find("\"lazy_adam\""), std::string::npos) << e;
  const std::string f = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf", "train": {"loss": "bpr"}})",
                           "d.json");
  });
  EXPECT_NE(f.find("$.train.loss: only applies to \"model\": \"two_tower\""), std::string::npos)
      << f;
  const RecommendConfig ok = parse_recommend_config(
      R"({"task": "recommend", "model": "two_tower", "train": {"loss": "bpr"}})", "e.json");
  EXPECT_EQ(ok.train.loss, Loss::Bpr);
  // The resolved config reads back as itself.
  EXPECT_EQ(to_json(parse_recommend_config(to_json(ok), "r.json")), to_json(ok));
}

}  // namespace
}  // namespace tessera::recommend
