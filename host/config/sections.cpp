// Shared config sections: device, data files, optimizer, learning-rate schedule.
#include "host/config/sections.h"

#include "host/core/path_name.h"

#include <cctype>
#include <tuple>
#include <vector>

namespace tessera {

const json::Choices<OptimizerType>& optimizer_choices() {
  static const json::Choices<OptimizerType> choices = {
      {"adam", OptimizerType::Adam}, {"adamw", OptimizerType::AdamW}, {"sgd", OptimizerType::Sgd}};
  return choices;
}

const json::Choices<LrScheduleType>& lr_schedule_choices() {
  static const json::Choices<LrScheduleType> choices = {{"constant", LrScheduleType::Constant},
                                                        {"cosine", LrScheduleType::Cosine},
                                                        {"step", LrScheduleType::Step}};
  return choices;
}

bool operator==(const OptimizerConfig& a, const OptimizerConfig& b) {
  return std::tie(a.type, a.lr, a.weight_decay, a.momentum, a.nesterov, a.beta1, a.beta2, a.eps) ==
         std::tie(b.type, b.lr, b.weight_decay, b.momentum, b.nesterov, b.beta1, b.beta2, b.eps);
}

bool operator==(const LrScheduleConfig& a, const LrScheduleConfig& b) {
  return std::tie(a.type, a.warmup_steps, a.step_epochs, a.gamma, a.min_lr) ==
         std::tie(b.type, b.warmup_steps, b.step_epochs, b.gamma, b.min_lr);
}

namespace config {

using json::Bounds;
using json::IntBounds;
using json::JsonKind;
using json::ObjectReader;
using json::Text;

bool is_valid_device(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return true;
  if (device.rfind("cuda:", 0) != 0) return false;
  const std::string index = device.substr(5);
  if (index.empty() || index.size() > 4) return false;
  for (char c : index) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string read_device(ObjectReader& parent, std::string_view key, const std::string& fallback) {
  if (parent.kind(key) != JsonKind::String) return parent.string(key, fallback);  // type errors
  const std::string device = parent.string(key, fallback);
  if (is_valid_device(device)) return device;
  std::string message =
      "expected one of \"auto\", \"cpu\", \"cuda\", \"cuda:N\" (N a device index), got \"" +
      device + "\"";
  const std::string suggestion = json::closest_match(device, {"auto", "cpu", "cuda"});
  if (!suggestion.empty()) message += "; did you mean \"" + suggestion + "\"?";
  parent.error(key, message);
  return fallback;
}

std::string read_run_name(ObjectReader& parent, std::string_view key, const std::string& fallback) {
  const std::string name = parent.string(key, fallback, json::Text::NonEmpty);
  if (parent.has(key) && !is_valid_run_name(name)) {
    parent.error(key, "\"" + name +
                          "\" cannot name a run directory: use letters, digits, '.', '_' and '-' "
                          "(at most 200)");
    return fallback;
  }
  return name;
}

std::optional<FileSpec> read_file_spec(ObjectReader& parent, std::string_view key,
                                       Presence presence) {
  switch (parent.kind(key)) {
    case JsonKind::Absent:
      if (presence == Presence::Required) {
        parent.require(key);
      } else {
        parent.allow(key);
      }
      return std::nullopt;
    case JsonKind::String: {
      const size_t errors_before = parent.errors().size();
      FileSpec f;
      f.path = parent.string(key, "", Text::NonEmpty);
      if (parent.errors().size() != errors_before) return std::nullopt;
      return f;
    }
    case JsonKind::Object: {
      ObjectReader r = parent.object(key);
      FileSpec f;
      f.path = r.required_string("path", Text::NonEmpty);
      f.skip_lines = r.integer<int>("skip_lines", 0, IntBounds::closed(0, 1000000));
      r.finish();
      return f;
    }
    default:
      parent.error(key,
                   "expected a file path (a string) or an object {\"path\": ..., "
                   "\"skip_lines\": N}, got " +
                       json::describe_value(*parent.raw(key)));
      return std::nullopt;
  }
}

void write_file_spec(json::JsonWriter& w, const FileSpec& file) {
  if (file.skip_lines == 0) {
    w.value(file.path);
    return;
  }
  w.begin_object().field("path", file.path).field("skip_lines", file.skip_lines).end_object();
}

OptimizerConfig read_optimizer(ObjectReader& parent, std::string_view key,
                               const OptimizerConfig& defaults) {
  OptimizerConfig c;
  ObjectReader r = parent.object(key);
  const size_t errors_before = r.errors().size();
  c.type = r.choice("type", defaults.type, optimizer_choices());
  const bool type_ok = r.errors().size() == errors_before;
  c.lr = r.number("lr", defaults.lr, Bounds::open_closed(0, 10));
  c.weight_decay = r.number("weight_decay", defaults.weight_decay, Bounds::closed(0, 1));
  c.momentum = r.number("momentum", defaults.momentum, Bounds::closed_open(0, 1));
  c.nesterov = r.boolean("nesterov", defaults.nesterov);
  c.beta1 = r.number("beta1", defaults.beta1, Bounds::closed_open(0, 1));
  c.beta2 = r.number("beta2", defaults.beta2, Bounds::closed_open(0, 1));
  c.eps = r.number("eps", defaults.eps, Bounds::open_closed(0, 1));

  // With a misspelt type we do not know which fields apply: the type error is enough.
  if (type_ok) {
    const std::string this_one = std::string(" (this optimizer is \"") +
                                 json::choice_name(c.type, optimizer_choices()) + "\")";
    if (c.type == OptimizerType::Sgd) {
      for (const char* k : {"beta1", "beta2", "eps"}) {
        if (r.has(k)) r.error(k, "only applies to \"adam\" and \"adamw\"" + this_one);
      }
      if (c.nesterov && c.momentum == 0.0) r.error("nesterov", "needs momentum > 0");
    } else {
      for (const char* k : {"momentum", "nesterov"}) {
        if (r.has(k)) r.error(k, "only applies to \"sgd\"" + this_one);
      }
    }
  }
  r.finish();
  return c;
}

void write_optimizer(json::JsonWriter& w, const OptimizerConfig& c) {
  w.begin_object();
  w.choice("type", c.type, optimizer_choices());
  w.field("lr", c.lr).field("weight_decay", c.weight_decay);
  if (c.type == OptimizerType::Sgd) {
    w.field("momentum", c.momentum).field("nesterov", c.nesterov);
  } else {
    w.field("beta1", c.beta1).field("beta2", c.beta2).field("eps", c.eps);
  }
  w.end_object();
}

LrScheduleConfig read_lr_schedule(ObjectReader& parent, std::string_view key, double lr,
                                  const LrScheduleConfig& defaults) {
  LrScheduleConfig c;
  ObjectReader r = parent.object(key);
  const size_t errors_before = r.errors().size();
  c.type = r.choice("type", defaults.type, lr_schedule_choices());
  const bool type_ok = r.errors().size() == errors_before;
  c.warmup_steps =
      r.integer<int64_t>("warmup_steps", defaults.warmup_steps, IntBounds::at_least(0));
  const size_t before_step_epochs = r.errors().size();
  c.step_epochs =
      r.integer<int>("step_epochs", defaults.step_epochs, IntBounds::closed(0, 1000000));
  const bool step_epochs_ok = r.errors().size() == before_step_epochs;
  c.gamma = r.number("gamma", defaults.gamma, Bounds::open_closed(0, 1));
  c.min_lr = r.number("min_lr", defaults.min_lr, Bounds::at_least(0));

  if (type_ok) {
    const std::string this_one = std::string(" (this schedule is \"") +
                                 json::choice_name(c.type, lr_schedule_choices()) + "\")";
    if (c.type != LrScheduleType::Step) {
      for (const char* k : {"step_epochs", "gamma"}) {
        if (r.has(k)) r.error(k, "only applies to the \"step\" schedule" + this_one);
      }
    } else if (c.step_epochs < 1 && step_epochs_ok) {
      r.error(r.has("step_epochs") ? "step_epochs" : "",
              "the \"step\" schedule needs \"step_epochs\" >= 1 (multiply the lr by gamma every "
              "step_epochs epochs)");
    }
    if (c.type != LrScheduleType::Cosine) {
      if (r.has("min_lr")) r.error("min_lr", "only applies to the \"cosine\" schedule" + this_one);
    } else if (c.min_lr > lr) {
      r.error("min_lr", "must not exceed the optimizer's lr (" + json::format_number(lr) + ")");
    }
  }
  r.finish();
  return c;
}

void write_lr_schedule(json::JsonWriter& w, const LrScheduleConfig& c) {
  w.begin_object();
  w.choice("type", c.type, lr_schedule_choices());
  w.field("warmup_steps", c.warmup_steps);
  if (c.type == LrScheduleType::Step) w.field("step_epochs", c.step_epochs).field("gamma", c.gamma);
  if (c.type == LrScheduleType::Cosine) w.field("min_lr", c.min_lr);
  w.end_object();
}

}  // namespace config
}  // namespace tessera
