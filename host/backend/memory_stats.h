#pragma once
// DeviceMemoryStats (host/backend/backend.h) as JSON and as a line for people: what the Trainer
// prints after training and the benchmarks add to their JSON, for a backend that has them.
#include <cstdio>
#include <string>

#include "host/backend/backend.h"
#include "host/config/json_writer.h"

namespace tessera {

// The statistics' fields, inside an object being written.
inline void write_memory_stats(json::JsonWriter& w, const DeviceMemoryStats& s) {
  w.field("bytes_in_use", s.bytes_in_use).field("peak_bytes_in_use", s.peak_bytes_in_use);
  w.field("bytes_reserved", s.bytes_reserved).field("raw_allocations", s.raw_allocations);
  w.field("raw_frees", s.raw_frees).field("cache_hits", s.cache_hits);
  w.field("cache_misses", s.cache_misses);
}

// {"bytes_in_use":...,"cache_misses":...}
inline std::string memory_stats_json(const DeviceMemoryStats& s) {
  json::JsonWriter w;
  w.begin_object();
  write_memory_stats(w, s);
  w.end_object();
  return w.compact();
}

// `,"device_memory":{...}` for a backend with an allocator, "" otherwise: appended to a
// benchmark's JSON line before its closing brace.
inline std::string memory_stats_field(const Backend& backend) {
  const std::optional<DeviceMemoryStats> s = backend.memory_stats();
  return s ? ",\"device_memory\":" + memory_stats_json(*s) : std::string();
}

// "device memory: peak 40.0 MiB in use, 64.0 MiB reserved; 1234 allocations, 98.5% from the
// cache, 18 cudaMalloc, 0 cudaFree\n"
inline std::string memory_stats_line(const DeviceMemoryStats& s) {
  const int64_t allocations = s.cache_hits + s.cache_misses;
  const double mib = 1.0 / (1 << 20);
  char line[256];
  std::snprintf(line, sizeof line,
                "device memory: peak %.1f MiB in use, %.1f MiB reserved; %lld allocations, %.1f%% "
                "from the cache, %lld cudaMalloc, %lld cudaFree\n",
                static_cast<double>(s.peak_bytes_in_use) * mib,
                static_cast<double>(s.bytes_reserved) * mib, static_cast<long long>(allocations),
                allocations > 0 ? 100.0 * static_cast<double>(s.cache_hits) / allocations : 0.0,
                static_cast<long long>(s.raw_allocations), static_cast<long long>(s.raw_frees));
  return line;
}

}  // namespace tessera
