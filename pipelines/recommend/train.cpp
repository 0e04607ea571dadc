// tessera train for "task": "recommend" (see recommend.h): the model's part of the shared
// Trainer's loop (host/train/trainer.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "host/backend/backend.h"
#include "host/backend/batch_stager.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/sha256.h"
#include "host/dist/process_group.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/train/trainer.h"
#include "pipelines/recommend/evaluation.h"
#include "pipelines/recommend/held_out.h"
#include "pipelines/recommend/rec_artefact.h"
#include "pipelines/recommend/rec_model.h"
#include "pipelines/recommend/recommend.h"
#include "pipelines/task_run.h"

namespace tessera::recommend {
namespace {

// The order of the training rows in `epoch`: a counter-based shuffle of (seed, epoch), so a
// resumed run visits the rows exactly as the uninterrupted one.
std::vector<int64_t> epoch_order(const std::vector<int64_t>& rows, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> o = rows;
  const uint64_t s = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(epoch) * 0x9e37 + 7));
  for (int64_t i = static_cast<int64_t>(o.size()) - 1; i > 0; --i)
    std::swap(o[i], o[math::mix64(s + static_cast<uint64_t>(i)) % static_cast<uint64_t>(i + 1)]);
  return o;
}

// What must match for a checkpoint to be resumed: the config, less what may change on resume.
std::string resume_tag(RecommendConfig c) {
  c.train.epochs = 1;
  c.runs_dir = "-";
  c.device = "-";
  // Checkpoints hold whole tables (the unsharded layout): resume may change the shard count.
  c.embeddings.shards = 1;
  c.embeddings.placement = ShardPlacement::Auto;
  c.embeddings.remote_shards = false;
  // A run that diverged may go on from its last good checkpoint skipping such batches.
  c.train.on_nonfinite = NonFinitePolicy::Stop;
  return sha256_hex(to_json(c));
}

// The tables (host tensors by table name) as the divergence checks name them.
NamedTensors as_checked(NamedTensors tables) {
  for (auto& [name, tensor] : tables) name = "embedding table '" + name + "'";
  return tables;
}

int64_t batches(const RecommendConfig& cfg, const Prepared& p) {
  const auto n = static_cast<int64_t>(p.split.train.size());
  return (n + cfg.train.batch_size - 1) / cfg.train.batch_size;
}

// The optimizer of the tables: no dense group, so the schedule is written against the tables' lr.
Optimizer table_optimizer(const RecommendConfig& cfg, const Prepared& p, Backend& backend) {
  OptimizerConfig reference;
  reference.type = OptimizerType::Sgd;
  reference.lr = cfg.embeddings.optimizer.lr;
  const int64_t steps_per_epoch = batches(cfg, p);
  return Optimizer(backend, reference,
                   LrSchedule::from_config(cfg.train.lr_schedule, steps_per_epoch,
                                           steps_per_epoch * cfg.train.epochs));
}

Evaluator evaluator(const RecommendConfig& cfg, const Prepared& p) {
  return {p.data,         p.split,      p.train_seen, p.negatives, cfg.evaluate.negatives,
          cfg.evaluate.k, p.min_rating, p.max_rating};
}

// The recommendation models' part of the loop: shuffled training rows in batches (mf: ratings;
// two_tower: positives, each with `negatives` items the user has not seen in training, drawn
// counter-based per (epoch, position)), each step checked by the guard before the sparse
// optimizer touches a row; the test split's RMSE or sampled HR/NDCG after every epoch; the
// held-out evaluation and the model file at the end. Every epoch's weights are kept (no
// selection), so the last epoch's are the model.
class RecTraining : public train::TrainTask {
 public:
  RecTraining(const RecommendConfig& cfg, const Prepared& p, Backend& be, RecModel& model,
              Optimizer& opt)
      : cfg_(cfg), p_(p), be_(be), model_(model), opt_(opt), ev_(evaluator(cfg, p)) {}

