// The emulator's GPU cost model (cuda/emu/cost_model.h): the access hooks the instrumented kernel
// sources call, the per-thread logs, and the per-block scoring into warp-level requests.
#include "cuda/emu/cost_model.h"

#include <link.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "cuda/emu/device_functions.h"
#include "cuda/emu/device_memory.h"
#include "host/core/error.h"

#ifndef TESSERA_EMU_COST_MODEL
#define TESSERA_EMU_COST_MODEL 0
#endif

namespace tessera::emu {

namespace {

enum class Space : uint8_t { Global = 0, Shared = 1 };

struct Access {
  const void* pc;
  uintptr_t addr;
  uint32_t size;
  bool write;
  Space space;
};

struct Recorder {
  std::mutex mutex;
  std::map<std::string, KernelCost> costs;
};
std::atomic<Recorder*> g_recorder{nullptr};

// The running block's per-thread logs (blocks run one at a time per OS thread).
struct ThreadLogs {
  std::vector<std::vector<Access>> logs;  // by linear thread index
  std::vector<Access>* current = nullptr;
  uintptr_t stack_lo = 0, stack_hi = 0;  // the running fiber's stack
  uintptr_t smem_lo = 0, smem_hi = 0;    // the block's dynamic shared memory
  uintptr_t tls_lo = 0, tls_hi = 0;      // this OS thread's static TLS block (static __shared__)
  uintptr_t cached_base = 0, cached_end = 0;  // the device allocation last hit
};
thread_local ThreadLogs t_logs;

// The bytes of static TLS all loaded modules have (with alignment slack): on x86-64 (TLS
// variant II) the static block lies just below the thread pointer.
size_t static_tls_bytes() {
  static const size_t bytes = [] {
    size_t total = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          for (int i = 0; i < info->dlpi_phnum; ++i)
            if (info->dlpi_phdr[i].p_type == PT_TLS)
              *static_cast<size_t*>(data) +=
                  info->dlpi_phdr[i].p_memsz + info->dlpi_phdr[i].p_align;
          return 0;
        },
        &total);
    return total + 64;
  }();
  return bytes;
}

uintptr_t thread_pointer() {
#if defined(__x86_64__)
  uintptr_t tp = 0;
  asm("mov %%fs:0, %0" : "=r"(tp));
  return tp;
#else
  return reinterpret_cast<uintptr_t>(__builtin_thread_pointer());
#endif
}

bool emulator_state(uintptr_t a) {
  namespace d = detail;
  const auto in = [a](const void* p, size_t n) {
    const auto b = reinterpret_cast<uintptr_t>(p);
    return a >= b && a < b + n;
  };
  return in(&d::t_thread_idx, sizeof d::t_thread_idx) ||
         in(&d::t_block_idx, sizeof d::t_block_idx) || in(&d::t_block_dim, sizeof d::t_block_dim) ||
         in(&d::t_grid_dim, sizeof d::t_grid_dim) ||
         in(&d::t_dynamic_shared, sizeof d::t_dynamic_shared) ||
         in(&d::t_track_shared_atomics, sizeof d::t_track_shared_atomics);
}

// Logs one access of the running emulated thread; locals and the emulator's own state are not
// memory traffic.
inline void note_access(const void* addr, size_t size, bool write, const void* pc) {
  ThreadLogs& t = t_logs;
  if (t.current == nullptr) return;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  if (a >= t.stack_lo && a < t.stack_hi) return;
  Space space = Space::Shared;
  if (a >= t.cached_base && a < t.cached_end) {
    space = Space::Global;
  } else if (a >= t.smem_lo && a < t.smem_hi) {
    space = Space::Shared;
  } else if (a >= t.tls_lo && a < t.tls_hi) {
    if (emulator_state(a)) return;
    space = Space::Shared;
  } else if (auto alloc = find_device_allocation(addr)) {
    t.cached_base = reinterpret_cast<uintptr_t>(alloc->base);
    t.cached_end = t.cached_base + alloc->bytes;
    space = Space::Global;
  } else {
    return;
  }
  t.current->push_back(Access{pc, a, static_cast<uint32_t>(size), write, space});
}

// One warp-level request: the accesses the lanes made at one call site, n-th time.
struct Request {
  bool write = false;
  Space space = Space::Global;
  std::vector<std::pair<uintptr_t, uint32_t>> lanes;  // address, size
};

