#include "cuda/emu/block_runner.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>

#include "cuda/emu/cost_model.h"
#include "host/core/error.h"

namespace tessera::emu {

namespace {

thread_local BlockRunner* t_runner = nullptr;  // set while run_block runs
thread_local void* t_thread = nullptr;         // the running fiber's Thread, else nullptr

constexpr uint64_t kPoison8 = 0x7FFBADBAD0BADBADull;  // a NaN as double
constexpr uint32_t kPoison4 = 0x7FBADBADu;            // a NaN as float
constexpr uint16_t kPoison2 = 0x7E5Du;                // a NaN as half

uint64_t poison_for(unsigned bytes) {
  switch (bytes) {
    case 8:
      return kPoison8;
    case 4:
      return kPoison4;
    case 2:
      return kPoison2;
    default:
      return 0xBD;
  }
}

const char* barrier_name(detail::BarrierKind k) {
  switch (k) {
    case detail::BarrierKind::Count:
      return "__syncthreads_count()";
    case detail::BarrierKind::And:
      return "__syncthreads_and()";
    case detail::BarrierKind::Or:
      return "__syncthreads_or()";
    default:
      return "__syncthreads()";
  }
}

std::string hex(unsigned v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

bool is_shuffle(detail::WarpOpKind op) {
  return op == detail::WarpOpKind::ShflIdx || op == detail::WarpOpKind::ShflUp ||
         op == detail::WarpOpKind::ShflDown || op == detail::WarpOpKind::ShflXor;
}

// The values the lanes of a warp collective passed in; only the lanes in `mask` take part.
struct LaneValues {
  unsigned mask;
  const uint64_t* in;  // [32], by lane
  unsigned value_bytes;

  bool has(int lane) const { return (mask & (1u << lane)) != 0; }
  // A lane outside the collective has no defined value: poison it.
  uint64_t at(int src) const {
    if (src < 0 || src >= 32 || !has(src)) return poison_for(value_bytes);
    return in[src];
  }
};

// __reduce_*_sync over the 32-bit values of the lanes taking part.
uint32_t reduce_lanes(detail::WarpOpKind op, const LaneValues& v) {
  using detail::WarpOpKind;
  bool first = true;
  uint32_t acc = 0;
  for (int l = 0; l < 32; ++l) {
    if (!v.has(l)) continue;
    const uint32_t x = static_cast<uint32_t>(v.in[l]);
    if (first) {
      acc = x;
      first = false;
      continue;
    }
    switch (op) {
      case WarpOpKind::ReduceAdd:
        acc += x;
        break;
      case WarpOpKind::ReduceAnd:
        acc &= x;
        break;
      case WarpOpKind::ReduceOr:
        acc |= x;
        break;
      case WarpOpKind::ReduceXor:
        acc ^= x;
        break;
      case WarpOpKind::ReduceMinU:
        acc = x < acc ? x : acc;
        break;
      case WarpOpKind::ReduceMaxU:
        acc = x > acc ? x : acc;
        break;
      case WarpOpKind::ReduceMinS:
        acc = static_cast<int32_t>(x) < static_cast<int32_t>(acc) ? x : acc;
        break;
      case WarpOpKind::ReduceMaxS:
        acc = static_cast<int32_t>(x) > static_cast<int32_t>(acc) ? x : acc;
        break;
      default:
        break;
    }
  }
  return acc;
}

// __match_all_sync: the mask of the lanes taking part when they all passed one value, else 0.
uint64_t match_all(const LaneValues& v) {
  bool all_equal = true;
  uint64_t v0 = 0;
  bool have = false;
  for (int l = 0; l < 32; ++l) {
    if (!v.has(l)) continue;
    if (!have) {
      v0 = v.in[l];
      have = true;
    } else if (v.in[l] != v0) {
      all_equal = false;
    }
  }
  return all_equal ? v.mask : 0;
}

// The one result every lane gets from a vote (ballot/any/all), a reduction or __match_all_sync;
// 0 for the collectives whose result differs by lane.
uint64_t warp_wide_result(detail::WarpOpKind op, const LaneValues& v) {
  using detail::WarpOpKind;
  switch (op) {
    case WarpOpKind::Ballot:
    case WarpOpKind::Any:
    case WarpOpKind::All: {
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l)
        if (v.has(l) && v.in[l]) ballot |= 1u << l;
      return op == WarpOpKind::Ballot ? ballot
             : op == WarpOpKind::Any  ? (ballot != 0)
                                      : (ballot == v.mask);
    }
    case WarpOpKind::ReduceAdd:
    case WarpOpKind::ReduceAnd:
    case WarpOpKind::ReduceOr:
    case WarpOpKind::ReduceXor:
    case WarpOpKind::ReduceMinU:
    case WarpOpKind::ReduceMaxU:
    case WarpOpKind::ReduceMinS:
    case WarpOpKind::ReduceMaxS:
      return reduce_lanes(op, v);
    case WarpOpKind::MatchAll:
      return match_all(v);
    default:
      return 0;
  }
}

// What lane `l` (taking part, with its own `arg` and `width`) gets from the collective: its
// shuffle's source value, its __match_any_sync mask, 0 from __syncwarp, else `shared_result`.
uint64_t lane_result(detail::WarpOpKind op, const LaneValues& v, int l, int arg, int wd,
                     uint64_t shared_result) {
  using detail::WarpOpKind;
  const int seg = wd > 0 ? (l / wd) * wd : 0;
  switch (op) {
    case WarpOpKind::ShflIdx:
      return v.at(seg + (((arg % wd) + wd) % wd));
    case WarpOpKind::ShflUp:
      return (arg >= 0 && (l - seg) >= arg) ? v.at(l - arg) : v.in[l];
    case WarpOpKind::ShflDown:
      return (arg >= 0 && (l - seg) + arg < wd) ? v.at(l + arg) : v.in[l];
    case WarpOpKind::ShflXor: {
      const int src = l ^ arg;
      // Reading a later width-group returns the caller's own value.
      return (src >= 32 || src < 0 || src / wd > l / wd) ? v.in[l] : v.at(src);
    }
    case WarpOpKind::MatchAny: {
      unsigned m = 0;
      for (int k = 0; k < 32; ++k)
        if (v.has(k) && v.in[k] == v.in[l]) m |= 1u << k;
      return m;
    }
    case WarpOpKind::SyncWarp:
      return 0;
    default:
      return shared_result;
  }
}

}  // namespace

namespace detail {

const char* warp_op_name(WarpOpKind op) {
  switch (op) {
    case WarpOpKind::SyncWarp:
      return "__syncwarp";
    case WarpOpKind::ShflIdx:
      return "__shfl_sync";
    case WarpOpKind::ShflUp:
      return "__shfl_up_sync";
    case WarpOpKind::ShflDown:
      return "__shfl_down_sync";
    case WarpOpKind::ShflXor:
      return "__shfl_xor_sync";
    case WarpOpKind::Ballot:
      return "__ballot_sync";
    case WarpOpKind::Any:
      return "__any_sync";
    case WarpOpKind::All:
      return "__all_sync";
    case WarpOpKind::MatchAny:
      return "__match_any_sync";
    case WarpOpKind::MatchAll:
      return "__match_all_sync";
    case WarpOpKind::ReduceAdd:
      return "__reduce_add_sync";
    case WarpOpKind::ReduceMinU:
    case WarpOpKind::ReduceMinS:
      return "__reduce_min_sync";
    case WarpOpKind::ReduceMaxU:
    case WarpOpKind::ReduceMaxS:
      return "__reduce_max_sync";
    case WarpOpKind::ReduceAnd:
      return "__reduce_and_sync";
    case WarpOpKind::ReduceOr:
      return "__reduce_or_sync";
    case WarpOpKind::ReduceXor:
      return "__reduce_xor_sync";
  }
  return "warp collective";
}

namespace {
BlockRunner& runner_or_throw(const char* what, const char* file, int line) {
  if (!t_runner || !t_thread)
    TESSERA_THROW(Usage, what << " called at " << file << ":" << line
                              << " outside an emulated kernel launch");
  return *t_runner;
}
}  // namespace

int block_barrier(BarrierKind kind, int predicate, const char* file, int line) {
  return runner_or_throw(barrier_name(kind), file, line)
      .arrive_barrier(kind, predicate, file, line);
}

uint64_t warp_collective(WarpOpKind op, unsigned mask, uint64_t value, unsigned value_bytes,
                         int arg, int width, const char* file, int line) {
  return runner_or_throw(warp_op_name(op), file, line)
      .arrive_warp(op, mask, value, value_bytes, arg, width, file, line);
}

unsigned active_mask() {
  return runner_or_throw("__activemask()", "?", 0).active_mask();
}

void note_shared_atomic(const void* address, size_t bytes) {
  if (t_runner) t_runner->note_shared_atomic(address, bytes);
}

void device_trap(const char* what, const char* file, int line) {
  TESSERA_THROW(Backend, what << " at " << file << ":" << line);
}

}  // namespace detail

std::string dim_str(const uint3& v) {
  std::ostringstream s;
  s << "(" << v.x << "," << v.y << "," << v.z << ")";
  return s.str();
}
std::string dim_str(const dim3& v) {
  return dim_str(uint3{v.x, v.y, v.z});
}

bool BlockRunner::describe_running_thread(char* buf, size_t size) {
  const BlockRunner* r = t_runner;
  const auto* t = static_cast<const Thread*>(t_thread);
  if (!r || !t || !r->launch_) return false;
  std::snprintf(buf, size, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", r->launch_->kernel,
                r->block_idx_.x, r->block_idx_.y, r->block_idx_.z, t->idx.x, t->idx.y, t->idx.z);
  return true;
}

namespace {

// A kernel's wild access (not near an allocation, so no guard bytes see it) faults like
// cudaErrorIllegalAddress would. Without AddressSanitizer (which reports faults itself), a
// SIGSEGV/SIGBUS inside a kernel first names the kernel, block and thread, then the previous
// handler (usually the default: terminate) runs.
#if !defined(__SANITIZE_ADDRESS__)
struct sigaction g_previous_segv;
struct sigaction g_previous_bus;

void crash_handler(int sig, siginfo_t* info, void*) {
  char where[256];
  if (BlockRunner::describe_running_thread(where, sizeof(where))) {
    char msg[512];
    const int n =
        std::snprintf(msg, sizeof(msg),
                      "tessera CUDA emulator: %s: illegal memory access (%s at address "
                      "%p; on a GPU: cudaErrorIllegalAddress; a stack overflow if the "
                      "address is just below a fiber stack, see TESSERA_EMU_STACK_KB)\n",
                      where, sig == SIGBUS ? "SIGBUS" : "SIGSEGV", info ? info->si_addr : nullptr);
    if (n > 0) {
      ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(n));
      (void)ignored;
    }
  }
  // Re-run the faulting instruction under the previous handler.
  sigaction(sig, sig == SIGBUS ? &g_previous_bus : &g_previous_segv, nullptr);
}

void install_crash_handler_for_this_thread() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = &crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    sigaction(SIGBUS, &sa, &g_previous_bus);
  });
  // The handler runs on an alternate stack: the faulting fiber's stack may be the problem.
  // Deliberately never freed: it stays registered with the kernel for the thread's lifetime.
  static thread_local char* alt_stack = nullptr;
  if (!alt_stack) {
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
      const size_t bytes = 64 * 1024;
      alt_stack = new char[bytes];
      stack_t ss;
      ss.ss_sp = alt_stack;
      ss.ss_size = bytes;
      ss.ss_flags = 0;
      sigaltstack(&ss, nullptr);
    }
  }
}
#else
void install_crash_handler_for_this_thread() {}
#endif

}  // namespace

