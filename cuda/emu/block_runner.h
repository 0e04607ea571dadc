#pragma once
// Runs one CUDA thread block on the CPU: one fiber per thread, all on the calling OS thread.
//
// Scheduling: a ready queue in thread order (ScheduleOrder::Forward: linear thread id 0, 1, ...;
// Reverse: the other way round). A fiber runs until it reaches __syncthreads() or a warp
// collective, or returns; the last thread to arrive at a barrier (or the last lane a warp
// collective waits for) puts every waiter back on the queue in thread order. The order only
// changes which of several legal interleavings happens; grid_launch.cpp runs a launch in both
// orders and compares the results, which exposes code whose result depends on it.
//
// Bug finders (each a tessera::Error naming the kernel and block, and the thread where known):
//   - a barrier not reached by all threads of the block (some exited, or wait elsewhere) is
//     reported when nothing can run any more, instead of hanging:
//       "kernel <name>, block (x,y,z): barrier not reached by all threads: ..."
//   - threads of one block arriving at different __syncthreads() call sites;
//   - warp collectives: a mask without the calling lane, lanes of one warp passing different
//     masks or calling different collectives, a width that is not a power of two <= 32, and a
//     collective that waits for lanes which never come;
//   - two threads writing the same dynamic shared-memory byte between two barriers
//     (SharedRaceDetector, when enabled);
//   - an exception or __trap() inside the kernel, and a kernel launched from inside a kernel.
// A shuffle that reads a lane which is not taking part (outside the mask, exited, or past the
// end of a partial warp) gets a poison value (NaN as a float, 0x7FBADBAD as an int), as the
// hardware leaves it undefined.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cuda/emu/device_functions.h"
#include "cuda/emu/fiber.h"
#include "cuda/emu/shared_race_detector.h"

namespace tessera::emu {

enum class ScheduleOrder : uint8_t { Forward = 0, Reverse = 1 };

// The kernel call, type-erased: invoke(closure) runs the kernel body for the current thread.
struct KernelInvocation {
  void (*invoke)(const void* closure) = nullptr;
  const void* closure = nullptr;
};

struct BlockCounters {
  uint64_t threads = 0;
  uint64_t barriers = 0;          // completed __syncthreads() (one per block and barrier)
  uint64_t warp_collectives = 0;  // completed warp collectives (one per warp and call)
};

struct BlockLaunch {
  const char* kernel = "";
  dim3 grid;
  dim3 block;
  size_t dynamic_smem = 0;
  KernelInvocation body;
  bool shared_race_check = false;
};

class BlockRunner {
 public:
  // The runner of the calling OS thread (blocks run one at a time per OS thread).
  static BlockRunner& for_this_thread();
  // Whether the calling thread's runner has been destroyed (the thread, or the process, is
  // exiting): no kernel can run on this thread any more.
  static bool unloading();
  // Whether the caller is itself inside an emulated kernel (a launch from there is an error).
  static bool inside_kernel();

  BlockRunner();
  ~BlockRunner();
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  void run_block(const BlockLaunch& launch, uint3 block_idx, ScheduleOrder order,
                 BlockCounters& counters);

  // Called from device functions on the running fiber.
  int arrive_barrier(detail::BarrierKind kind, int predicate, const char* file, int line);
  uint64_t arrive_warp(detail::WarpOpKind op, unsigned mask, uint64_t value, unsigned value_bytes,
                       int arg, int width, const char* file, int line);
  unsigned active_mask() const;
  void note_shared_atomic(const void* address, size_t bytes) { races_.note_atomic(address, bytes); }

  // For the crash handler: "kernel K, block (x,y,z), thread (x,y,z)" of the fiber running on
  // this OS thread, or false when none is. Formats into buf without allocating.
  static bool describe_running_thread(char* buf, size_t size);

 private:
  enum class State : uint8_t { Ready, AtBarrier, AtWarp, Exited };
  struct Thread {
    uint3 idx{0, 0, 0};
    int linear = 0;
    int warp = 0;
    int lane = 0;
    State state = State::Ready;
    const char* wait_file = "";
    int wait_line = 0;
    detail::WarpOpKind wait_op = detail::WarpOpKind::SyncWarp;
    int barrier_result = 0;
    uint64_t warp_result = 0;
    std::exception_ptr error;
    Fiber fiber;
    BlockRunner* runner = nullptr;
  };
  struct PendingWarpOp {
    detail::WarpOpKind op = detail::WarpOpKind::SyncWarp;
    unsigned mask = 0;
    unsigned arrived = 0;
    unsigned value_bytes = 0;
    int first_lane = 0;
    const char* file = "";
    int line = 0;
    uint64_t in[32] = {};
    int arg[32] = {};
    int width[32] = {};
  };
  struct Warp {
    unsigned live = 0;  // lanes that exist and have not exited
    std::vector<PendingWarpOp> pending;
  };
  struct Barrier {
    int arrived = 0;
    detail::BarrierKind kind = detail::BarrierKind::Sync;
    const char* file = "";
    int line = 0;
    int first_thread = 0;
    int count = 0;
  };

  static void thread_main(void* arg);
  Thread& current();
  void push_ready(Thread& t);
  void release_in_order(const int* linear_ids, size_t count);
  void complete_warp_op(int warp, size_t pending_index);
  void try_complete_warp_ops(int warp);
  void on_thread_exit(Thread& t);
  [[noreturn]] void report_stall();
  std::string block_name() const;
  std::string thread_name(const Thread& t) const;
  std::string thread_list(const std::vector<int>& linear_ids) const;
  void abandon_all() noexcept;
  void prepare_shared_memory();
  // The steps of run_block.
  void reset_block_state();
  void start_threads();
  void run_next_ready();
  void check_shared_race(const Thread& t);
  [[noreturn]] void rethrow_thread_error(const Thread& t) const;

  FiberStackPool stacks_;
  std::vector<std::unique_ptr<Thread>> threads_;
  std::vector<Warp> warps_;
  std::vector<int> ready_;    // ring buffer of linear ids
  std::vector<int> all_ids_;  // 0 .. nthreads_-1
  size_t ready_head_ = 0;
  size_t ready_count_ = 0;
  Barrier barrier_;
  int nthreads_ = 0;
  int live_ = 0;
  const BlockLaunch* launch_ = nullptr;
  uint3 block_idx_{0, 0, 0};
  ScheduleOrder order_ = ScheduleOrder::Forward;
  BlockCounters* counters_ = nullptr;
  unsigned char* smem_ = nullptr;  // this launch's dynamic shared memory (exact size)
  size_t smem_bytes_ = 0;
  SharedRaceDetector races_;
};

// A printable thread / block index.
std::string dim_str(const uint3& v);
std::string dim_str(const dim3& v);

}  // namespace tessera::emu
