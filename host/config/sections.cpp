// Shared config sections: device, data files, optimizer, learning-rate schedule.
#include "host/config/sections.h"

#include "host/config/choices.h"
#include "host/core/path_name.h"

#include <cctype>
#include <tuple>
#include <vector>

namespace tessera {

TESSERA_CHOICES(optimizer_choices, OptimizerType, {"adam", OptimizerType::Adam},
                {"adamw", OptimizerType::AdamW}, {"sgd", OptimizerType::Sgd});

TESSERA_CHOICES(lr_schedule_choices, LrScheduleType, {"constant", LrScheduleType::Constant},
                {"cosine", LrScheduleType::Cosine}, {"step", LrScheduleType::Step});

TESSERA_CHOICES(bad_row_policy_choices, BadRowPolicy, {"error", BadRowPolicy::Error},
                {"skip", BadRowPolicy::Skip});

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

std::string bad_device_message(const std::string& device) {
  std::string message =
      "expected one of \"auto\", \"cpu\", \"cuda\", \"cuda:N\" (N a device index), got \"" +
      device + "\"";
  const std::string suggestion = json::closest_match(device, {"auto", "cpu", "cuda"});
  if (!suggestion.empty()) message += "; did you mean \"" + suggestion + "\"?";
  return message;
}

std::string bad_run_name_message(const std::string& name) {
  return "\"" + name +
         "\" cannot name a run directory: use letters, digits, '.', '_' and '-' (at most 200)";
}

std::string schedule_misfit_message(const OptimizerConfig& o) {
  return "must not exceed the optimizer's lr (" + json::format_number(o.lr) + ")";
}

const Codec<FileSpec>& file_codec() {
  static const Codec<FileSpec> codec = {
      [](ObjectReader& parent, std::string_view key, bool required, FileSpec* out) {
        if (auto f =
                read_file_spec(parent, key, required ? Presence::Required : Presence::Optional)) {
          *out = *f;
        }
      },
      [](json::JsonWriter& w, const FileSpec& f) { write_file_spec(w, f); },
      [](json::JsonWriter& w, const std::string& description) {
        w.begin_object().field("description", description).key("oneOf").begin_array();
        w.begin_object().field("type", "string").field("minLength", 1).end_object();
        w.begin_object().field("type", "object");
        w.key("properties").begin_object();
        w.key("path").begin_object().field("type", "string").field("minLength", 1).end_object();
        w.key("skip_lines").begin_object().field("type", "integer").field("minimum", 0);
        w.field("maximum", 1000000).field("default", 0).end_object();
        w.end_object();
        w.key("required").list(std::vector<std::string>{"path"});
        w.field("additionalProperties", false).end_object();
        w.end_array().end_object();
      }};
  return codec;
}

namespace {
// A separator as the reader's messages show it.
std::string shown_delimiter(char d) {
  return d == '\t' ? "\"\\t\" (tab)" : "\"" + std::string(1, d) + "\"";
}
}  // namespace

Codec<char> delimiter_codec(char fallback, Quote quote) {
  const std::string fallback_text(1, fallback);
  const bool refuse_quote = quote == Quote::Refused;
  const std::string examples = fallback == '\t'
                                   ? shown_delimiter('\t') + " or " + shown_delimiter(',')
                                   : shown_delimiter(fallback) + " or " + shown_delimiter('\t');
  return {
      [=](ObjectReader& parent, std::string_view key, bool, char* out) {
        if (parent.kind(key) != JsonKind::String) {
          parent.string(key, fallback_text);  // absent: the default; another type: reported
          return;
        }
        const std::string d = parent.string(key, fallback_text);
        if (d == "\\t") {  // the two characters backslash-t, as people often write it
          *out = '\t';
        } else if (d.size() != 1 || d[0] == '\n' || d[0] == '\r' || (refuse_quote && d[0] == '"')) {
          parent.error(key,
                       "expected a single character such as " + examples + ", got \"" + d + "\"");
        } else {
          *out = d[0];
        }
      },
      [](json::JsonWriter& w, const char& d) { w.value(std::string(1, d)); },
      [=](json::JsonWriter& w, const std::string& description) {
        w.begin_object().field("type", "string").field("description", description);
        w.field("pattern", refuse_quote ? "^([^\\n\\r\"]|\\\\t)$" : "^([^\\n\\r]|\\\\t)$");
        w.field("default", fallback_text).end_object();
      }};
}

std::string read_device(ObjectReader& parent, std::string_view key, const std::string& fallback) {
  if (parent.kind(key) != JsonKind::String) return parent.string(key, fallback);  // type errors
  const std::string device = parent.string(key, fallback);
  if (is_valid_device(device)) return device;
  parent.error(key, bad_device_message(device));
  return fallback;
}

std::string read_run_name(ObjectReader& parent, std::string_view key, const std::string& fallback) {
  const std::string name = parent.string(key, fallback, json::Text::NonEmpty);
  if (parent.has(key) && !is_valid_run_name(name)) {
    parent.error(key, bad_run_name_message(name));
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

namespace {

template <typename T>
T read_section_at(ObjectReader& parent, std::string_view key, T value) {
  ObjectReader r = parent.object(key);
  SectionReader v(r);
  fields(v, value);
  r.finish();
  return value;
}

template <typename T>
void write_section_value(json::JsonWriter& w, const T& c) {
  SectionWriter(w, /*identity=*/false).write_object(const_cast<T&>(c));
}

}  // namespace

OptimizerConfig read_optimizer(ObjectReader& parent, std::string_view key,
                               const OptimizerConfig& defaults) {
  return read_section_at(parent, key, defaults);
}

void write_optimizer(json::JsonWriter& w, const OptimizerConfig& c) {
  write_section_value(w, c);
}

LrScheduleConfig read_lr_schedule(ObjectReader& parent, std::string_view key, double lr,
                                  const LrScheduleConfig& defaults) {
  LrScheduleConfig c = read_section_at(parent, key, defaults);
  OptimizerConfig o;
  o.lr = lr;
  if (!schedule_fits(c, o) && parent.has(key)) {
    parent.errors().add(detail::path_below(parent.path(), std::string(key) + ".min_lr"),
                        schedule_misfit_message(o));
  }
  return c;
}

void write_lr_schedule(json::JsonWriter& w, const LrScheduleConfig& c) {
  write_section_value(w, c);
}

void settle_older_train(ObjectReader& r, DataFiles& c, const std::string& path,
                        const std::string& file) {
  const bool older_path = !path.empty();
  if ((older_path || r.has("file")) && r.has("train")) {
    const char* older = older_path ? "path" : "file";
    r.error(older,
            std::string("\"") + older + "\" is the older spelling of \"train\": give one of them");
    return;
  }
  if (older_path) {  // a local file, whatever the dataset (and "file")
    c.train = FileSpec{path, 0};
    c.dataset.clear();
  } else if (r.has("file")) {
    c.train = FileSpec{file, 0};
  } else if (r.has("train") && !r.has("dataset")) {
    c.dataset.clear();
  }
}

}  // namespace config
}  // namespace tessera
