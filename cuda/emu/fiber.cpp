#include "cuda/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "host/core/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define TESSERA_EMU_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define TESSERA_EMU_ASAN 0
#endif

#if defined(__x86_64__) && !defined(TESSERA_EMU_FORCE_UCONTEXT)
#define TESSERA_EMU_X86_64_SWITCH 1
#else
#define TESSERA_EMU_X86_64_SWITCH 0
#include <ucontext.h>
#endif

namespace tessera::emu {

// ---- stacks ------------------------------------------------------------------------------------

FiberStack::FiberStack(size_t usable_bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  usable_bytes_ = (usable_bytes + page - 1) / page * page;
  mapping_bytes_ = usable_bytes_ + page;
  void* p = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    TESSERA_THROW(Backend, "CUDA emulator: cannot map a " << mapping_bytes_
                                                          << "-byte fiber stack: "
                                                          << std::strerror(errno));
  mapping_ = static_cast<char*>(p);
  // Stacks grow down: the guard page sits below the usable range.
  if (mprotect(mapping_, page, PROT_NONE) != 0) {
    int err = errno;
    munmap(mapping_, mapping_bytes_);
    TESSERA_THROW(Backend, "CUDA emulator: cannot protect a fiber stack guard page: "
                               << std::strerror(err));
  }
  usable_ = mapping_ + page;
}

FiberStack::~FiberStack() {
  if (mapping_) munmap(mapping_, mapping_bytes_);
}

size_t FiberStackPool::default_stack_bytes() {
  if (const char* env = std::getenv("TESSERA_EMU_STACK_KB")) {
    char* end = nullptr;
    long kb = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && kb >= 16 && kb <= 65536) return static_cast<size_t>(kb) << 10;
    TESSERA_THROW(Config, "TESSERA_EMU_STACK_KB='" << env
                                                  << "' is not a size in KiB between 16 and 65536");
  }
  return TESSERA_EMU_ASAN ? (256u << 10) : (64u << 10);
}

FiberStack* FiberStackPool::get(size_t index) {
  while (stacks_.size() <= index)
    stacks_.push_back(std::make_unique<FiberStack>(default_stack_bytes()));
  return stacks_[index].get();
}

// ---- the switch --------------------------------------------------------------------------------

namespace {

thread_local Fiber* t_current = nullptr;
#if TESSERA_EMU_ASAN
thread_local const void* t_sched_stack_bottom = nullptr;
thread_local size_t t_sched_stack_size = 0;
thread_local void* t_sched_fake_stack = nullptr;
#endif

}  // namespace

#if TESSERA_EMU_X86_64_SWITCH

struct FiberImpl {
  void* sp = nullptr;
};

namespace {
thread_local void* t_sched_sp = nullptr;
}

}  // namespace tessera::emu

extern "C" {
// Saves rbp, rbx, r12-r15, MXCSR and the x87 control word on the current stack, stores the stack
// pointer to *save_sp, loads load_sp and restores the same set from there.
void tessera_emu_switch(void** save_sp, void* load_sp);
// First instruction of a new fiber (reached by tessera_emu_switch's ret): r12 holds the Fiber*.
void tessera_emu_fiber_entry();
void tessera_emu_fiber_main(tessera::emu::Fiber* fiber);
}

asm(R"(
  .text
  .globl tessera_emu_switch
  .type tessera_emu_switch,@function
  .p2align 4
tessera_emu_switch:
  .cfi_startproc
  endbr64
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size tessera_emu_switch,.-tessera_emu_switch

  .globl tessera_emu_fiber_entry
  .type tessera_emu_fiber_entry,@function
  .p2align 4
tessera_emu_fiber_entry:
  .cfi_startproc
  .cfi_undefined rip
  endbr64
  movq %r12, %rdi
  xorl %ebp, %ebp
  call tessera_emu_fiber_main@PLT
  ud2
  .cfi_endproc
  .size tessera_emu_fiber_entry,.-tessera_emu_fiber_entry
)");

namespace tessera::emu {

namespace {
void switch_to(void** save, void* load) { tessera_emu_switch(save, load); }
}  // namespace

#else  // ucontext fallback

struct FiberImpl {
  ucontext_t ctx;
};

namespace {
thread_local ucontext_t t_sched_ctx;
}

}  // namespace tessera::emu

extern "C" void tessera_emu_fiber_main(tessera::emu::Fiber* fiber);

