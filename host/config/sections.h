#pragma once
// Config sections that every task shares: the device string, data file references, the
// optimizer and the learning-rate schedule. Each has a reader (on json::ObjectReader, with the
// cross-field checks) and a writer (the resolved form), so recommend / textgen / image configs
// read them exactly like behaviour does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "host/config/declare.h"
#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/config/on_nonfinite.h"
#include "host/core/path_name.h"
#include "host/data/schema.h"

namespace tessera {

enum class OptimizerType : uint8_t { Adam, AdamW, Sgd };
enum class LrScheduleType : uint8_t { Constant, Cosine, Step };

const json::Choices<OptimizerType>& optimizer_choices();     // "adam", "adamw", "sgd"
const json::Choices<LrScheduleType>& lr_schedule_choices();  // "constant", "cosine", "step"
// A data file's bad row (host/data/schema.h): stop with an error, or skip it.
const json::Choices<BadRowPolicy>& bad_row_policy_choices();  // "error", "skip"

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
bool is_valid_device(const std::string& device);
// The message for a device string that is none of those (with the closest spelling).
std::string bad_device_message(const std::string& device);
// The message for a run name that cannot name a directory (host/core/path_name.h).
std::string bad_run_name_message(const std::string& name);

// A data file: "path" or {"path": "...", "skip_lines": N}; written short when skip_lines is 0.
const Codec<FileSpec>& file_codec();

// A field separator: one character, or the two characters backslash-t for a tab; written as that
// character; `fallback` when absent. Line breaks cannot separate, nor (Quote::Refused) '"'.
enum class Quote : uint8_t { Allowed, Refused };
Codec<char> delimiter_codec(char fallback, Quote quote);

// The fields every task's root has: the run's name (it names a directory under the runs
// directory), the seed and the device.
template <typename V>
void device_field(V& v, std::string& device) {
  v.string(F("device",
             "where to run: \"auto\" (a GPU when there is one), \"cpu\", \"cuda\" or "
             "\"cuda:N\"")
               .pattern("^(auto|cpu|cuda(:[0-9]{1,4})?)$"),
           device);
  v.check(is_valid_device(device), "device", bad_device_message(device));
}
template <typename V>
void run_name_field(V& v, std::string& name) {
  v.string(F("name", "names the run directory: letters, digits, '.', '_' and '-'")
               .pattern("^[A-Za-z0-9._-]{1,200}$"),
           name, json::Text::NonEmpty);
  v.check(is_valid_run_name(name), "name", bad_run_name_message(name));
}

// Whether an lr schedule's settings fit the optimizer's lr (min_lr <= lr): `v.check` it in the
// section holding both (key "lr_schedule.min_lr").
inline bool schedule_fits(const LrScheduleConfig& s, const OptimizerConfig& o) {
  return s.type != LrScheduleType::Cosine || s.min_lr <= o.lr;
}
std::string schedule_misfit_message(const OptimizerConfig& o);

// Transitional readers and writers over the declarations below (configs not yet declared with
// fields() use them).
enum class Presence : uint8_t { Optional, Required };
std::optional<FileSpec> read_file_spec(json::ObjectReader& parent, std::string_view key,
                                       Presence presence);
void write_file_spec(json::JsonWriter& w, const FileSpec& file);
std::string read_device(json::ObjectReader& parent, std::string_view key,
                        const std::string& fallback = "auto");
std::string read_run_name(json::ObjectReader& parent, std::string_view key,
                          const std::string& fallback);
OptimizerConfig read_optimizer(json::ObjectReader& parent, std::string_view key,
                               const OptimizerConfig& defaults = {});
void write_optimizer(json::JsonWriter& w, const OptimizerConfig& c);
LrScheduleConfig read_lr_schedule(json::ObjectReader& parent, std::string_view key, double lr,
                                  const LrScheduleConfig& defaults = {});
void write_lr_schedule(json::JsonWriter& w, const LrScheduleConfig& c);

}  // namespace config

