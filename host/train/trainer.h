#pragma once
// The one training loop. A task's `train` reads its data, builds its model and hands both to
// Trainer::fit as a TrainTask; the Trainer owns what every task used to write again:
//   - the run directory (a new <runs_dir>/<name>-<UTC time>, an exact one, or the one being
//     resumed) and its resolved config.json;
//   - the epochs and their batches, progress on stderr (a bar on a terminal, lines otherwise),
//     the wall-clock budget;
//   - metrics.jsonl: one line per epoch with the epoch's mean training loss (over every example
//     the epoch trained on), the learning rate, throughput and the task's validation metrics;
//   - early stopping and best-weights selection on one named validation metric;
//   - checkpoints in one format (checkpoint.tsc: a tensor archive, written atomically with a
//     CRC), after every N epochs, and exact resumption after kill -9: nothing else carries state
//     across epochs, since every task's batch order, dropout and sampling are functions of (seed,
//     epoch, step) and its learning rate of the optimizer's step count;
//   - the optimizer step, for a task that hands the Trainer its Optimizer (every parameter group
//     under one schedule, host/model/optimizer.h), and that optimizer's groups in checkpoints;
//   - the divergence stop (host/model/divergence.h): the guard is the Trainer's, handed to the
//     task's step for its loss and gradient checks; the weights are checked at every epoch end;
//   - the training loss of a step that leaves it on the device (StepResult::device_loss): summed
//     there and read every loss_read_every steps, so such a step makes no host synchronisation;
//   - result.json and the result's JSON: the common fields, then the task's.
// A TrainTask supplies only what differs between tasks: its batches and step, its validation
// metrics, its state for checkpoints, and what it does with the trained model.
//
// Data-parallel (docs/distributed.md): when the process group (host/dist/process_group.h) has
// more than one rank, every rank runs the same loop on its own part of each global batch (the
// task's batches are its rank's part; its step's gradient is the mean over its rows). Before each
// optimizer step the Trainer all-reduces the optimizer's dense gradients weighted by the ranks'
// StepResult::examples, so every rank steps with the global batch's mean gradient and the weights
// stay equal. The epoch's loss and sums are summed over the ranks, so train_loss is the global
// one. Rank 0 picks the run directory (the others get its path), validates (on all of the
// validation data, its figures sent to every rank, so every rank selects and stops alike) and
// alone writes config.json, metrics.jsonl, checkpoints, result.json and, through finish(), the
// model files; the other ranks restore the kept weights too and return without calling
// finish(). It needs a task whose optimizer() holds every weight with no sparse group
// (replicated tables' sparse gradients are not exchanged yet): anything else is refused before
// the first step.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "host/config/json_writer.h"
#include "host/config/on_nonfinite.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"

