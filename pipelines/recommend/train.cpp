// tessera train for "task": "recommend" (see recommend.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>

#include "host/backend/backend.h"
#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/core/run_dir.h"
#include "host/data/registry.h"
#include "host/model/divergence.h"
#include "pipelines/recommend/evaluation.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/rec_model.h"
#include "pipelines/recommend/recommend.h"

namespace tessera::recommend {
namespace {

using Clock = std::chrono::steady_clock;

// The order of the training rows in `epoch`: a counter-based shuffle of (seed, epoch), so a
// resumed run visits the rows exactly as the uninterrupted one.
std::vector<int64_t> epoch_order(const std::vector<int64_t>& rows, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> o = rows;
  const uint64_t s = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(epoch) * 0x9e37 + 7));
  for (int64_t i = static_cast<int64_t>(o.size()) - 1; i > 0; --i)
    std::swap(o[i], o[math::mix64(s + static_cast<uint64_t>(i)) % static_cast<uint64_t>(i + 1)]);
  return o;
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream f(path, std::ios::app);
  f << line << "\n";
  f.flush();
  if (!f) TESSERA_THROW(Io, path << ": cannot append");
}

// The config with the epoch count zeroed: what must match for a checkpoint to be resumed.
std::string resume_key(RecommendConfig c) {
  c.train.epochs = 1;
  c.runs_dir = "-";
  c.device = "-";
  // Checkpoints hold whole tables (the unsharded layout): resume may change the shard count.
  c.embeddings.shards = 1;
  c.embeddings.placement = ShardPlacement::Auto;
  c.embeddings.remote_shards = false;
  // A run that diverged may go on from its last good checkpoint skipping such batches.
  c.train.on_nonfinite = NonFinitePolicy::Stop;
  return to_json(c);
}

// Applies a step unless its loss or gradient holds a NaN or Inf (divergence.h): stops there,
// or drops the batch under on_nonfinite "skip_batch". Whether it was applied.
bool apply_checked(RecModel& m, DivergenceGuard& guard, const RecModel::Step& s) {
  const int64_t width = s.dout.dim(1);
  if (!guard.loss_ok(s.loss) ||
      !guard.host_gradient_ok(s.dout.data<float>(), s.dout.numel(), [&](int64_t i) {
        return "embedding table '" + m.table_of_column(i % width) + "'";
      }))
    return false;
  m.apply(s);
  return true;
}

// The tables (host tensors by table name) as the divergence checks name them.
NamedTensors as_checked(NamedTensors tables) {
  for (auto& [name, tensor] : tables) name = "embedding table '" + name + "'";
  return tables;
}

// A figure of the epoch line: null when no batch of the epoch was trained.
void field_or_null(json::JsonWriter& w, const char* key, double v) {
  w.key(key);
  if (std::isfinite(v))
    w.value(v);
  else
    w.null();
}

// One epoch of mf: batches of shuffled training ratings. Returns the training RMSE (NaN when
// every batch was skipped).
double mf_epoch(RecModel& m, const RecommendConfig& cfg, const Prepared& p, int64_t epoch,
                DivergenceGuard& guard) {
  const std::vector<int64_t> order =
      epoch_order(p.split.train, static_cast<uint64_t>(cfg.seed), epoch);
  const int64_t B = cfg.train.batch_size, N = static_cast<int64_t>(order.size());
  const int64_t batches = (N + B - 1) / B;
  std::vector<int32_t> u, it;
  std::vector<float> r;
  double sse = 0;
  int64_t trained = 0;
  for (int64_t b = 0; b < N; b += B) {
    const int64_t n = std::min(B, N - b);
    guard.at_batch(epoch, b / B + 1, batches, m.steps() + 1);
    u.resize(n);
    it.resize(n);
    r.resize(n);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t row = order[b + s];
      u[s] = p.data.user[row];
      it[s] = p.data.item[row];
      r[s] = p.data.rating[row];
    }
    const RecModel::Step s = m.mf_step(u.data(), it.data(), r.data(), n);
    if (!apply_checked(m, guard, s)) continue;
    sse += s.loss;
    trained += n;
  }
  return trained > 0 ? std::sqrt(sse / static_cast<double>(trained)) : NAN;
}