// Where a task's data is, one shape for every task: a registry dataset (its files named by
// train/validation/test, resolved in its cache) or local paths; train, then validation (a file or
// a share of train) and test (optional). A task's data section derives from it and declares its
// own fields (format, columns, ...) after data_file_fields().
struct DataFiles {
  // A data registry name ("uci-adult"); empty: train/validation/test are local paths.
  std::string dataset;
  FileSpec train;
  std::optional<FileSpec> validation;
  // The share of train held out for validation when no validation file is given; 0 when one is.
  double validation_fraction = 0.1;
  std::optional<FileSpec> test;
};

// What every task's root holds first: the run's name (it names a directory under the runs
// directory), the seed and the device. Each task names its defaults (the name is the task's).
struct RunSettings {
  RunSettings(const char* default_name, int64_t default_seed)
      : name(default_name), seed(default_seed) {}
  std::string name;
  int64_t seed;
  std::string device = "auto";  // "auto" | "cpu" | "cuda" | "cuda:N"
};

// What the training loop of every task trained by a dense optimizer holds beside its own keys
// (behaviour, textclass, textgen and the CNN tasks).
struct TrainLoop {
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  std::string runs_dir = "runs";
  // A NaN or Inf in the loss or a gradient: stop (default) or skip the batch (divergence.h).
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
};

// ---- declarations (host/config/declare.h) ---------------------------------------------------

// The DataFiles keys, in three parts a task may use apart (a task without validation data
// leaves out data_validation_fields; one whose test file applies only to some models puts
// data_test_field in a `v.when`). `train_required`: a task whose dataset supplies default files
// passes false.
template <typename V>
void data_source_fields(V& v, DataFiles& c, bool train_required = true) {
  using config::F;
  v.string(F("dataset",
             "a data registry name (tessera data list); its files are fetched and "
             "checked, and train/validation/test name files inside it. Absent: local "
             "paths")
               .written_if(!c.dataset.empty()),
           c.dataset, json::Text::NonEmpty);
  F train("train", "the training file: a path, or {\"path\": ..., \"skip_lines\": N}");
  if (train_required) train.required();
  v.custom(train, c.train, config::file_codec());
}
template <typename V>
void data_validation_fields(V& v, DataFiles& c) {
  using config::F;
  v.custom(F("validation", "a validation file (else validation_fraction of train is held out)"),
           c.validation, config::file_codec());
  v.number(F("validation_fraction",
             "the share of train held out for validation when no "
             "validation file is given")
               .written_if(!c.validation),
           c.validation_fraction, json::Bounds::closed(0, 0.9));
  v.validate([&](json::ObjectReader& r) {
    if (r.has("validation") && r.has("validation_fraction")) {
      r.error("validation_fraction",
              "give either a \"validation\" file or \"validation_fraction\" (a share of train), "
              "not both");
    }
    if (c.validation) c.validation_fraction = 0.0;
  });
}
template <typename V>
void data_test_field(V& v, DataFiles& c) {
  using config::F;
  v.custom(F("test", "a test file, scored once after training"), c.test, config::file_codec());
}
// The older spellings of "train" that textgen and recommend configs still read (never written):
// "path", a local file (the dataset is ignored), and "file", a file of the dataset. Declared
// after data_source_fields: once read, the one given moves into train, and "train" without
// "dataset" names a local file.
namespace config {
void settle_older_train(json::ObjectReader& r, DataFiles& c, const std::string& path,
                        const std::string& file);
}  // namespace config
template <typename V>
void older_train_fields(V& v, DataFiles& c, std::string& path, std::string& file) {
  using config::F;
  v.string(F("path", "older spelling of \"train\": a local file (the dataset is ignored)")
               .written_if(false),
           path);
  v.string(F("file", "older spelling of \"train\": a file of the dataset").written_if(false), file,
           json::Text::NonEmpty);
  v.validate([&](json::ObjectReader& r) { config::settle_older_train(r, c, path, file); });
}
template <typename V>
void data_file_fields(V& v, DataFiles& c, bool train_required = true) {
  data_source_fields(v, c, train_required);
  data_validation_fields(v, c);
  data_test_field(v, c);
}

