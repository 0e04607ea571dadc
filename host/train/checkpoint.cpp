#include "host/train/checkpoint.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include "host/config/json_writer.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"

namespace tessera::train {

namespace {

constexpr const char* kFormat = "tessera.checkpoint";
// Version 3 adds the mid-epoch fields; a checkpoint at an epoch's end is still written as version
// 2, which builds before mid-epoch checkpoints read too.
constexpr int64_t kVersion = 3;
constexpr int64_t kOldestVersion = 2;

uint64_t bits_of(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
double double_of(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

// A double's bit pattern as 16 hex digits (a JSON number would round it).
std::string hex_bits(double d) {
  static const char* digits = "0123456789abcdef";
  const uint64_t u = bits_of(d);
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i) s[15 - i] = digits[(u >> (4 * i)) & 15];
  return s;
}

double from_hex_bits(const JsonFields& h, const char* key) {
  const std::string s = h.string(key);
  uint64_t u = 0;
  bool ok = s.size() == 16;
  for (char c : s) {
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    ok = ok && v >= 0;
    u = (u << 4) | static_cast<uint64_t>(v < 0 ? 0 : v);
  }
  if (!ok) h.fail(h.field(key), "is not 16 lowercase hex digits (a double's bit pattern)");
  return double_of(u);
}

// A version 3 checkpoint's position inside an epoch and the epoch's sums so far.
void read_epoch_fields(const JsonFields& h, LoopState& s) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  s.batches_done = h.integer("batches_done", 0, kMax);
  s.epoch_examples = h.integer("epoch_examples", 0, kMax);
  s.epoch_units = h.integer("epoch_units", 0, kMax);
  s.epoch_loss_examples = h.integer("epoch_loss_examples", 0, s.epoch_examples);
  s.epoch_loss = from_hex_bits(h, "epoch_loss_bits");
  const JsonFields sums = h.object("epoch_sums");
  for (const auto& m : h.get("epoch_sums").GetObject()) {
    const std::string name(m.name.GetString(), m.name.GetStringLength());
    s.epoch_sums.emplace_back(name, from_hex_bits(sums, name.c_str()));
  }
}

}  // namespace

void save_training_checkpoint(const std::string& path, const LoopState& s,
                              const NamedTensors& state, const NamedTensors& best) {
  json::JsonWriter w;
  const bool mid_epoch = s.batches_done > 0;
  w.begin_object().field("format", kFormat).field("version", mid_epoch ? kVersion : kOldestVersion);
  w.field("task", s.task).field("tag", s.tag);
  w.field("epochs_done", s.epochs_done).field("step", s.step).field("samples", s.samples);
  w.field("train_seconds_bits", hex_bits(s.train_seconds));
  w.field("best_epoch", s.best_epoch);
  w.field("best_score_bits", hex_bits(s.best_score)).field("best_tie_bits", hex_bits(s.best_tie));
  w.field("bad_epochs", s.bad_epochs).field("random_state", s.random_state);
  w.key("best_validation").begin_object();
  for (const auto& [name, v] : s.best_validation) w.field(name, hex_bits(v));
  w.end_object();
  if (mid_epoch) {
    w.field("batches_done", s.batches_done).field("epoch_examples", s.epoch_examples);
    w.field("epoch_units", s.epoch_units).field("epoch_loss_examples", s.epoch_loss_examples);
    w.field("epoch_loss_bits", hex_bits(s.epoch_loss));
    w.key("epoch_sums").begin_object();
    for (const auto& [name, v] : s.epoch_sums) w.field(name, hex_bits(v));
    w.end_object();
  }
  w.end_object();
  NamedTensors tensors;
  add_prefixed(tensors, "state/", state);
  add_prefixed(tensors, "best/", best);
  save_archive(path, w.compact(), tensors);
}

TrainingCheckpoint load_training_checkpoint(const std::string& path, const std::string& task,
                                            const std::string& tag) {
  Archive ar = load_archive(path);
  check_finite(ar.tensors, path);
  const std::string source = "checkpoint '" + path + "'";
  rapidjson::Document doc;
  parse_json_object(doc, ar.meta_json, source);
  const JsonFields h(doc, source);
  auto refuse = [&](const std::string& why) {
    TESSERA_THROW(Io, source << " cannot be resumed: " << why);
  };
  if (h.string_or("format", "") != kFormat) refuse("it is not a tessera training checkpoint");
  const int64_t version = h.integer("version");
  if (version < kOldestVersion || version > kVersion)
    refuse("it has version " + std::to_string(version) + "; this build reads " +
           std::to_string(kOldestVersion) + " to " + std::to_string(kVersion));
  TrainingCheckpoint c;
  LoopState& s = c.loop;
  s.task = h.string("task");
  if (s.task != task) refuse("it is a " + s.task + " checkpoint, not " + task);
  s.tag = h.string("tag");
  if (s.tag != tag)
    refuse(
        "it was written under another configuration (only what may change on resume may "
        "differ)");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  s.epochs_done = h.integer("epochs_done", 0, kMax);
  s.step = h.integer("step", 0, kMax);
  s.samples = h.integer("samples", 0, kMax);
  s.train_seconds = from_hex_bits(h, "train_seconds_bits");
  s.best_epoch = h.integer("best_epoch", -1, s.epochs_done);
  s.best_score = from_hex_bits(h, "best_score_bits");
  s.best_tie = from_hex_bits(h, "best_tie_bits");
  s.bad_epochs = h.integer("bad_epochs", 0, s.epochs_done);
  s.random_state = h.string("random_state");
  const JsonFields best = h.object("best_validation");
  for (const auto& m : h.get("best_validation").GetObject()) {
    const std::string name(m.name.GetString(), m.name.GetStringLength());
    s.best_validation.emplace_back(name, from_hex_bits(best, name.c_str()));
  }
  if (version >= 3) read_epoch_fields(h, s);
  for (auto& [name, t] : ar.tensors) {
    if (name.rfind("state/", 0) == 0)
      c.state.emplace_back(name.substr(6), t);
    else if (name.rfind("best/", 0) == 0)
      c.best.emplace_back(name.substr(5), t);
    else
      refuse("tensor '" + name + "' is neither state/ nor best/");
  }
  return c;
}

NamedTensors parameter_state(Backend& backend, const std::vector<Parameter*>& params) {
  NamedTensors out;
  for (Parameter* p : params) {
    out.emplace_back("value/" + p->name, backend.to_host(p->value));
    if (p->state1.defined()) out.emplace_back("state1/" + p->name, backend.to_host(p->state1));
    if (p->state2.defined()) out.emplace_back("state2/" + p->name, backend.to_host(p->state2));
  }
  return out;
}

void restore_parameter_state(Backend& backend, const std::vector<Parameter*>& params,
                             const NamedTensors& state, const std::string& origin) {
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : state) by_name[name] = &t;
  auto stored = [&](const std::string& key, const Tensor& dst) -> const Tensor& {
    auto it = by_name.find(key);
    if (it == by_name.end()) TESSERA_THROW(Io, origin << ": tensor '" << key << "' is missing");
    const Tensor& t = *it->second;
    if (t.shape() != dst.shape() || t.dtype() != dst.dtype())
      TESSERA_THROW(Io, origin << ": tensor '" << key << "' is " << dtype_name(t.dtype())
                               << shape_str(t.shape()) << ", the model has "
                               << dtype_name(dst.dtype()) << shape_str(dst.shape()));
    return t;
  };
  struct Part {
    const char* prefix;
    Tensor Parameter::*field;
  };
  const Part parts[] = {{"value/", &Parameter::value},
                        {"state1/", &Parameter::state1},
                        {"state2/", &Parameter::state2}};
  for (Parameter* p : params)  // everything checked before the first copy
    for (const Part& part : parts)
      if ((p->*part.field).defined()) stored(part.prefix + p->name, p->*part.field);
  for (Parameter* p : params)
    for (const Part& part : parts)
      if ((p->*part.field).defined())
        backend.copy(stored(part.prefix + p->name, p->*part.field), p->*part.field);
}

