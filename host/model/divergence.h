#pragma once
// Divergence: what training does when a loss, a gradient or a weight holds a NaN or an Inf. One
// mechanism for every task's loop (behaviour, recommend, textgen, textclass, and image with
// audio and video on it), each loop a thin caller, so the shared Trainer can take it over as is.
//
// Where the checks sit, and what they cost:
//   loss       under "skip_batch": every step, before the batch changes any weight: the step
//              copies its per-sample losses to the host (B floats; on CUDA a sync per step, the
//              option's price, since it must know before the optimizer step). Under "stop": a
//              step that hands its losses to the Trainer (StepResult::device_loss: behaviour,
//              image, recommend on CUDA) has them added into a device accumulator
//              (Backend::loss_accumulate) that counts non-finite values and keeps the first bad
//              step; the Trainer reads it every TrainerOptions::loss_read_every steps and at each
//              epoch's end, before the weight check below, validation and any checkpoint, and stops
//              naming that first bad step (deferred_loss_not_finite). So a step makes no host
//              synchronisation, weights may take a few more steps from a bad batch, but nothing is
//              written from them. Steps that still return loss_sum check on the host every step, as
//              before.
//   gradients  under "skip_batch": every gradient, every step, before the optimizer step (a
//              pass over all of them, copied from the device: the price of the option).
//              Under "stop": only where they are on the host anyway: the global norm that the
//              text tasks compute for clipping (checking it is free; the tensors are searched
//              only when it is not finite) and the per-sample rows the recommendation models (on
//              the host backend) compute on the host. Elsewhere a non-finite gradient makes a
//              weight non-finite, which the next step's loss, or the weight check below, catches
//              before anything is written.
//   weights    every weight, dense and embedding tables, at the end of each epoch (before its
//              validation, checkpoint and best-weights snapshot) and before the model file is
//              written: one pass over the parameters per epoch. Never skipped: dropping a batch
//              cannot undo a weight.
// So training stops naming the step where a non-finite value first shows in the loss (or the
// gradient that would have made it), and no checkpoint or model is ever written from
// non-finite weights.
//
// Stopping writes <run_dir>/result.json ("status": "diverged": where, which tensor, the last
// good checkpoint) and throws TrainingDiverged, an Error of kind Data: exit code 1 from the CLI,
// which also prints that object under --json. The run directory and its last checkpoint stay
// as they were.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/config/json_writer.h"
#include "host/config/on_nonfinite.h"
#include "host/core/error.h"
#include "host/model/parameter.h"

namespace tessera {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Index of the first NaN or Inf among p[0, n), or -1 when every value is finite.
int64_t first_non_finite(const float* p, int64_t n);

// A training run stopped on a non-finite value. result_json() is the object written to
// <run_dir>/result.json.
class TrainingDiverged : public Error {
 public:
  TrainingDiverged(const std::string& message, std::string result_json)
      : Error(ErrorKind::Data, message), result_json_(std::move(result_json)) {}
  const std::string& result_json() const { return result_json_; }

 private:
  std::string result_json_;
};

class DivergenceGuard {
 public:
  struct RunInfo {
    std::string task;     // "behaviour", "image", ... (the result's "task")
    std::string name;     // the config's name
    std::string run_dir;  // where result.json is written
    bool quiet = false;   // no line on stderr at the first skipped batch
  };
  DivergenceGuard(NonFinitePolicy policy, RunInfo run);

  NonFinitePolicy policy() const { return policy_; }

  // ---- where the loop is (named by every error) ----------------------------------------------
  // epoch 1-based; batch 1-based within the epoch, of `batches` (0: not known); step: the
  // optimizer step this batch makes, 1-based (a skipped batch makes none, so the next batch
  // has the same number).
  void at_batch(int64_t epoch, int64_t batch, int64_t batches, int64_t step);
  // After epoch `epoch`'s last batch, `steps` optimizer steps taken in all.
  void at_epoch_end(int64_t epoch, int64_t steps);
  // Before the model file is written.
  void at_model_write();
  // A checkpoint of checked weights is on disk at `path`, holding `epochs` complete epochs.
  void checkpoint_saved(const std::string& path, int64_t epochs);
  // A run resumed from `checkpoint` (after `epochs` epochs): the batches skipped before it are
  // summed from the "skipped_batches" of the first `epochs` lines of `metrics_path`.
  void resumed(const std::string& checkpoint, int64_t epochs, const std::string& metrics_path);

