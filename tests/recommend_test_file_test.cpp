// MF trained on one ratings file and measured on another (data.test, the fixed train/test pairs
// and k folds of published rating benchmarks): every training row is used, the test file's rows
// whose user or item training lacks are counted (not scored, not dropped silently), the RMSE
// equals one computed here from the saved model's predictions, `tessera evaluate MODEL TEST`
// gives the same numbers, `tessera predict` writes the scores behind them, and the config refuses
// data.test beside test_fraction. Two-tower trained on one file holds out each test user's latest
// interaction of the other, and `tessera evaluate MODEL TEST` reproduces its HR/NDCG.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "data_test_util.h"
#include "host/core/error.h"
#include "host/scheduler/scheduler.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/recommend_config.h"
#include "pipelines/recommend/stages.h"
#include "tests/support/run_program.h"

namespace tessera::recommend {
namespace {

using tessera::testing::TempDir;
using tessera::testing::write_file;

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";

struct Row {
  int64_t user, item;
  float rating;
};

// Training file A: 4 users (raw 10..40) x 6 items (raw 100..105), every pair rated 1..5.
std::vector<Row> file_a_rows() {
  std::vector<Row> rows;
  for (int64_t u = 1; u <= 4; ++u)
    for (int64_t i = 0; i < 6; ++i)
      rows.push_back({u * 10, 100 + i, static_cast<float>((u * 3 + i * 2) % 5 + 1)});
  return rows;
}

std::string write_rows(const std::string& path, const std::vector<Row>& rows,
                       const std::string& extra = "") {
  std::ostringstream s;
  s << "userId,movieId,rating,timestamp\n";
  for (const Row& r : rows) s << r.user << "," << r.item << "," << r.rating << ",1000\n";
  return write_file(path, s.str() + extra);
}

// Test file B: 4 rows MF can score, 3 with an unseen user (50 twice, 60), 2 with an unseen item
// (999, 998; 60's row has both), and one malformed row at line 10.
const std::vector<Row> kScorable = {{10, 100, 4}, {20, 101, 3}, {30, 105, 5}, {40, 102, 2}};
std::string write_file_b(const TempDir& dir) {
  std::vector<Row> rows = kScorable;
  rows.insert(rows.end(), {{50, 100, 3}, {50, 101, 4}, {10, 999, 1}, {60, 998, 2}});
  return write_rows(dir.file("b.csv"), rows, "20,abc,3,1000\n");
}

std::string config(const TempDir& dir, const std::string& data) {
  return write_file(dir.file("mf.json"), R"({"task": "recommend", "name": "ab", "model": "mf",
    "seed": 7, "data": )" + data + R"(,
    "embeddings": {"dim": 4, "init_scale": 0.3},
    "train": {"epochs": 3, "batch_size": 5}})");
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

// `--json` prints the summary, then the result object on the last line.
std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int32_t index_of(const std::vector<int64_t>& ids, int64_t raw) {
  const auto it = std::find(ids.begin(), ids.end(), raw);
  EXPECT_NE(it, ids.end()) << raw;
  return static_cast<int32_t>(it - ids.begin());
}

// RMSE over kScorable from the model's own predictions, clipped to A's rating range, and of the
// mean of A's ratings (the global-mean baseline).
std::pair<double, double> expected_rmse(const RecArtefact& a) {
  const std::vector<Row> train = file_a_rows();
  float lo = train[0].rating, hi = train[0].rating;
  double sum = 0;
  for (const Row& r : train) {
    lo = std::min(lo, r.rating);
    hi = std::max(hi, r.rating);
    sum += r.rating;
  }
  const auto mean = static_cast<float>(sum / static_cast<double>(train.size()));
  const Scorer sc = a.scorer();
  double sse = 0, base = 0;
  for (const Row& r : kScorable) {
    const float pred =
        std::clamp(sc.score(index_of(a.user_ids, r.user), index_of(a.item_ids, r.item)), lo, hi);
    sse += (static_cast<double>(pred) - r.rating) * (static_cast<double>(pred) - r.rating);
    base += (static_cast<double>(mean) - r.rating) * (static_cast<double>(mean) - r.rating);
  }
  const double n = static_cast<double>(kScorable.size());
  return {std::sqrt(sse / n), std::sqrt(base / n)};
}

void expect_counts(const rapidjson::Value& m) {
  EXPECT_EQ(m["test_rows"].GetInt64(), 8);
  EXPECT_EQ(m["test_rows_scored"].GetInt64(), 4);
  EXPECT_EQ(m["test_rows_unseen_user"].GetInt64(), 3);
  EXPECT_EQ(m["test_rows_unseen_item"].GetInt64(), 2);
  EXPECT_EQ(m["test_unseen_users"].GetInt64(), 2);
  EXPECT_EQ(m["test_unseen_items"].GetInt64(), 2);
  EXPECT_EQ(m["test_skipped_rows"].GetInt64(), 1);
}

TEST(RecommendTestFile, TrainsOnAllOfAMeasuresOnBAndEvaluateAgrees) {
  TempDir dir;
  const std::string a_path = write_rows(dir.file("a.csv"), file_a_rows());
  const std::string b_path = write_file_b(dir);
  const std::string cfg = config(
      dir, R"({"path": ")" + a_path + R"(", "test": ")" + b_path + R"(", "on_error": "skip"})");
  TrainOptions o;
  o.run_dir = dir.file("run");
  o.quiet = true;
  const Result r = train(cfg, o);
  const auto j = parse(r.json);
  // No split: all 24 rows of A train, 5 per batch -> 5 steps an epoch.
  EXPECT_EQ(j["steps"].GetInt64(), 3 * 5);
  const rapidjson::Value& m = j["metrics"];
  expect_counts(m);
  const RecArtefact a = load_rec_artefact(j["model_path"].GetString());
  EXPECT_EQ(a.user_ids, (std::vector<int64_t>{10, 20, 30, 40}));
  EXPECT_EQ(a.item_ids.size(), 6u);
  const auto [rmse, base] = expected_rmse(a);
  EXPECT_NEAR(m["test_rmse"].GetDouble(), rmse, 1e-12);
  EXPECT_NEAR(m["global_mean_rmse"].GetDouble(), base, 1e-12);
  EXPECT_NE(r.summary.find("on 4 ratings (of the 8 of " + b_path + ")"), std::string::npos)
      << r.summary;

  // The binary measures B directly from the model's id maps: the same numbers.
  const test::ProgramResult ev =
      test::run_program({kBinary, "evaluate", o.run_dir + "/model.tsm", b_path, "--json"});
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto e = parse(last_line(ev.out));
  EXPECT_STREQ(e["ratings"].GetString(), b_path.c_str());
  EXPECT_DOUBLE_EQ(e["metrics"]["test_rmse"].GetDouble(), m["test_rmse"].GetDouble());
  EXPECT_DOUBLE_EQ(e["metrics"]["global_mean_rmse"].GetDouble(), m["global_mean_rmse"].GetDouble());
  expect_counts(e["metrics"]);

  // Another fold's file: every row scorable.
  const std::string c_path =
      write_rows(dir.file("c.csv"), {{40, 105, 1}, {10, 103, 5}, {30, 100, 3}});
  const test::ProgramResult ec =
      test::run_program({kBinary, "evaluate", o.run_dir + "/model.tsm", c_path, "--json"});
  ASSERT_EQ(ec.status, 0) << ec.err;
  const auto c = parse(last_line(ec.out));
  EXPECT_EQ(c["metrics"]["test_rows"].GetInt64(), 3);
  EXPECT_EQ(c["metrics"]["test_rows_scored"].GetInt64(), 3);
  EXPECT_EQ(c["metrics"]["test_rows_unseen_user"].GetInt64(), 0);

  // A file MF can score nothing of is a data error, not an RMSE of nothing.
  const std::string d_path = write_rows(dir.file("d.csv"), {{70, 100, 3}, {10, 555, 2}});
  const test::ProgramResult ed =
      test::run_program({kBinary, "evaluate", o.run_dir + "/model.tsm", d_path});
  EXPECT_NE(ed.status, 0);
  EXPECT_NE(ed.err.find(d_path + ": none of its 2 ratings"), std::string::npos) << ed.err;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// `tessera predict MODEL PAIRS OUT`: the model's scores of B's rows, clipped as evaluate clips
// them (so the RMSE over the scored rows is evaluate's), an empty score for the rows it lacks the
// user or item of; `tessera predict MODEL USERS OUT`: those users' rows of `tessera recommend`.
TEST(RecommendTestFile, PredictScoresPairsAndListsUsersThroughTheBinary) {
  TempDir dir;
  const std::string a_path = write_rows(dir.file("a.csv"), file_a_rows());
  const std::string b_path = write_file_b(dir);
  const std::string cfg = config(
      dir, R"({"path": ")" + a_path + R"(", "test": ")" + b_path + R"(", "on_error": "skip"})");
  TrainOptions o;
  o.run_dir = dir.file("run");
  o.quiet = true;
  const auto trained = parse(train(cfg, o).json);
  std::string model = o.run_dir + "/model.tsm";
  const std::string out = dir.file("scores.csv");

  const test::ProgramResult p =
      test::run_program({kBinary, "predict", model, b_path, out, "--on-error", "skip", "--json"});
  ASSERT_EQ(p.status, 0) << p.err;
  const auto j = parse(last_line(p.out));
  EXPECT_STREQ(j["mode"].GetString(), "pairs");
  EXPECT_EQ(j["rows"].GetInt64(), 8);
  EXPECT_EQ(j["scored"].GetInt64(), 4);
  EXPECT_EQ(j["unknown_user_rows"].GetInt64(), 3);
  EXPECT_EQ(j["unknown_item_rows"].GetInt64(), 2);
  EXPECT_EQ(j["skipped_rows"].GetInt64(), 1);
  const std::vector<std::string> rows = lines_of(out);
  ASSERT_EQ(rows.size(), 9u);  // header + B's 8 well-formed rows, in file order
  EXPECT_EQ(rows[0], "user,item,score");
  double sse = 0;
  for (size_t i = 0; i < kScorable.size(); ++i) {
    const Row& r = kScorable[i];
    const std::string prefix = std::to_string(r.user) + "," + std::to_string(r.item) + ",";
    ASSERT_EQ(rows[i + 1].rfind(prefix, 0), 0u) << rows[i + 1];
    const double pred = std::stod(rows[i + 1].substr(prefix.size()));
    sse += (pred - r.rating) * (pred - r.rating);
  }
  EXPECT_NEAR(std::sqrt(sse / 4.0), trained["metrics"]["test_rmse"].GetDouble(), 1e-5);
  EXPECT_EQ(rows[5], "50,100,");  // a user training never saw: no score
  EXPECT_EQ(rows[8], "60,998,");

  // Without --on-error skip, B's malformed row is an error naming its file and line.
  const test::ProgramResult bad =
      test::run_program({kBinary, "predict", model, b_path, dir.file("no.csv"), "--json"});
  EXPECT_EQ(bad.status, 1);
  const auto e = parse(last_line(bad.out));
  ASSERT_TRUE(e.HasMember("error")) << bad.out;
  EXPECT_STREQ(e["error"]["file"].GetString(), b_path.c_str());
  EXPECT_EQ(e["error"]["line"].GetInt64(), 10);
  EXPECT_NE(std::string(e["error"]["message"].GetString()).find("(item): expected an integer id"),
            std::string::npos);
  EXPECT_FALSE(std::ifstream(dir.file("no.csv")).good());  // nothing half-written

  // One column: each listed user's top-K, as `tessera recommend` lists it. (In A every user
  // rated every item, leaving nothing to recommend: a model of half of A's rows.)
  std::vector<Row> half;
  for (const Row& r : file_a_rows())
    if ((r.user / 10 + r.item) % 2 == 0) half.push_back(r);
  const std::string half_path = write_rows(dir.file("half.csv"), half);
  TrainOptions ho = o;
  ho.run_dir = dir.file("half_run");
  train(config(dir, R"({"path": ")" + half_path + R"(", "test": ")" + half_path + R"("})"), ho);
  model = ho.run_dir + "/model.tsm";
  const std::string users = write_file(dir.file("users.txt"), "40\n77\n10\n");
  const test::ProgramResult u = test::run_program(
      {kBinary, "predict", model, users, dir.file("top.csv"), "--k", "2", "--json"});
  ASSERT_EQ(u.status, 0) << u.err;
  const auto uj = parse(last_line(u.out));
  EXPECT_STREQ(uj["mode"].GetString(), "users");
  EXPECT_EQ(uj["unknown_users"].GetInt64(), 1);
  const test::ProgramResult all =
      test::run_program({kBinary, "recommend", model, dir.file("all.csv"), "--k", "2"});
  ASSERT_EQ(all.status, 0) << all.err;
  std::vector<std::string> expected = {"user,rank,item,score"};
  for (const char* user : {"40,", "10,"})
    for (const std::string& line : lines_of(dir.file("all.csv")))
      if (line.rfind(user, 0) == 0) expected.push_back(line);
  ASSERT_EQ(expected.size(), 5u);
  EXPECT_EQ(lines_of(dir.file("top.csv")), expected);
}

// The pipeline's evaluate stage measures the config's test file, not the training ratings.
TEST(RecommendTestFile, PipelineEvaluatesTheTestFile) {
  TempDir dir;
  const std::string a_path = write_rows(dir.file("a.csv"), file_a_rows());
  const std::string b_path = write_file_b(dir);
  config(dir, R"({"path": ")" + a_path + R"(", "test": ")" + b_path + R"(", "on_error": "skip"})");
  const std::string spec = write_file(dir.file("pipeline.json"), R"({"name": "ab",
    "task": "recommend", "stages": [
      {"name": "prep", "kind": "prep", "config": {"config": "mf.json"}},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "evaluate", "kind": "evaluate", "inputs": ["train", "prep"]}]})");
  scheduler::StageRegistry registry;
  register_stages(registry);
  scheduler::RunOptions o;
  o.runs_dir = dir.file("runs");
  o.quiet = true;
  o.device = "cpu";
  o.jobs = 1;
  const scheduler::PipelineRun run =
      scheduler::run_pipeline(scheduler::load_pipeline_spec(spec), registry, o);
  ASSERT_EQ(run.stages.size(), 3u);
  const auto tr = parse(run.stages[1].outputs.result_json);
  const auto ev = parse(run.stages[2].outputs.result_json);
  EXPECT_STREQ(ev["ratings"].GetString(), b_path.c_str());
  expect_counts(ev["metrics"]);
  EXPECT_TRUE(ev["metrics"] == tr["metrics"]) << run.stages[2].outputs.result_json;
}

// ---- two_tower ----------------------------------------------------------------------------

struct TimedRow {
  int64_t user, item, timestamp;
};

// Two-tower training file: 4 users (raw 10..40) x 8 items (raw 100..107), each user half of them
// (user 10 and 30 the odd items, 20 and 40 the even ones): 16 rows.
std::string write_tower_train(const TempDir& dir) {
  std::ostringstream s;
  s << "userId,movieId,rating,timestamp\n";
  for (int64_t u = 1; u <= 4; ++u)
    for (int64_t i = 0; i < 8; ++i)
      if ((u + i) % 2 == 0) s << u * 10 << "," << 100 + i << ",1,1000\n";
  return write_file(dir.file("tower_a.csv"), s.str());
}

// Its test file: users 10, 20 and 30 have rows training knows both ids of (10 two, the later at
// t=3000 held out; 30 two at the same time, the later row held out); 40's only row has an item
// training never saw; 50 and 60 are users it never saw (60's item too); line 9 is malformed.
const std::vector<TimedRow> kTowerTest = {{10, 100, 2000}, {10, 102, 3000}, {20, 101, 5000},
                                          {30, 104, 1000}, {30, 106, 1000}, {50, 100, 1000},
                                          {40, 999, 1000}, {60, 998, 1000}};
const std::vector<std::pair<int64_t, int64_t>> kHeldOut = {{10, 102}, {20, 101}, {30, 106}};

std::string write_tower_test(const TempDir& dir) {
  std::ostringstream s;
  s << "userId,movieId,rating,timestamp\n";
  for (const TimedRow& r : kTowerTest) s << r.user << "," << r.item << ",1," << r.timestamp << "\n";
  return write_file(dir.file("tower_b.csv"), s.str() + "20,xyz,1,1000\n");
}

std::string tower_config(const TempDir& dir, const std::string& train, const std::string& test) {
  return write_file(dir.file("tower.json"), R"({"task": "recommend", "name": "tower",
    "model": "two_tower", "seed": 3,
    "data": {"train": ")" + train + R"(", "test": ")" +
                                                test + R"(", "on_error": "skip"},
    "embeddings": {"dim": 4, "init_scale": 0.3},
    "train": {"epochs": 2, "batch_size": 5, "negatives": 2},
    "evaluate": {"k": 2, "negatives": 2, "full_ranking": true}})");
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  for (std::string f; std::getline(s, f, ',');) out.push_back(f);
  return out;
}