NamedTensors optimizer_state(Backend& backend, const Optimizer& opt) {
  NamedTensors out = parameter_state(backend, opt.dense_parameters());
  for (const Optimizer::NamedGroup& g : opt.sparse_groups()) {
    const std::map<std::string, Tensor> s = g.group->training_state();
    add_prefixed(out, g.name + "/", NamedTensors(s.begin(), s.end()));
  }
  return out;
}

bool is_optimizer_tensor(const Optimizer& opt, const std::string& name) {
  const std::string group = name.substr(0, name.find('/'));
  if (group.size() == name.size()) return false;  // no '/': no group's
  if (group == "value" || group == "state1" || group == "state2") {
    for (const Parameter* p : opt.dense_parameters())
      if (name.compare(group.size() + 1, std::string::npos, p->name) == 0) return true;
    return false;
  }
  for (const Optimizer::NamedGroup& g : opt.sparse_groups())
    if (g.name == group) return true;
  return false;
}

void restore_optimizer_state(Backend& backend, Optimizer& opt, const NamedTensors& state,
                             int64_t steps, const std::string& origin) {
  for (const Optimizer::NamedGroup& g : opt.sparse_groups()) {
    const NamedTensors mine = with_prefix(state, g.name + "/");
    try {
      g.group->restore_training_state({mine.begin(), mine.end()});
    } catch (const Error& e) {
      TESSERA_THROW(Io, origin << ": parameter group '" << g.name << "': " << e.what());
    }
  }
  restore_parameter_state(backend, opt.dense_parameters(), state, origin);
  opt.set_steps_taken(steps);
}

NamedTensors with_prefix(const NamedTensors& all, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : all)
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

void add_prefixed(NamedTensors& out, const std::string& prefix, const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t);
}

}  // namespace tessera::train