namespace {
thread_local bool t_runner_gone = false;  // trivially destructible: valid to the very end
}  // namespace

BlockRunner& BlockRunner::for_this_thread() {
  struct Holder {
    BlockRunner runner;
    ~Holder() { t_runner_gone = true; }
  };
  static thread_local Holder holder;
  return holder.runner;
}

bool BlockRunner::unloading() {
  return t_runner_gone;
}

bool BlockRunner::inside_kernel() {
  return t_thread != nullptr;
}

BlockRunner::BlockRunner() {
  install_crash_handler_for_this_thread();
}

BlockRunner::~BlockRunner() {
  std::free(smem_);
}

BlockRunner::Thread& BlockRunner::current() {
  return *static_cast<Thread*>(t_thread);
}

void BlockRunner::thread_main(void* arg) {
  auto* t = static_cast<Thread*>(arg);
  try {
    const KernelInvocation& body = t->runner->launch_->body;
    body.invoke(body.closure);
  } catch (...) {
    t->error = std::current_exception();
  }
}

void BlockRunner::push_ready(Thread& t) {
  t.state = State::Ready;
  ready_[(ready_head_ + ready_count_) % ready_.size()] = t.linear;
  ++ready_count_;
}

void BlockRunner::release_in_order(const int* linear_ids, size_t count) {
  if (order_ == ScheduleOrder::Forward) {
    for (size_t i = 0; i < count; ++i) push_ready(*threads_[static_cast<size_t>(linear_ids[i])]);
  } else {
    for (size_t i = count; i-- > 0;) push_ready(*threads_[static_cast<size_t>(linear_ids[i])]);
  }
}

