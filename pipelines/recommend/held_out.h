#pragma once
// The held-out evaluation of a recommendation model, shared by training (after the last epoch)
// and by `evaluate` (the pipeline's evaluate stage), which loads the saved model.tsm and measures
// it again on the same split, rebuilt from the ratings file and the config's seed:
//   mf         RMSE on the seeded random split, or on the data.test file (measured directly by
//              `evaluate`, with the model's id maps), beside the global-mean baseline;
//   two_tower  HR@K / NDCG@K under the NCF protocol (1 held-out positive vs N sampled negatives)
//              and, when configured, under full ranking, beside the most-popular scorer; the
//              held-out positives are each user's latest interaction of the training ratings,
//              or with data.test of the test file (measured directly by `evaluate` too).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/config/json_writer.h"
#include "pipelines/recommend/interactions.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/recommend/recommend_config.h"

namespace tessera::recommend {

// What became of a test file's rows (data.test): only the rows whose user and item are in the
// training ratings are scored (mf) or held out (two_tower); the others are counted, never
// dropped silently.
struct TestFileCounts {
  std::string path;  // empty: no test file (a random split of the training ratings)
  int64_t rows = 0;  // well-formed rows read
  int64_t scored = 0;
  int64_t unseen_user_rows = 0, unseen_item_rows = 0;  // not scored (a row may count in both)
  int64_t unseen_users = 0, unseen_items = 0;          // distinct raw ids among those rows
  int64_t malformed = 0;                               // skipped under data.on_error "skip"
};

// The ratings, indexed and split as training splits them. With data.test, `data` holds every
// training row (all in split.train) followed by the test file's scorable rows, numbered with the
// training ratings' dense ids: all of them in split.test for mf; for two_tower each test user's
// latest one (by timestamp; ties: the later row), as leave_last_out holds out a single file's.
struct Prepared {
  Interactions data;
  Split split;
  UserItems train_seen;
  std::vector<int32_t> negatives;  // two_tower: [test.size() * evaluate.negatives]
  float global_mean = 0.f;
  float min_rating = 0.f, max_rating = 0.f;
  int64_t skipped = 0;
  TestFileCounts test_file;
  // two_tower with data.test: the training users of each item (from train_seen), the
  // most-popular baseline's counts, which evaluate rebuilds from the model; empty otherwise
  // (the baseline counts the training rows).
  std::vector<float> item_popularity;
};

// The ratings file a config reads: data.train, a file of the registered dataset (found locally or
// downloaded) when data.dataset is set, else a path. A config's data.test is found the same way.
std::string ratings_path(const RecommendConfig& cfg);
// Reads `path` with the config's data options and splits it (deterministic in cfg.seed), or with
// data.test takes all of it for training and reads the test file beside it.
Prepared prepare(const RecommendConfig& cfg, const std::string& path);

struct HeldOutMetrics {
  std::vector<std::pair<std::string, double>> values;   // in report order
  std::vector<std::pair<std::string, int64_t>> counts;  // mf with a test file: TestFileCounts
  // two_tower: "<metric>_at_k": the metric at K = 1 .. kRankCurveMaxK (the report's chart).
  std::vector<std::pair<std::string, std::vector<double>>> curves;
  int64_t k = 0, test_users = 0;  // two_tower
  std::string summary;            // human lines
};
HeldOutMetrics held_out_metrics(const RecommendConfig& cfg, const Prepared& p, const Scorer& sc);
// The metrics as one JSON object (the "metrics" of train's and evaluate's results).
void write_metrics(json::JsonWriter& w, const HeldOutMetrics& m);

// Loads `model_path` and measures it: {"command": "evaluate", "task": "recommend", "model",
// "model_path", "ratings", "users", "items", "metrics": {...}}. A model trained with data.test is
// measured on `ratings_path` as a test file (its rows numbered with the model's id maps, two_tower
// holding out each test user's latest row; the counts of TestFileCounts in the metrics); any
// other model's held-out split is rebuilt from `ratings_path` (Data error when those are not the
// ratings it was trained on).
Result evaluate_held_out(const std::string& model_path, const std::string& ratings_path);

}  // namespace tessera::recommend