  int64_t batches_per_epoch() override { return batches(cfg_, p_); }

  void start_epoch(int64_t epoch) override {
    const auto seed = static_cast<uint64_t>(cfg_.seed);
    order_ = epoch_order(p_.split.train, seed, epoch);
    negative_seed_ = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(epoch) + 0xabc));
  }

  train::StepResult step(train::StepContext& ctx) override {
    const int64_t start = ctx.batch * cfg_.train.batch_size;
    const int64_t all =
        std::min(cfg_.train.batch_size, static_cast<int64_t>(order_.size()) - start);
    // Under mpirun every rank trains its contiguous part of the global batch, in rank order
    // (docs/distributed.md); negatives are drawn per position, so the parts draw what one
    // process would.
    const dist::ProcessGroup& g = dist::process_group();
    const int64_t first = start + all * g.rank() / g.world();
    const int64_t n = start + all * (g.rank() + 1) / g.world() - first;
    const bool mf = cfg_.model == ModelKind::Mf;
    train::StepResult r;
    if (n == 0) return r;  // no part of a short batch: steps with 0 examples
    if (mf) {
      // The ratings go up through the stager's pinned slots; the ids through the tables' own.
      const BatchStager::Staged staged = stage_ratings(first, n);
      const RecModel::Step s = model_.mf_step(users_.data(), items_.data(), staged.tensors[0], n);
      r.applied = apply_checked(ctx.guard, s, r);
      stager_->release(staged);  // the step's last read of the ratings is queued
    } else {
      r.applied = apply_checked(ctx.guard, two_tower_step(first, n), r);
    }
    if (!r.applied) return r;
    const int64_t negs = cfg_.train.negatives, group = 1 + negs;
    // mf: squared errors per rating (the epoch line reports their root mean, an RMSE);
    // two_tower: the loss per scored item (bce) or per (positive, negative) pair (bpr).
    r.examples = mf ? n : n * (cfg_.train.loss == Loss::Bce ? group : negs);
    r.units = mf ? n : n * group;
    return r;
  }

  // The tables' lr at the next step (embeddings.optimizer.lr under the default constant schedule).
  double learning_rate() override { return opt_.current_lr(); }
  Optimizer* optimizer() override { return &opt_; }

  // The tables are copied to the host to be scored anyway: checked there before anything is
  // computed or written from them.
  void check_weights(DivergenceGuard& guard) override {
    tables_ = model_.tables();
    guard.check_weights(be_, as_checked(tables_));
  }

  train::Metrics validate(DivergenceGuard& guard) override {
    const Scorer sc(cfg_.model, model_.global_mean(), tables_);
    tables_.clear();
    if (cfg_.model == ModelKind::Mf) {
      const double rmse = ev_.rmse(sc);
      guard.check_value("test RMSE", rmse);
      return {{"test_rmse", rmse}};
    }
    const RankSummary s = ev_.sampled(sc);
    return {{"hr_sampled", s.hr}, {"ndcg_sampled", s.ndcg}};
  }

  // The global mean; the tables with their optimizer's slots and step are the optimizer's group.
  NamedTensors training_state() override { return model_.mean_state(); }
  void restore_training_state(const NamedTensors& state, int64_t steps) override {
    model_.restore_mean_state(state);
  }
  // Kept weights would be the whole state (never taken: there is no selection metric).
  NamedTensors snapshot() override { return model_.state_tensors(); }
  void restore_snapshot(const NamedTensors& state) override {
    model_.restore_state(state, model_.steps());
  }

  void finish(train::FinishContext& ctx) override;

 private:
  BatchStager::Staged stage_ratings(int64_t first, int64_t n);
  RecModel::Step two_tower_step(int64_t first, int64_t n);
  bool apply_checked(DivergenceGuard& guard, const RecModel::Step& s, train::StepResult& r);

  const RecommendConfig& cfg_;
  const Prepared& p_;
  Backend& be_;
  RecModel& model_;
  Optimizer& opt_;
  const Evaluator ev_;
  std::vector<int64_t> order_;          // this epoch's training rows
  uint64_t negative_seed_ = 0;          // this epoch's negative draws
  NamedTensors tables_;                 // host copies from check_weights, scored by validate
  std::vector<int32_t> users_, items_;  // this batch's ids (host: the tables upload them)
  // mf: the ratings' pinned staging ring (host backend: the host tensor as it is).
  std::unique_ptr<BatchStager> stager_ =
      cfg_.model == ModelKind::Mf
          ? be_.make_batch_stager(3, {{{cfg_.train.batch_size}, DType::F32}})
          : nullptr;
};