void score_global(const Request& r, KernelCost& k) {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;  // [begin, end)
  ranges.reserve(r.lanes.size());
  for (const auto& [a, n] : r.lanes) ranges.emplace_back(a, a + n);
  std::sort(ranges.begin(), ranges.end());
  uint64_t bytes = 0, sectors = 0;
  uintptr_t covered = 0, last_sector = ~uintptr_t{0};
  for (const auto& [b, e] : ranges) {
    const uintptr_t from = std::max(b, covered);
    if (e > from) bytes += e - from;
    covered = std::max(covered, e);
    for (uintptr_t s = b >> 5; s <= (e - 1) >> 5; ++s) {
      if (last_sector != ~uintptr_t{0} && s <= last_sector) continue;
      ++sectors;
      last_sector = s;
    }
  }
  ++k.global_requests;
  k.global_sectors += sectors;
  k.global_bytes_requested += bytes;
  (r.write ? k.global_bytes_written : k.global_bytes_read) += sectors * 32;
}

void score_shared(const Request& r, KernelCost& k) {
  std::vector<uintptr_t> words;
  for (const auto& [a, n] : r.lanes)
    for (uintptr_t w = a >> 2; w <= (a + n - 1) >> 2; ++w) words.push_back(w);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  int per_bank[32] = {};
  for (uintptr_t w : words) ++per_bank[w % 32];
  const int wavefronts = std::max(1, *std::max_element(per_bank, per_bank + 32));
  ++k.shared_requests;
  k.shared_wavefronts += static_cast<uint64_t>(wavefronts);
  k.shared_ideal_wavefronts += std::max<uint64_t>(1, (words.size() + 31) / 32);
}

// Groups one warp's logs into requests (same call site, same occurrence) and scores them.
void score_warp(std::vector<std::vector<Access>>& logs, size_t first, size_t last, KernelCost& k) {
  std::map<std::pair<const void*, uint32_t>, Request> requests;
  for (size_t lane = first; lane < last; ++lane) {
    std::unordered_map<const void*, uint32_t> seen;
    for (const Access& a : logs[lane]) {
      Request& r = requests[{a.pc, seen[a.pc]++}];
      r.write = a.write;
      r.space = a.space;
      r.lanes.emplace_back(a.addr, a.size);
    }
  }
  for (const auto& entry : requests) {
    if (entry.second.space == Space::Global)
      score_global(entry.second, k);
    else
      score_shared(entry.second, k);
  }
}

}  // namespace

bool cost_model_available() {
  return TESSERA_EMU_COST_MODEL != 0;
}

double KernelCost::sector_efficiency() const {
  return global_sectors == 0 ? 1.0
                             : static_cast<double>(global_bytes_requested) /
                                   (static_cast<double>(global_sectors) * 32.0);
}
double KernelCost::bank_conflicts_per_request() const {
  return shared_requests == 0 ? 0.0
                              : static_cast<double>(shared_wavefronts - shared_ideal_wavefronts) /
                                    static_cast<double>(shared_requests);
}
double KernelCost::imbalance() const {
  if (threads == 0 || thread_accesses == 0) return 1.0;
  return static_cast<double>(max_thread_accesses) /
         (static_cast<double>(thread_accesses) / static_cast<double>(threads));
}

CostModelScope::CostModelScope() {
  Recorder* expected = nullptr;
  auto* r = new Recorder();
  if (!g_recorder.compare_exchange_strong(expected, r)) {
    delete r;
    TESSERA_THROW(Usage, "a CostModelScope is already recording");
  }
}

CostModelScope::~CostModelScope() {
  delete g_recorder.exchange(nullptr);
}

std::vector<KernelCost> CostModelScope::costs() const {
  Recorder* r = g_recorder.load();
  std::vector<KernelCost> out;
  if (!r) return out;
  std::lock_guard<std::mutex> lock(r->mutex);
  for (const auto& entry : r->costs) out.push_back(entry.second);
  return out;
}

void record_vendor_work(const char* entry_point, double flops, double bytes_read,
                        double bytes_written) {
  Recorder* r = g_recorder.load();
  if (!r) return;
  std::lock_guard<std::mutex> lock(r->mutex);
  KernelCost& k = r->costs[entry_point];
  k.kernel = entry_point;
  k.vendor = true;
  ++k.blocks;
  k.flops += flops;
  k.global_bytes_read += static_cast<uint64_t>(bytes_read);
  k.global_bytes_written += static_cast<uint64_t>(bytes_written);
}