template <typename V>
void fields(V& v, OptimizerConfig& c) {
  using config::F;
  using json::Bounds;
  v.choice(F("type", "the update rule"), c.type, optimizer_choices());
  v.number(F("lr", "the base learning rate (lr_schedule scales it step by step)"), c.lr,
           Bounds::open_closed(0, 10));
  v.number(F("weight_decay", "sgd and adam: L2 added to the gradient; adamw: decoupled decay"),
           c.weight_decay, Bounds::closed(0, 1));
  const std::string this_one = std::string(" (this optimizer is \"") +
                               json::choice_name(c.type, optimizer_choices()) + "\")";
  v.when(c.type == OptimizerType::Sgd, "only applies to \"sgd\"" + this_one, [&] {
    v.number(F("momentum", "heavy-ball momentum"), c.momentum, Bounds::closed_open(0, 1));
    v.boolean(F("nesterov", "Nesterov momentum (needs momentum > 0)"), c.nesterov);
    v.check(!(c.nesterov && c.momentum == 0.0), "nesterov", "needs momentum > 0");
  });
  v.when(c.type != OptimizerType::Sgd, "only applies to \"adam\" and \"adamw\"" + this_one, [&] {
    v.number(F("beta1", "first-moment decay"), c.beta1, Bounds::closed_open(0, 1));
    v.number(F("beta2", "second-moment decay"), c.beta2, Bounds::closed_open(0, 1));
    v.number(F("eps", "added to the second moment's square root"), c.eps,
             Bounds::open_closed(0, 1));
  });
}

template <typename V>
void fields(V& v, LrScheduleConfig& c) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  v.choice(F("type", "after warm-up: constant, cosine decay to min_lr, or step decay by gamma"),
           c.type, lr_schedule_choices());
  v.integer(F("warmup_steps", "linear warm-up from lr/warmup_steps to lr over these steps"),
            c.warmup_steps, IntBounds::at_least(0));
  const std::string this_one = std::string(" (this schedule is \"") +
                               json::choice_name(c.type, lr_schedule_choices()) + "\")";
  v.when(c.type == LrScheduleType::Step, "only applies to the \"step\" schedule" + this_one, [&] {
    size_t before = 0;
    v.validate([&](json::ObjectReader& r) { before = r.errors().size(); });
    v.integer(F("step_epochs", "multiply the lr by gamma every step_epochs epochs (>= 1)"),
              c.step_epochs, IntBounds::closed(0, 1000000));
    v.validate([&](json::ObjectReader& r) {
      if (c.step_epochs >= 1 || r.errors().size() != before) return;
      r.error(r.has("step_epochs") ? "step_epochs" : "",
              "the \"step\" schedule needs \"step_epochs\" >= 1 (multiply the lr by gamma every "
              "step_epochs epochs)");
    });
    v.number(F("gamma", "the factor applied every step_epochs epochs"), c.gamma,
             Bounds::open_closed(0, 1));
  });
  v.when(c.type == LrScheduleType::Cosine, "only applies to the \"cosine\" schedule" + this_one,
         [&] {
           v.number(F("min_lr",
                      "the lr the cosine reaches at the last step (<= the optimizer's "
                      "lr)"),
                    c.min_lr, Bounds::at_least(0));
         });
}

// A data section with only the files.
template <typename V>
void fields(V& v, DataFiles& c) {
  data_file_fields(v, c);
}

// ---- keys that every task's training loop shares ---------------------------------------------