  // ---- per step, before the batch changes any weight -----------------------------------------
  // true: go on with the batch. false (skip_batch): drop it, with no optimizer step and no
  // sparse update; it is counted. Under "stop" a non-finite value throws TrainingDiverged.
  bool loss_ok(double loss);
  bool loss_ok(const Tensor& per_sample);  // host f32, one loss per sample
  // The Trainer's deferred read found non-finite per-sample losses, the first in optimizer step
  // `step` (batch `batch` of `batches`, 1-based, in `epoch`); `value` is what the losses since
  // the last read summed to (NaN or Inf). Stops under either policy: those batches have been
  // applied, none can be skipped any more.
  [[noreturn]] void deferred_loss_not_finite(int64_t epoch, int64_t batch, int64_t batches,
                                             int64_t step, double value);
  // A global gradient norm the loop computes anyway: finite iff every gradient is; when it is
  // not, `params`' gradients are searched for the one to name.
  bool grad_norm_ok(double norm, Backend& backend, const std::vector<Parameter*>& params);
  // Gradient values already on the host, checked under both policies; name_of(i) names the
  // tensor element i belongs to.
  bool host_gradient_ok(const float* g, int64_t n,
                        const std::function<std::string(int64_t)>& name_of);
  // Under "skip_batch" every gradient: `params`' .grad, then the tensors `more` returns (a
  // DLRM's table gradients), fetched only then. Under "stop" true without looking.
  bool gradients_ok(Backend& backend, const std::vector<Parameter*>& params,
                    const std::function<NamedTensors()>& more = {});

  // ---- weights and figures computed from them: non-finite always stops -----------------------
  void check_weights(Backend& backend, const std::vector<Parameter*>& params);
  void check_weights(Backend& backend, const NamedTensors& tensors);  // host or on `backend`
  void check_weights(const std::map<std::string, Tensor>& host_tensors);
  // A figure computed from the weights, e.g. a validation loss or predictions.
  void check_value(const std::string& name, double value);
  void check_values(const std::string& name, const float* values, int64_t n);

  // ---- what the logs say ---------------------------------------------------------------------
  int64_t skipped_batches() const { return skipped_total_; }
  // "skipped_batches": this epoch's count, for its metrics.jsonl line; then counts the next.
  void write_epoch_fields(json::JsonWriter& w);
  // "status": "completed", "on_nonfinite", "skipped_batches" (the run's total): result.json.
  void write_result_fields(json::JsonWriter& w) const;

 private:
  enum class Phase : uint8_t { Batch, EpochEnd, ModelWrite };
  enum class What : uint8_t { Loss, Gradient, Weight, Value };
  // Records a non-finite `value` at element `index` (-1: a scalar) of `tensor`: counts and
  // returns false when the batch may be skipped, else stops.
  bool found(What what, const std::string& tensor, double value, int64_t index);
  [[noreturn]] void stop(What what, const std::string& tensor, double value, int64_t index);
  static std::string describe(What what, const std::string& tensor);  // "the gradient of x"
  std::string position() const;
  bool check_tensor(What what, const std::string& name, Backend* backend, const Tensor& t);

  NonFinitePolicy policy_;
  RunInfo run_;
  Phase phase_ = Phase::Batch;
  int64_t epoch_ = 0, batch_ = 0, batches_ = 0, step_ = 0;
  std::string checkpoint_;
  int64_t checkpoint_epochs_ = 0;
  int64_t skipped_total_ = 0, skipped_epoch_ = 0;
};

}  // namespace tessera
