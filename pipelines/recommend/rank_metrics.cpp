#include "pipelines/recommend/rank_metrics.h"

#include <cmath>

namespace tessera::recommend {

int64_t rank_of(float positive, const float* candidates, int64_t n) {
  int64_t above = 0;
  for (int64_t i = 0; i < n; ++i) above += candidates[i] >= positive;
  return above;
}

double hit_at(int64_t rank, int64_t k) {
  return rank < k ? 1.0 : 0.0;
}

double ndcg_at(int64_t rank, int64_t k) {
  return rank < k ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
}

RankSummary summarise_ranks(const std::vector<int64_t>& ranks, int64_t k) {
  RankSummary s;
  s.cases = static_cast<int64_t>(ranks.size());
  for (int64_t r : ranks) {
    s.hr += hit_at(r, k);
    s.ndcg += ndcg_at(r, k);
  }
  if (s.cases > 0) {
    s.hr /= static_cast<double>(s.cases);
    s.ndcg /= static_cast<double>(s.cases);
  }
  // Cumulative over a histogram of the ranks below the largest cut-off.
  std::vector<int64_t> at_rank(static_cast<size_t>(kRankCurveMaxK), 0);
  for (int64_t r : ranks)
    if (r >= 0 && r < kRankCurveMaxK) ++at_rank[static_cast<size_t>(r)];
  const double n = s.cases > 0 ? static_cast<double>(s.cases) : 1.0;
  double hits = 0, gain = 0;
  for (int64_t r = 0; r < kRankCurveMaxK; ++r) {
    hits += static_cast<double>(at_rank[r]);
    gain += static_cast<double>(at_rank[r]) * ndcg_at(r, r + 1);
    s.hr_at.push_back(hits / n);
    s.ndcg_at.push_back(gain / n);
  }
  return s;
}

}  // namespace tessera::recommend
