#include "pipelines/recommend/held_out.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <numeric>

#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/registry.h"
#include "pipelines/recommend/evaluation.h"

namespace tessera::recommend {

namespace {
// A file of the config: of the registered dataset when one is named, else a path.
std::string data_file(const RecommendConfig& cfg, const std::string& file) {
  return cfg.data.dataset.empty() ? file : resolve_dataset_file(cfg.data.dataset, file);
}
}  // namespace

std::string ratings_path(const RecommendConfig& cfg) {
  return data_file(cfg, cfg.data.train.path);
}

namespace {

// The ratings of `path` under the config's on_error policy (max_rows: the training file's only).
data::RatingsData read_ratings_file(const RecommendConfig& cfg, const std::string& path,
                                    int64_t max_rows) {
  data::RatingsReadOptions ro;
  ro.on_error = cfg.data.on_error;
  ro.max_rows = max_rows;
  data::RatingsData rd = data::read_ratings(path, ro);
  if (rd.skipped > 0)
    std::fprintf(stderr, "tessera: skipped %lld malformed rows of %s; first: %s\n",
                 static_cast<long long>(rd.skipped), path.c_str(), rd.skip_reasons.front().c_str());
  return rd;
}

// The dense id of `raw` in the ascending `ids`, or -1 when it is not there.
int32_t dense_or_none(const std::vector<int64_t>& ids, int64_t raw) {
  const auto it = std::lower_bound(ids.begin(), ids.end(), raw);
  return it != ids.end() && *it == raw ? static_cast<int32_t>(it - ids.begin()) : -1;
}

// Appends the rows of the test file `path` whose user and item p.data has (its dense ids) to
// p.data and p.split.test, and counts the others in p.test_file.
void append_test_file(Prepared& p, const RecommendConfig& cfg, const std::string& path) {
  const data::RatingsData rd = read_ratings_file(cfg, path, 0);
  TestFileCounts& c = p.test_file;
  c = TestFileCounts{};
  c.path = path;
  c.rows = static_cast<int64_t>(rd.rows.size());
  c.malformed = rd.skipped;
  std::vector<int64_t> unseen_users, unseen_items;
  for (const data::Rating& r : rd.rows) {
    const int32_t u = dense_or_none(p.data.user_ids, r.user);
    const int32_t i = dense_or_none(p.data.item_ids, r.item);
    if (u < 0) ++c.unseen_user_rows, unseen_users.push_back(r.user);
    if (i < 0) ++c.unseen_item_rows, unseen_items.push_back(r.item);
    if (u < 0 || i < 0) continue;
    p.split.test.push_back(p.data.size());
    p.data.user.push_back(u);
    p.data.item.push_back(i);
    p.data.rating.push_back(r.rating);
    p.data.timestamp.push_back(r.timestamp);
  }
  c.scored = static_cast<int64_t>(p.split.test.size());
  for (auto* v : {&unseen_users, &unseen_items}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  c.unseen_users = static_cast<int64_t>(unseen_users.size());
  c.unseen_items = static_cast<int64_t>(unseen_items.size());
  if (c.scored == 0)
    TESSERA_THROW(Data, path << ": none of its " << c.rows
                             << " ratings has a user and an item of the training ratings, so none "
                                "can be scored ("
                             << c.unseen_user_rows << " with an unseen user, " << c.unseen_item_rows
                             << " with an unseen item)");
}

// The union of two per-user item lists over the same users.
UserItems merged(const UserItems& a, const UserItems& b) {
  UserItems m;
  const size_t users = a.offsets.size() - 1;
  m.offsets.assign(users + 1, 0);
  m.items.reserve(a.items.size() + b.items.size());
  for (size_t u = 0; u < users; ++u) {
    std::set_union(a.items.begin() + a.offsets[u], a.items.begin() + a.offsets[u + 1],
                   b.items.begin() + b.offsets[u], b.items.begin() + b.offsets[u + 1],
                   std::back_inserter(m.items));
    m.offsets[u + 1] = static_cast<int64_t>(m.items.size());
  }
  return m;
}

// two_tower with a test file: its scorable rows (append_test_file) are the test users'
// interactions, and each such user's latest one (by timestamp; ties: the later row of the file)
// is the held-out positive, ranked against negatives the user has in neither file, as
// leave_last_out holds out the latest interaction of a single file. `train_seen`: the training
// ratings' per-user items (the model's "seen" when evaluate measures a saved model), which also
// give the most-popular baseline its counts, so training and evaluate score alike.
void hold_out_test_file(Prepared& p, const RecommendConfig& cfg, const std::string& path,
                        const UserItems& train_seen) {
  append_test_file(p, cfg, path);
  const std::vector<int64_t> rows = std::move(p.split.test);
  std::vector<int64_t> last(static_cast<size_t>(p.data.num_users()), -1);
  for (int64_t r : rows) {
    int64_t& l = last[p.data.user[r]];
    if (l < 0 || p.data.timestamp[r] >= p.data.timestamp[l]) l = r;
  }
  p.split.test.clear();
  for (int64_t r : rows)
    if (last[p.data.user[r]] == r) p.split.test.push_back(r);
  const UserItems all = merged(train_seen, user_items(p.data, rows));
  p.negatives = sample_negatives(p.data, p.split.test, all, cfg.evaluate.negatives,
                                 math::mix64(static_cast<uint64_t>(cfg.seed) + 0xe7a1));
  p.item_popularity.assign(static_cast<size_t>(p.data.num_items()), 0.f);
  for (int32_t item : train_seen.items) p.item_popularity[item] += 1.f;
}

}  // namespace

Prepared prepare(const RecommendConfig& cfg, const std::string& path) {
  data::RatingsData rd = read_ratings_file(cfg, path, cfg.data.max_rows);
  Prepared p;
  p.skipped = rd.skipped;
  p.data = index_interactions(rd.rows);
  const auto seed = static_cast<uint64_t>(cfg.seed);
  if (cfg.data.test) {
    p.split.train.resize(static_cast<size_t>(p.data.size()));
    std::iota(p.split.train.begin(), p.split.train.end(), 0);
    const std::string test = data_file(cfg, cfg.data.test->path);
    if (cfg.model == ModelKind::Mf)
      append_test_file(p, cfg, test);
    else
      hold_out_test_file(p, cfg, test, user_items(p.data, p.split.train));
  } else if (cfg.model == ModelKind::Mf) {
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

namespace {

void add_test_file_counts(HeldOutMetrics& m, const TestFileCounts& c) {
  m.counts = {{"test_rows", c.rows},
              {"test_rows_scored", c.scored},
              {"test_rows_unseen_user", c.unseen_user_rows},
              {"test_rows_unseen_item", c.unseen_item_rows},
              {"test_unseen_users", c.unseen_users},
              {"test_unseen_items", c.unseen_items},
              {"test_skipped_rows", c.malformed}};
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "; not scored: %lld with a user (%lld distinct) and %lld with an item (%lld "
                "distinct) the training ratings lack",
                static_cast<long long>(c.unseen_user_rows), static_cast<long long>(c.unseen_users),
                static_cast<long long>(c.unseen_item_rows), static_cast<long long>(c.unseen_items));
  m.summary += " (of the " + std::to_string(c.rows) + " of " + c.path + ")" + buf;
  if (c.malformed > 0) m.summary += "; " + std::to_string(c.malformed) + " malformed rows skipped";
}

Evaluator evaluator_of(const RecommendConfig& cfg, const Prepared& p) {
  return {p.data,
          p.split,
          p.train_seen,
          p.negatives,
          cfg.evaluate.negatives,
          cfg.evaluate.k,
          p.min_rating,
          p.max_rating,
          p.item_popularity.empty() ? nullptr : &p.item_popularity};
}

}  // namespace

HeldOutMetrics held_out_metrics(const RecommendConfig& cfg, const Prepared& p, const Scorer& sc) {
  const Evaluator ev = evaluator_of(cfg, p);
  HeldOutMetrics m;
  char buf[512];
  if (cfg.model == ModelKind::Mf) {
    const double rmse = ev.rmse(sc), base = ev.rmse_constant(p.global_mean);
    m.values = {{"test_rmse", rmse}, {"global_mean_rmse", base}};
    std::snprintf(buf, sizeof buf, "test RMSE %.4f (global-mean baseline %.4f) on %zu ratings",
                  rmse, base, p.split.test.size());
    m.summary = buf;
    if (!p.test_file.path.empty()) add_test_file_counts(m, p.test_file);
    m.summary += "\n";
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
  m.curves = {{"hr_sampled_at_k", s.hr_at}, {"ndcg_sampled_at_k", s.ndcg_at}};
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
    m.curves.insert(m.curves.end(), {{"hr_full_at_k", f.hr_at}, {"ndcg_full_at_k", f.ndcg_at}});
    std::snprintf(buf, sizeof buf,
                  "full ranking: HR@%lld %.4f NDCG@%lld %.4f; most-popular HR %.4f NDCG %.4f\n", K,
                  f.hr, K, f.ndcg, pop_f.hr, pop_f.ndcg);
    m.summary += buf;
  }
  if (!p.test_file.path.empty()) {
    m.summary += "held out: the latest interaction of each of " + std::to_string(m.test_users) +
                 " test users";
    add_test_file_counts(m, p.test_file);
    m.summary += "\n";
  }
  return m;
}

void write_metrics(json::JsonWriter& w, const HeldOutMetrics& m) {
  w.begin_object();
  for (const auto& [name, v] : m.values) w.field(name, v);
  for (const auto& [name, n] : m.counts) w.field(name, n);
  for (const auto& [name, curve] : m.curves) w.field(name, curve);
  if (m.k > 0) w.field("k", m.k).field("test_users", m.test_users);
  w.end_object();
}

namespace {

// A model trained with data.test, measured on the test file `path`: its rows numbered with the
// model's id maps; mf's predictions clipped to the stored training rating range, two_tower's
// held-out users and negatives drawn as training drew them (hold_out_test_file).
Prepared prepare_test_file(const RecommendConfig& cfg, const RecArtefact& a,
                           const std::string& model_path, const std::string& path) {
  if (cfg.model == ModelKind::Mf && !a.has_rating_range)
    TESSERA_THROW(Io, model_path << ": model header has no min_rating/max_rating (the training "
                                    "ratings' range a test file is measured with)");
  Prepared p;
  p.data.user_ids = a.user_ids;
  p.data.item_ids = a.item_ids;
  p.train_seen = a.seen;
  p.global_mean = a.global_mean;
  p.min_rating = a.min_rating;
  p.max_rating = a.max_rating;
  if (cfg.model == ModelKind::Mf)
    append_test_file(p, cfg, path);
  else
    hold_out_test_file(p, cfg, path, a.seen);
  return p;
}

// Any other model: its held-out split, rebuilt from the training ratings `path`.
Prepared rebuild_split(const RecommendConfig& cfg, const RecArtefact& a,
                       const std::string& model_path, const std::string& path) {
  Prepared p = prepare(cfg, path);
  if (p.data.user_ids != a.user_ids || p.data.item_ids != a.item_ids ||
      p.train_seen.offsets != a.seen.offsets || p.train_seen.items != a.seen.items)
    TESSERA_THROW(Data, path << " is not the ratings " << model_path
                             << " was trained on (its users, items or training split "
                                "differ), so its held-out split cannot be rebuilt");
  return p;
}

}  // namespace

Result evaluate_held_out(const std::string& model_path, const std::string& ratings_path) {
  const RecArtefact a = load_rec_artefact(model_path);
  const RecommendConfig cfg = parse_recommend_config(a.config_json, model_path + " (config)");
  const bool test_file = cfg.data.test.has_value();
  const Prepared p = test_file ? prepare_test_file(cfg, a, model_path, ratings_path)
                               : rebuild_split(cfg, a, model_path, ratings_path);
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
  r.summary = a.name + (test_file ? " on the test file " : " on the held-out split of ") +
              ratings_path + ": " + m.summary;
  return r;
}

}  // namespace tessera::recommend