namespace config {

// "optimizer" and "lr_schedule", and the rule between them: a cosine's min_lr may not exceed the
// optimizer's lr (reported at "lr_schedule.min_lr").
template <typename V>
void optimizer_fields(V& v, OptimizerConfig& optimizer, LrScheduleConfig& schedule,
                      const char* optimizer_doc) {
  v.section(F("optimizer", optimizer_doc), optimizer);
  v.section(F("lr_schedule", "the learning rate over the steps"), schedule);
  v.check(schedule_fits(schedule, optimizer), "lr_schedule.min_lr",
          schedule_misfit_message(optimizer));
}

// "runs_dir": the directory that holds a task's run directories.
template <typename V>
void runs_dir_field(V& v, std::string& runs_dir) {
  v.string(F("runs_dir", "the directory that holds the run directories"), runs_dir,
           json::Text::NonEmpty);
}

// "on_nonfinite"'s documentation where a task's step is a batch.
inline constexpr const char* kSkipBatchDoc =
    "a NaN or Inf in the loss or a gradient: stop, or skip the batch";
// "on_nonfinite" (host/config/on_nonfinite.h). `doc` says what "skip_batch" skips where a task's
// step is not a batch.
template <typename V>
void on_nonfinite_field(V& v, NonFinitePolicy& policy, const char* doc = kSkipBatchDoc) {
  v.choice(F(kOnNonFiniteKey, doc), policy, nonfinite_policy_choices());
}

// A task root's first keys: "task" (the constant `task`, documented `task_doc`), "name", "seed"
// (`seed_doc` says what it seeds) and "device".
template <typename V>
void run_settings_fields(V& v, const char* task, const char* task_doc, RunSettings& c,
                         const char* seed_doc) {
  v.constant(F("task", task_doc).required(), task);
  run_name_field(v, c.name);
  v.integer(F("seed", seed_doc), c.seed, json::IntBounds::at_least(0));
  device_field(v, c.device);
}

// The root of a task made of a "data", a "model" and a "train" section (behaviour, textclass,
// textgen): the run settings, then the three sections, documented by `docs`.
struct RootDocs {
  const char* seed;
  const char* data;
  const char* model;
  Presence train;
};
template <typename V, typename C>
void root_fields(V& v, const char* task, C& c, const RootDocs& docs) {
  run_settings_fields(v, task, "what this config is for", c, docs.seed);
  v.section(F("data", docs.data).required(), c.data);
  v.section(F("model", docs.model), c.model);
  F train("train", "the training loop");
  if (docs.train == Presence::Required) train.required();
  v.section(train, c.train);
}

// The end of an LSTM task's "train" section (textclass, textgen): "runs_dir", the optimizer and
// its lr schedule (optimizer_fields) and "on_nonfinite" (documented `nonfinite_doc`).
template <typename V>
void lstm_train_loop_fields(V& v, TrainLoop& c, const char* nonfinite_doc = kSkipBatchDoc) {
  runs_dir_field(v, c.runs_dir);
  optimizer_fields(v, c.optimizer, c.lr_schedule, "the weights' optimizer");
  on_nonfinite_field(v, c.on_nonfinite, nonfinite_doc);
}

// The sizes of a stack of LSTM layers over token embeddings (the textclass classifier, the
// textgen language model); `hidden_doc` says how the hidden width counts.
template <typename V>
void lstm_stack_fields(V& v, int64_t& embedding_dim, int64_t& hidden_size, int64_t& num_layers,
                       const char* hidden_doc) {
  using json::IntBounds;
  v.integer(F("embedding_dim", "the token embedding's width"), embedding_dim,
            IntBounds::closed(1, 4096));
  v.integer(F("hidden_size", hidden_doc), hidden_size, IntBounds::closed(1, 8192));
  v.integer(F("num_layers", "stacked LSTM layers"), num_layers, IntBounds::closed(1, 16));
}

}  // namespace config

}  // namespace tessera
