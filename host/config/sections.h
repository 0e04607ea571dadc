#pragma once
// Config sections that every task shares: the device string, data file references, the
// optimizer and the learning-rate schedule. Each has a reader (on json::ObjectReader, with the
// cross-field checks) and a writer (the resolved form), so recommend / textgen / image configs
// read them exactly like behaviour does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/data/schema.h"

namespace tessera {

enum class OptimizerType : uint8_t { Adam, AdamW, Sgd };
enum class LrScheduleType : uint8_t { Constant, Cosine, Step };

const json::Choices<OptimizerType>& optimizer_choices();     // "adam", "adamw", "sgd"
const json::Choices<LrScheduleType>& lr_schedule_choices();  // "constant", "cosine", "step"

struct OptimizerConfig {
  OptimizerType type = OptimizerType::Adam;
  double lr = 1e-3;
  double weight_decay = 0.0;  // sgd/adam: L2 added to the gradient; adamw: decoupled decay
  // sgd only
  double momentum = 0.9;
  bool nesterov = false;
  // adam / adamw only
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};
bool operator==(const OptimizerConfig& a, const OptimizerConfig& b);
inline bool operator!=(const OptimizerConfig& a, const OptimizerConfig& b) {
  return !(a == b);
}

// lr(step): linear warm-up from lr/warmup_steps to lr over the first warmup_steps, then
//   constant: lr;
//   cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2, t from 0 after warm-up to 1 at the
//             last step;
//   step:     lr * gamma^floor(steps after warm-up / (step_epochs * steps per epoch)).
// host/model/optimizer.h (LrSchedule) turns this into per-step values.
struct LrScheduleConfig {
  LrScheduleType type = LrScheduleType::Constant;
  int64_t warmup_steps = 0;
  int step_epochs = 0;  // step only; >= 1 there
  double gamma = 0.1;   // step only
  double min_lr = 0.0;  // cosine only; <= the optimizer's lr
};
bool operator==(const LrScheduleConfig& a, const LrScheduleConfig& b);
inline bool operator!=(const LrScheduleConfig& a, const LrScheduleConfig& b) {
  return !(a == b);
}

namespace config {

// "auto" | "cpu" | "cuda" | "cuda:N", the spellings make_backend() takes.
std::string read_device(json::ObjectReader& parent, std::string_view key,
                        const std::string& fallback = "auto");
// The run name at `key` (absent: `fallback`): it names a directory under the runs directory, so
// letters, digits, '.', '_' and '-' only (host/core/path_name.h).
std::string read_run_name(json::ObjectReader& parent, std::string_view key,
                          const std::string& fallback);
bool is_valid_device(const std::string& device);

// A data file: "path" or {"path": "...", "skip_lines": N}. Absent: nullopt (and, when
// `required`, a "missing required key" error).
enum class Presence : uint8_t { Optional, Required };
std::optional<FileSpec> read_file_spec(json::ObjectReader& parent, std::string_view key,
                                       Presence presence);
// Writes the short form (a string) when skip_lines is 0.
void write_file_spec(json::JsonWriter& w, const FileSpec& file);

// Reads the optimizer object at `key` (absent: `defaults`). momentum/nesterov given for adam,
// or beta1/beta2/eps given for sgd, are errors that say which optimizer they belong to.
OptimizerConfig read_optimizer(json::ObjectReader& parent, std::string_view key,
                               const OptimizerConfig& defaults = {});
// Writes the optimizer as an object value, with only the fields that apply to its type.
void write_optimizer(json::JsonWriter& w, const OptimizerConfig& c);

// Reads the schedule object at `key`; `lr` is the optimizer's (min_lr must not exceed it).
LrScheduleConfig read_lr_schedule(json::ObjectReader& parent, std::string_view key, double lr,
                                  const LrScheduleConfig& defaults = {});
void write_lr_schedule(json::JsonWriter& w, const LrScheduleConfig& c);

}  // namespace config
}  // namespace tessera
