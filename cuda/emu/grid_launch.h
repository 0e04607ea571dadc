#pragma once
// One emulated kernel launch: configuration checks like the device's, the blocks run one after
// another on the calling thread (BlockRunner), optional checks, and per-kernel statistics for the
// report. launch_emu.h (the launcher twin) builds a LaunchRequest from a TESSERA_LAUNCH.
//
// Checks (EmulatorChecks; all on unless TESSERA_EMU_CHECKS or set_checks() says otherwise):
//   schedule      run the launch twice, first in forward block and thread order, then in reverse,
//                 on the same inputs, and compare every device allocation the kernel can reach
//                 (the ones its pointer arguments point into; all of them when an argument is a
//                 struct that may hold pointers). A difference means the result depends on the
//                 order threads run: a missing __syncthreads()/__syncwarp() before reading what
//                 another thread wrote, or a race. f32 allocations are compared with a tolerance
//                 (atomicAdd order changes rounding): |a-b| <= 1e-5 + 1e-4*max(|a|,|b|).
//   shared_races  SharedRaceDetector on dynamic shared memory.
//   pointer_args  every raw-pointer argument is null or points into emulated device memory.
// TESSERA_EMU_CHECKS: "all" (default), "none", or a comma list of schedule, shared_races,
// pointer_args.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuda/emu/block_runner.h"
#include "cuda/emu/device_memory.h"
#include "cuda/emu/runtime_api.h"

namespace tessera::emu {

struct EmulatorChecks {
  bool schedule = true;
  bool shared_races = true;
  bool pointer_args = true;
};
EmulatorChecks checks();
void set_checks(const EmulatorChecks& c);

// Restores the previous checks when it goes out of scope (tests).
class ScopedChecks {
 public:
  explicit ScopedChecks(const EmulatorChecks& c) : saved_(checks()) { set_checks(c); }
  ~ScopedChecks() { set_checks(saved_); }
  ScopedChecks(const ScopedChecks&) = delete;
  ScopedChecks& operator=(const ScopedChecks&) = delete;

 private:
  EmulatorChecks saved_;
};

// A kernel whose output legitimately depends on thread order (e.g. slots handed out by an
// atomic counter) skips the schedule check; the reason is shown in the report.
void exempt_from_schedule_check(const std::string& kernel, const std::string& reason);

struct PointerArgument {
  int index = 0;  // parameter position, for messages
  const void* value = nullptr;
  ElementKind kind = ElementKind::Bytes;  // the pointee type (float* -> F32, ...)
};

struct LaunchRequest {
  const char* kernel = "";
  const void* kernel_address = nullptr;  // for cudaFuncSetAttribute limits
  dim3 grid;
  dim3 block;
  size_t dynamic_smem = 0;
  KernelInvocation body;
  std::vector<PointerArgument> pointer_args;
  bool has_aggregate_args = false;  // a class-type argument may carry pointers
  // Owns what body.closure points to (the kernel's parameters, copied at the launch), so a launch
  // queued on a stream can run after the launching call returned.
  std::shared_ptr<const void> owner;
};

// What a launch reports at the launching call, before it is queued: a launch from inside a
// kernel, a bad configuration, a pointer argument outside device memory. Throws tessera::Error
// (kind Backend, Usage for the first) naming the kernel, and counts a failed launch. Also
// appends the kernel's name to the launch sink (set_launch_sink).
void validate_launch(const LaunchRequest& request);

// Runs the launch to completion, or throws tessera::Error (kind Backend) naming the kernel.
// Streams call this when the launch's turn comes (stream_model.h: launch_on_stream).
void launch(const LaunchRequest& request);

// While set, the name of every kernel launched (queued) on this OS thread is appended to *sink
// (the emulated backend records which kernels each op ran). nullptr clears it.
void set_launch_sink(std::vector<std::string>* sink);

// Per-kernel statistics since the process started (or reset_kernel_stats()).
struct KernelStats {
  std::string kernel;
  uint64_t launches = 0;
  uint64_t failed_launches = 0;
  uint64_t blocks = 0;
  uint64_t threads = 0;
  uint64_t barriers = 0;
  uint64_t warp_collectives = 0;
  uint64_t schedule_checked = 0;  // launches run in both orders and compared
  std::string schedule_exemption;
  std::string first_error;
};
std::vector<KernelStats> kernel_stats();  // sorted by kernel name
void reset_kernel_stats();
// A fixed-width table of kernel_stats(), one line per kernel, for test logs.
std::string format_kernel_report();

namespace detail {
size_t max_dynamic_smem(const void* kernel_address);
size_t static_smem(const void* kernel_address);  // declare_static_shared_bytes (runtime_api.h)
}  // namespace detail

}  // namespace tessera::emu