std::string BlockRunner::block_name() const {
  return std::string("kernel ") + launch_->kernel + ", block " + dim_str(block_idx_);
}

std::string BlockRunner::thread_name(const Thread& t) const {
  return "thread " + dim_str(t.idx);
}

std::string BlockRunner::thread_list(const std::vector<int>& ids) const {
  // Linear thread ids as ranges; single threads also as threadIdx.
  std::ostringstream s;
  size_t i = 0;
  int shown = 0;
  while (i < ids.size()) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (shown) s << ", ";
    if (shown == 8) {
      s << "...";
      break;
    }
    if (i == j)
      s << ids[i] << " " << dim_str(threads_[static_cast<size_t>(ids[i])]->idx);
    else
      s << ids[i] << "-" << ids[j];
    ++shown;
    i = j + 1;
  }
  return s.str();
}

void BlockRunner::prepare_shared_memory() {
  const size_t want = launch_->dynamic_smem;
  if (smem_ == nullptr || smem_bytes_ != want) {
    std::free(smem_);
    smem_ = nullptr;
    void* p = nullptr;
    // Exactly `want` bytes, so AddressSanitizer catches an access past the end.
    if (posix_memalign(&p, 128, want == 0 ? 1 : want) != 0 || !p)
      TESSERA_THROW(Backend, block_name() << ": cannot allocate " << want
                                          << " bytes of dynamic shared memory");
    smem_ = static_cast<unsigned char*>(p);
    smem_bytes_ = want;
  }
  // Shared memory starts undefined on the GPU; 0xFF bytes read as NaN floats and -1 integers.
  std::memset(smem_, 0xFF, smem_bytes_);
}

