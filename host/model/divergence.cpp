#include "host/model/divergence.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "host/core/atomic_file.h"
#include "host/core/json_fields.h"

namespace tessera {

int64_t first_non_finite(const float* p, int64_t n) {
  // An f32 is NaN or Inf exactly when its 8 exponent bits are all ones. Blocks of 256 are
  // scanned branch-free (the compiler vectorises the OR), and only a block that holds one is
  // searched element by element.
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr int64_t kBlock = 256;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    uint32_t any = 0;
    for (int64_t i = b; i < e; ++i) {
      uint32_t bits;
      std::memcpy(&bits, p + i, sizeof bits);
      any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (any == 0) continue;
    for (int64_t i = b; i < e; ++i)
      if (!std::isfinite(p[i])) return i;
  }
  return -1;
}

namespace {

std::string value_name(double v) {
  return std::isnan(v) ? "NaN" : v > 0 ? "Inf" : "-Inf";
}

const char* what_name(int what) {
  static const char* const kNames[] = {"loss", "gradient", "weight", "value"};
  return kNames[what];
}

}  // namespace

DivergenceGuard::DivergenceGuard(NonFinitePolicy policy, RunInfo run)
    : policy_(policy), run_(std::move(run)) {}

void DivergenceGuard::at_batch(int64_t epoch, int64_t batch, int64_t batches, int64_t step) {
  phase_ = Phase::Batch;
  epoch_ = epoch;
  batch_ = batch;
  batches_ = batches;
  step_ = step;
}

void DivergenceGuard::at_epoch_end(int64_t epoch, int64_t steps) {
  phase_ = Phase::EpochEnd;
  epoch_ = epoch;
  batch_ = 0;
  step_ = steps;
}

void DivergenceGuard::at_model_write() {
  phase_ = Phase::ModelWrite;
  batch_ = 0;
}

void DivergenceGuard::checkpoint_saved(const std::string& path, int64_t epochs) {
  checkpoint_ = path;
  checkpoint_epochs_ = epochs;
}

void DivergenceGuard::resumed(const std::string& checkpoint, int64_t epochs,
                              const std::string& metrics_path) {
  checkpoint_saved(checkpoint, epochs);
  std::string text;
  try {
    text = read_file(metrics_path);
  } catch (const Error&) {
    return;  // no lines: nothing was skipped before
  }
  std::istringstream in(text);
  std::string line;
  for (int64_t i = 0; i < epochs && std::getline(in, line); ++i) {
    rapidjson::Document d;
    if (json_nesting_within(line.data(), line.size(), kJsonMaxNesting))  // (deep: the stack)
      d.Parse(line.c_str(), line.size());
    if (!d.HasParseError() && d.IsObject() && d.HasMember("skipped_batches") &&
        d["skipped_batches"].IsInt64())
      skipped_total_ += d["skipped_batches"].GetInt64();
  }
}

std::string DivergenceGuard::describe(What what, const std::string& tensor) {
  switch (what) {
    case What::Loss:
      return "the loss";
    case What::Gradient:
      return "the gradient of " + tensor;
    case What::Weight:
      return "the weights of " + tensor;
    case What::Value:
      return "the " + tensor;
  }
  return tensor;
}

std::string DivergenceGuard::position() const {
  std::ostringstream s;
  switch (phase_) {
    case Phase::Batch:
      s << "epoch " << epoch_ << ", batch " << batch_;
      if (batches_ > 0) s << " of " << batches_;
      s << " (global step " << step_ << ")";
      break;
    case Phase::EpochEnd:
      s << "the end of epoch " << epoch_ << " (after global step " << step_ << ")";
      break;
    case Phase::ModelWrite:
      s << "the model write after epoch " << epoch_ << " (global step " << step_ << ")";
      break;
  }
  return s.str();
}

bool DivergenceGuard::found(What what, const std::string& tensor, double value, int64_t index) {
  const bool skippable = phase_ == Phase::Batch && (what == What::Loss || what == What::Gradient);
  if (!skippable || policy_ != NonFinitePolicy::SkipBatch) stop(what, tensor, value, index);
  if (skipped_total_ == 0 && !run_.quiet)
    std::fprintf(stderr,
                 "tessera train: %s in %s at %s: batch skipped (train.on_nonfinite "
                 "\"skip_batch\"); further skips are counted in metrics.jsonl\n",
                 value_name(value).c_str(), describe(what, tensor).c_str(), position().c_str());
  ++skipped_total_;
  ++skipped_epoch_;
  return false;
}

void DivergenceGuard::stop(What what, const std::string& tensor, double value, int64_t index) {
  const bool skippable = phase_ == Phase::Batch && (what == What::Loss || what == What::Gradient);
  std::ostringstream m;
  m << "training diverged: " << value_name(value) << " in " << describe(what, tensor);
  if (index >= 0) m << (what == What::Loss ? " (sample " : " (element ") << index << ")";
  m << " at " << position() << "; ";
  if (checkpoint_.empty())
    m << "no checkpoint was written before it";
  else
    m << "the last good checkpoint is " << checkpoint_ << " (epoch " << checkpoint_epochs_ << ")";
  m << "; " << run_.run_dir << "/result.json says so. ";
  m << "Look for extreme values in the data, or lower the learning rate";
  if (skippable)
    m << "; train.on_nonfinite \"skip_batch\" drops such batches instead";
  else if (what == What::Weight)
    m << " (no skipped batch can undo a non-finite weight)";

  json::JsonWriter w;
  w.begin_object();
  w.field("command", "train").field("task", run_.task).field("name", run_.name);
  w.field("status", "diverged").field("run_dir", run_.run_dir);
  w.field("epoch", epoch_);
  w.key("batch");
  if (phase_ == Phase::Batch)
    w.value(batch_);
  else
    w.null();
  w.field("batches", batches_).field("step", step_);
  w.field("phase", phase_ == Phase::Batch      ? "batch"
                   : phase_ == Phase::EpochEnd ? "epoch_end"
                                               : "model_write");
  w.field("kind", what_name(static_cast<int>(what))).field("tensor", tensor);
  w.field("value", value_name(value));
  w.key("index");
  if (index >= 0)
    w.value(index);
  else
    w.null();
  w.choice("on_nonfinite", policy_, nonfinite_policy_choices());
  w.field("skipped_batches", skipped_total_);
  w.key("checkpoint");
  if (checkpoint_.empty())
    w.null();
  else
    w.value(checkpoint_);
  w.key("checkpoint_epoch");
  if (checkpoint_.empty())
    w.null();
  else
    w.value(checkpoint_epochs_);
  w.field("error", m.str());
  w.end_object();
  const std::string json = w.compact();
  std::string message = m.str();
  try {
    write_file_atomic(run_.run_dir + "/result.json", json + "\n");
  } catch (const Error& e) {
    message += " [result.json could not be written: " + std::string(e.what()) + "]";
  }
  throw TrainingDiverged(message, json);
}

bool DivergenceGuard::loss_ok(double loss) {
  return std::isfinite(loss) || found(What::Loss, "loss", loss, -1);
}

bool DivergenceGuard::loss_ok(const Tensor& per_sample) {
  TESSERA_CHECK(per_sample.is_host() && per_sample.dtype() == DType::F32,
                "per-sample losses must be a host f32 tensor, got " << per_sample.describe());
  const int64_t i = first_non_finite(per_sample.data<float>(), per_sample.numel());
  return i < 0 || found(What::Loss, "loss", per_sample.data<float>()[i], i);
}

void DivergenceGuard::deferred_loss_not_finite(int64_t epoch, int64_t batch, int64_t batches,
                                               int64_t step, double value) {
  at_batch(epoch, batch, batches, step);
  stop(What::Loss, "loss", value, -1);
}

bool DivergenceGuard::check_tensor(What what, const std::string& name, Backend* backend,
                                   const Tensor& t) {
  if (!t.defined() || t.dtype() != DType::F32) return true;
  TESSERA_CHECK(t.is_host() || backend != nullptr,
                "'" << name << "' is not on the host and no backend was given");
  const Tensor h = t.is_host() ? t : backend->to_host(t);
  const int64_t i = first_non_finite(h.data<float>(), h.numel());
  return i < 0 || found(what, name, h.data<float>()[i], i);
}

bool DivergenceGuard::grad_norm_ok(double norm, Backend& backend,
                                   const std::vector<Parameter*>& params) {
  if (std::isfinite(norm)) return true;
  // The sum of squares is taken in double, which cannot overflow from f32 gradients: a
  // non-finite norm means a non-finite gradient; name it.
  for (Parameter* p : params)
    if (!check_tensor(What::Gradient, p->name, &backend, p->grad)) return false;
  return found(What::Gradient, "global norm", norm, -1);
}

bool DivergenceGuard::host_gradient_ok(const float* g, int64_t n,
                                       const std::function<std::string(int64_t)>& name_of) {
  const int64_t i = first_non_finite(g, n);
  return i < 0 || found(What::Gradient, name_of(i), g[i], i);
}

bool DivergenceGuard::gradients_ok(Backend& backend, const std::vector<Parameter*>& params,
                                   const std::function<NamedTensors()>& more) {
  if (policy_ != NonFinitePolicy::SkipBatch) return true;
  for (Parameter* p : params)
    if (!check_tensor(What::Gradient, p->name, &backend, p->grad)) return false;
  if (more)
    for (const auto& [name, t] : more())
      if (!check_tensor(What::Gradient, name, &backend, t)) return false;
  return true;
}

void DivergenceGuard::check_weights(Backend& backend, const std::vector<Parameter*>& params) {
  for (Parameter* p : params) check_tensor(What::Weight, p->name, &backend, p->value);
}

void DivergenceGuard::check_weights(Backend& backend, const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) check_tensor(What::Weight, name, &backend, t);
}

void DivergenceGuard::check_weights(const std::map<std::string, Tensor>& host_tensors) {
  for (const auto& [name, t] : host_tensors) check_tensor(What::Weight, name, nullptr, t);
}

void DivergenceGuard::check_value(const std::string& name, double value) {
  if (!std::isfinite(value)) found(What::Value, name, value, -1);
}

void DivergenceGuard::check_values(const std::string& name, const float* values, int64_t n) {
  const int64_t i = first_non_finite(values, n);
  if (i >= 0) found(What::Value, name, values[i], i);
}

void DivergenceGuard::write_epoch_fields(json::JsonWriter& w) {
  w.field("skipped_batches", skipped_epoch_);
  skipped_epoch_ = 0;
}

void DivergenceGuard::write_result_fields(json::JsonWriter& w) const {
  w.field("status", "completed");
  w.choice("on_nonfinite", policy_, nonfinite_policy_choices());
  w.field("skipped_batches", skipped_total_);
}

}  // namespace tessera
