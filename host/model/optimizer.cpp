#include "host/model/optimizer.h"

#include <cctype>
#include <cmath>

#include "host/core/error.h"
#include "host/dist/process_group.h"

namespace tessera {

float LrSchedule::lr_at(float base_lr, int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return base_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  const int64_t s = step - warmup_steps;
  switch (type) {
    case LrScheduleType::Constant:
      return base_lr;
    case LrScheduleType::Step: {
      if (step_every <= 0) return base_lr;
      return base_lr * std::pow(gamma, static_cast<float>(s / step_every));
    }
    case LrScheduleType::Cosine: {
      const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
      const double t = std::min(1.0, static_cast<double>(s) / static_cast<double>(span));
      return static_cast<float>(min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * t)));
    }
  }
  return base_lr;
}

LrSchedule LrSchedule::from_config(const LrScheduleConfig& c, int64_t steps_per_epoch,
                                   int64_t total_steps) {
  LrSchedule s;
  s.type = c.type;
  s.warmup_steps = c.warmup_steps;
  s.step_every = static_cast<int64_t>(c.step_epochs) * steps_per_epoch;
  s.gamma = static_cast<float>(c.gamma);
  s.min_lr = static_cast<float>(c.min_lr);
  s.total_steps = total_steps;
  return s;
}

std::string SparseGroup::export_step(float) {
  TESSERA_THROW(Internal, "this sparse parameter group does not exchange its steps");
}

void SparseGroup::import_steps(std::vector<std::string>) {
  TESSERA_THROW(Internal, "this sparse parameter group does not exchange its steps");
}

void SparseGroup::exchange_step(dist::ProcessGroup& group, float share) {
  import_steps(group.allgatherv(export_step(share)));
}

Optimizer::Optimizer(Backend& backend, const OptimizerConfig& spec, LrSchedule schedule)
    : backend_(backend), spec_(spec), schedule_(schedule) {}

void Optimizer::attach(const std::vector<Parameter*>& params) {
  params_ = params;
  for (Parameter* p : params_) {
    const bool needs1 = spec_.type != OptimizerType::Sgd || spec_.momentum != 0.f;
    const bool needs2 = spec_.type != OptimizerType::Sgd;
    if (needs1 && !p->state1.defined()) p->state1 = backend_.empty(p->value.shape());
    if (needs2 && !p->state2.defined()) p->state2 = backend_.empty(p->value.shape());
  }
}

float Optimizer::current_lr() const {
  return schedule_.lr_at(static_cast<float>(spec_.lr), step_);
}

float Optimizer::lr_multiplier() const {
  const auto base = static_cast<float>(spec_.lr);
  return base > 0.f ? current_lr() / base : 1.f;
}

void Optimizer::add_sparse_group(const std::string& name, SparseGroup& group) {
  bool ok = !name.empty() && name != "value" && name != "state1" && name != "state2";
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.');
  for (const NamedGroup& g : sparse_) ok = ok && g.name != name;
  TESSERA_CHECK(ok, "sparse parameter group name '" << name << "' is empty, taken, or not a name");
  sparse_.push_back({name, &group});
}

void Optimizer::step() {
  // The multiplier of this step, before the count moves on: a constant schedule gives exactly 1,
  // so the sparse groups keep their configured lr bit for bit.
  const float scale = lr_multiplier();
  const float lr = current_lr();
  ++step_;
  for (NamedGroup& g : sparse_) {
    g.group->set_lr_scale(scale);
    g.group->step();
  }
  dense_step(lr);
}

void Optimizer::dense_step(float lr) {
  if (spec_.type == OptimizerType::Sgd) {
    math::SgdParams p;
    p.lr = lr;
    p.momentum = static_cast<float>(spec_.momentum);
    p.nesterov = spec_.nesterov;
    p.weight_decay = static_cast<float>(spec_.weight_decay);
    for (Parameter* prm : params_) backend_.sgd_update(p, prm->value, prm->grad, prm->state1);
    return;
  }
  math::AdamParams p;
  p.lr = lr;
  p.beta1 = static_cast<float>(spec_.beta1);
  p.beta2 = static_cast<float>(spec_.beta2);
  p.eps = static_cast<float>(spec_.eps);
  p.weight_decay = static_cast<float>(spec_.weight_decay);
  p.decoupled = spec_.type == OptimizerType::AdamW;
  p.bc1 = static_cast<float>(1.0 - std::pow(spec_.beta1, static_cast<double>(step_)));
  p.bc2 = static_cast<float>(1.0 - std::pow(spec_.beta2, static_cast<double>(step_)));
  for (Parameter* prm : params_)
    backend_.adam_update(p, prm->value, prm->grad, prm->state1, prm->state2);
}

}  // namespace tessera
