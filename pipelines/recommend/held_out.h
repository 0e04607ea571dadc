#pragma once
// The held-out evaluation of a recommendation model, shared by training (after the last epoch)
// and by `evaluate` (the pipeline's evaluate stage), which loads the saved model.tsm and measures
// it again on the same split, rebuilt from the ratings file and the config's seed:
//   mf         RMSE on the seeded random split, beside the global-mean baseline;
//   two_tower  HR@K / NDCG@K under the NCF protocol (1 held-out positive vs N sampled negatives)
//              and, when configured, under full ranking, beside the most-popular scorer.
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

// The ratings, indexed and split as training splits them.
struct Prepared {
  Interactions data;
  Split split;
  UserItems train_seen;
  std::vector<int32_t> negatives;  // two_tower: [test.size() * evaluate.negatives]
  float global_mean = 0.f;
  float min_rating = 0.f, max_rating = 0.f;
  int64_t skipped = 0;
};

// The ratings file a config reads: data.path, else data.file of the registered dataset (found
// locally or downloaded).
std::string ratings_path(const RecommendConfig& cfg);
// Reads `path` with the config's data options and splits it (deterministic in cfg.seed).
Prepared prepare(const RecommendConfig& cfg, const std::string& path);

struct HeldOutMetrics {
  std::vector<std::pair<std::string, double>> values;  // in report order
  int64_t k = 0, test_users = 0;                        // two_tower
  std::string summary;                                  // human lines
};
HeldOutMetrics held_out_metrics(const RecommendConfig& cfg, const Prepared& p, const Scorer& sc);
// The metrics as one JSON object (the "metrics" of train's and evaluate's results).
void write_metrics(json::JsonWriter& w, const HeldOutMetrics& m);

// Loads `model_path`, rebuilds its held-out split from `ratings_path` (Data error when those
// ratings are not the ones it was trained on) and measures it: {"command": "evaluate", "task":
// "recommend", "model", "model_path", "ratings", "users", "items", "metrics": {...}}.
Result evaluate_held_out(const std::string& model_path, const std::string& ratings_path);

}  // namespace tessera::recommend