void BlockRunner::abandon_all() noexcept {
  for (int i = 0; i < nthreads_; ++i) {
    Thread& t = *threads_[static_cast<size_t>(i)];
    if (t.fiber.running()) t.fiber.abandon();
  }
  t_thread = nullptr;
  t_runner = nullptr;
  detail::t_track_shared_atomics = false;
  detail::t_dynamic_shared = nullptr;
  cost_detail::thread_suspended();
}

void BlockRunner::run_block(const BlockLaunch& launch, uint3 block_idx, ScheduleOrder order,
                            BlockCounters& counters) {
  if (t_thread != nullptr)
    TESSERA_THROW(Usage, "kernel " << launch.kernel
                                   << " launched from inside an emulated kernel (dynamic "
                                      "parallelism is not supported)");
  launch_ = &launch;
  block_idx_ = block_idx;
  order_ = order;
  counters_ = &counters;
  reset_block_state();
  start_threads();
  try {
    while (ready_count_ > 0) run_next_ready();
    if (live_ > 0) report_stall();
  } catch (...) {
    abandon_all();
    throw;
  }
  cost_detail::block_done(launch.kernel, nthreads_);
  t_runner = nullptr;
  detail::t_track_shared_atomics = false;
  detail::t_dynamic_shared = nullptr;
}

