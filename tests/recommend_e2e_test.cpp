// The recommendation pipeline end to end: biased MF learning on a slice of ml-latest-small
// (RMSE below the global-mean baseline), two-tower above the most-popular baseline on a small
// synthetic set, top-K lists that exclude seen items, and exact resume from a checkpoint.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <rapidjson/document.h>

#include "data_test_util.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"
#include "tests/support/skips.h"

namespace tessera::recommend {
namespace {

using tessera::testing::TempDir;
using tessera::testing::write_file;

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

// 60 users x 120 items with a planted taste: user u likes items of its group (u % 4 == i % 4),
// rating 4-5 there and 1-2 elsewhere; timestamps increase along each user's rows.
std::string synthetic_ratings(const TempDir& dir) {
  std::ostringstream s;
  s << "userId,movieId,rating,timestamp\n";
  std::mt19937 rng(5);
  for (int u = 1; u <= 60; ++u) {
    int ts = 1000;
    for (int i = 1; i <= 120; ++i) {
      const bool like = u % 4 == i % 4;
      if (rng() % 100 >= (like ? 50u : 8u)) continue;  // people mostly rate what they like
      s << u << "," << i << ","
        << (like ? 4 + static_cast<int>(rng() % 2) : 1 + static_cast<int>(rng() % 2)) << "," << ts++
        << "\n";
    }
  }
  return write_file(dir.file("ratings.csv"), s.str());
}

std::string config(const TempDir& dir, const std::string& name, const std::string& body) {
  return write_file(dir.file(name + ".json"), "{\"task\": \"recommend\", \"name\": \"" + name +
                                                  "\", \"seed\": 3, " + body + "}");
}

TrainOptions run_in(const TempDir& dir, const std::string& run) {
  TrainOptions o;
  o.run_dir = dir.file(run);
  o.quiet = true;
  return o;
}

TEST(RecommendE2E, MatrixFactorisationLearnsOnMovieLensSlice) {
  const std::string missing = test::missing_dataset("ml-latest-small", {"ratings.csv"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  // The file is here: a checksum mismatch is a failure.
  ResolveOptions ro;
  ro.download = DownloadPolicy::Never;
  const std::string ratings = resolve_dataset_file("ml-latest-small", "ratings.csv", ro);
  TempDir dir;
  const std::string cfg = config(dir, "mf", R"("model": "mf",
    "data": {"path": ")" + ratings + R"(", "max_rows": 30000},
    "embeddings": {"dim": 16, "optimizer": {"kind": "lazy_adam", "lr": 0.003}},
    "train": {"epochs": 6, "batch_size": 512, "l2": 0.1})");
  const Result r = train(cfg, run_in(dir, "run"));
  const auto j = parse(r.json);
  const double rmse = j["metrics"]["test_rmse"].GetDouble();
  const double base = j["metrics"]["global_mean_rmse"].GetDouble();
  EXPECT_LT(rmse, base - 0.05) << r.json;
  EXPECT_TRUE(std::ifstream(dir.file("run/metrics.jsonl")).good());
}

TEST(RecommendE2E, TwoTowerBeatsMostPopularAndListsExcludeSeenItems) {
  TempDir dir;
  const std::string ratings = synthetic_ratings(dir);
  const std::string cfg = config(dir, "tt", R"("model": "two_tower",
    "data": {"path": ")" + ratings + R"("},
    "embeddings": {"dim": 8, "optimizer": {"kind": "adagrad", "lr": 0.1}},
    "train": {"epochs": 8, "batch_size": 128, "negatives": 4, "l2": 0.01},
    "evaluate": {"k": 10, "negatives": 40})");
  const Result r = train(cfg, run_in(dir, "run"));
  const auto j = parse(r.json);
  const auto& m = j["metrics"];
  EXPECT_GT(m["hr_sampled"].GetDouble(), m["popular_hr_sampled"].GetDouble() + 0.1) << r.json;
  EXPECT_GT(m["hr_full"].GetDouble(), m["popular_hr_full"].GetDouble()) << r.json;
  EXPECT_GT(m["ndcg_sampled"].GetDouble(), 0.0);
  // The report's HR/NDCG-at-K curves: 20 cut-offs, K = 10 being the headline figures.
  for (const char* c : {"hr_sampled_at_k", "ndcg_sampled_at_k", "hr_full_at_k", "ndcg_full_at_k"})
    ASSERT_TRUE(m.HasMember(c) && m[c].IsArray() && m[c].Size() == 20u) << c << ": " << r.json;
  EXPECT_DOUBLE_EQ(m["hr_sampled_at_k"][9].GetDouble(), m["hr_sampled"].GetDouble());
  EXPECT_NEAR(m["ndcg_sampled_at_k"][9].GetDouble(), m["ndcg_sampled"].GetDouble(), 1e-12);
  EXPECT_DOUBLE_EQ(m["hr_full_at_k"][9].GetDouble(), m["hr_full"].GetDouble());
  EXPECT_NEAR(m["ndcg_full_at_k"][9].GetDouble(), m["ndcg_full"].GetDouble(), 1e-12);
  EXPECT_LE(m["hr_full_at_k"][0].GetDouble(), m["hr_full_at_k"][19].GetDouble());

  RecommendOptions ro;
  ro.k = 7;
  const std::string out = dir.file("top.csv");
  recommend(dir.file("run/model.tsm"), out, ro);
  const RecArtefact a = load_rec_artefact(dir.file("run/model.tsm"));
  // The model file carries the training result's metrics and the resolved config back out.
  const auto saved = parse(a.metrics_json);
  EXPECT_DOUBLE_EQ(saved["hr_full"].GetDouble(), m["hr_full"].GetDouble()) << a.metrics_json;
  EXPECT_TRUE(parse(a.config_json).IsObject()) << a.config_json;
  std::map<int64_t, int32_t> user_of, item_of;
  for (size_t u = 0; u < a.user_ids.size(); ++u) user_of[a.user_ids[u]] = static_cast<int32_t>(u);
  for (size_t i = 0; i < a.item_ids.size(); ++i) item_of[a.item_ids[i]] = static_cast<int32_t>(i);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "user,rank,item,score");
  std::map<int64_t, std::vector<std::pair<int64_t, double>>> lists;
  while (std::getline(in, line)) {
    long long u, rank, item;
    double score;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lld,%lld,%lld,%lf", &u, &rank, &item, &score), 4) << line;
    ASSERT_FALSE(a.seen.contains(user_of.at(u), item_of.at(item)))
        << "user " << u << " saw " << item;
    EXPECT_EQ(rank, static_cast<long long>(lists[u].size()) + 1);
    lists[u].emplace_back(item, score);
  }
  EXPECT_EQ(lists.size(), a.user_ids.size());
  const Scorer sc = a.scorer();
  for (const auto& [u, l] : lists) {
    ASSERT_EQ(l.size(), 7u);
    std::set<int64_t> distinct;
    for (size_t r = 0; r < l.size(); ++r) {
      distinct.insert(l[r].first);
      if (r > 0) EXPECT_GE(l[r - 1].second, l[r].second);
    }
    EXPECT_EQ(distinct.size(), 7u);
    // Nothing unseen outside the list scores above its last entry.
    const int32_t du = user_of.at(u);
    for (int32_t i = 0; i < static_cast<int32_t>(a.item_ids.size()); ++i)
      if (!a.seen.contains(du, i) && !distinct.count(a.item_ids[i]))
        ASSERT_LE(sc.score(du, i), l.back().second + 1e-5);
  }
}

void expect_same_tables(const std::string& a_path, const std::string& b_path) {
  const RecArtefact a = load_rec_artefact(a_path), b = load_rec_artefact(b_path);
  ASSERT_EQ(a.tables.size(), b.tables.size());
  for (size_t t = 0; t < a.tables.size(); ++t) {
    ASSERT_EQ(a.tables[t].second.bytes(), b.tables[t].second.bytes());
    EXPECT_EQ(
        std::memcmp(a.tables[t].second.raw(), b.tables[t].second.raw(), a.tables[t].second.bytes()),
        0)
        << "table " << a.tables[t].first << " differs";
  }
}

TEST(RecommendE2E, ResumedTrainingEqualsUninterrupted) {
  TempDir dir;
  const std::string ratings = synthetic_ratings(dir);
  for (const char* opt :
       {R"({"kind": "lazy_adam", "lr": 0.01})", R"({"kind": "adagrad", "lr": 0.1})"}) {
    for (const char* model : {"mf", "two_tower"}) {
      SCOPED_TRACE(std::string(model) + " " + opt);
      const std::string tag = std::string(model) + (opt[10] == 'l' ? "_adam" : "_adagrad");
      const std::string cfg = config(
          dir, tag,
          std::string("\"model\": \"") + model + "\", \"data\": {\"path\": \"" + ratings +
              "\"}, \"embeddings\": {\"dim\": 8, \"optimizer\": " + opt +
              "}, \"train\": {\"epochs\": 4, \"batch_size\": 64}" +
              (std::string(model) == "two_tower" ? ", \"evaluate\": {\"negatives\": 20}" : ""));
      train(cfg, run_in(dir, tag + "_full"));
      TrainOptions first = run_in(dir, tag + "_cut");
      first.epochs = 2;  // "interrupted" after epoch 2
      train(cfg, first);
      TrainOptions resume;
      resume.resume = dir.file(tag + "_cut");
      resume.quiet = true;
      const Result r = train(cfg, resume);
      expect_same_tables(dir.file(tag + "_full/model.tsm"), dir.file(tag + "_cut/model.tsm"));
      // Four epoch lines: two before the interruption, two after.
      std::ifstream m(dir.file(tag + "_cut/metrics.jsonl"));
      int lines = 0;
      for (std::string l; std::getline(m, l);) ++lines;
      EXPECT_EQ(lines, 4);
      EXPECT_EQ(parse(r.json)["steps"].GetInt64(),
                parse(read_file(dir.file(tag + "_full/result.json")))["steps"].GetInt64());
    }
  }
}

// Training over N embedding shards (table-, row- and column-wise) gives exactly the tables of
// the unsharded run, so the artefact and its exports do not depend on the shard count; and a
// checkpoint written with one shard count resumes with another.
TEST(RecommendE2E, ShardedTrainingEqualsUnshardedAndResumesAcrossShardCounts) {
  TempDir dir;
  const std::string ratings = synthetic_ratings(dir);
  struct Case {
    const char* model;
    const char* opt;
  };
  for (const Case& c : {Case{"mf", R"({"kind": "lazy_adam", "lr": 0.01})"},
                        Case{"two_tower", R"({"kind": "rowwise_adagrad", "lr": 0.1})"}}) {
    SCOPED_TRACE(c.model);
    // One run name for all: a config differing only in its shards resumes the others' runs.
    auto cfg = [&](const std::string& tag, const std::string& shards) {
      return write_file(
          dir.file(std::string(c.model) + tag + ".json"),
          std::string("{\"task\": \"recommend\", \"name\": \"sharded\", \"seed\": 3, ") +
              std::string("\"model\": \"") + c.model + "\", \"data\": {\"path\": \"" + ratings +
              "\"}, \"embeddings\": {\"dim\": 8, " + shards + "\"optimizer\": " + c.opt +
              "}, \"train\": {\"epochs\": 3, \"batch_size\": 64}" +
              (std::string(c.model) == "two_tower" ? ", \"evaluate\": {\"negatives\": 20}" : "") +
              "}");
    };
    const std::string one = cfg("_1", "");
    const std::string two = cfg("_2t", R"("shards": 2, "placement": "table", )");
    const std::string three = cfg("_3r", R"("shards": 3, "placement": "row", )");
    const Result r1 = train(one, run_in(dir, std::string(c.model) + "_one"));
    const Result r2 = train(two, run_in(dir, std::string(c.model) + "_two"));
    const Result r3 = train(three, run_in(dir, std::string(c.model) + "_three"));
    expect_same_tables(dir.file(std::string(c.model) + "_one/model.tsm"),
                       dir.file(std::string(c.model) + "_two/model.tsm"));
    expect_same_tables(dir.file(std::string(c.model) + "_one/model.tsm"),
                       dir.file(std::string(c.model) + "_three/model.tsm"));
    const char* metric = std::string(c.model) == "mf" ? "test_rmse" : "hr_sampled";
    const auto m1 = parse(r1.json), m3 = parse(r3.json);
    ASSERT_TRUE(m1["metrics"].HasMember(metric)) << r1.json;
    EXPECT_EQ(m1["metrics"][metric].GetDouble(), m3["metrics"][metric].GetDouble());
    (void)r2;
    // Column-wise: MF with lazy Adam trains the same tables over 2 column shards; two-tower with
    // row-wise Adagrad (a per-row state over all columns) is refused with the reason.
    const std::string cols = cfg("_2c", R"("shards": 2, "placement": "column", )");
    if (std::string(c.model) == "mf") {
      train(cols, run_in(dir, "mf_cols"));
      expect_same_tables(dir.file("mf_one/model.tsm"), dir.file("mf_cols/model.tsm"));
    } else {
      try {
        train(cols, run_in(dir, "two_tower_cols"));
        ADD_FAILURE() << "column-wise shards with rowwise_adagrad trained";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
        EXPECT_NE(
            std::string(e.what()).find("column-wise sharding cannot train with rowwise_adagrad"),
            std::string::npos)
            << e.what();
      }
    }
    // Two epochs on three row-wise shards, the third on one shard: the unsharded result.
    TrainOptions first = run_in(dir, std::string(c.model) + "_cut");
    first.epochs = 2;
    train(three, first);
    TrainOptions resume;
    resume.resume = dir.file(std::string(c.model) + "_cut");
    resume.quiet = true;
    train(one, resume);
    expect_same_tables(dir.file(std::string(c.model) + "_one/model.tsm"),
                       dir.file(std::string(c.model) + "_cut/model.tsm"));
    // And the other way: two epochs unsharded, the third on three row-wise shards.
    TrainOptions first1 = run_in(dir, std::string(c.model) + "_cut1");
    first1.epochs = 2;
    train(one, first1);
    resume.resume = dir.file(std::string(c.model) + "_cut1");
    train(three, resume);
    expect_same_tables(dir.file(std::string(c.model) + "_one/model.tsm"),
                       dir.file(std::string(c.model) + "_cut1/model.tsm"));
  }
}

TEST(RecommendE2E, ResumeRefusesAnotherConfigAndACorruptCheckpoint) {
  TempDir dir;
  const std::string ratings = synthetic_ratings(dir);
  const std::string body = "\"model\": \"mf\", \"data\": {\"path\": \"" + ratings +
                           "\"}, \"embeddings\": {\"dim\": 4}, \"train\": {\"epochs\": 2, ";
  const std::string a = config(dir, "a", body + "\"l2\": 0.1}");
  const std::string b = config(dir, "b", body + "\"l2\": 0.2}");
  train(a, run_in(dir, "run"));
  TrainOptions resume;
  resume.resume = dir.file("run");
  resume.quiet = true;
  try {
    train(b, resume);
    FAIL() << "resumed with another config";
  } catch (const Error& e) {
    // The Trainer's checkpoint check, as for every task: the file names the run's config tag.
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("written under another configuration"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.file("run/checkpoint.tsc")), std::string::npos)
        << e.what();
  }
  std::string bytes = read_file(dir.file("run/checkpoint.tsc"));
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file(dir.file("run/checkpoint.tsc"), bytes);
  try {
    train(a, resume);
    FAIL() << "resumed from a corrupt checkpoint";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
  }
}

}  // namespace
}  // namespace tessera::recommend
