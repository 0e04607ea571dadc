#pragma once
// What the training tasks of models whose whole state is their parameters (the text pipelines'
// LSTMs) do alike: the learning rate is the optimizer's; the divergence guard checks the
// parameters; a checkpoint holds the parameters with their optimizer state; and early stopping
// keeps the model's own snapshot. The task adds its batches, steps, validation and finish.
#include <cstdint>
#include <string>
#include <utility>

#include "host/backend/backend.h"
#include "host/model/divergence.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"

namespace tessera::train {

// Model: parameters() (std::vector<Parameter*>), snapshot() -> NamedTensors and
// restore(const NamedTensors&). `origin` names the checkpoint in restore errors
// (e.g. "textgen checkpoint").
template <typename Model>
class ParameterTraining : public TrainTask {
 public:
  ParameterTraining(Backend& be, Model& model, Optimizer& opt, std::string origin)
      : be_(be), model_(model), opt_(opt), origin_(std::move(origin)) {}

  double learning_rate() override { return opt_.current_lr(); }

  void check_weights(DivergenceGuard& guard) override {
    guard.check_weights(be_, model_.parameters());
  }

  NamedTensors training_state() override { return parameter_state(be_, model_.parameters()); }
  void restore_training_state(const NamedTensors& state, int64_t steps) override {
    restore_parameter_state(be_, model_.parameters(), state, origin_);
    opt_.set_steps_taken(steps);
  }
  NamedTensors snapshot() override { return model_.snapshot(); }
  void restore_snapshot(const NamedTensors& weights) override { model_.restore(weights); }

 protected:
  Backend& be_;
  Model& model_;
  Optimizer& opt_;

 private:
  const std::string origin_;
};

}  // namespace tessera::train