// The block's warps, ready queue, barrier, shared memory and race detector, and the thread-locals
// the device functions read, for the launch run_block was given.
void BlockRunner::reset_block_state() {
  const BlockLaunch& launch = *launch_;
  const dim3 b = launch.block;
  nthreads_ = static_cast<int>(b.x * b.y * b.z);
  live_ = nthreads_;
  const int nwarps = (nthreads_ + 31) / 32;

  while (threads_.size() < static_cast<size_t>(nthreads_))
    threads_.push_back(std::make_unique<Thread>());
  warps_.assign(static_cast<size_t>(nwarps), Warp{});
  for (int w = 0; w < nwarps; ++w) {
    const int lanes = nthreads_ - 32 * w < 32 ? nthreads_ - 32 * w : 32;
    warps_[static_cast<size_t>(w)].live = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
  }
  barrier_ = Barrier{};
  ready_.assign(static_cast<size_t>(nthreads_), 0);
  ready_head_ = 0;
  ready_count_ = 0;

  prepare_shared_memory();
  if (launch.shared_race_check)
    races_.begin_block(smem_, smem_bytes_, nwarps);
  else
    races_.begin_block(nullptr, 0, nwarps);

  detail::t_block_idx = block_idx_;
  detail::t_block_dim = launch.block;
  detail::t_grid_dim = launch.grid;
  detail::t_dynamic_shared = smem_;
  detail::t_track_shared_atomics = races_.active();
  t_runner = this;
}

// Every thread of the block as a fiber at the kernel's start, all ready in the schedule's order.
void BlockRunner::start_threads() {
  const dim3 b = launch_->block;
  all_ids_.resize(static_cast<size_t>(nthreads_));
  for (int i = 0; i < nthreads_; ++i) {
    Thread& t = *threads_[static_cast<size_t>(i)];
    t.linear = i;
    t.idx = uint3{static_cast<unsigned>(i) % b.x, (static_cast<unsigned>(i) / b.x) % b.y,
                  static_cast<unsigned>(i) / (b.x * b.y)};
    t.warp = i / 32;
    t.lane = i % 32;
    t.state = State::Ready;
    t.error = nullptr;
    t.runner = this;
    t.fiber.start(stacks_.get(static_cast<size_t>(i)), &BlockRunner::thread_main, &t);
    all_ids_[static_cast<size_t>(i)] = i;
  }
  release_in_order(all_ids_.data(), all_ids_.size());
  counters_->threads += static_cast<uint64_t>(nthreads_);
}

// Resumes the first ready thread until it waits or exits; a race it caused or an exception it
// ended with is thrown here, naming the block and the thread.
void BlockRunner::run_next_ready() {
  Thread& t = *threads_[static_cast<size_t>(ready_[ready_head_])];
  ready_head_ = (ready_head_ + 1) % ready_.size();
  --ready_count_;
  t_thread = &t;
  detail::t_thread_idx = t.idx;
  if (races_.active()) races_.begin_segment();
  FiberStack* stack = stacks_.get(static_cast<size_t>(t.linear));
  cost_detail::thread_resumed(t.linear, nthreads_, stack->bottom(), stack->top(), smem_,
                              smem_bytes_);
  t.fiber.resume();
  cost_detail::thread_suspended();
  t_thread = nullptr;
  if (races_.active()) check_shared_race(t);
  if (!t.fiber.running()) {
    if (t.error) rethrow_thread_error(t);
    on_thread_exit(t);
  }
}

void BlockRunner::check_shared_race(const Thread& t) {
  if (auto race = races_.after_segment(t.linear, t.warp)) {
    TESSERA_THROW(
        Backend,
        block_name() << ": shared-memory race: "
                     << thread_name(*threads_[static_cast<size_t>(race->first_thread)]) << " and "
                     << thread_name(*threads_[static_cast<size_t>(race->second_thread)])
                     << " both wrote dynamic shared memory byte " << race->byte << " (4-byte word "
                     << race->byte / 4 << ") with no __syncthreads() between the writes (after "
                     << race->interval << " completed barriers)"
                     << (race->mixed_atomic ? "; one write was an atomic, the other was not" : ""));
  }
}

void BlockRunner::rethrow_thread_error(const Thread& t) const {
  try {
    std::rethrow_exception(t.error);
  } catch (const Error& e) {
    throw Error(e.kind(), block_name() + ", " + thread_name(t) + ": " + e.what());
  } catch (const std::exception& e) {
    TESSERA_THROW(Backend, block_name() << ", " << thread_name(t)
                                        << ": exception inside the kernel: " << e.what());
  } catch (...) {
    TESSERA_THROW(
        Backend, block_name() << ", " << thread_name(t) << ": unknown exception inside the kernel");
  }
}

