#pragma once
// Ranking metrics of the NCF protocol. A test case is one held-out positive scored against a
// set of candidates (99 sampled negatives, or every item the user has not seen); its rank is
// the number of candidates scoring higher than the positive, ties counted against the positive
// (a constant scorer gets no credit), so rank 0 is the top.
//   HR@K   = 1 if rank < K
//   NDCG@K = 1 / log2(rank + 2) if rank < K (one relevant item: the ideal DCG is 1)
#include <cstdint>
#include <vector>

namespace tessera::recommend {

// #candidates with score >= positive.
int64_t rank_of(float positive, const float* candidates, int64_t n);

double hit_at(int64_t rank, int64_t k);
double ndcg_at(int64_t rank, int64_t k);

// The cut-offs the HR/NDCG-at-K curves of a report span: K = 1 .. kRankCurveMaxK.
constexpr int64_t kRankCurveMaxK = 20;

struct RankSummary {
  double hr = 0;
  double ndcg = 0;
  int64_t cases = 0;
  // HR@K and NDCG@K for K = 1 .. kRankCurveMaxK ([K - 1]); all 0 when there are no cases.
  std::vector<double> hr_at, ndcg_at;
};
RankSummary summarise_ranks(const std::vector<int64_t>& ranks, int64_t k);

}  // namespace tessera::recommend
