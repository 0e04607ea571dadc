// tessera recommend: top-K unseen items for every user, streamed to an atomically written CSV.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/recommend/predict.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/recommend.h"

namespace tessera::recommend {

std::string top_k_lines(const RecArtefact& a, const Scorer& sc, int32_t u, int64_t k,
                        std::vector<float>& scores, std::vector<int32_t>& cand) {
  const int64_t I = sc.num_items();
  scores.resize(static_cast<size_t>(I));
  sc.score_all(u, scores.data());
  cand.clear();
  const int32_t* seen = a.seen.items.data() + a.seen.offsets[u];
  const int64_t n_seen = a.seen.offsets[u + 1] - a.seen.offsets[u];
  int64_t j = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(I); ++i) {
    while (j < n_seen && seen[j] < i) ++j;
    if (j < n_seen && seen[j] == i) continue;
    cand.push_back(i);
  }
  const int64_t n = std::min<int64_t>(k, static_cast<int64_t>(cand.size()));
  // Higher score first; equal scores by item order, so the lists are deterministic.
  std::partial_sort(cand.begin(), cand.begin() + n, cand.end(), [&](int32_t x, int32_t y) {
    return scores[x] > scores[y] || (scores[x] == scores[y] && x < y);
  });
  std::string t;
  char buf[96];
  for (int64_t r = 0; r < n; ++r) {
    std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%.6g\n", static_cast<long long>(a.user_ids[u]),
                  static_cast<long long>(r + 1), static_cast<long long>(a.item_ids[cand[r]]),
                  static_cast<double>(scores[cand[r]]));
    t += buf;
  }
  return t;
}

Result recommend(const std::string& model_path, const std::string& output_path,
                 const RecommendOptions& o) {
  if (o.k < 1) TESSERA_THROW(Usage, "--k must be at least 1, got " << o.k);
  const RecArtefact a = load_rec_artefact(model_path);
  const Scorer sc = a.scorer();
  const int64_t U = sc.num_users(), I = sc.num_items();
  AtomicFileWriter out(output_path);
  out.write("user,rank,item,score\n");
  // Users in chunks: each chunk's lists are computed in parallel and written in user order, so
  // memory stays O(chunk * items) whatever the number of users.
  constexpr int64_t kChunk = 256;
  std::vector<std::string> text(kChunk);
  int64_t lines = 0;
  for (int64_t c0 = 0; c0 < U; c0 += kChunk) {
    const int64_t c1 = std::min(U, c0 + kChunk);
#pragma omp parallel
    {
      std::vector<float> scores;
      std::vector<int32_t> cand;
#pragma omp for schedule(dynamic, 8)
      for (int64_t u = c0; u < c1; ++u)
        text[u - c0] = top_k_lines(a, sc, static_cast<int32_t>(u), o.k, scores, cand);
    }
    for (int64_t u = c0; u < c1; ++u) {
      out.write(text[u - c0]);
      lines += std::count(text[u - c0].begin(), text[u - c0].end(), '\n');
    }
  }
  out.commit();
  json::JsonWriter w;
  w.begin_object().field("command", "recommend").field("model", model_path);
  w.field("output", output_path).field("users", U).field("items", I).field("k", o.k);
  w.field("rows", lines).end_object();
  Result r;
  r.json = w.compact();
  r.summary = "wrote top-" + std::to_string(o.k) + " lists for " + std::to_string(U) + " users (" +
              std::to_string(lines) + " rows) to " + output_path + "\n";
  return r;
}

}  // namespace tessera::recommend