// Every user's items in either file (raw ids), which no negative may be.
bool interacted(int64_t user, int64_t item) {
  for (const TimedRow& r : kTowerTest)
    if (r.user == user && r.item == item) return true;
  return (user / 10 + (item - 100)) % 2 == 0;
}

// HR@2 and NDCG@2 of the held-out cases of leave_last_out.csv (user,item,neg_1,neg_2), scored
// here with the saved model: rank = negatives scoring >= the positive.
std::pair<double, double> expected_sampled(const RecArtefact& a,
                                           const std::vector<std::string>& cases) {
  const Scorer sc = a.scorer();
  double hr = 0, ndcg = 0;
  for (size_t c = 1; c < cases.size(); ++c) {
    const std::vector<std::string> f = split_csv(cases[c]);
    const int32_t u = index_of(a.user_ids, std::stoll(f[0]));
    const float pos = sc.score(u, index_of(a.item_ids, std::stoll(f[1])));
    int64_t rank = 0;
    for (size_t j = 2; j < f.size(); ++j)
      rank += sc.score(u, index_of(a.item_ids, std::stoll(f[j]))) >= pos;
    hr += rank < 2 ? 1.0 : 0.0;
    ndcg += rank < 2 ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
  }
  const auto n = static_cast<double>(cases.size() - 1);
  return {hr / n, ndcg / n};
}

