#include "pipelines/recommend/held_out.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/registry.h"
#include "pipelines/recommend/evaluation.h"

namespace tessera::recommend {

std::string ratings_path(const RecommendConfig& cfg) {
  return cfg.data.path.empty() ? resolve_dataset_file(cfg.data.dataset, cfg.data.file)
                               : cfg.data.path;
}

Prepared prepare(const RecommendConfig& cfg, const std::string& path) {
  data::RatingsReadOptions ro;
  ro.on_error = cfg.data.on_error;
  ro.max_rows = cfg.data.max_rows;
  data::RatingsData rd = data::read_ratings(path, ro);
  Prepared p;
  p.skipped = rd.skipped;
  if (rd.skipped > 0)
    std::fprintf(stderr, "tessera: skipped %lld malformed rows of %s; first: %s\n",
                 static_cast<long long>(rd.skipped), path.c_str(), rd.skip_reasons.front().c_str());
  p.data = index_interactions(rd.rows);
  const auto seed = static_cast<uint64_t>(cfg.seed);
  if (cfg.model == ModelKind::Mf) {
    p.split = random_split(p.data.size(), cfg.data.test_fraction, seed);
  } else {
    p.split = leave_last_out(p.data);
    std::vector<int64_t> rows(static_cast<size_t>(p.data.size()));
    std::iota(rows.begin(), rows.end(), 0);
    const UserItems all = user_items(p.data, rows);
    p.negatives = sample_negatives(p.data, p.split.test, all, cfg.evaluate.negatives,
                                   math::mix64(seed + 0xe7a1));
  }
  if (p.split.train.empty() || p.split.test.empty())
    TESSERA_THROW(Data,
                  path << ": " << p.data.size() << " ratings leave an empty train or test split");
  p.train_seen = user_items(p.data, p.split.train);
  double sum = 0;
  p.min_rating = p.max_rating = p.data.rating[p.split.train[0]];
  for (int64_t r : p.split.train) {
    sum += p.data.rating[r];
    p.min_rating = std::min(p.min_rating, p.data.rating[r]);
    p.max_rating = std::max(p.max_rating, p.data.rating[r]);
  }
  p.global_mean = static_cast<float>(sum / static_cast<double>(p.split.train.size()));
  return p;
}

HeldOutMetrics held_out_metrics(const RecommendConfig& cfg, const Prepared& p, const Scorer& sc) {
  const Evaluator ev{
      p.data,         p.split,      p.train_seen, p.negatives, cfg.evaluate.negatives,
      cfg.evaluate.k, p.min_rating, p.max_rating};
  HeldOutMetrics m;
  char buf[512];
  if (cfg.model == ModelKind::Mf) {
    const double rmse = ev.rmse(sc), base = ev.rmse_constant(p.global_mean);
    m.values = {{"test_rmse", rmse}, {"global_mean_rmse", base}};
    std::snprintf(buf, sizeof buf, "test RMSE %.4f (global-mean baseline %.4f) on %zu ratings\n",
                  rmse, base, p.split.test.size());
    m.summary = buf;
    return m;
  }
  m.k = cfg.evaluate.k;
  m.test_users = static_cast<int64_t>(p.split.test.size());
  const RankSummary s = ev.sampled(sc);
  const RankSummary pop_s = ev.sampled_popular();
  m.values = {{"hr_sampled", s.hr},
              {"ndcg_sampled", s.ndcg},
              {"popular_hr_sampled", pop_s.hr},
              {"popular_ndcg_sampled", pop_s.ndcg}};
  const auto K = static_cast<long long>(cfg.evaluate.k);
  std::snprintf(buf, sizeof buf,
                "NCF protocol (1 + %lld sampled): HR@%lld %.4f NDCG@%lld %.4f; most-popular "
                "HR %.4f NDCG %.4f\n",
                static_cast<long long>(cfg.evaluate.negatives), K, s.hr, K, s.ndcg, pop_s.hr,
                pop_s.ndcg);
  m.summary = buf;
  if (cfg.evaluate.full_ranking) {
    const RankSummary f = ev.full(sc);
    const RankSummary pop_f = ev.full_popular();
    m.values.insert(m.values.end(), {{"hr_full", f.hr},
                                     {"ndcg_full", f.ndcg},
                                     {"popular_hr_full", pop_f.hr},
                                     {"popular_ndcg_full", pop_f.ndcg}});
    std::snprintf(buf, sizeof buf,
                  "full ranking: HR@%lld %.4f NDCG@%lld %.4f; most-popular HR %.4f NDCG %.4f\n", K,
                  f.hr, K, f.ndcg, pop_f.hr, pop_f.ndcg);
    m.summary += buf;
  }
  return m;
}

void write_metrics(json::JsonWriter& w, const HeldOutMetrics& m) {
  w.begin_object();
  for (const auto& [name, v] : m.values) w.field(name, v);
  if (m.k > 0) w.field("k", m.k).field("test_users", m.test_users);
  w.end_object();
}

Result evaluate_held_out(const std::string& model_path, const std::string& ratings_path) {
  const RecArtefact a = load_rec_artefact(model_path);
  const RecommendConfig cfg = parse_recommend_config(a.config_json, model_path + " (config)");
  const Prepared p = prepare(cfg, ratings_path);
  if (p.data.user_ids != a.user_ids || p.data.item_ids != a.item_ids ||
      p.train_seen.offsets != a.seen.offsets || p.train_seen.items != a.seen.items)
    TESSERA_THROW(Data, ratings_path << " is not the ratings " << model_path
                                     << " was trained on (its users, items or training split "
                                        "differ), so its held-out split cannot be rebuilt");
  const HeldOutMetrics m = held_out_metrics(cfg, p, a.scorer());
  json::JsonWriter w;
  w.begin_object().field("command", "evaluate").field("task", "recommend");
  w.choice("model", a.kind, model_choices()).field("model_path", model_path);
  w.field("ratings", ratings_path);
  w.field("users", static_cast<int64_t>(a.user_ids.size()));
  w.field("items", static_cast<int64_t>(a.item_ids.size())).key("metrics");
  write_metrics(w, m);
  w.end_object();
  Result r;
  r.json = w.compact();
  r.summary = a.name + " on the held-out split of " + ratings_path + ": " + m.summary;
  return r;
}

}  // namespace tessera::recommend