// The step's per-sample losses go to the Trainer on the device (StepResult::device_loss: it
// accumulates them and reads them every few steps, so a step makes no host synchronisation); the
// gradient is staged for the Trainer's optimizer step. The losses and gradient rows are read and
// checked here, before the batch changes a weight, only where that costs no synchronisation or
// the config asks for it:
//   - on the host backend they are host memory already: checked every step under both policies
//     (as before the step moved onto the backend), and their sum is the step's loss_sum too;
//   - under on_nonfinite "skip_batch" on a device they are read back (that option's price,
//     divergence.h), and a batch holding a NaN or Inf is dropped.
// Under "stop" on a device nothing is read: the Trainer's read finds a non-finite loss.
// Whether the batch was applied.
bool RecTraining::apply_checked(DivergenceGuard& guard, const RecModel::Step& s,
                                train::StepResult& r) {
  const bool on_host = be_.device().kind == DeviceKind::Host;
  if (on_host || guard.policy() == NonFinitePolicy::SkipBatch) {
    const Tensor loss = on_host ? s.loss : be_.to_host(s.loss);
    double sum = 0;
    for (int64_t i = 0; i < loss.numel(); ++i) sum += loss.data<float>()[i];
    const Tensor dout = on_host ? s.dout : be_.to_host(s.dout);
    const int64_t width = dout.dim(1);
    if (!guard.loss_ok(sum) ||
        !guard.host_gradient_ok(dout.data<float>(), dout.numel(), [&](int64_t i) {
          return "embedding table '" + model_.table_of_column(i % width) + "'";
        }))
      return false;
    r.loss_sum = sum;
    if (guard.policy() == NonFinitePolicy::SkipBatch) {
      model_.stage(s);  // the losses were read: the Trainer takes loss_sum
      return true;
    }
  }
  r.device_loss = s.loss;
  model_.stage(s);  // the Trainer's optimizer step applies it
  return true;
}

// A batch of shuffled training ratings: ids into users_/items_, ratings staged for the device.
BatchStager::Staged RecTraining::stage_ratings(int64_t first, int64_t n) {
  users_.resize(static_cast<size_t>(n));
  items_.resize(static_cast<size_t>(n));
  Tensor ratings = Tensor::host({n});
  for (int64_t s = 0; s < n; ++s) {
    const int64_t row = order_[first + s];
    users_[s] = p_.data.user[row];
    items_[s] = p_.data.item[row];
    ratings.data<float>()[s] = p_.data.rating[row];
  }
  return stager_->stage({ratings}, n);
}

// A batch of shuffled training positives, each followed by its sampled negatives.
RecModel::Step RecTraining::two_tower_step(int64_t first, int64_t n) {
  const int64_t group = 1 + cfg_.train.negatives;
  const auto items = static_cast<uint64_t>(p_.data.num_items());
  std::vector<int32_t> u(n), it(n * group);
  for (int64_t s = 0; s < n; ++s) {
    const int64_t row = order_[first + s];
    u[s] = p_.data.user[row];
    it[s * group] = p_.data.item[row];
    uint64_t ctr = static_cast<uint64_t>(first + s) * 1024;
    for (int64_t j = 1; j < group; ++j) {
      int32_t cand;
      int tries = 0;
      do {  // a user who has seen (almost) everything gets a seen item after 64 tries
        cand = static_cast<int32_t>(math::mix64(negative_seed_ + ctr++) % items);
      } while (p_.train_seen.contains(u[s], cand) && ++tries < 64);
      it[s * group + j] = cand;
    }
  }
  return model_.two_tower_step(u.data(), it.data(), n, cfg_.train.negatives);
}

