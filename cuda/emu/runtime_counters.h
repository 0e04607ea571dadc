#pragma once
// What the emulated CUDA runtime counts (cuda/emu/runtime_api.h), so tests can assert that a
// steady-state training step makes no host synchronisation and no allocation:
//
//   tessera::emu::reset_runtime_counters();
//   run_step();
//   const auto c = tessera::emu::runtime_counters();
//   EXPECT_EQ(c.synchronisations, 0u) << c.describe();
//   EXPECT_EQ(c.device_allocations, 0u) << c.describe();
//
// Counters are process-wide (every host thread, every emulated device).
#include <cstdint>
#include <map>
#include <string>

namespace tessera::emu {

struct RuntimeCounters {
  // Every point where the host waits for device work: explicit ones (cudaStreamSynchronize,
  // cudaEventSynchronize, cudaDeviceSynchronize) and implicit ones (a device-to-host cudaMemcpy or
  // cudaMemcpyAsync into pageable memory, a host-to-device cudaMemcpy, cudaFree, cudaFreeHost).
  uint64_t synchronisations = 0;
  uint64_t explicit_synchronisations = 0;
  uint64_t implicit_synchronisations = 0;
  // By kind, e.g. "cudaStreamSynchronize", "cudaMemcpyAsync device to pageable host", "cudaFree".
  std::map<std::string, uint64_t> synchronisations_by_kind;
  uint64_t queries = 0;  // cudaStreamQuery / cudaEventQuery (non-blocking)

  uint64_t device_allocations = 0;  // cudaMalloc
  uint64_t pinned_allocations = 0;  // cudaHostAlloc / cudaMallocHost
  uint64_t device_frees = 0;        // cudaFree of a non-null pointer
  uint64_t pinned_frees = 0;        // cudaFreeHost of a non-null pointer
  uint64_t device_bytes_allocated = 0;

  uint64_t h2d_copies = 0;  // cudaMemcpy / cudaMemcpyAsync calls, by direction
  uint64_t d2h_copies = 0;
  uint64_t d2d_copies = 0;
  uint64_t h2d_bytes = 0;
  uint64_t d2h_bytes = 0;
  uint64_t d2d_bytes = 0;
  uint64_t memsets = 0;

  uint64_t launches = 0;            // kernel launches queued (or run at once on the legacy stream)
  uint64_t standin_work = 0;        // vendor stand-in work items (tessera::emu::enqueue)
  uint64_t deferred_items_run = 0;  // work items that ran later than they were queued
  uint64_t queue_cap_runs = 0;      // items run early because a stream reached its queue cap

  // One line per non-zero counter, for failure messages.
  std::string describe() const;
};

RuntimeCounters runtime_counters();
void reset_runtime_counters();

// A test hook: the next `count` cudaMalloc calls (any device, any thread) fail with
// cudaErrorMemoryAllocation, as on a full device, so out-of-memory paths can be tested; 0 clears.
void fail_next_device_allocations(int count);

// The message of the last deferred work item that failed on this host thread's synchronisations
// ("" if none): "<what> on stream #<id> (device <d>): <the tessera::Error's message>".
const std::string& last_deferred_failure();

}  // namespace tessera::emu
