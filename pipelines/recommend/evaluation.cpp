#include "pipelines/recommend/evaluation.h"

#include <algorithm>
#include <cmath>

#include "host/core/atomic_file.h"

namespace tessera::recommend {
namespace {

std::vector<float> popularity(const Interactions& d, const Split& split) {
  std::vector<float> c(static_cast<size_t>(d.num_items()), 0.f);
  for (int64_t r : split.train) c[d.item[r]] += 1.f;
  return c;
}

int64_t full_rank(const float* scores, int64_t items, const UserItems& seen, int32_t u,
                  int32_t pos) {
  const float ps = scores[pos];
  int64_t above = 0;
  for (int64_t i = 0; i < items; ++i) above += scores[i] >= ps;
  above -= 1;  // the positive itself
  // Seen items are not candidates.
  for (int64_t j = seen.offsets[u]; j < seen.offsets[u + 1]; ++j)
    above -= scores[seen.items[j]] >= ps && seen.items[j] != pos;
  return above;
}

}  // namespace

double Evaluator::rmse(const Scorer& s) const {
  double sse = 0;
  for (int64_t r : split.test) {
    const float pred = std::clamp(s.score(data.user[r], data.item[r]), min_rating, max_rating);
    const double e = static_cast<double>(pred) - data.rating[r];
    sse += e * e;
  }
  return std::sqrt(sse / static_cast<double>(split.test.size()));
}

double Evaluator::rmse_constant(float value) const {
  double sse = 0;
  for (int64_t r : split.test) {
    const double e = static_cast<double>(value) - data.rating[r];
    sse += e * e;
  }
  return std::sqrt(sse / static_cast<double>(split.test.size()));
}

RankSummary Evaluator::sampled(const Scorer& s) const {
  std::vector<int64_t> ranks(split.test.size());
  std::vector<float> neg(static_cast<size_t>(n_negatives));
  for (size_t t = 0; t < split.test.size(); ++t) {
    const int64_t r = split.test[t];
    const int32_t u = data.user[r];
    for (int64_t j = 0; j < n_negatives; ++j) neg[j] = s.score(u, negatives[t * n_negatives + j]);
    ranks[t] = rank_of(s.score(u, data.item[r]), neg.data(), n_negatives);
  }
  return summarise_ranks(ranks, k);
}

RankSummary Evaluator::full(const Scorer& s) const {
  std::vector<int64_t> ranks(split.test.size());
  const int64_t I = data.num_items();
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(I));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < static_cast<int64_t>(split.test.size()); ++t) {
      const int64_t r = split.test[t];
      s.score_all(data.user[r], scores.data());
      ranks[t] = full_rank(scores.data(), I, train_seen, data.user[r], data.item[r]);
    }
  }
  return summarise_ranks(ranks, k);
}

RankSummary Evaluator::sampled_popular() const {
  const std::vector<float> pop = item_popularity ? *item_popularity : popularity(data, split);
  std::vector<int64_t> ranks(split.test.size());
  std::vector<float> neg(static_cast<size_t>(n_negatives));
  for (size_t t = 0; t < split.test.size(); ++t) {
    for (int64_t j = 0; j < n_negatives; ++j) neg[j] = pop[negatives[t * n_negatives + j]];
    ranks[t] = rank_of(pop[data.item[split.test[t]]], neg.data(), n_negatives);
  }
  return summarise_ranks(ranks, k);
}

RankSummary Evaluator::full_popular() const {
  const std::vector<float> pop = item_popularity ? *item_popularity : popularity(data, split);
  std::vector<int64_t> ranks(split.test.size());
  for (size_t t = 0; t < split.test.size(); ++t) {
    const int64_t r = split.test[t];
    ranks[t] = full_rank(pop.data(), data.num_items(), train_seen, data.user[r], data.item[r]);
  }
  return summarise_ranks(ranks, k);
}

void write_leave_last_out_csv(const std::string& path, const Interactions& d,
                              const std::vector<int64_t>& test,
                              const std::vector<int32_t>& negatives, int64_t n) {
  AtomicFileWriter f(path);
  std::string line = "user,item";
  for (int64_t j = 1; j <= n; ++j) line += ",neg_" + std::to_string(j);
  f.write(line + "\n");
  for (size_t t = 0; t < test.size(); ++t) {
    line = std::to_string(d.user_ids[d.user[test[t]]]) + "," +
           std::to_string(d.item_ids[d.item[test[t]]]);
    for (int64_t j = 0; j < n; ++j) line += "," + std::to_string(d.item_ids[negatives[t * n + j]]);
    f.write(line + "\n");
  }
  f.commit();
}

}  // namespace tessera::recommend
