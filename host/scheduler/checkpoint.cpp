#include "host/scheduler/checkpoint.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera::scheduler {

namespace {
constexpr const char* kFormat = "tessera.checkpoint";
constexpr int kVersion = 1;

uint64_t bits_of(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof(u));
  return u;
}
double double_of(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof(d));
  return d;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;  // tags are hashes; never control chars
    out += c;
  }
  return out + "\"";
}
}  // namespace

void save_checkpoint(const std::string& path, Backend& backend,
                     const std::vector<Parameter*>& params, const TrainingState& s,
                     const std::map<std::string, Tensor>& best,
                     const std::map<std::string, Tensor>& extra) {
  std::ostringstream meta;
  // Doubles travel as their bit patterns (decimal strings) so a resumed run compares exactly.
  meta << "{\"format\":\"" << kFormat << "\",\"version\":" << kVersion
       << ",\"epochs_done\":" << s.epochs_done << ",\"step\":" << s.step
       << ",\"samples\":" << s.samples << ",\"train_seconds_bits\":\"" << bits_of(s.train_seconds)
       << "\",\"best_score_bits\":\"" << bits_of(s.best_score)
       << "\",\"best_epoch\":" << s.best_epoch << ",\"bad_epochs\":" << s.bad_epochs
       << ",\"tag\":" << quote(s.tag) << ",\"rng\":" << quote(s.rng) << "}";
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (Parameter* p : params) {
    tensors.emplace_back("value/" + p->name, backend.to_host(p->value));
    if (p->state1.defined()) tensors.emplace_back("state1/" + p->name, backend.to_host(p->state1));
    if (p->state2.defined()) tensors.emplace_back("state2/" + p->name, backend.to_host(p->state2));
  }
  for (const auto& [name, t] : best) tensors.emplace_back("best/" + name, t);
  for (const auto& [name, t] : extra) tensors.emplace_back("extra/" + name, t);
  save_archive(path, meta.str(), tensors);
}

void load_checkpoint(const std::string& path, Backend& backend,
                     const std::vector<Parameter*>& params, const std::string& expected_tag,
                     TrainingState* s, std::map<std::string, Tensor>* best,
                     std::map<std::string, Tensor>* extra) {
  Archive ar = load_archive(path);
  check_finite(ar.tensors, path);
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Io, "checkpoint '" << path << "' cannot be resumed: " << why);
  };
  rapidjson::Document d;
  d.Parse(ar.meta_json.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("format") || !d["format"].IsString() ||
      std::string(d["format"].GetString()) != kFormat)
    bad("not a tessera checkpoint");
  if (!d.HasMember("version") || !d["version"].IsInt() || d["version"].GetInt() != kVersion)
    bad("unsupported version (this build reads version " + std::to_string(kVersion) + ")");
  auto i64 = [&](const char* k) -> int64_t {
    if (!d.HasMember(k) || !d[k].IsInt64())
      bad(std::string("field '") + k + "' is missing or not an integer");
    return d[k].GetInt64();
  };
  // A double's bit pattern as a decimal string (all digits, at most 2^64 - 1).
  auto bits = [&](const char* k) -> double {
    if (!d.HasMember(k) || !d[k].IsString())
      bad(std::string("field '") + k + "' is missing or not a string");
    const std::string text(d[k].GetString(), d[k].GetStringLength());
    errno = 0;
    char* end = nullptr;
    const unsigned long long u = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text.size() > 20 || !std::isdigit(static_cast<unsigned char>(text[0])) ||
        *end != '\0' || errno == ERANGE)
      bad(std::string("field '") + k + "' is not a 64-bit pattern in decimal");
    return double_of(u);
  };
  // An optional string field: "" when absent.
  auto str = [&](const char* k) -> std::string {
    if (!d.HasMember(k)) return "";
    if (!d[k].IsString()) bad(std::string("field '") + k + "' is not a string");
    return std::string(d[k].GetString(), d[k].GetStringLength());
  };
  const std::string tag = str("tag");
  if (tag != expected_tag)
    bad("it belongs to another configuration (tag '" + tag + "', expected '" + expected_tag + "')");
  TrainingState st;
  st.epochs_done = i64("epochs_done");
  st.step = i64("step");
  st.samples = i64("samples");
  st.train_seconds = bits("train_seconds_bits");
  st.best_score = bits("best_score_bits");
  st.best_epoch = i64("best_epoch");
  st.bad_epochs = i64("bad_epochs");
  if (st.epochs_done < 0 || st.step < 0 || st.samples < 0 || st.best_epoch < -1 ||
      st.bad_epochs < 0)
    bad("a counter is negative (epochs_done " + std::to_string(st.epochs_done) + ", step " +
        std::to_string(st.step) + ", samples " + std::to_string(st.samples) + ", best_epoch " +
        std::to_string(st.best_epoch) + ", bad_epochs " + std::to_string(st.bad_epochs) + ")");
  st.tag = tag;
  st.rng = str("rng");

  // The stored tensor `key`, which must match `dst` in shape and dtype.
  auto stored = [&](const std::string& key, const Tensor& dst) -> const Tensor& {
    auto it = ar.tensors.find(key);
    if (it == ar.tensors.end()) bad("tensor '" + key + "' missing");
    if (it->second.shape() != dst.shape() || it->second.dtype() != dst.dtype())
      bad("tensor '" + key + "' has shape " + shape_str(it->second.shape()) + " (" +
          dtype_name(it->second.dtype()) + "), the model has " + shape_str(dst.shape()) + " (" +
          dtype_name(dst.dtype()) + ")");
    return it->second;
  };
  auto take = [&](const std::string& key, Tensor& dst) { backend.copy(stored(key, dst), dst); };
  // Check everything before the first copy, so a mismatch leaves the model untouched.
  for (Parameter* p : params) {
    const std::pair<const char*, const Tensor*> parts[] = {
        {"value/", &p->value}, {"state1/", &p->state1}, {"state2/", &p->state2}};
    for (const auto& [prefix, t] : parts)
      if (t->defined()) stored(prefix + p->name, *t);
  }
  for (Parameter* p : params) {
    take("value/" + p->name, p->value);
    if (p->state1.defined()) take("state1/" + p->name, p->state1);
    if (p->state2.defined()) take("state2/" + p->name, p->state2);
  }
  best->clear();
  for (auto& [key, t] : ar.tensors)
    if (key.rfind("best/", 0) == 0) (*best)[key.substr(5)] = t;
  if (extra) {
    extra->clear();
    for (auto& [key, t] : ar.tensors)
      if (key.rfind("extra/", 0) == 0) (*extra)[key.substr(6)] = t;
  }
  *s = st;
}

}  // namespace tessera::scheduler
