#pragma once
// Dense optimizers over a model's parameters (SGD with momentum, Adam, AdamW) and the learning
// rate schedules (constant, cosine, step) with linear warm-up.
#include <cstdint>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/config/sections.h"
#include "host/model/parameter.h"

namespace tessera {

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
};

class Optimizer {
 public:
  Optimizer(Backend& backend, const OptimizerConfig& spec, LrSchedule schedule);
  // Allocates optimizer state for each parameter that lacks it.
  void attach(const std::vector<Parameter*>& params);
  // One update of every attached parameter from its .grad.
  void step();
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  float current_lr() const;
  // The schedule's factor at the next step: current_lr() / the configured lr (exactly 1 under a
  // constant schedule without warm-up). Other parameter groups (a DLRM's embedding tables, with
  // their own base lr) follow the same schedule by scaling their lr with it.
  float lr_multiplier() const;

 private:
  Backend& backend_;
  OptimizerConfig spec_;
  LrSchedule schedule_;
  std::vector<Parameter*> params_;
  int64_t step_ = 0;
};

}  // namespace tessera
