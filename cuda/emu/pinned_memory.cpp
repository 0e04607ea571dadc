// Pinned host memory and the pending-copy guard (pinned_memory.h).
#include "cuda/emu/pinned_memory.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cuda/emu/block_runner.h"

namespace tessera::emu::detail {

namespace {

constexpr unsigned char kPoison = 0xFF;
constexpr int kGuardSlots = 1024;

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
uintptr_t page_down(uintptr_t a) {
  return a & ~(page_size() - 1);
}
uintptr_t page_up(uintptr_t a) {
  return page_down(a + page_size() - 1);
}

// A pending write; read by the signal handler without a lock (begin/end are written before
// `used` is set and cleared after it is reset).
struct GuardSlot {
  std::atomic<bool> used{false};
  uintptr_t begin = 0;
  uintptr_t end = 0;
  char stream[96] = {};
};

struct Pinned {
  std::mutex mutex;
  std::map<uintptr_t, size_t> allocations;   // base -> bytes asked for (mapped: page-rounded)
  std::map<uintptr_t, int> protected_pages;  // page -> pending writes covering it
  GuardSlot slots[kGuardSlots];
  struct sigaction previous {};
  bool handler_installed = false;
};
Pinned& pinned() {
  static Pinned* p = new Pinned();  // never destroyed: the signal handler may still read it
  return *p;
}

void write_stderr(const char* text, size_t n) {
  while (n > 0) {
    const ssize_t w = write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

bool fault_was_write(void* context) {
#if defined(__x86_64__) && defined(REG_ERR)
  const auto* uc = static_cast<const ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
  (void)context;
  return false;
#endif
}

void forward_to_previous(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = pinned().previous;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
    prev.sa_handler(sig);
    return;
  }
  // Default action: re-run the faulting instruction without this handler.
  sigaction(SIGSEGV, &prev, nullptr);
}

void segv_handler(int sig, siginfo_t* info, void* context) {
  Pinned& p = pinned();
  const auto a = reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr);
  for (GuardSlot& s : p.slots) {
    if (!s.used.load(std::memory_order_acquire)) continue;
    if (a >= s.begin && a < s.end) {
      char msg[512];
      const int n = std::snprintf(
          msg, sizeof(msg),
          "tessera CUDA emulator: host %s pinned memory [%p, %p) (%zu bytes) written by a "
          "cudaMemcpyAsync on %s that has not been synchronised (access at %p): synchronise the "
          "stream or an event recorded after the copy before touching the destination\n",
          fault_was_write(context) ? "write to" : "read of", reinterpret_cast<void*>(s.begin),
          reinterpret_cast<void*>(s.end), static_cast<size_t>(s.end - s.begin), s.stream,
          reinterpret_cast<void*>(a));
      if (n > 0) write_stderr(msg, static_cast<size_t>(n) < sizeof(msg) ? n : sizeof(msg) - 1);
      std::abort();
    }
  }
  for (GuardSlot& s : p.slots) {
    if (!s.used.load(std::memory_order_acquire)) continue;
    if (a >= page_down(s.begin) && a < page_up(s.end)) {
      // A neighbour of a pending destination on a protected page: open the page and go on.
      mprotect(reinterpret_cast<void*>(page_down(a)), page_size(), PROT_READ | PROT_WRITE);
      return;
    }
  }
  forward_to_previous(sig, info, context);
}

// With p.mutex held.
void install_handler(Pinned& p) {
  if (p.handler_installed) return;
  // The kernel crash handler (block_runner.cpp, installed once with the first BlockRunner) goes
  // below this one: it uninstalls itself when a fault is not a kernel's, so above this one it would
  // be lost at the first fault on a neighbour of a pending destination.
  (void)BlockRunner::for_this_thread();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = &segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &p.previous);
  p.handler_installed = true;
}

void set_pages(uintptr_t begin, uintptr_t end, int prot) {
  if (end > begin) mprotect(reinterpret_cast<void*>(begin), end - begin, prot);
}

// With p.mutex held: protects again every page in [begin, end) that a pending write covers.
void reprotect(Pinned& p, uintptr_t begin, uintptr_t end) {
  for (uintptr_t page = begin; page < end; page += page_size()) {
    auto it = p.protected_pages.find(page);
    if (it != p.protected_pages.end() && it->second > 0)
      set_pages(page, page + page_size(), PROT_NONE);
  }
}

}  // namespace

void* pinned_alloc(size_t bytes) {
  const size_t mapped = page_up(bytes ? bytes : 1);
  void* m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.allocations[reinterpret_cast<uintptr_t>(m)] = bytes;
  return m;
}

bool pinned_free(void* ptr) {
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == p.allocations.end()) return false;
  const size_t mapped = page_up(it->second ? it->second : 1);
  munmap(ptr, mapped);
  p.allocations.erase(it);
  return true;
}

bool is_pinned_range(const void* ptr, size_t bytes) {
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  const auto a = reinterpret_cast<uintptr_t>(ptr);
  auto it = p.allocations.upper_bound(a);
  if (it == p.allocations.begin()) return false;
  --it;
  return a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

size_t pinned_allocation_count() {
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.allocations.size();
}

int begin_pending_write(void* dst, size_t bytes, const std::string& stream_label) {
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  install_handler(p);
  const auto begin = reinterpret_cast<uintptr_t>(dst);
  const uintptr_t pb = page_down(begin), pe = page_up(begin + bytes);
  set_pages(pb, pe, PROT_READ | PROT_WRITE);  // another pending write may have closed them
  std::memset(dst, kPoison, bytes);
  int token = -1;
  for (int i = 0; i < kGuardSlots && token < 0; ++i) {
    GuardSlot& s = p.slots[i];
    if (s.used.load(std::memory_order_relaxed)) continue;
    s.begin = begin;
    s.end = begin + bytes;
    std::snprintf(s.stream, sizeof(s.stream), "%s", stream_label.c_str());
    s.used.store(true, std::memory_order_release);
    token = i;
  }
  if (token >= 0)
    for (uintptr_t page = pb; page < pe; page += page_size()) ++p.protected_pages[page];
  reprotect(p, pb, pe);
  return token;
}

void finish_pending_write(int token, void* dst, const void* src, size_t bytes) {
  Pinned& p = pinned();
  std::lock_guard<std::mutex> lock(p.mutex);
  const auto begin = reinterpret_cast<uintptr_t>(dst);
  const uintptr_t pb = page_down(begin), pe = page_up(begin + bytes);
  if (token >= 0) {
    p.slots[token].used.store(false, std::memory_order_release);
    for (uintptr_t page = pb; page < pe; page += page_size()) {
      auto it = p.protected_pages.find(page);
      if (it != p.protected_pages.end() && --it->second <= 0) p.protected_pages.erase(it);
    }
  }
  set_pages(pb, pe, PROT_READ | PROT_WRITE);
  std::memcpy(dst, src, bytes);
  reprotect(p, pb, pe);
}

}  // namespace tessera::emu::detail