// ---- barriers ----------------------------------------------------------------------------------

int BlockRunner::arrive_barrier(detail::BarrierKind kind, int predicate, const char* file,
                                int line) {
  Thread& me = current();
  Barrier& b = barrier_;
  if (b.arrived == 0) {
    b.kind = kind;
    b.file = file;
    b.line = line;
    b.first_thread = me.linear;
    b.count = 0;
  } else if (b.kind != kind || b.line != line || std::strcmp(b.file, file) != 0) {
    const Thread& first = *threads_[static_cast<size_t>(b.first_thread)];
    TESSERA_THROW(Backend, "divergent barriers: "
                               << thread_name(first) << " waits at " << barrier_name(b.kind) << " ("
                               << b.file << ":" << b.line << ") while " << thread_name(me)
                               << " reached " << barrier_name(kind) << " (" << file << ":" << line
                               << "); every thread of a block must reach the "
                                  "same barrier");
  }
  ++b.arrived;
  if (predicate) ++b.count;
  me.state = State::AtBarrier;
  me.wait_file = file;
  me.wait_line = line;
  if (b.arrived == nthreads_) {
    int result = 0;
    switch (b.kind) {
      case detail::BarrierKind::Count:
        result = b.count;
        break;
      case detail::BarrierKind::And:
        result = b.count == nthreads_;
        break;
      case detail::BarrierKind::Or:
        result = b.count > 0;
        break;
      default:
        break;
    }
    // Every thread is here (exited ones never arrive, so the count could not have been reached).
    for (int i = 0; i < nthreads_; ++i) threads_[static_cast<size_t>(i)]->barrier_result = result;
    b.arrived = 0;
    ++counters_->barriers;
    races_.on_barrier();
    release_in_order(all_ids_.data(), all_ids_.size());
  }
  Fiber::suspend();
  return me.barrier_result;
}

// ---- warp collectives --------------------------------------------------------------------------

unsigned BlockRunner::active_mask() const {
  const Thread& me = *static_cast<const Thread*>(t_thread);
  return warps_[static_cast<size_t>(me.warp)].live;
}

uint64_t BlockRunner::arrive_warp(detail::WarpOpKind op, unsigned mask, uint64_t value,
                                  unsigned value_bytes, int arg, int width, const char* file,
                                  int line) {
  Thread& me = current();
  const unsigned bit = 1u << me.lane;
  const char* name = detail::warp_op_name(op);
  if (!(mask & bit))
    TESSERA_THROW(Backend, name << " at " << file << ":" << line << ": mask " << hex(mask)
                                << " does not include the calling lane " << me.lane << " (warp "
                                << me.warp << ")");
  if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0))
    TESSERA_THROW(Backend, name << " at " << file << ":" << line << ": width " << width
                                << " is not a power of two in [1, 32]");
  Warp& w = warps_[static_cast<size_t>(me.warp)];
  size_t idx = w.pending.size();
  for (size_t i = 0; i < w.pending.size(); ++i) {
    const PendingWarpOp& p = w.pending[i];
    if (!(p.mask & bit)) continue;
    if (p.op == op && p.mask == mask) {
      idx = i;
      break;
    }
    TESSERA_THROW(Backend, "warp " << me.warp << " diverges at warp collectives: lane "
                                   << p.first_lane << " waits at " << detail::warp_op_name(p.op)
                                   << " (" << p.file << ":" << p.line << ") with mask "
                                   << hex(p.mask) << ", which names lane " << me.lane
                                   << ", but lane " << me.lane << " reached " << name << " ("
                                   << file << ":" << line << ") with mask " << hex(mask));
  }
  if (idx == w.pending.size()) {
    PendingWarpOp p;
    p.op = op;
    p.mask = mask;
    p.value_bytes = value_bytes;
    p.first_lane = me.lane;
    p.file = file;
    p.line = line;
    w.pending.push_back(p);
  } else if (w.pending[idx].value_bytes != value_bytes) {
    TESSERA_THROW(Backend, name << " at " << file << ":" << line << ": lane " << me.lane
                                << " passes a " << value_bytes << "-byte value, lane "
                                << w.pending[idx].first_lane << " a " << w.pending[idx].value_bytes
                                << "-byte one");
  }
  PendingWarpOp& p = w.pending[idx];
  p.arrived |= bit;
  p.in[me.lane] = value;
  p.arg[me.lane] = arg;
  p.width[me.lane] = width;
  me.state = State::AtWarp;
  me.wait_file = file;
  me.wait_line = line;
  me.wait_op = op;
  try_complete_warp_ops(me.warp);
  Fiber::suspend();
  return me.warp_result;
}

