#pragma once
// Test-set evaluation of the recommendation models and their baselines.
//   rmse            over the test rows, predictions clipped to the training rating range;
//   sampled         NCF protocol: each held-out positive ranked against its sampled negatives;
//   full            each held-out positive ranked against every item the user did not see in
//                   training (the positive excluded from the candidates);
//   *_popular       the same with the most-popular scorer (training interaction counts).
#include <cstdint>
#include <string>
#include <vector>

#include "pipelines/recommend/interactions.h"
#include "pipelines/recommend/rank_metrics.h"
#include "pipelines/recommend/rec_artefact.h"

namespace tessera::recommend {

struct Evaluator {
  const Interactions& data;
  const Split& split;
  const UserItems& train_seen;
  const std::vector<int32_t>& negatives;  // [test * n_negatives]
  int64_t n_negatives;
  int64_t k;
  float min_rating, max_rating;
  // The most-popular scorer's count per item; null: the items' training rows (split.train).
  const std::vector<float>* item_popularity = nullptr;

  double rmse(const Scorer& s) const;
  double rmse_constant(float value) const;
  RankSummary sampled(const Scorer& s) const;
  RankSummary full(const Scorer& s) const;
  RankSummary sampled_popular() const;
  RankSummary full_popular() const;
};

// The held-out cases as raw ids: "user,item,neg_1,...,neg_n" with a header, written atomically.
void write_leave_last_out_csv(const std::string& path, const Interactions& data,
                              const std::vector<int64_t>& test,
                              const std::vector<int32_t>& negatives, int64_t n);

}  // namespace tessera::recommend