namespace tessera::train {

// Named figures, in the order they are logged.
using Metrics = std::vector<std::pair<std::string, double>>;

// What one batch did.
struct StepResult {
  int64_t examples = 0;  // the examples the batch trained on (0: none, e.g. dropped)
  double loss_sum = 0;   // their summed loss (the epoch's train_loss is the sum over its examples)
  int64_t units = 0;     // what throughput counts (examples, tokens, samples with negatives)
  bool applied = true;   // false: the guard dropped the batch (on_nonfinite "skip_batch")
  // The batch's per-sample losses on the task's backend, not read back (undefined: loss_sum
  // holds the sum). The Trainer adds them into a device accumulator (Backend::loss_accumulate)
  // and reads it every few steps and at the epoch's end, so the step makes no host
  // synchronisation; their finite check happens at that read (on_nonfinite "stop").
  Tensor device_loss;
  // Further per-example sums the epoch line reports as train_<name> = sum / examples (e.g. the
  // number of correct predictions: train_accuracy).
  Metrics sums;
};

// Where the loop is, for the task's step.
struct StepContext {
  int64_t epoch = 0;  // 1-based
  int64_t batch = 0;  // 0-based within the epoch
  int64_t step = 0;   // optimizer steps taken before this batch
  DivergenceGuard& guard;
};

// What the Trainer hands the task after training, with the selected (best) weights restored.
struct FinishContext {
  std::string run_dir;
  const Metrics& best_validation;  // the selected epoch's validation metrics (empty: none)
  json::JsonWriter& result;        // inside the result object: the task adds its fields
  std::string& summary;            // human lines; the task appends its own
  DivergenceGuard& guard;          // at_model_write() has been called: check what is written
  int64_t samples = 0;             // examples every step of the run saw (resumed epochs included)
  double train_seconds = 0;        // the time spent in step() (the result's train_seconds)
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Batches in every epoch.
  virtual int64_t batches_per_epoch() = 0;
  // Puts the data at the first batch of `epoch` (1-based): each epoch's order is a function of
  // the seed and the epoch alone, so a resumed run sees the batches the interrupted one would.
  virtual void start_epoch(int64_t epoch) = 0;
  // Mid-epoch resume: puts the data at batch `batch` (0-based) of `epoch`, where start_epoch(epoch)
  // and `batch` steps would have left it, without training on the batches before it. A task
  // that cannot returns false, and the Trainer then checkpoints only at epoch ends.
  virtual bool start_epoch_at(int64_t epoch, int64_t batch) {
    if (batch != 0) return false;
    start_epoch(epoch);
    return true;
  }
  // Trains on the next batch: forward, loss, the guard's checks, backward, and the optimizer
  // step unless optimizer() hands it to the Trainer.
  virtual StepResult step(StepContext& ctx) = 0;
  // The backend the task trains on: StepResult::device_loss lives there (the Trainer keeps its
  // loss accumulator on it), and the Trainer calls its check_deferred() and reports its memory
  // statistics. By default the optimizer's (nullptr without one: a task that returns
  // device_loss without an optimizer() must say).
  virtual Backend* backend() {
    Optimizer* opt = optimizer();
    return opt ? &opt->backend() : nullptr;
  }
  // The optimizer of every parameter group, or nullptr (the task steps and checkpoints its
  // own). The Trainer steps it after each applied batch, and checkpoints hold its groups' state
  // (checkpoint.h: optimizer_state) beside training_state(), resumed with the step count.
  virtual Optimizer* optimizer() { return nullptr; }
  // The learning rate now (the epoch line's "lr").
  virtual double learning_rate() = 0;
  // Checks every weight (ctx.guard.check_weights), at each epoch end before anything else.
  virtual void check_weights(DivergenceGuard& guard) = 0;
  // The validation metrics at an epoch's end (empty when there is no validation data).
  virtual Metrics validate(DivergenceGuard& guard) = 0;
  // Writes them into the epoch's metrics.jsonl line: by default one field each; a task whose
  // files have always grouped them (e.g. a "validation" object) writes them its way.
  virtual void write_validation(json::JsonWriter& w, const Metrics& validation) {
    for (const auto& [name, v] : validation) w.field(name, v);
  }
  // Everything training changes (weights, optimizer state and step, sparse tables and their
  // state, batch-norm statistics) that optimizer()'s groups do not hold, as host tensors, for a
  // checkpoint; restore takes it back (Io error naming what does not fit, leaving the model
  // untouched).
  virtual NamedTensors training_state() = 0;
  virtual void restore_training_state(const NamedTensors& state, int64_t steps) = 0;
  // State carried across epochs that is not a tensor (e.g. an augmentation generator written as
  // text), checkpointed beside it; "" when there is none.
  virtual std::string random_state() { return ""; }
  virtual void restore_random_state(const std::string& text) {}
  // The weights early stopping keeps, as host tensors, and their restore.
  virtual NamedTensors snapshot() = 0;
  virtual void restore_snapshot(const NamedTensors& weights) = 0;
  // After the last epoch, with the best weights back: the final evaluation, the model file, and
  // the task's fields in the result.
  virtual void finish(FinishContext& ctx) = 0;
  // Around what rank 0 does alone in a run over several ranks (validate, finish): every rank
  // calls begin_lead_only (collective) before rank 0 starts, and end_lead_only once it is done.
  // A model split across the ranks (embedding tables placed table-wise, docs/distributed.md)
  // gathers a whole copy for rank 0 there, so its lookups need no other rank. By default nothing.
  virtual void begin_lead_only() {}
  virtual void end_lead_only() {}
};

enum class Goal : uint8_t { Maximize, Minimize };

// Which epoch's weights are kept, and when to stop: the validation metric `metric` (a key of
// validate()'s metrics), with `tie` deciding between equal values ("" = none). With no metric
// (or no validation data) the last epoch's weights are kept.
struct Selection {
  std::string metric;
  Goal goal = Goal::Maximize;
  std::string tie;
  Goal tie_goal = Goal::Minimize;
  int64_t patience = 0;  // stop after this many epochs without improvement; 0: never
};

struct TrainerOptions {
  std::string task;         // "behaviour", "textclass", ...
  std::string name;         // the run's name (its directory's prefix)
  std::string runs_dir;     // a new run directory goes here ...
  std::string run_dir;      // ... unless this exact one is given (it must not exist) ...
  bool resumable = false;   // ... or it may exist: resume from its checkpoint when there is one
  std::string config_json;  // the resolved config, written to config.json
  // What a checkpoint must have been written under to be resumed (a hash of the config with
  // what may change on resume left out).
  std::string resume_tag;
  std::string device;  // the result's "device"
  int64_t epochs = 1;
  Selection selection;
  int64_t checkpoint_every = 0;  // epochs between checkpoints; 0: none (1 when resumable)
  // Optimizer steps between checkpoints inside an epoch too (0: epoch ends only). Such a
  // checkpoint records (epoch, batch); resuming it calls TrainTask::start_epoch_at, so set it
  // only for a task that implements that (one that returns false makes the resume an Io error).
  int64_t checkpoint_every_steps = 0;
  double time_budget_s = 0;        // stop after the batch that reaches it; 0: none
  int64_t stop_after_epochs = -1;  // >= 0: stop as if killed after so many epochs (tests)
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
  std::string loss_field = "train_loss";  // the epoch line's key for the mean training loss
  bool loss_root = false;        // it reports the mean's square root (squared errors: an RMSE)
  std::string throughput_field;  // its key for StepResult::units per second ("" = none)
  bool quiet = false;
  // Steps between reads of the device loss accumulator (StepResult::device_loss): the progress
  // line's loss and the deferred finite check (on_nonfinite "stop") are this late at most. It is
  // also read at every epoch's end, before the epoch's line, validation and checkpoint. Each
  // read waits for the device once.
  int64_t loss_read_every = 50;
  // Called after each batch (the optimizer step included) with the optimizer steps taken so far
  // and whether the loss accumulator was read after it (tests count the host synchronisations of
  // the steps between reads).
  std::function<void(int64_t step, bool loss_read)> after_step;
  // Called with each epoch's metrics line once it is written (e.g. a Python callback); returning
  // false stops training after this epoch, as early stopping does.
  std::function<bool(const std::string& epoch_json)> on_epoch;
  // Called after each checkpoint is written, with the epochs it holds (tests kill the process
  // there to check resumption).
  std::function<void(int64_t epochs)> after_checkpoint;
};

struct TrainResult {
  std::string json;      // the result object, also in <run_dir>/result.json (rank 0's)
  std::string summary;   // human lines
  std::string run_dir;   // the same path on every rank
  bool stopped = false;  // stop_after_epochs reached: no model, a checkpoint to resume
};

class Trainer {
 public:
  explicit Trainer(TrainerOptions options) : o_(std::move(options)) {}
  TrainResult fit(TrainTask& task);

 private:
  TrainerOptions o_;
};

}  // namespace tessera::train
