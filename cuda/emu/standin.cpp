// The stand-ins' shared registry: calls and rules per entry point (cuda/emu/standin.h).
#include "cuda/emu/standin.h"

#include <map>
#include <mutex>
#include <sstream>

#include "cuda/emu/device_memory.h"

namespace tessera::emu {

namespace {

struct RuleCount {
  long long passed = 0;
  long long failed = 0;
  std::string last_failure;
};
struct EntryRecord {
  std::string library;
  long long calls = 0;
  std::map<std::string, RuleCount> rules;
};
struct Registry {
  std::mutex mutex;
  std::map<std::string, EntryRecord> entries;           // by entry point
  std::map<std::string, std::pair<int, int>> injected;  // entry point -> (status, calls left)
};
Registry& registry() {
  static auto* r = new Registry();  // never destroyed: reports may run from static destructors
  return *r;
}
thread_local std::string t_last_failure;

}  // namespace

bool is_device_range(const void* p, size_t bytes) {
  if (!p) return false;
  const auto a = find_device_allocation(p);
  if (!a) return false;
  const auto* c = static_cast<const unsigned char*>(p);
  return c >= a->base && c + bytes <= a->base + a->bytes;
}

void record_call(const char* library, const char* entry_point) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  EntryRecord& e = r.entries[entry_point];
  e.library = library;
  ++e.calls;
}

bool check_rule(const char* library, const char* entry_point, const char* rule, bool ok,
                const std::string& detail) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  EntryRecord& e = r.entries[entry_point];
  e.library = library;
  RuleCount& c = e.rules[rule];
  if (ok) {
    ++c.passed;
  } else {
    ++c.failed;
    std::string message = std::string(entry_point) + ": " + rule;
    if (!detail.empty()) message += " (" + detail + ")";
    c.last_failure = message;
    t_last_failure = message;
  }
  return ok;
}

void fail_next_calls(const char* entry_point, int status, int count) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (count > 0)
    r.injected[entry_point] = {status, count};
  else
    r.injected.erase(entry_point);
}

int take_injected_failure(const char* entry_point) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.injected.find(entry_point);
  if (it == r.injected.end()) return 0;
  const int status = it->second.first;
  if (--it->second.second <= 0) r.injected.erase(it);
  return status;
}

const std::string& last_rule_failure() {
  return t_last_failure;
}

std::string format_standin_report() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::ostringstream out;
  out << "vendor entry points (stand-ins):\n";
  for (const auto& [name, e] : r.entries) {
    out << "  " << e.library << " " << name << ": " << e.calls << " calls\n";
    for (const auto& [rule, c] : e.rules) {
      out << "    rule \"" << rule << "\": " << c.passed << " passed, " << c.failed << " failed";
      if (!c.last_failure.empty()) out << " (last: " << c.last_failure << ")";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace tessera::emu
