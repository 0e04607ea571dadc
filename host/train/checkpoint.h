#pragma once
// The training checkpoint, one format for every task (checkpoint.tsc in a run directory): a tensor
// archive (host/core/archive.h: written atomically, CRC-checked over the whole file) whose header
// holds the loop's counters and whose tensors are the task's training state ("state/<name>") and
// the weights early stopping keeps ("best/<name>"). Doubles travel as their bit patterns, so a
// resumed run compares scores exactly as the uninterrupted one. Its state is replicated state
// (the same on every rank of a data-parallel run), written once, so a checkpoint written by N
// ranks resumes on M. Version 2 files (no mid-epoch fields) are still read.
#include <cstdint>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/atomic_file.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/model/parameter.h"

namespace tessera::train {

struct LoopState {
  std::string task;         // "textclass", ...: a checkpoint of another task is refused
  std::string tag;          // the config it belongs to (TrainerOptions::resume_tag)
  int64_t epochs_done = 0;  // complete epochs
  int64_t step = 0;         // optimizer steps taken
  int64_t samples = 0;      // examples seen
  double train_seconds = 0;
  int64_t best_epoch = -1;   // -1: none yet
  double best_score = 0;     // the selection metric at best_epoch
  double best_tie = 0;       // the tie-breaking metric there
  int64_t bad_epochs = 0;    // epochs since best_epoch
  std::string random_state;  // TrainTask::random_state() (text; "" when none)
  std::vector<std::pair<std::string, double>> best_validation;  // best_epoch's metrics
  // A checkpoint inside an epoch (TrainerOptions::checkpoint_every_steps): the batches of epoch
  // epochs_done + 1 already trained (0: at an epoch's end), and what they added up so far over
  // every rank (the epoch line's train_loss and sums continue from them).
  int64_t batches_done = 0;
  int64_t epoch_examples = 0, epoch_units = 0, epoch_loss_examples = 0;
  double epoch_loss = 0;
  std::vector<std::pair<std::string, double>> epoch_sums;
};

void save_training_checkpoint(const std::string& path, const LoopState& loop,
                              const NamedTensors& state, const NamedTensors& best);

struct TrainingCheckpoint {
  LoopState loop;
  NamedTensors state, best;
};
// Io error naming the path (and the field) when the file is not a checkpoint, is corrupt, holds a
// non-finite value, or belongs to another task or tag.
TrainingCheckpoint load_training_checkpoint(const std::string& path, const std::string& task,
                                            const std::string& tag);

// A model's dense parameters as checkpoint state: "value/<name>", and "state1/<name>",
// "state2/<name>" where the optimizer keeps state; host copies.
NamedTensors parameter_state(Backend& backend, const std::vector<Parameter*>& params);
// Takes parameter_state() back: every tensor checked (present, shape, dtype) before the first
// copy, so a mismatch (Io error naming `origin` and the tensor) leaves the parameters untouched.
void restore_parameter_state(Backend& backend, const std::vector<Parameter*>& params,
                             const NamedTensors& state, const std::string& origin);

// Every parameter group of `opt` as checkpoint state, by group: the dense group as
// parameter_state() names it ("value/<param>", "state1/<param>", "state2/<param>"), each sparse
// group's tensors as "<group name>/<tensor>" (a DLRM's tables: "tables/weights", "tables/state0",
// "tables/step").
NamedTensors optimizer_state(Backend& backend, const Optimizer& opt);
// Whether the state tensor `name` belongs to one of opt's groups (the rest is the task's).
bool is_optimizer_tensor(const Optimizer& opt, const std::string& name);
// Takes optimizer_state() back, every sparse group and then the dense one (each checks its
// tensors before it copies one), and sets the step count the schedule continues from. A mismatch
// is an Io error naming `origin`, the group and the tensor.
void restore_optimizer_state(Backend& backend, Optimizer& opt, const NamedTensors& state,
                             int64_t steps, const std::string& origin);

// The tensors of `all` whose names start with `prefix`, the prefix taken off.
NamedTensors with_prefix(const NamedTensors& all, const std::string& prefix);
// `tensors` with `prefix` put in front of every name, appended to `out`.
void add_prefixed(NamedTensors& out, const std::string& prefix, const NamedTensors& tensors);

// append_line and truncate_lines (metrics.jsonl, stages.jsonl) are host/core/atomic_file.h's.
using ::tessera::append_line;
using ::tessera::truncate_lines;

}  // namespace tessera::train
