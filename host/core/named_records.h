#pragma once
// Records kept by name for the whole life of the process, which any thread may update: the CUDA
// emulator's per-op and per-kernel tallies.
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace tessera {

template <typename Record>
struct NamedRecords {
  std::mutex mutex;  // guards by_name
  std::map<std::string, Record> by_name;

  // A copy of every record, in name order.
  std::vector<Record> values() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<Record> out;
    for (const auto& kv : by_name) out.push_back(kv.second);
    return out;
  }
};

// The process's one NamedRecords of `Record`. Never destroyed, so a static destructor or an
// at-exit report that runs after it would have been may still read and update it.
template <typename Record>
NamedRecords<Record>& process_records() {
  static auto* records = new NamedRecords<Record>();
  return *records;
}

}  // namespace tessera