void BlockRunner::try_complete_warp_ops(int warp) {
  Warp& w = warps_[static_cast<size_t>(warp)];
  for (size_t i = 0; i < w.pending.size();) {
    const PendingWarpOp& p = w.pending[i];
    const unsigned required = p.mask & w.live;
    if ((p.arrived & required) == required) {
      complete_warp_op(warp, i);  // erases index i
    } else {
      ++i;
    }
  }
}

void BlockRunner::complete_warp_op(int warp, size_t pending_index) {
  Warp& w = warps_[static_cast<size_t>(warp)];
  const PendingWarpOp p = w.pending[pending_index];
  w.pending.erase(w.pending.begin() + static_cast<std::ptrdiff_t>(pending_index));
  const LaneValues values{p.arrived, p.in, p.value_bytes};
  const uint64_t shared_result = warp_wide_result(p.op, values);
  int lanes[32];
  size_t count = 0;
  for (int l = 0; l < 32; ++l) {
    if (!values.has(l)) continue;
    Thread& t = *threads_[static_cast<size_t>(warp * 32 + l)];
    t.warp_result = lane_result(p.op, values, l, p.arg[l], p.width[l], shared_result);
    lanes[count++] = t.linear;
  }
  ++counters_->warp_collectives;
  races_.on_warp_sync(warp);
  release_in_order(lanes, count);
}

// ---- exits and stalls
// ----------------------------------------------------------------------------

void BlockRunner::on_thread_exit(Thread& t) {
  t.state = State::Exited;
  --live_;
  Warp& w = warps_[static_cast<size_t>(t.warp)];
  w.live &= ~(1u << t.lane);
  // A collective may have been waiting only for this lane (exited lanes are excused, as on
  // the device: "all non-exited threads named in mask").
  if (!w.pending.empty()) try_complete_warp_ops(t.warp);
}

void BlockRunner::report_stall() {
  std::vector<int> at_barrier, exited;
  for (int i = 0; i < nthreads_; ++i) {
    const Thread& t = *threads_[static_cast<size_t>(i)];
    if (t.state == State::AtBarrier) at_barrier.push_back(i);
    if (t.state == State::Exited) exited.push_back(i);
  }
  std::ostringstream msg;
  if (!at_barrier.empty()) {
    msg << block_name() << ": barrier not reached by all threads: " << at_barrier.size() << " of "
        << nthreads_ << " threads wait at " << barrier_name(barrier_.kind) << " (" << barrier_.file
        << ":" << barrier_.line << ") [threads " << thread_list(at_barrier) << "]";
    if (!exited.empty())
      msg << "; " << exited.size() << " have exited without reaching it [threads "
          << thread_list(exited) << "]";
  } else {
    msg << block_name() << ": warp collective can never complete";
  }
  for (size_t w = 0; w < warps_.size(); ++w) {
    for (const PendingWarpOp& p : warps_[w].pending) {
      std::vector<int> waiting, missing;
      for (int l = 0; l < 32; ++l) {
        const int id = static_cast<int>(w) * 32 + l;
        if (p.arrived & (1u << l))
          waiting.push_back(id);
        else if ((p.mask & warps_[w].live) & (1u << l))
          missing.push_back(id);
      }
      msg << "; warp " << w << ": threads " << thread_list(waiting) << " wait at "
          << detail::warp_op_name(p.op) << " (" << p.file << ":" << p.line << ") with mask "
          << hex(p.mask) << " for threads " << thread_list(missing);
    }
  }
  TESSERA_THROW(Backend, msg.str());
}

}  // namespace tessera::emu
