#pragma once
// Fibers: the threads of one emulated block, run cooperatively on one OS thread. A fiber runs
// until it reaches a barrier or warp collective (or returns), then switches back to the block
// scheduler; a switch saves and restores the callee-saved registers only (a few nanoseconds on
// x86-64, hand-written; other CPUs use ucontext).
//
// Stacks are mmap'ed with a PROT_NONE guard page below them, so a kernel that overflows its
// stack faults instead of corrupting a neighbour, and are pooled per OS thread across blocks.
// Under AddressSanitizer every switch is announced (__sanitizer_start/finish_switch_fiber), and
// a stack whose fiber was abandoned mid-kernel is unpoisoned before reuse.
#include <cstddef>
#include <memory>
#include <vector>

namespace tessera::emu {

class FiberStack {
 public:
  explicit FiberStack(size_t usable_bytes);
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;
  ~FiberStack();
  char* bottom() const { return usable_; }  // lowest usable address
  size_t size() const { return usable_bytes_; }
  char* top() const { return usable_ + usable_bytes_; }

 private:
  char* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  char* usable_ = nullptr;
  size_t usable_bytes_ = 0;
};

using FiberEntry = void (*)(void* arg);

struct FiberImpl;  // saved register state; platform specific

class Fiber {
 public:
  Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  ~Fiber();

  // Prepares the fiber to run entry(arg) from the top of `stack` on the next resume(). The
  // entry must not throw and must finish with Fiber::exit_to_scheduler().
  void start(FiberStack* stack, FiberEntry entry, void* arg);
  // From the scheduler: run the fiber until it suspends or exits.
  void resume();
  // From inside a fiber: switch back to the scheduler; resume() continues after this call.
  static void suspend();
  // From inside a fiber, as its last act: switch back for good.
  [[noreturn]] static void exit_to_scheduler();
  // The scheduler drops a suspended fiber (its block failed); its stack may hold poisoned
  // AddressSanitizer frames, which the next start() on that stack clears.
  void abandon();

  bool running() const { return started_ && !exited_; }

 private:
  friend struct FiberTrampoline;
  std::unique_ptr<FiberImpl> impl_;
  FiberStack* stack_ = nullptr;
  FiberEntry entry_ = nullptr;
  void* arg_ = nullptr;
  bool started_ = false;
  bool exited_ = false;
  void* asan_fake_stack_ = nullptr;
};

// Per OS thread: a pool of stacks, grown on demand to the largest block seen.
class FiberStackPool {
 public:
  // Stack bytes per fiber: TESSERA_EMU_STACK_KB, else 64 KiB (256 KiB under AddressSanitizer,
  // whose redzones make frames larger).
  static size_t default_stack_bytes();
  FiberStack* get(size_t index);

 private:
  std::vector<std::unique_ptr<FiberStack>> stacks_;
};

}  // namespace tessera::emu
