#pragma once
// Dense optimizers over a model's parameters (SGD with momentum, Adam, AdamW) and the learning
// rate schedules (constant, cosine, step) with linear warm-up.
#include <cstdint>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera {

enum class OptimizerType : uint8_t { Sgd, Adam, AdamW };
enum class LrScheduleType : uint8_t { Constant, Cosine, Step };

struct OptimizerSpec {
  OptimizerType type = OptimizerType::Adam;
  float lr = 1e-3f;
  float momentum = 0.f;
  bool nesterov = false;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
};

struct LrSchedule {
  LrScheduleType type = LrScheduleType::Constant;
  int64_t warmup_steps = 0;
  int64_t step_every = 0;  // steps between decays (Step)
  float gamma = 0.1f;
  float min_lr = 0.f;
  int64_t total_steps = 0;  // Cosine
  float lr_at(float base_lr, int64_t step) const;
};

class Optimizer {
 public:
  Optimizer(Backend& backend, const OptimizerSpec& spec, LrSchedule schedule);
  // Allocates optimizer state for each parameter that lacks it.
  void attach(const std::vector<Parameter*>& params);
  // One update of every attached parameter from its .grad.
  void step();
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  float current_lr() const;

 private:
  Backend& backend_;
  OptimizerSpec spec_;
  LrSchedule schedule_;
  std::vector<Parameter*> params_;
  int64_t step_ = 0;
};

}  // namespace tessera
