#pragma once
// One optimizer over a model's parameter groups: the dense group (SGD with momentum, Adam, AdamW
// over Parameter*) and any sparse groups (embedding tables whose own sparse optimizer updates only
// the rows a batch used), under one learning rate schedule (constant, cosine, step, with linear
// warm-up) that sets every group's lr at every step.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/config/sections.h"
#include "host/model/parameter.h"

namespace tessera {
namespace dist {
class ProcessGroup;  // host/dist/process_group.h
}

// The schedule in steps, made from the config's LrScheduleConfig once the number of steps per
// epoch is known.
struct LrSchedule {
  LrScheduleType type = LrScheduleType::Constant;
  int64_t warmup_steps = 0;
  int64_t step_every = 0;  // steps between decays (Step)
  float gamma = 0.1f;
  float min_lr = 0.f;
  int64_t total_steps = 0;  // Cosine
  float lr_at(float base_lr, int64_t step) const;
  static LrSchedule from_config(const LrScheduleConfig& c, int64_t steps_per_epoch,
                                int64_t total_steps);
  // The schedule of a run of `epochs` epochs of `steps_per_epoch` steps each.
  static LrSchedule over_epochs(const LrScheduleConfig& c, int64_t steps_per_epoch,
                                int64_t epochs) {
    return from_config(c, steps_per_epoch, steps_per_epoch * epochs);
  }
};

// A sparse parameter group: weights with their own update rule and base lr (embedding tables and
// their sparse optimizer), stepped by the Optimizer that holds it. The model hands the group each
// batch's gradient; the Optimizer sets the group's lr and steps it.
class SparseGroup {
 public:
  virtual ~SparseGroup() = default;
  // The lr of the next step: the group's own base lr times `scale`, the schedule's multiplier
  // (exactly the base lr for a scale of 1).
  virtual void set_lr_scale(float scale) = 0;
  // One update with the gradient of the last batch (an Error(Internal) when there is none).
  virtual void step() = 0;
  // Everything the group's training changes (weights, optimizer slots, step counter) as host
  // tensors by name, and its restore (Error(Io) naming what does not fit).
  virtual std::map<std::string, Tensor> training_state() = 0;
  virtual void restore_training_state(const std::map<std::string, Tensor>& state) = 0;

  // Data-parallel training with the tables replicated on every rank (docs/distributed.md): after
  // each rank's backward, the ranks exchange their steps so that every rank's next step() applies
  // the global batch, as one process would. A group that cannot (the default) is refused by the
  // Trainer under mpirun.
  virtual bool exchanges_steps() const { return false; }
  // The pending step (the last batch's lookup and its gradient) as bytes. `share` is the rank's
  // share n_r / sum_r n_r of the global batch: a group whose gradient is its batch's mean scales
  // it by the share, one whose gradient is its batch's sum sends it as it is. An empty batch when
  // `share` is 0 (the rank's part was dropped) or no step is pending (a rank with no rows).
  virtual std::string export_step(float share);
  // Every rank's export_step(), in rank order (= the global batch's row order): the next step()
  // applies their concatenation instead of this rank's own gradient.
  virtual void import_steps(std::vector<std::string> steps);
  // The whole exchange of one step, collective over `group` (the Trainer calls it on every rank
  // once the dense all-reduce has given the global count). This default is the replicated
  // tables' exchange: import_steps(group.allgatherv(export_step(share))). Tables split across the
  // ranks (embeddings/alltoall_tables.h) override it: each rank's pooled gradient goes only to
  // the ranks that own the tables (an all-to-all).
  virtual void exchange_step(dist::ProcessGroup& group, float share);
};

class Optimizer {
 public:
  // `spec` is the dense group's update rule; its lr is the one the schedule is written against
  // (cosine's min_lr is in its units): every group's lr is its base lr times
  // lr_at(spec.lr, step) / spec.lr. A model without dense parameters attaches none and passes
  // the lr its schedule refers to.
  Optimizer(Backend& backend, const OptimizerConfig& spec, LrSchedule schedule);
  // The dense group: allocates optimizer state for each parameter that lacks it.
  void attach(const std::vector<Parameter*>& params);
  // A sparse group, stepped after the dense one at every step (the model owns it). `name` keys its
  // state in checkpoints: letters, digits, '_' and '.', and none of the dense group's slot names
  // ("value", "state1", "state2"); two groups may not share one (Error(Internal)).
  void add_sparse_group(const std::string& name, SparseGroup& group);
  // One update of every group: the dense parameters from their .grad, each sparse group with the
  // gradient its model handed it, all at the schedule's lr for this step.
  void step();
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  float current_lr() const;
  // The schedule's factor at the next step: current_lr() / the configured lr (exactly 1 under a
  // constant schedule without warm-up), which every sparse group's base lr is scaled by.
  float lr_multiplier() const;

  Backend& backend() const { return backend_; }
  const std::vector<Parameter*>& dense_parameters() const { return params_; }
  struct NamedGroup {
    std::string name;
    SparseGroup* group;
  };
  const std::vector<NamedGroup>& sparse_groups() const { return sparse_; }

 private:
  void dense_step(float lr);

  Backend& backend_;
  OptimizerConfig spec_;
  LrSchedule schedule_;
  std::vector<Parameter*> params_;
  std::vector<NamedGroup> sparse_;
  int64_t step_ = 0;
};

}  // namespace tessera