// Two-tower trained on all of one file holds out each test user's latest interaction of
// another (leave-last-out over the test file): the held-out cases and their negatives are
// exactly those, ids training lacks are counted, the sampled HR/NDCG equal ones computed here
// from the saved model, and `tessera evaluate MODEL TEST` gives every metric again.
TEST(RecommendTestFile, TwoTowerHoldsOutEachTestUsersLatestInteraction) {
  TempDir dir;
  const std::string a_path = write_tower_train(dir);
  const std::string b_path = write_tower_test(dir);
  TrainOptions o;
  o.run_dir = dir.file("tower_run");
  o.quiet = true;
  const Result r = train(tower_config(dir, a_path, b_path), o);
  const auto j = parse(r.json);
  // No leave-last-out of the training file: all 16 rows train, 5 per batch -> 4 steps an epoch
  // (leaving out each user's latest would leave 12, 3 steps).
  EXPECT_EQ(j["steps"].GetInt64(), 2 * 4);
  const rapidjson::Value& m = j["metrics"];
  EXPECT_EQ(m["test_users"].GetInt64(), 3);
  EXPECT_EQ(m["test_rows"].GetInt64(), 8);
  EXPECT_EQ(m["test_rows_scored"].GetInt64(), 5);
  EXPECT_EQ(m["test_rows_unseen_user"].GetInt64(), 2);
  EXPECT_EQ(m["test_rows_unseen_item"].GetInt64(), 2);
  EXPECT_EQ(m["test_unseen_users"].GetInt64(), 2);
  EXPECT_EQ(m["test_unseen_items"].GetInt64(), 2);
  EXPECT_EQ(m["test_skipped_rows"].GetInt64(), 1);
  EXPECT_NE(r.summary.find("latest interaction of each of 3 test users (of the 8 of " + b_path),
            std::string::npos)
      << r.summary;

  // The held-out cases: each test user's latest row, 2 distinct negatives it has in neither file.
  const std::vector<std::string> cases = lines_of(o.run_dir + "/leave_last_out.csv");
  ASSERT_EQ(cases.size(), 1 + kHeldOut.size());
  for (size_t c = 0; c < kHeldOut.size(); ++c) {
    const std::vector<std::string> f = split_csv(cases[c + 1]);
    ASSERT_EQ(f.size(), 4u) << cases[c + 1];
    EXPECT_EQ(std::stoll(f[0]), kHeldOut[c].first);
    EXPECT_EQ(std::stoll(f[1]), kHeldOut[c].second);
    EXPECT_NE(f[2], f[3]);
    for (size_t k = 2; k < 4; ++k)
      EXPECT_FALSE(interacted(kHeldOut[c].first, std::stoll(f[k]))) << cases[c + 1];
  }
  const RecArtefact a = load_rec_artefact(j["model_path"].GetString());
  EXPECT_EQ(a.user_ids, (std::vector<int64_t>{10, 20, 30, 40}));
  EXPECT_EQ(a.item_ids.size(), 8u);
  const auto [hr, ndcg] = expected_sampled(a, cases);
  EXPECT_DOUBLE_EQ(m["hr_sampled"].GetDouble(), hr);
  EXPECT_NEAR(m["ndcg_sampled"].GetDouble(), ndcg, 1e-12);

  // The binary rebuilds the held-out cases from the model and the test file: every metric again.
  const test::ProgramResult ev =
      test::run_program({kBinary, "evaluate", o.run_dir + "/model.tsm", b_path, "--json"});
  ASSERT_EQ(ev.status, 0) << ev.err;
  const auto e = parse(last_line(ev.out));
  EXPECT_STREQ(e["ratings"].GetString(), b_path.c_str());
  EXPECT_TRUE(e["metrics"] == m) << last_line(ev.out) << "\nvs\n" << r.json;

  // A test file with no row of a known user and item is a data error, not HR of nothing.
  const std::string none = write_file(dir.file("none.csv"), "70,100,1,5\n10,555,1,5\n");
  const test::ProgramResult en =
      test::run_program({kBinary, "evaluate", o.run_dir + "/model.tsm", none});
  EXPECT_NE(en.status, 0);
  EXPECT_NE(en.err.find(none + ": none of its 2 ratings"), std::string::npos) << en.err;
}

