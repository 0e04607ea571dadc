#pragma once
// The emulator's GPU cost model: what each kernel launch would cost a real GPU's memory system.
//
// In a build with the model (TESSERA_EMU_COST_MODEL: the emulation build without sanitizers, on
// GCC), the kernel sources are compiled with GCC's kernel-address instrumentation in call mode, so
// every load and store a kernel makes calls a hook here with its address, size and call site.
// While a CostModelScope is alive, the hooks log each emulated thread's accesses; when a block
// ends its accesses are grouped into warp-level memory requests (the lanes of one warp executing
// the same instruction — the same call site — for the n-th time) and scored:
//   - global memory (emulated device allocations): bytes requested, distinct 32-byte sectors
//     touched per request (what Nsight Compute reports as sectors per request), and the sector
//     efficiency = bytes the lanes asked for / (sectors x 32);
//   - shared memory (dynamic shared memory, and static __shared__ arrays: in the emulator those are
//     thread_local, so an access into this OS thread's static TLS block that is not the emulator's
//     own state): bank conflicts, as the number
//     of extra wavefronts (per request: the most distinct 4-byte words that fall in one of the 32
//     banks, minus one);
//   - work imbalance: memory instructions executed by the busiest thread / by the average thread.
// Anything else (a thread's own stack: kernel locals and parameters; the launch's parameter
// block; __device__ globals, which tessera's kernels do not use) is not counted.
// Limits (say them when quoting numbers): no caches (every sector touched is DRAM traffic, so
// reuse through L1/L2 is not credited), divergent lanes that execute one call site different
// numbers of times are grouped by occurrence, and arithmetic is not counted (FLOPs of the vendor
// calls are recorded by their stand-ins with record_vendor_work()).
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::emu {

// Whether this build's kernels carry the instrumentation (false: the hooks never fire).
bool cost_model_available();

struct KernelCost {
  std::string kernel;   // kernel name, or a vendor entry point ("cublasSgemm_64")
  bool vendor = false;  // a stand-in's record_vendor_work, not an instrumented kernel
  uint64_t blocks = 0;  // blocks run (kernels) / calls (vendor)
  uint64_t threads = 0;
  uint64_t global_requests = 0;         // warp-level global memory instructions
  uint64_t global_sectors = 0;          // 32-byte sectors those requests touched
  uint64_t global_bytes_requested = 0;  // distinct bytes the lanes asked for, summed per request
  uint64_t global_bytes_read = 0;       // sectors x 32 of the loads
  uint64_t global_bytes_written = 0;    // sectors x 32 of the stores
  uint64_t shared_requests = 0;
  uint64_t shared_wavefronts = 0;        // what the requests took, with bank conflicts
  uint64_t shared_ideal_wavefronts = 0;  // what they would take without: distinct words / 32
  uint64_t max_thread_accesses = 0;      // memory instructions of the busiest thread
  uint64_t thread_accesses = 0;          // over all threads (the mean is this / threads)
  double flops = 0;                      // vendor calls only

  double sector_efficiency() const;  // global_bytes_requested / (global_sectors * 32); 1 if none
  double bank_conflicts_per_request() const;  // extra wavefronts per shared request
  double imbalance() const;                   // max_thread_accesses / mean
};

// Records costs while alive (one at a time, process-wide; blocks run on the thread that made it).
class CostModelScope {
 public:
  CostModelScope();
  ~CostModelScope();
  CostModelScope(const CostModelScope&) = delete;
  CostModelScope& operator=(const CostModelScope&) = delete;
  // Per kernel (and vendor entry point), sorted by name: what was recorded so far.
  std::vector<KernelCost> costs() const;
};

// For the vendor stand-ins: one call's arithmetic and the bytes it must move at least (its
// operands read once, its results written once). Ignored when no CostModelScope is alive.
void record_vendor_work(const char* entry_point, double flops, double bytes_read,
                        double bytes_written);

// Called by the block runner (cuda/emu/block_runner.cpp) around each fiber segment and at the end
// of each block; no-ops when no scope is alive.
namespace cost_detail {
void thread_resumed(int linear_thread, int nthreads, const void* stack_lo, const void* stack_hi,
                    const void* dynamic_shared, size_t dynamic_shared_bytes);
void thread_suspended();
void block_done(const char* kernel, int nthreads);
}  // namespace cost_detail

}  // namespace tessera::emu