namespace cost_detail {

void thread_resumed(int linear_thread, int nthreads, const void* stack_lo, const void* stack_hi,
                    const void* dynamic_shared, size_t dynamic_shared_bytes) {
  if (g_recorder.load(std::memory_order_relaxed) == nullptr) return;
  ThreadLogs& t = t_logs;
  if (t.logs.size() < static_cast<size_t>(nthreads)) t.logs.resize(static_cast<size_t>(nthreads));
  t.current = &t.logs[static_cast<size_t>(linear_thread)];
  t.stack_lo = reinterpret_cast<uintptr_t>(stack_lo);
  t.stack_hi = reinterpret_cast<uintptr_t>(stack_hi);
  t.smem_lo = reinterpret_cast<uintptr_t>(dynamic_shared);
  t.smem_hi = t.smem_lo + dynamic_shared_bytes;
  t.tls_hi = thread_pointer();
  t.tls_lo = t.tls_hi - static_tls_bytes();
}

void thread_suspended() {
  t_logs.current = nullptr;
}

void block_done(const char* kernel, int nthreads) {
  ThreadLogs& t = t_logs;
  t.current = nullptr;
  Recorder* r = g_recorder.load();
  if (r == nullptr) return;
  KernelCost block;
  const size_t n = std::min(t.logs.size(), static_cast<size_t>(nthreads));
  for (size_t w = 0; w < n; w += 32) score_warp(t.logs, w, std::min(n, w + 32), block);
  for (size_t i = 0; i < n; ++i) {
    block.max_thread_accesses = std::max<uint64_t>(block.max_thread_accesses, t.logs[i].size());
    block.thread_accesses += t.logs[i].size();
    t.logs[i].clear();
  }
  std::lock_guard<std::mutex> lock(r->mutex);
  KernelCost& k = r->costs[kernel];
  k.kernel = kernel;
  ++k.blocks;
  k.threads += n;
  k.global_requests += block.global_requests;
  k.global_sectors += block.global_sectors;
  k.global_bytes_requested += block.global_bytes_requested;
  k.global_bytes_read += block.global_bytes_read;
  k.global_bytes_written += block.global_bytes_written;
  k.shared_requests += block.shared_requests;
  k.shared_wavefronts += block.shared_wavefronts;
  k.shared_ideal_wavefronts += block.shared_ideal_wavefronts;
  k.max_thread_accesses = std::max(k.max_thread_accesses, block.max_thread_accesses);
  k.thread_accesses += block.thread_accesses;
}

}  // namespace cost_detail
}  // namespace tessera::emu

// ---- the hooks the instrumented kernel sources call
// ---------------------------------------------- GCC's -fsanitize=kernel-address with
// asan-instrumentation-with-call-threshold=0 turns every load and store into a call of these (the
// _noabort spellings: kernel-address recovers by default). Only in the cost-model build: under
// AddressSanitizer the runtime defines these names itself.
#if TESSERA_EMU_COST_MODEL
#define TESSERA_EMU_HOOKS(n)                                             \
  extern "C" void __asan_load##n##_noabort(void* p) {                    \
    tessera::emu::note_access(p, n, false, __builtin_return_address(0)); \
  }                                                                      \
  extern "C" void __asan_store##n##_noabort(void* p) {                   \
    tessera::emu::note_access(p, n, true, __builtin_return_address(0));  \
  }                                                                      \
  extern "C" void __asan_load##n(void* p) {                              \
    tessera::emu::note_access(p, n, false, __builtin_return_address(0)); \
  }                                                                      \
  extern "C" void __asan_store##n(void* p) {                             \
    tessera::emu::note_access(p, n, true, __builtin_return_address(0));  \
  }
TESSERA_EMU_HOOKS(1)
TESSERA_EMU_HOOKS(2)
TESSERA_EMU_HOOKS(4)
TESSERA_EMU_HOOKS(8)
TESSERA_EMU_HOOKS(16)
#undef TESSERA_EMU_HOOKS
extern "C" void __asan_loadN_noabort(void* p, size_t n) {
  tessera::emu::note_access(p, n, false, __builtin_return_address(0));
}
extern "C" void __asan_storeN_noabort(void* p, size_t n) {
  tessera::emu::note_access(p, n, true, __builtin_return_address(0));
}
extern "C" void __asan_loadN(void* p, size_t n) {
  tessera::emu::note_access(p, n, false, __builtin_return_address(0));
}
extern "C" void __asan_storeN(void* p, size_t n) {
  tessera::emu::note_access(p, n, true, __builtin_return_address(0));
}
extern "C" void __asan_handle_no_return() {}
#endif