// One epoch of two_tower: each shuffled training positive with `negatives` items drawn uniformly
// from those the user has not interacted with in training (counter-based per (epoch, position)).
double two_tower_epoch(RecModel& m, const RecommendConfig& cfg, const Prepared& p, int64_t epoch,
                       DivergenceGuard& guard) {
  const auto seed = static_cast<uint64_t>(cfg.seed);
  const std::vector<int64_t> order = epoch_order(p.split.train, seed, epoch);
  const int64_t B = cfg.train.batch_size, N = static_cast<int64_t>(order.size());
  const int64_t batches = (N + B - 1) / B;
  const int64_t negs = cfg.train.negatives, G = 1 + negs;
  const auto I = static_cast<uint64_t>(p.data.num_items());
  const uint64_t es = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(epoch) + 0xabc));
  std::vector<int32_t> u, it;
  double loss = 0;
  int64_t trained = 0;
  for (int64_t b = 0; b < N; b += B) {
    const int64_t n = std::min(B, N - b);
    guard.at_batch(epoch, b / B + 1, batches, m.steps() + 1);
    u.resize(n);
    it.resize(n * G);
    for (int64_t s = 0; s < n; ++s) {
      const int64_t row = order[b + s];
      u[s] = p.data.user[row];
      it[s * G] = p.data.item[row];
      uint64_t ctr = static_cast<uint64_t>(b + s) * 1024;
      for (int64_t j = 1; j < G; ++j) {
        int32_t cand;
        int tries = 0;
        do {  // a user who has seen (almost) everything gets a seen item after 64 tries
          cand = static_cast<int32_t>(math::mix64(es + ctr++) % I);
        } while (p.train_seen.contains(u[s], cand) && ++tries < 64);
        it[s * G + j] = cand;
      }
    }
    const RecModel::Step s = m.two_tower_step(u.data(), it.data(), n, negs);
    if (!apply_checked(m, guard, s)) continue;
    loss += s.loss;
    trained += n;
  }
  return trained > 0
             ? loss / static_cast<double>(trained * (cfg.train.loss == Loss::Bce ? G : negs))
             : NAN;
}

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  RecommendConfig cfg = read_recommend_config(config_path);
  if (options.epochs > 0) cfg.train.epochs = options.epochs;
  if (!options.runs_dir.empty()) cfg.runs_dir = options.runs_dir;
  if (!options.device.empty()) cfg.device = options.device;
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  // ---- prep ----
  const Prepared p = prepare(cfg, ratings_path(cfg));
  std::unique_ptr<Backend> backend = make_backend(cfg.device);
  RecModel model(cfg, p.data.num_users(), p.data.num_items(), *backend);
  model.set_global_mean(cfg.model == ModelKind::Mf ? p.global_mean : 0.f);
  if (!options.quiet && !model.shard_plan().empty())
    std::fprintf(stderr, "%s", model.shard_plan().c_str());

  // ---- run directory, or the one being resumed ----
  std::string run_path;
  int64_t first_epoch = 1;
  if (!options.resume.empty()) {
    run_path = options.resume;
    const std::string ck = run_path + "/checkpoint.tsc";
    const RecCheckpoint c = load_rec_checkpoint(ck);
    if (c.resume_key != resume_key(cfg))
      TESSERA_THROW(Usage, ck << ": written with a different config than " << config_path
                              << " (only train.epochs, train.on_nonfinite, runs_dir, device and "
                                 "the embedding shards may change on resume)");
    model.restore_state(c.state, c.step);
    first_epoch = c.epoch + 1;
  } else {
    RunDir run = options.run_dir.empty() ? RunDir::create(cfg.runs_dir, cfg.name)
                                         : RunDir::create_exact(options.run_dir);
    run_path = run.path();
    write_file_atomic(run_path + "/config.json", to_json(cfg));
  }
  const bool mf = cfg.model == ModelKind::Mf;
  DivergenceGuard guard(cfg.train.on_nonfinite, {"recommend", cfg.name, run_path, options.quiet});
  if (first_epoch > 1)
    guard.resumed(run_path + "/checkpoint.tsc", first_epoch - 1, run_path + "/metrics.jsonl");
  if (!options.quiet)
    std::fprintf(stderr,
                 "tessera train: recommend/%s on %s; %lld users, %lld items, %zu train / %zu test "
                 "rows; epochs %lld..%lld\n",
                 choice_name(cfg.model, model_choices()), backend->name().c_str(),
                 static_cast<long long>(p.data.num_users()),
                 static_cast<long long>(p.data.num_items()), p.split.train.size(),
                 p.split.test.size(), static_cast<long long>(first_epoch),
                 static_cast<long long>(cfg.train.epochs));
  if (!mf)
    write_leave_last_out_csv(run_path + "/leave_last_out.csv", p.data, p.split.test, p.negatives,
                             cfg.evaluate.negatives);

  // ---- epochs ----
  const Evaluator ev{
      p.data,         p.split,      p.train_seen, p.negatives, cfg.evaluate.negatives,
      cfg.evaluate.k, p.min_rating, p.max_rating};
  double train_metric = 0;
  for (int64_t epoch = first_epoch; epoch <= cfg.train.epochs; ++epoch) {
    const auto te = Clock::now();
    train_metric =
        mf ? mf_epoch(model, cfg, p, epoch, guard) : two_tower_epoch(model, cfg, p, epoch, guard);
    const double epoch_s = std::chrono::duration<double>(Clock::now() - te).count();
    // The tables are copied to the host to be scored anyway: checked there before anything is
    // computed or written from them.
    guard.at_epoch_end(epoch, model.steps());
    const NamedTensors tables = model.tables();
    guard.check_weights(*backend, as_checked(tables));
    const Scorer sc(cfg.model, model.global_mean(), tables);
    json::JsonWriter w;
    w.begin_object().field("epoch", epoch).field("steps", model.steps());
    std::string line_msg;
    char buf[256];
    if (mf) {
      const double rmse = ev.rmse(sc);
      guard.check_value("test RMSE", rmse);
      field_or_null(w, "train_rmse", train_metric);
      w.field("test_rmse", rmse);
      std::snprintf(buf, sizeof buf, "train RMSE %.4f, test RMSE %.4f", train_metric, rmse);
    } else {
      const RankSummary s = ev.sampled(sc);
      field_or_null(w, "train_loss", train_metric);
      w.field("hr_sampled", s.hr).field("ndcg_sampled", s.ndcg);
      std::snprintf(buf, sizeof buf, "loss %.4f, HR@%lld %.4f, NDCG@%lld %.4f (1 + %lld sampled)",
                    train_metric, static_cast<long long>(cfg.evaluate.k), s.hr,
                    static_cast<long long>(cfg.evaluate.k), s.ndcg,
                    static_cast<long long>(cfg.evaluate.negatives));
    }
    const double samples = static_cast<double>(p.split.train.size()) *
                           (mf ? 1.0 : static_cast<double>(1 + cfg.train.negatives));
    w.field("epoch_seconds", epoch_s).field("train_samples_per_s", samples / epoch_s);
    guard.write_epoch_fields(w);
    w.end_object();
    append_line(run_path + "/metrics.jsonl", w.compact());
    // The checkpoint: weights, optimizer state, step; atomic with a CRC (archive.h).
    json::JsonWriter cm;
    cm.begin_object().field("task", "recommend").field("epoch", epoch).field("step", model.steps());
    cm.field("resume_key", resume_key(cfg)).end_object();
    save_archive(run_path + "/checkpoint.tsc", cm.compact(), model.state_tensors());
    guard.checkpoint_saved(run_path + "/checkpoint.tsc", epoch);
    if (!options.quiet)
      std::fprintf(stderr, "epoch %lld: %s, %.0f samples/s, %.1f s\n",
                   static_cast<long long>(epoch), buf, samples / epoch_s, elapsed());
  }

  // ---- final evaluation, baselines, the artefact ----
  RecArtefact art;
  art.kind = cfg.model;
  art.name = cfg.name;
  art.global_mean = model.global_mean();
  art.config_json = to_json(cfg);
  art.user_ids = p.data.user_ids;
  art.item_ids = p.data.item_ids;
  art.tables = model.tables();
  guard.at_model_write();
  guard.check_weights(*backend, as_checked(art.tables));
  art.seen = p.train_seen;
  const HeldOutMetrics metrics = held_out_metrics(cfg, p, art.scorer());
  {
    json::JsonWriter m;
    write_metrics(m, metrics);
    art.metrics_json = m.compact();
  }
  const std::string model_path = run_path + "/model.tsm";
  save_rec_artefact(model_path, art);

  json::JsonWriter w;
  w.begin_object().field("command", "train").field("task", "recommend");
  w.choice("model", cfg.model, model_choices()).field("run_dir", run_path);
  w.field("model_path", model_path).field("device", backend->name());
  w.field("epochs", cfg.train.epochs).field("steps", model.steps()).field("seconds", elapsed());
  w.field("skipped_rows", p.skipped);
  guard.write_result_fields(w);
  w.key("metrics");
  write_metrics(w, metrics);
  w.end_object();
  const std::string json = w.compact();
  write_file_atomic(run_path + "/result.json", json + "\n");
  Result r;
  r.json = json;
  r.summary = metrics.summary + "model: " + model_path + "\n";
  return r;
}

}  // namespace tessera::recommend