// The held-out evaluation with its baselines, the artefact, and the task's result fields.
void RecTraining::finish(train::FinishContext& ctx) {
  if (cfg_.model == ModelKind::TwoTower)
    write_leave_last_out_csv(ctx.run_dir + "/leave_last_out.csv", p_.data, p_.split.test,
                             p_.negatives, cfg_.evaluate.negatives);
  RecArtefact art;
  art.kind = cfg_.model;
  art.name = cfg_.name;
  art.global_mean = model_.global_mean();
  art.min_rating = p_.min_rating;
  art.max_rating = p_.max_rating;
  art.has_rating_range = cfg_.model == ModelKind::Mf;
  art.config_json = to_json(cfg_);
  art.user_ids = p_.data.user_ids;
  art.item_ids = p_.data.item_ids;
  art.tables = model_.tables();
  ctx.guard.check_weights(be_, as_checked(art.tables));
  art.seen = p_.train_seen;
  const HeldOutMetrics metrics = held_out_metrics(cfg_, p_, art.scorer());
  json::JsonWriter m;
  write_metrics(m, metrics);
  art.metrics_json = m.compact();
  const std::string model_path = ctx.run_dir + "/model.tsm";
  save_rec_artefact(model_path, art);
  json::JsonWriter& w = ctx.result;
  w.choice("model", cfg_.model, model_choices()).field("model_path", model_path);
  w.field("skipped_rows", p_.skipped);
  w.key("metrics");
  write_metrics(w, metrics);
  ctx.summary += metrics.summary + "model: " + model_path + "\n";
}

train::TrainerOptions trainer_options(const RecommendConfig& cfg, const TrainOptions& options,
                                      const std::string& device) {
  train::TrainerOptions t =
      train::trainer_options(options,
                             {"recommend", cfg.name, cfg.runs_dir, to_json(cfg), resume_tag(cfg),
                              cfg.train.epochs, cfg.train.on_nonfinite},
                             device);
  t.checkpoint_every = 1;
  const bool mf = cfg.model == ModelKind::Mf;
  t.loss_field = mf ? "train_rmse" : "train_loss";
  t.loss_root = mf;
  t.throughput_field = "train_samples_per_s";
  return t;
}

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  RecommendConfig cfg = read_recommend_config(config_path);
  train::apply_run_overrides(options, cfg.seed, cfg.train.epochs, cfg.runs_dir, &cfg.device,
                             nullptr);
  const Prepared p = prepare(cfg, ratings_path(cfg));
  std::unique_ptr<Backend> backend = make_backend(cfg.device);
  RecModel model(cfg, p.data.num_users(), p.data.num_items(), *backend);
  model.set_global_mean(cfg.model == ModelKind::Mf ? p.global_mean : 0.f);
  if (!options.quiet) {
    if (!model.shard_plan().empty()) std::fprintf(stderr, "%s", model.shard_plan().c_str());
    std::fprintf(stderr,
                 "tessera train: recommend/%s on %s; %lld users, %lld items, %zu train / %zu test "
                 "rows\n",
                 choice_name(cfg.model, model_choices()), backend->name().c_str(),
                 static_cast<long long>(p.data.num_users()),
                 static_cast<long long>(p.data.num_items()), p.split.train.size(),
                 p.split.test.size());
  }
  Optimizer opt = table_optimizer(cfg, p, *backend);
  opt.add_sparse_group("tables", model.sparse_group());
  RecTraining task(cfg, p, *backend, model, opt);
  train::TrainResult tr = train::Trainer(trainer_options(cfg, options, backend->name())).fit(task);
  return {tr.summary, tr.json};
}

}  // namespace tessera::recommend