TEST(RecommendTestFile, BadTestRowFollowsOnError) {
  TempDir dir;
  const std::string a_path = write_rows(dir.file("a.csv"), file_a_rows());
  const std::string b_path = write_file_b(dir);
  const std::string cfg =
      config(dir, R"({"path": ")" + a_path + R"(", "test": ")" + b_path + R"("})");
  TrainOptions o;
  o.run_dir = dir.file("run");
  o.quiet = true;
  ErrorKind kind = ErrorKind::Internal;
  std::string what;
  try {
    train(cfg, o);
  } catch (const Error& e) {
    kind = e.kind();
    what = e.what();
  }
  EXPECT_EQ(kind, ErrorKind::Data) << what;
  EXPECT_NE(what.find(b_path + ":10 (item): expected an integer id, got 'abc'"), std::string::npos)
      << what;
}

TEST(RecommendTestFile, ConfigRefusesTestWithTestFractionAndTakesItForTwoTower) {
  const std::string both = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf",
  "data": {"path": "a.csv", "test": "b.csv",
           "test_fraction": 0.2}})",
                           "c.json");
  });
  EXPECT_NE(both.find("c.json:3:"), std::string::npos) << both;
  EXPECT_NE(both.find("$.data.test_fraction: give either \"test\""), std::string::npos) << both;
  // two_tower takes a test file (its held-out positives), but never a test_fraction.
  const RecommendConfig tower = parse_recommend_config(
      R"({"task": "recommend", "model": "two_tower", "data": {"test": "b.csv"}})", "t.json");
  ASSERT_TRUE(tower.data.test.has_value());
  EXPECT_EQ(tower.data.test->path, "b.csv");
  EXPECT_EQ(parse_recommend_config(to_json(tower), "tw.json").data.test->path, "b.csv");
  const std::string fraction = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "two_tower",
  "data": {"test_fraction": 0.2}})",
                           "f.json");
  });
  EXPECT_NE(fraction.find("f.json:2:"), std::string::npos) << fraction;
  EXPECT_NE(fraction.find("$.data.test_fraction: only applies to \"model\": \"mf\""),
            std::string::npos)
      << fraction;
  const std::string empty = error_of([] {
    parse_recommend_config(R"({"task": "recommend", "model": "mf", "data": {"test": ""}})",
                           "e.json");
  });
  EXPECT_NE(empty.find("$.data.test"), std::string::npos) << empty;
  // The writer writes data.test (and no test_fraction, which may not be beside it): the resolved
  // config reads back as itself.
  const RecommendConfig ok = parse_recommend_config(
      R"({"task": "recommend", "model": "mf", "data": {"path": "a.csv", "test": "b.csv"}})",
      "ok.json");
  ASSERT_TRUE(ok.data.test.has_value());
  EXPECT_EQ(ok.data.test->path, "b.csv");
  const std::string written = to_json(ok);
  EXPECT_NE(written.find("\"test\": \"b.csv\""), std::string::npos) << written;
  EXPECT_EQ(written.find("test_fraction"), std::string::npos) << written;
  EXPECT_EQ(parse_recommend_config(written, "w.json").data.test->path, "b.csv");
  EXPECT_EQ(to_json(parse_recommend_config(written, "w.json")), written);
}

}  // namespace
}  // namespace tessera::recommend
