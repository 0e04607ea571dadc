#pragma once
// Training checkpoints at epoch boundaries, for exact resumption: the parameters, the optimizer's
// per-parameter state and step count, the loop counters, and the best weights kept for early
// stopping, in one tensor archive (host/core/archive.h: written atomically, CRC-checked).
//
// Resuming at an epoch boundary is exact because nothing else carries state across epochs: the
// batcher's order for epoch e is epoch_order(rows, seed, e), dropout is seeded by the global
// step, and the learning rate is a function of the optimizer's step count.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/atomic_file.h"
#include "host/core/tensor.h"
#include "host/model/parameter.h"

namespace tessera::scheduler {

struct TrainingState {
  int64_t epochs_done = 0;  // complete epochs; training resumes at epoch index epochs_done
  int64_t step = 0;         // optimizer steps taken
  int64_t samples = 0;
  double train_seconds = 0;
  double best_score = 0;  // meaningful when best_epoch >= 0 (stored bit-exactly)
  int64_t best_epoch = -1;
  int64_t bad_epochs = 0;
  std::string tag;  // what the checkpoint belongs to (a config hash): checked on load
  // Serialised random-generator state carried across epochs (e.g. a std::mt19937_64 written
  // with operator<<: digits and spaces); "" when the trainer has none.
  std::string rng;
};

// Writes `path` atomically. `params` live on `backend`; `best` are host tensors by name;
// `extra` are further host tensors the model carries besides its parameters (batch-norm running
// statistics), restored by name.
void save_checkpoint(const std::string& path, Backend& backend,
                     const std::vector<Parameter*>& params, const TrainingState& state,
                     const std::map<std::string, Tensor>& best,
                     const std::map<std::string, Tensor>& extra = {});

// Restores `params` (values and optimizer state, copied onto `backend`), `state` and `best`.
// Io error naming the path when the file is corrupt, belongs to another tag, or does not match
// the parameters (a name or shape differs).
// `extra` (when given) receives the checkpoint's extra tensors as host tensors.
void load_checkpoint(const std::string& path, Backend& backend,
                     const std::vector<Parameter*>& params, const std::string& expected_tag,
                     TrainingState* state, std::map<std::string, Tensor>* best,
                     std::map<std::string, Tensor>* extra = nullptr);

// append_line and truncate_lines (metrics.jsonl, stages.jsonl) are host/core/atomic_file.h's.
using ::tessera::append_line;
using ::tessera::truncate_lines;

}  // namespace tessera::scheduler
