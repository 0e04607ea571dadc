#pragma once
// Finds two threads of a block writing the same byte of dynamic shared memory between the same
// two barriers, without instrumenting the kernel: only one fiber runs at a time, so comparing
// shared memory with a shadow copy after each fiber's run (until its next barrier, warp
// collective or exit) yields exactly the bytes that fiber changed.
//
// Rules (per byte):
//   - a write by thread B after a write by thread A in the same barrier interval is a race,
//     unless A and B are lanes of one warp and a warp collective (__syncwarp, a shuffle, ...)
//     completed in that warp in between, or both writes were atomics;
//   - a write that stores the value already there is invisible (and harmless);
//   - reads are not observed; a read racing with a write (the missing-__syncthreads pattern)
//     is what the schedule check (grid_launch.h) catches instead.
// Static __shared__ arrays are not observed (their storage is a thread_local the emulator
// cannot enumerate); they are covered by the schedule check and UBSan's bounds checks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace tessera::emu {

struct SharedRace {
  int first_thread = -1;   // linear thread ids
  int second_thread = -1;
  size_t byte = 0;         // offset into dynamic shared memory
  uint32_t interval = 0;   // barriers completed in the block before the writes
  bool mixed_atomic = false;
};

class SharedRaceDetector {
 public:
  // `base` is the block's dynamic shared memory after it was filled with the poison pattern.
  void begin_block(const unsigned char* base, size_t bytes, int warps);
  void note_atomic(const void* address, size_t bytes);
  // After `thread` (linear id) ran a segment: the first race it completed, if any.
  std::optional<SharedRace> after_segment(int thread, int warp);
  // Called when a fiber is about to run; its writes are attributed when it stops.
  void begin_segment() { in_segment_ = true; }
  // A barrier or warp collective completed. Inside a segment (the last arrival completes it) the
  // new interval starts after that fiber's writes, which belong to the old one.
  void on_barrier();
  void on_warp_sync(int warp);
  bool active() const { return base_ != nullptr && bytes_ > 0; }

 private:
  struct ByteOwner {
    int32_t thread = -1;  // linear id of the last writer, -1: none since the block began
    int32_t warp = -1;
    uint32_t epoch = 0;       // barrier interval of that write
    uint32_t warp_epoch = 0;  // the writer's warp collectives completed before that write
    bool atomic = false;
  };
  bool in_atomic_range(size_t offset) const;

  const unsigned char* base_ = nullptr;
  size_t bytes_ = 0;
  std::vector<unsigned char> shadow_;
  std::vector<ByteOwner> owners_;
  std::vector<uint32_t> warp_epoch_;
  uint32_t epoch_ = 0;
  std::vector<std::pair<size_t, size_t>> atomic_ranges_;  // [begin, end) offsets, this segment
  bool in_segment_ = false;
  uint32_t pending_barriers_ = 0;
  std::vector<int> pending_warp_syncs_;
};

}  // namespace tessera::emu
