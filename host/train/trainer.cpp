#include "host/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "host/backend/memory_stats.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/progress.h"
#include "host/core/run_dir.h"
#include "host/dist/process_group.h"
#include "host/train/checkpoint.h"
#include "host/train/data_parallel.h"

namespace tessera::train {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

const double* find_metric(const Metrics& m, const std::string& name) {
  for (const auto& [k, v] : m)
    if (k == name) return &v;
  return nullptr;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// Steps between the Trainer's Backend::check_deferred() calls: how late a bad id or label the
// device checked without waiting may stop training (also at every epoch's end). Each call waits
// for the device once.
constexpr int64_t kDeferredCheckEvery = 100;

// The run directory: the one being resumed, an exact new one, or a new one under runs_dir.
std::string open_run_dir(const TrainerOptions& o) {
  if (o.resumable) {
    if (o.run_dir.empty())
      TESSERA_THROW(Usage, "resumable training needs an explicit run directory");
    make_directories(o.run_dir);
    return o.run_dir;
  }
  if (!o.run_dir.empty()) return RunDir::create_exact(o.run_dir).path();
  return RunDir::create(o.runs_dir, o.name).path();
}

// Rank 0 opens it (a new directory's name has its clock in it) and every rank gets its path.
std::string open_run_dir(const TrainerOptions& o, dist::ProcessGroup& group) {
  std::string path;
  if (group.rank() == 0) path = open_run_dir(o);
  dist::broadcast_string(group, path, 0);
  return path;
}

// The loop's state between epochs, and what an epoch adds up.
struct EpochSums {
  int64_t examples = 0, units = 0;
  double loss = 0;
  int64_t loss_examples = 0;  // the examples whose loss is in `loss` (device losses: once read)
  Metrics sums;
  void add(const StepResult& r) {
    examples += r.examples;
    units += r.units;
    if (!r.device_loss.defined()) {
      loss += r.loss_sum;
      loss_examples += r.examples;
    }
    for (const auto& [name, v] : r.sums) {
      bool found = false;
      for (auto& [n, s] : sums)
        if (n == name) {
          s += v;
          found = true;
        }
      if (!found) sums.emplace_back(name, v);
    }
  }
  // Every rank's sums added up, on every rank (the ranks' sums have the same names in the same
  // order: every rank runs the same task).
  void allreduce(dist::ProcessGroup& group) {
    std::vector<double> v = {static_cast<double>(examples), static_cast<double>(units), loss,
                             static_cast<double>(loss_examples)};
    for (const auto& named : sums) v.push_back(named.second);
    const auto n = static_cast<double>(v.size());
    std::vector<double> lengths(static_cast<size_t>(group.world()));
    group.allgather(&n, sizeof n, lengths.data());
    for (const double other : lengths)
      if (other != n)
        TESSERA_THROW(Internal,
                      "the ranks' epoch sums differ in length (" << n << " here, " << other << ")");
    group.allreduce_sum(v.data(), static_cast<int64_t>(v.size()));
    examples = static_cast<int64_t>(v[0]);
    units = static_cast<int64_t>(v[1]);
    loss = v[2];
    loss_examples = static_cast<int64_t>(v[3]);
    for (size_t i = 0; i < sums.size(); ++i) sums[i].second = v[4 + i];
  }
  // The global sums a mid-epoch checkpoint holds, into it and back.
  void save(LoopState& s) const {
    s.epoch_examples = examples;
    s.epoch_units = units;
    s.epoch_loss = loss;
    s.epoch_loss_examples = loss_examples;
    s.epoch_sums = sums;
  }
  static EpochSums of(const LoopState& s) {
    EpochSums e;
    e.examples = s.epoch_examples;
    e.units = s.epoch_units;
    e.loss = s.epoch_loss;
    e.loss_examples = s.epoch_loss_examples;
    e.sums = s.epoch_sums;
    return e;
  }
};

// The steps' device losses (StepResult::device_loss) since the last read, added up on the task's
// backend (Backend::loss_accumulate) with no host synchronisation; read, checked and reset every
// loss_read_every steps and at each epoch's end.
class LossReader {
 public:
  // One applied batch's losses: batch 1-based in its epoch, step the optimizer step it makes.
  void add(Backend* backend, const StepResult& r, int64_t batch, int64_t step);
  int64_t pending_steps() const { return static_cast<int64_t>(steps_.size()); }
  // Adds the sum into `sums` and resets. A non-finite loss stops training through the guard,
  // naming the first step that had one (after the backend's deferred input checks, which name a
  // bad label or id behind a NaN more precisely).
  void read(EpochSums& sums, DivergenceGuard& guard, int64_t epoch, int64_t batches);

 private:
  Backend* backend_ = nullptr;
  Tensor acc_;  // f32 [3] on backend_ (Backend::loss_accumulate)
  // (optimizer step, batch) of each batch added since the read; the accumulator records the
  // first bad one by its 1-based position here, so the numbers it holds stay small.
  std::vector<std::pair<int64_t, int64_t>> steps_;
  int64_t examples_ = 0;
};

void LossReader::add(Backend* backend, const StepResult& r, int64_t batch, int64_t step) {
  if (!acc_.defined()) {
    if (backend == nullptr)
      TESSERA_THROW(Internal,
                    "a training step returned device losses but its task names no backend "
                    "(TrainTask::backend)");
    backend_ = backend;
    acc_ = backend_->empty({3});
    backend_->fill(acc_, 0.f);
  }
  steps_.emplace_back(step, batch);
  examples_ += r.examples;
  backend_->loss_accumulate(r.device_loss, static_cast<float>(steps_.size()), acc_);
}

void LossReader::read(EpochSums& sums, DivergenceGuard& guard, int64_t epoch, int64_t batches) {
  if (steps_.empty()) return;
  const Tensor h = backend_->to_host(acc_);
  const float* a = h.data<float>();
  if (a[1] > 0.f) {
    backend_->check_deferred();
    TESSERA_CHECK(a[2] >= 1.f && a[2] <= static_cast<float>(steps_.size()),
                  "the loss accumulator names step " << a[2] << " of " << steps_.size());
    const auto first = static_cast<size_t>(a[2]) - 1;
    guard.deferred_loss_not_finite(epoch, steps_[first].second, batches, steps_[first].first, a[0]);
  }
  sums.loss += a[0];
  sums.loss_examples += examples_;
  backend_->fill(acc_, 0.f);
  steps_.clear();
  examples_ = 0;
}

class Loop {
 public:
  Loop(const TrainerOptions& o, TrainTask& task)
      : o_(o),
        task_(task),
        group_(dist::process_group()),
        lead_(group_.rank() == 0),
        parallel_(group_.world() > 1),
        run_dir_(open_run_dir(o, group_)),
        checkpoint_(run_dir_ + "/checkpoint.tsc"),
        metrics_(run_dir_ + "/metrics.jsonl"),
        guard_(o.on_nonfinite, {o.task, o.name, run_dir_, o.quiet || !lead_}) {
    if (o.loss_read_every < 1)
      TESSERA_THROW(Usage, "loss_read_every must be at least 1, got " << o.loss_read_every);
    if (o.checkpoint_every_steps < 0)
      TESSERA_THROW(
          Usage, "checkpoint_every_steps must not be negative, got " << o.checkpoint_every_steps);
    if (parallel_) check_data_parallel();
    loop_.task = o.task;
    loop_.tag = o.resume_tag;
  }

  TrainResult run();

 private:
  void check_data_parallel();
  void resume();
  bool train_epoch(int64_t epoch, Progress& progress);  // false: out of time
  // The batch's optimizer step (after the ranks agree on its gradient); false: none was made.
  bool optimizer_step(const StepResult& r, int64_t& examples);
  void end_epoch(int64_t epoch, EpochSums sums, double epoch_seconds, bool partial);
  void log_epoch(int64_t epoch, const EpochSums& sums, const Metrics& val, double epoch_seconds,
                 bool partial, bool improved);
  bool select(const Metrics& m);  // whether the epoch improved on the best
  void checkpoint(int64_t epoch);
  // Inside epoch `epoch` after `batches` of its batches, with the epoch's sums so far.
  void checkpoint_mid_epoch(int64_t epoch, int64_t batches, EpochSums sums);
  TrainResult finish();
  TrainResult stopped() const;
  int64_t checkpoint_every() const {
    return o_.checkpoint_every > 0 ? o_.checkpoint_every : o_.resumable ? 1 : 0;
  }

  const TrainerOptions& o_;
  TrainTask& task_;
  dist::ProcessGroup& group_;
  const bool lead_;      // rank 0: writes the run directory's files and validates
  const bool parallel_;  // more than one rank
  const std::string run_dir_, checkpoint_, metrics_;
  DivergenceGuard guard_;
  LoopState loop_;
  NamedTensors best_;
  int64_t resumed_from_ = 0;
  bool stopped_early_ = false, out_of_time_ = false, stopped_ = false;
  Clock::time_point t0_ = Clock::now();
  std::string last_validation_;  // the last epoch's validation figures, for the summary
  LossReader losses_;
  std::vector<float> gradients_;  // the data-parallel all-reduce's buffer
  EpochSums resumed_sums_;        // a mid-epoch checkpoint's sums (rank 0's share: all of them)
};

void Loop::check_data_parallel() {
  Optimizer* opt = task_.optimizer();
  if (!opt)
    TESSERA_THROW(Usage, o_.task << " training steps its own optimizer, so it cannot train "
                                    "data-parallel over "
                                 << group_.world() << " ranks (run it without mpirun)");
  // Tables replicated on every rank exchange each step's lookups and pooled gradients
  // (exchange_sparse_steps); a group that cannot is refused before the first step.
  for (const Optimizer::NamedGroup& g : opt->sparse_groups())
    if (!g.group->exchanges_steps())
      TESSERA_THROW(Usage, o_.task << ": the sparse parameter group '" << g.name
                                   << "' cannot exchange its steps between ranks, so the model "
                                      "does not train data-parallel. Under mpirun, give it "
                                      "\"remote_shards\": true (rank 0 trains, the others hold "
                                      "the tables) or run it in one process");
}

void Loop::resume() {
  bool found = lead_ && o_.resumable && ::access(checkpoint_.c_str(), F_OK) == 0;
  found = broadcast_flag(group_, found, 0);
  if (!found) {
    if (o_.resumable && lead_) truncate_lines(metrics_, 0);  // killed before the first checkpoint
    return;
  }
  TrainingCheckpoint c = load_training_checkpoint(checkpoint_, o_.task, o_.resume_tag);
  try {
    Optimizer* opt = task_.optimizer();
    NamedTensors groups, own;
    for (auto& named : c.state)
      (opt && is_optimizer_tensor(*opt, named.first) ? groups : own).push_back(std::move(named));
    if (opt)
      restore_optimizer_state(opt->backend(), *opt, groups, c.loop.step, o_.task + " checkpoint");
    task_.restore_training_state(own, c.loop.step);
    task_.restore_random_state(c.loop.random_state);
  } catch (const Error& e) {
    TESSERA_THROW(Io, "checkpoint '" << checkpoint_ << "' cannot be resumed: " << e.what());
  }
  loop_ = c.loop;
  best_ = std::move(c.best);
  resumed_from_ = loop_.epochs_done;
  // The sums of a part-trained epoch are every rank's together: rank 0 carries them on.
  if (lead_) resumed_sums_ = EpochSums::of(loop_);
  // Lines logged after the checkpoint (a kill between the two writes) are done again.
  if (lead_) truncate_lines(metrics_, loop_.epochs_done);
  guard_.resumed(checkpoint_, loop_.epochs_done, metrics_);
  if (!o_.quiet && lead_)
    std::fprintf(stderr, "tessera train: resuming %s after epoch %lld%s (step %lld)\n",
                 run_dir_.c_str(), static_cast<long long>(loop_.epochs_done),
                 loop_.batches_done > 0
                     ? (" and " + std::to_string(loop_.batches_done) + " batches").c_str()
                     : "",
                 static_cast<long long>(loop_.step));
}

bool Loop::optimizer_step(const StepResult& r, int64_t& examples) {
  Optimizer* opt = task_.optimizer();
  examples = r.examples;
  bool apply = r.applied;
  if (parallel_) {
    examples = allreduce_dense_gradients(group_, *opt, r.examples, r.applied, gradients_);
    apply = examples > 0;
    if (apply && !opt->sparse_groups().empty())
      exchange_sparse_steps(group_, *opt, r.examples, r.applied, examples);
  }
  if (apply && opt) opt->step();
  return apply;
}

bool Loop::train_epoch(int64_t epoch, Progress& progress) {
  const int64_t batches = task_.batches_per_epoch();
  const auto t_epoch = Clock::now();
  // A mid-epoch checkpoint resumes at its batch, with the sums of the batches before it.
  const int64_t first = epoch == loop_.epochs_done + 1 ? loop_.batches_done : 0;
  EpochSums sums;
  if (first > 0) {
    if (!task_.start_epoch_at(epoch, first))
      TESSERA_THROW(Io, "checkpoint '" << checkpoint_ << "' was taken after batch " << first
                                       << " of epoch " << epoch << ", but the " << o_.task
                                       << " task cannot start an epoch part-way");
    sums = std::move(resumed_sums_);
  } else {
    task_.start_epoch(epoch);
  }
  bool partial = false;
  Backend* backend = task_.backend();
  for (int64_t b = first; b < batches; ++b) {
    guard_.at_batch(epoch, b + 1, batches, loop_.step + 1);
    StepContext ctx{epoch, b, loop_.step, guard_};
    const auto t_step = Clock::now();
    StepResult r = task_.step(ctx);
    // Queued before the optimizer step, while the step's loss buffer holds this batch's losses.
    if (r.applied && r.device_loss.defined()) losses_.add(backend, r, b + 1, loop_.step + 1);
    int64_t examples = 0;
    const bool stepped = optimizer_step(r, examples);
    loop_.train_seconds += seconds_since(t_step);
    loop_.samples += examples;
    if (stepped) ++loop_.step;
    if (r.applied) sums.add(r);
    bool out_of_time =
        o_.time_budget_s > 0 && seconds_since(t0_) >= o_.time_budget_s && b + 1 < batches;
    if (o_.time_budget_s > 0) out_of_time = broadcast_flag(group_, out_of_time, 0);
    const bool last = b + 1 == batches || out_of_time;
    // Inputs the device checks without waiting raise here at the latest: every
    // kDeferredCheckEvery steps and before the epoch's line is written.
    if (backend && ((b + 1) % kDeferredCheckEvery == 0 || last)) backend->check_deferred();
    const bool at_checkpoint = o_.checkpoint_every_steps > 0 && stepped && !last &&
                               loop_.step % o_.checkpoint_every_steps == 0;
    // The device losses: every loss_read_every steps, before a checkpoint, and before the epoch
    // ends (its weight check, validation and checkpoint come after a non-finite loss has
    // stopped training).
    const bool read = losses_.pending_steps() > 0 &&
                      (last || at_checkpoint || losses_.pending_steps() >= o_.loss_read_every);
    if (read) losses_.read(sums, guard_, epoch, batches);
    if (at_checkpoint) checkpoint_mid_epoch(epoch, b + 1, sums);
    progress.update((epoch - 1) * batches + b + 1,
                    sums.loss_examples > 0 ? "loss " + fmt(sums.loss / sums.loss_examples) : "");
    if (o_.after_step) o_.after_step(loop_.step, read);
    if (out_of_time) {
      partial = true;
      break;
    }
  }
  end_epoch(epoch, std::move(sums), seconds_since(t_epoch), partial);
  return !partial;
}

bool Loop::select(const Metrics& m) {
  const Selection& s = o_.selection;
  const double* v = s.metric.empty() ? nullptr : find_metric(m, s.metric);
  if (!v) {
    if (!s.metric.empty() && !m.empty())
      TESSERA_THROW(Internal, o_.task << ": the validation metrics have no '" << s.metric << "'");
    return false;
  }
  const double* t = s.tie.empty() ? nullptr : find_metric(m, s.tie);
  const double tie = t ? *t : NAN;
  bool better = false;
  if (!std::isnan(*v)) {
    if (loop_.best_epoch < 0) {
      better = true;
    } else if (s.goal == Goal::Maximize ? *v > loop_.best_score : *v < loop_.best_score) {
      better = true;
    } else if (*v == loop_.best_score && t && !std::isnan(tie)) {
      better = s.tie_goal == Goal::Maximize ? tie > loop_.best_tie : tie < loop_.best_tie;
    }
  }
  if (better) {
    loop_.best_score = *v;
    loop_.best_tie = tie;
    loop_.bad_epochs = 0;
  } else {
    ++loop_.bad_epochs;
  }
  return better;
}

void Loop::end_epoch(int64_t epoch, EpochSums sums, double epoch_seconds, bool partial) {
  if (parallel_) sums.allreduce(group_);
  guard_.at_epoch_end(epoch, loop_.step);
  task_.check_weights(guard_);
  // Rank 0 validates; every rank selects and stops on its figures.
  Metrics val;
  if (parallel_) task_.begin_lead_only();
  if (lead_) val = task_.validate(guard_);
  if (parallel_) task_.end_lead_only();
  broadcast_metrics(group_, val, 0);
  loop_.epochs_done = epoch;
  loop_.batches_done = 0;
  EpochSums().save(loop_);
  const bool improved = select(val);
  if (improved) {
    loop_.best_epoch = epoch;
    loop_.best_validation = val;
    best_ = task_.snapshot();
  }
  if (lead_) log_epoch(epoch, sums, val, epoch_seconds, partial, improved);
  stopped_early_ = broadcast_flag(group_, stopped_early_, 0);
  // An epoch cut short by the time budget ends the run: it is not a point to resume from.
  const int64_t every = checkpoint_every();
  if (!partial && every > 0 && epoch % every == 0) checkpoint(epoch);
}

// The epoch's metrics.jsonl line and stderr line (rank 0).
void Loop::log_epoch(int64_t epoch, const EpochSums& sums, const Metrics& val, double epoch_seconds,
                     bool partial, bool improved) {
  const double mean = sums.examples > 0 ? sums.loss / static_cast<double>(sums.examples) : NAN;
  const double loss = o_.loss_root ? std::sqrt(mean) : mean;
  json::JsonWriter w;
  w.begin_object().field("epoch", epoch).field("step", loop_.step);
  w.key(o_.loss_field);
  if (sums.examples > 0)
    w.value(loss);
  else
    w.null();  // every batch of the epoch was dropped
  for (const auto& [name, v] : sums.sums)
    w.field("train_" + name, v / static_cast<double>(std::max<int64_t>(1, sums.examples)));
  w.field("lr", task_.learning_rate()).field("epoch_seconds", epoch_seconds);
  if (!o_.throughput_field.empty())
    w.field(o_.throughput_field,
            epoch_seconds > 0 ? static_cast<double>(sums.units) / epoch_seconds : 0.0);
  std::ostringstream line;
  for (const auto& [name, v] : val) line << (line.tellp() > 0 ? ", " : "") << name << " " << fmt(v);
  task_.write_validation(w, val);
  last_validation_ = line.str();
  w.field("elapsed_seconds", seconds_since(t0_));
  if (partial) w.field("partial_epoch", true);
  if (parallel_) w.field("ranks", group_.world());
  guard_.write_epoch_fields(w);
  w.end_object();
  const std::string json = w.compact();
  append_line(metrics_, json);
  if (!o_.quiet)
    std::fprintf(stderr, "%sepoch %lld: train loss %s%s%s%s\n", ::isatty(2) ? "\r\033[K" : "",
                 static_cast<long long>(epoch), sums.examples > 0 ? fmt(loss).c_str() : "-",
                 last_validation_.empty() ? "" : ("; " + last_validation_).c_str(),
                 improved ? " (best)" : "", partial ? " (time budget reached)" : "");
  if (o_.on_epoch && !o_.on_epoch(json)) stopped_early_ = true;
}

void Loop::checkpoint(int64_t epoch) {
  // Replicated state: rank 0's is every rank's, and rank 0 writes it. Every rank collects it,
  // since tables split across the ranks gather theirs collectively (embeddings/alltoall_tables.h).
  if (lead_) loop_.random_state = task_.random_state();
  NamedTensors state = task_.training_state();
  if (Optimizer* opt = task_.optimizer()) {
    NamedTensors groups = optimizer_state(opt->backend(), *opt);
    state.insert(state.end(), groups.begin(), groups.end());
  }
  if (lead_) {
    save_training_checkpoint(checkpoint_, loop_, state, best_);
    guard_.checkpoint_saved(checkpoint_, epoch);
  }
  if (o_.after_checkpoint) o_.after_checkpoint(epoch);
}

void Loop::checkpoint_mid_epoch(int64_t epoch, int64_t batches, EpochSums sums) {
  if (parallel_) sums.allreduce(group_);
  const LoopState at_epoch_end = loop_;
  loop_.epochs_done = epoch - 1;
  loop_.batches_done = batches;
  sums.save(loop_);
  checkpoint(epoch - 1);
  // The counters that belong to the epoch boundary come back (the step goes on from here).
  loop_.epochs_done = at_epoch_end.epochs_done;
  loop_.batches_done = at_epoch_end.batches_done;
  EpochSums::of(at_epoch_end).save(loop_);
}

TrainResult Loop::stopped() const {
  json::JsonWriter w;
  w.begin_object().field("command", "train").field("task", o_.task).field("name", o_.name);
  w.field("run_dir", run_dir_).field("checkpoint", checkpoint_);
  w.field("stopped_after_epoch", loop_.epochs_done).field("steps", loop_.step);
  w.field("resumed_from_epoch", resumed_from_);
  w.end_object();
  TrainResult r;
  r.json = w.compact();
  r.summary = "stopped after epoch " + std::to_string(loop_.epochs_done) + "; " + checkpoint_ +
              " resumes it\n";
  r.run_dir = run_dir_;
  r.stopped = true;
  return r;
}

TrainResult Loop::finish() {
  if (!best_.empty()) task_.restore_snapshot(best_);  // every rank ends with the kept weights
  if (parallel_) task_.begin_lead_only();             // held by rank 0 to the end of the run
  if (!lead_) {  // rank 0 evaluates and writes the model and the result
    task_.end_lead_only();
    TrainResult r;
    r.run_dir = run_dir_;
    return r;
  }
  guard_.at_model_write();
  json::JsonWriter w;
  w.begin_object().field("command", "train").field("task", o_.task).field("name", o_.name);
  w.field("device", o_.device).field("run_dir", run_dir_);
  w.field("epochs", loop_.epochs_done).field("best_epoch", loop_.best_epoch);
  w.field("steps", loop_.step).field("resumed_from_epoch", resumed_from_);
  w.field("stopped_early", stopped_early_).field("out_of_time", out_of_time_);
  w.field("seconds", seconds_since(t0_)).field("train_seconds", loop_.train_seconds);
  w.field("train_samples_per_s",
          loop_.train_seconds > 0 ? static_cast<double>(loop_.samples) / loop_.train_seconds : 0.0);
  if (parallel_) {
    w.field("ranks", group_.world()).field("deterministic_reduction", group_.deterministic());
    const dist::CommStats c = group_.stats();
    w.field("allreduce_bytes_sent", c.allreduce_bytes).field("allreduce_calls", c.allreduce_calls);
    // The sparse step exchange of replicated tables (and the run's few string all-gathers).
    w.field("allgather_bytes_sent", c.allgather_bytes).field("allgather_calls", c.allgather_calls);
    // Tables split across the ranks: the lookups' and gradients' all-to-all (only then, so a
    // replicated run's result keeps its fields).
    if (c.alltoall_calls > 0)
      w.field("alltoall_bytes_sent", c.alltoall_bytes).field("alltoall_calls", c.alltoall_calls);
  }
  guard_.write_result_fields(w);
  TrainResult r;
  r.run_dir = run_dir_;
  char line[256];
  std::snprintf(
      line, sizeof line, "trained %s on %s: %lld epochs (best %lld), %.0f samples/s\n",
      o_.name.c_str(), o_.device.c_str(), static_cast<long long>(loop_.epochs_done),
      static_cast<long long>(loop_.best_epoch),
      loop_.train_seconds > 0 ? static_cast<double>(loop_.samples) / loop_.train_seconds : 0.0);
  r.summary = line;
  // The device allocator's statistics (a CUDA backend's), in the result and after the summary.
  const Backend* backend = task_.backend();
  if (const auto stats = backend ? backend->memory_stats() : std::nullopt) {
    w.key("device_memory").begin_object();
    write_memory_stats(w, *stats);
    w.end_object();
    r.summary += memory_stats_line(*stats);
  }
  FinishContext ctx{run_dir_,      loop_.best_validation, w, r.summary, guard_,
                    loop_.samples, loop_.train_seconds};
  task_.finish(ctx);
  if (parallel_) task_.end_lead_only();
  w.end_object();
  r.json = w.compact();
  write_file_atomic(run_dir_ + "/result.json", r.json + "\n");
  return r;
}

TrainResult Loop::run() {
  if (lead_) write_file_atomic(run_dir_ + "/config.json", o_.config_json);
  resume();
  const int64_t batches = task_.batches_per_epoch();
  if (batches <= 0) TESSERA_THROW(Data, o_.task << ": no training batches");
  if (parallel_) {  // every rank's part of the data makes as many batches
    const std::vector<std::string> all = dist::allgather_strings(group_, std::to_string(batches));
    for (size_t r = 0; r < all.size(); ++r)
      if (all[r] != all[0])
        TESSERA_THROW(Internal, o_.task << ": rank " << r << " has " << all[r]
                                        << " batches per epoch, rank 0 " << all[0]);
  }
  stopped_early_ = o_.selection.patience > 0 && loop_.bad_epochs >= o_.selection.patience;
  Progress progress("train", o_.epochs * batches, "batches", o_.quiet || !lead_);
  for (int64_t epoch = loop_.epochs_done + 1; epoch <= o_.epochs && !stopped_early_; ++epoch) {
    if (broadcast_flag(group_, o_.time_budget_s > 0 && seconds_since(t0_) >= o_.time_budget_s, 0)) {
      out_of_time_ = true;
      break;
    }
    if (!train_epoch(epoch, progress)) {
      out_of_time_ = true;
      break;
    }
    if (o_.stop_after_epochs >= 0 && epoch - resumed_from_ >= o_.stop_after_epochs &&
        epoch < o_.epochs) {
      stopped_ = true;
      break;
    }
    if (o_.selection.patience > 0 && loop_.bad_epochs >= o_.selection.patience) {
      stopped_early_ = true;
      if (!o_.quiet && lead_)
        std::fprintf(stderr, "early stopping: no improvement for %lld epochs\n",
                     static_cast<long long>(o_.selection.patience));
    }
  }
  progress.finish();
  return stopped_ ? stopped() : finish();
}

}  // namespace

TrainResult Trainer::fit(TrainTask& task) {
  Loop loop(o_, task);
  return loop.run();
}

}  // namespace tessera::train
