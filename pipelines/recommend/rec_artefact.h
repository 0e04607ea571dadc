#pragma once
// The recommendation model artefact (model.tsm, host/core/archive.h: atomic, CRC-32): the
// resolved config, the tables ("table/<name>" [rows, dim]), the raw ids of the users and items
// ("user_ids", "item_ids" i64), and what each user has seen in training ("seen_offsets" i64
// [U + 1], "seen_items" i32), so `recommend` can exclude it. A Scorer scores (user, item) pairs
// from the tables: the same arithmetic at evaluation, for top-K lists and for the tests.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/core/tensor.h"
#include "pipelines/recommend/interactions.h"
#include "pipelines/recommend/recommend_config.h"

namespace tessera::recommend {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Scorer {
 public:
  Scorer(ModelKind kind, float global_mean, const NamedTensors& tables);
  // Scores of user u against every item: out [num_items].
  void score_all(int32_t u, float* out) const;
  float score(int32_t u, int32_t item) const;
  int64_t num_users() const { return users_; }
  int64_t num_items() const { return items_; }

 private:
  ModelKind kind_;
  float mu_;
  int64_t users_ = 0, items_ = 0, dim_ = 0;
  const float* p_ = nullptr;   // [U, d]
  const float* q_ = nullptr;   // [I, d]
  const float* bu_ = nullptr;  // [U] or null
  const float* bi_ = nullptr;  // [I]
  NamedTensors keep_;          // owns the buffers
};

struct RecArtefact {
  ModelKind kind = ModelKind::Mf;
  std::string name;
  float global_mean = 0.f;
  // The training ratings' range (mf predictions are clipped to it); "min_rating" and
  // "max_rating" in the header, absent from models written before (has_rating_range false).
  float min_rating = 0.f, max_rating = 0.f;
  bool has_rating_range = false;
  std::string config_json;   // resolved config, compact
  std::string metrics_json;  // the training result's metrics object
  std::vector<int64_t> user_ids, item_ids;
  NamedTensors tables;  // in collection order
  UserItems seen;
  Scorer scorer() const { return Scorer(kind, global_mean, tables); }
};

void save_rec_artefact(const std::string& path, const RecArtefact& a);
// Io error naming the path for a corrupt file; Usage error when it is not a recommendation model.
RecArtefact load_rec_artefact(const std::string& path);

}  // namespace tessera::recommend