namespace tessera::emu {
namespace {
void ucontext_trampoline(unsigned hi, unsigned lo) {
  uintptr_t p = (static_cast<uintptr_t>(hi) << 32) | lo;
  tessera_emu_fiber_main(reinterpret_cast<Fiber*>(p));
}
}  // namespace

#endif

// Friend of Fiber: the body every fiber starts in.
struct FiberTrampoline {
  static void run(Fiber* f) {
#if TESSERA_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &t_sched_stack_bottom, &t_sched_stack_size);
#endif
    f->entry_(f->arg_);
    Fiber::exit_to_scheduler();
  }
};

Fiber::Fiber() : impl_(std::make_unique<FiberImpl>()) {}
Fiber::~Fiber() = default;

void Fiber::start(FiberStack* stack, FiberEntry entry, void* arg) {
  stack_ = stack;
  entry_ = entry;
  arg_ = arg;
  started_ = true;
  exited_ = false;
  asan_fake_stack_ = nullptr;
#if TESSERA_EMU_X86_64_SWITCH
  // Initial frame, as tessera_emu_switch leaves it (low to high):
  //   [mxcsr, fcw] r15 r14 r13 r12=Fiber* rbx rbp=0 ret=tessera_emu_fiber_entry
  // placed so that rsp is 16-byte aligned after the ret (the entry then makes an aligned call).
  uintptr_t top = reinterpret_cast<uintptr_t>(stack->top()) & ~uintptr_t{15};
  auto* frame = reinterpret_cast<uint64_t*>(top - 80);
  uint32_t mxcsr = 0;
  uint16_t fcw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  frame[0] = static_cast<uint64_t>(mxcsr) | (static_cast<uint64_t>(fcw) << 32);
  frame[1] = 0;                                   // r15
  frame[2] = 0;                                   // r14
  frame[3] = 0;                                   // r13
  frame[4] = reinterpret_cast<uint64_t>(this);    // r12
  frame[5] = 0;                                   // rbx
  frame[6] = 0;                                   // rbp: ends frame-pointer walks
  frame[7] = reinterpret_cast<uint64_t>(&tessera_emu_fiber_entry);
  frame[8] = 0;
  frame[9] = 0;
  impl_->sp = frame;
#else
  if (getcontext(&impl_->ctx) != 0) TESSERA_THROW(Backend, "CUDA emulator: getcontext failed");
  impl_->ctx.uc_stack.ss_sp = stack->bottom();
  impl_->ctx.uc_stack.ss_size = stack->size();
  impl_->ctx.uc_link = nullptr;
  uintptr_t p = reinterpret_cast<uintptr_t>(this);
  makecontext(&impl_->ctx, reinterpret_cast<void (*)()>(&ucontext_trampoline), 2,
              static_cast<unsigned>(p >> 32), static_cast<unsigned>(p & 0xffffffffu));
#endif
}

void Fiber::resume() {
  t_current = this;
#if TESSERA_EMU_ASAN
  __sanitizer_start_switch_fiber(&t_sched_fake_stack, stack_->bottom(), stack_->size());
#endif
#if TESSERA_EMU_X86_64_SWITCH
  switch_to(&t_sched_sp, impl_->sp);
#else
  swapcontext(&t_sched_ctx, &impl_->ctx);
#endif
#if TESSERA_EMU_ASAN
  __sanitizer_finish_switch_fiber(t_sched_fake_stack, nullptr, nullptr);
#endif
  t_current = nullptr;
}

void Fiber::suspend() {
  Fiber* f = t_current;
#if TESSERA_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake_stack_, t_sched_stack_bottom, t_sched_stack_size);
#endif
#if TESSERA_EMU_X86_64_SWITCH
  switch_to(&f->impl_->sp, t_sched_sp);
#else
  swapcontext(&f->impl_->ctx, &t_sched_ctx);
#endif
#if TESSERA_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake_stack_, &t_sched_stack_bottom,
                                  &t_sched_stack_size);
#endif
}

void Fiber::exit_to_scheduler() {
  Fiber* f = t_current;
  f->exited_ = true;
#if TESSERA_EMU_ASAN
  // nullptr: this fiber's fake stack (if any) is freed; it never runs again.
  __sanitizer_start_switch_fiber(nullptr, t_sched_stack_bottom, t_sched_stack_size);
#endif
#if TESSERA_EMU_X86_64_SWITCH
  void* discard = nullptr;
  switch_to(&discard, t_sched_sp);
#else
  setcontext(&t_sched_ctx);
#endif
  __builtin_unreachable();
}

void Fiber::abandon() {
  exited_ = true;
#if TESSERA_EMU_ASAN
  // The dropped frames' redzones stay poisoned in the shadow; clear them so the next fiber on
  // this stack is not reported for touching them.
  if (stack_) __asan_unpoison_memory_region(stack_->bottom(), stack_->size());
#endif
}

}  // namespace tessera::emu

extern "C" void tessera_emu_fiber_main(tessera::emu::Fiber* fiber) {
  tessera::emu::FiberTrampoline::run(fiber);
}
