// The emulated runtime's stream model (cuda/emu/README.md, "Runtime"): every stream is a FIFO of
// deferred work items; an event captures a position on a stream; cudaStreamWaitEvent queues a
// wait item that, when it runs, first runs the other stream up to the captured position. Work runs
// when something forces it (a synchronisation, a synchronous call, the queue cap), one item at a
// time under one lock, in FIFO order per stream and in no order between streams except through
// events. The legacy stream (stream 0) of each device runs its work at once, after the device's
// blocking streams (created without cudaStreamNonBlocking) ran theirs, as the legacy stream waits
// for them on a device.
#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "cuda/emu/block_runner.h"
#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/emu/report.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/stream_model.h"
#include "host/core/error.h"

struct CUstream_st {
  struct Item {
    std::string what;
    std::function<void()> work;
  };
  uint64_t id = 0;
  int device = 0;
  bool non_blocking = false;
  bool legacy = false;
  std::deque<Item> queue;
  uint64_t submitted = 0;             // items ever queued; a position is a value of this
  uint64_t completed = 0;             // items run (the queue's front is item number `completed`)
  std::vector<std::string> failures;  // deferred failures not yet reported
  bool asked_not_ready = false;       // cudaStreamQuery said "not ready" since the last run
};

struct CUevent_st {
  int device = 0;
  unsigned int flags = 0;
  std::shared_ptr<CUstream_st> stream;  // null until recorded
  uint64_t position = 0;                // complete when stream->completed >= position
  bool asked_not_ready = false;
};

namespace tessera::emu {

namespace {

using StreamPtr = std::shared_ptr<CUstream_st>;

int read_device_count() {
  if (const char* env = std::getenv("TESSERA_EMU_DEVICE_COUNT")) {
    const int v = std::atoi(env);
    if (v >= 1 && v <= 64) return v;
  }
  return 2;
}

size_t read_queue_cap() {
  if (const char* env = std::getenv("TESSERA_EMU_QUEUE_CAP")) {
    const long v = std::atol(env);
    if (v >= 1) return static_cast<size_t>(v);
  }
  return 4096;
}

struct State {
  std::recursive_mutex mutex;  // held while work runs; work may call back into the runtime
  int device_count = read_device_count();
  size_t queue_cap = read_queue_cap();
  std::vector<StreamPtr> legacy;  // per device
  std::map<CUstream_st*, StreamPtr> streams;
  std::map<CUevent_st*, std::unique_ptr<CUevent_st>> events;
  uint64_t next_stream_id = 1;
  RuntimeCounters counters;
  State() {
    for (int d = 0; d < device_count; ++d) {
      auto s = std::make_shared<CUstream_st>();
      s->device = d;
      s->legacy = true;
      legacy.push_back(std::move(s));
    }
  }
};

State& state() {
  static State* s = new State();  // never destroyed: destructors of statics may still sync
  return *s;
}

thread_local int t_device = 0;
thread_local std::string t_last_failure;

std::string label_of(const CUstream_st& s) {
  std::ostringstream out;
  if (s.legacy)
    out << "the legacy stream (device " << s.device << ")";
  else
    out << "stream #" << s.id << " (device " << s.device << ")";
  return out.str();
}

// With the lock held. The legacy stream of the current device for nullptr.
StreamPtr find_stream(State& st, cudaStream_t stream) {
  if (!stream) return st.legacy[static_cast<size_t>(t_device)];
  auto it = st.streams.find(stream);
  return it == st.streams.end() ? nullptr : it->second;
}

void run_one(CUstream_st& s) {
  CUstream_st::Item item = std::move(s.queue.front());
  s.queue.pop_front();
  try {
    // At process exit (after this thread's block runner is gone: a backend held by a static
    // destroyed then) queued work is dropped, as a device context's is at teardown.
    if (!tessera::emu::BlockRunner::unloading()) item.work();
  } catch (const std::exception& e) {
    s.failures.push_back(item.what + " on " + label_of(s) + ": " + e.what());
  } catch (...) {
    s.failures.push_back(item.what + " on " + label_of(s) + ": a non-standard exception");
  }
  ++s.completed;
  s.asked_not_ready = false;
  ++state().counters.deferred_items_run;
}

// Runs `s` until `target` items have completed (or its queue is empty).
void run_until(CUstream_st& s, uint64_t target) {
  while (s.completed < target && !s.queue.empty()) run_one(s);
}

void run_to_end(CUstream_st& s) {
  run_until(s, s.submitted);
}

void drain_blocking_streams(State& st, int device) {
  std::vector<StreamPtr> blocking;
  for (const auto& kv : st.streams)
    if (kv.second->device == device && !kv.second->non_blocking) blocking.push_back(kv.second);
  for (const StreamPtr& s : blocking) run_to_end(*s);
}

// Reports (and forgets) the streams' parked failures: the first becomes the thread's last
// deferred failure, and the call returns cudaErrorLaunchFailure.
cudaError_t report_failures(const std::vector<StreamPtr>& streams) {
  std::string first;
  size_t more = 0;
  for (const StreamPtr& s : streams) {
    for (const std::string& f : s->failures) {
      if (first.empty())
        first = f;
      else
        ++more;
    }
    s->failures.clear();
  }
  if (first.empty()) return cudaSuccess;
  t_last_failure = first;
  if (more) t_last_failure += " (and " + std::to_string(more) + " more failed work items)";
  return detail::fail(cudaErrorLaunchFailure);
}

void add_sync(State& st, const char* kind, bool explicit_sync) {
  if (!kind || !*kind) return;
  RuntimeCounters& c = st.counters;
  ++c.synchronisations;
  ++(explicit_sync ? c.explicit_synchronisations : c.implicit_synchronisations);
  ++c.synchronisations_by_kind[kind];
}

// Asked whether `s` reached `target`: "not ready" once, then the work runs (see runtime_api.h).
cudaError_t query(State& st, CUstream_st& s, uint64_t target, bool& asked_not_ready) {
  ++st.counters.queries;
  if (s.completed >= target || s.queue.empty()) return cudaSuccess;
  if (!asked_not_ready) {
    asked_not_ready = true;
    return cudaErrorNotReady;  // not an error: the last error stays as it is
  }
  run_until(s, target);
  asked_not_ready = false;
  return cudaSuccess;
}

// Peer access is never enabled here, so a kernel reading another device's memory faults on a
// device (an allocation made while the wrong device was current: a missing DeviceGuard).
void check_argument_devices(const LaunchRequest& r, int device) {
  for (const PointerArgument& a : r.pointer_args) {
    if (!a.value) continue;
    const auto info = find_device_allocation(a.value);
    if (info && info->device != device)
      TESSERA_THROW(Backend, "kernel " << r.kernel << ": argument " << a.index << " points into '"
                                       << info->label << "' on device " << info->device
                                       << ", but the kernel runs on device " << device
                                       << " (no peer access: cudaErrorIllegalAddress on a GPU; "
                                          "memory allocated without the right DeviceGuard?)");
  }
}

}  // namespace

// ---- the internal interface (stream_model.h)
// -------------------------------------------------------

namespace detail {

int device_count() {
  return state().device_count;
}
int current_device() {
  return t_device;
}
void set_current_device(int device) {
  t_device = device;
}

cudaError_t submit(cudaStream_t stream, std::string what, std::function<void()> work) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = find_stream(st, stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (s->legacy) {
    drain_blocking_streams(st, s->device);
    ++s->submitted;
    ++s->completed;  // counted as run even when it throws: the exception is the report
    work();
    return cudaSuccess;
  }
  s->queue.push_back(CUstream_st::Item{std::move(what), std::move(work)});
  ++s->submitted;
  if (s->queue.size() > st.queue_cap) {
    ++st.counters.queue_cap_runs;
    run_one(*s);
  }
  return cudaSuccess;
}

cudaError_t run_stream(cudaStream_t stream, const char* kind, bool explicit_sync) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = find_stream(st, stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  add_sync(st, kind, explicit_sync);
  if (s->legacy) {
    // The legacy stream ran its own work already; it also waits for the blocking streams.
    std::vector<StreamPtr> blocking;
    for (const auto& kv : st.streams)
      if (kv.second->device == s->device && !kv.second->non_blocking) blocking.push_back(kv.second);
    for (const StreamPtr& b : blocking) run_to_end(*b);
    return report_failures(blocking);
  }
  run_to_end(*s);
  return report_failures({s});
}

cudaError_t run_all(int device, const char* kind, bool explicit_sync) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  add_sync(st, kind, explicit_sync);
  std::vector<StreamPtr> covered;
  for (const auto& kv : st.streams)
    if (device < 0 || kv.second->device == device) covered.push_back(kv.second);
  for (const StreamPtr& s : covered) run_to_end(*s);
  return report_failures(covered);
}

size_t set_queue_cap(size_t cap) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  const size_t previous = st.queue_cap;
  st.queue_cap = cap < 1 ? 1 : cap;
  return previous;
}

int stream_device(cudaStream_t stream) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = find_stream(st, stream);
  return s ? s->device : -1;
}

std::string stream_label(cudaStream_t stream) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = find_stream(st, stream);
  return s ? label_of(*s) : "an unknown stream";
}

void count(uint64_t RuntimeCounters::*field, uint64_t n) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  st.counters.*field += n;
}

void count_sync(const char* kind, bool explicit_sync) {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  add_sync(st, kind, explicit_sync);
}

}  // namespace detail

// ---- launches and stand-in work
// --------------------------------------------------------------------

void launch_on_stream(cudaStream_t stream, LaunchRequest request) {
  validate_launch(request);
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = find_stream(st, stream);
  if (!s)
    TESSERA_THROW(Backend, "kernel " << request.kernel << ": launched on stream " << stream
                                     << ", which does not exist (destroyed?): "
                                        "cudaErrorInvalidResourceHandle");
  if (s->device != t_device)
    TESSERA_THROW(Backend, "kernel " << request.kernel << ": launched on " << label_of(*s)
                                     << " while device " << t_device
                                     << " is current: a launch must go to a stream of the "
                                        "current device (cudaErrorInvalidResourceHandle; a "
                                        "missing DeviceGuard?)");
  check_argument_devices(request, s->device);
  ++st.counters.launches;
  std::string what = std::string("kernel ") + request.kernel;
  detail::submit(stream, std::move(what), [r = std::move(request)] { launch(r); });
}

void enqueue(cudaStream_t stream, const std::string& what, std::function<void()> work) {
  detail::count(&RuntimeCounters::standin_work);
  if (detail::submit(stream, what, std::move(work)) != cudaSuccess) {
    (void)cudaGetLastError();
    TESSERA_THROW(Backend, what << ": queued on stream " << stream
                                << ", which does not exist (destroyed?): "
                                   "cudaErrorInvalidResourceHandle");
  }
}

// ---- counters
// ------------------------------------------------------------------------------------

RuntimeCounters runtime_counters() {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  return st.counters;
}

void reset_runtime_counters() {
  State& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  st.counters = RuntimeCounters{};
}

const std::string& last_deferred_failure() {
  return t_last_failure;
}

std::string RuntimeCounters::describe() const {
  std::ostringstream out;
  auto line = [&](const char* name, uint64_t v) {
    if (v) out << name << " " << v << "\n";
  };
  line("synchronisations", synchronisations);
  for (const auto& [kind, n] : synchronisations_by_kind) out << "  " << kind << " " << n << "\n";
  line("queries", queries);
  line("device allocations", device_allocations);
  line("pinned allocations", pinned_allocations);
  line("device frees", device_frees);
  line("pinned frees", pinned_frees);
  line("device bytes allocated", device_bytes_allocated);
  line("host-to-device copies", h2d_copies);
  line("device-to-host copies", d2h_copies);
  line("device-to-device copies", d2d_copies);
  line("memsets", memsets);
  line("launches", launches);
  line("stand-in work items", standin_work);
  line("deferred items run", deferred_items_run);
  line("queue-cap runs", queue_cap_runs);
  const std::string s = out.str();
  return s.empty() ? "no runtime activity\n" : s;
}

}  // namespace tessera::emu

// ---- the stream and event API (runtime_api.h)
// ------------------------------------------------------

using tessera::emu::state;
using tessera::emu::StreamPtr;
using tessera::emu::detail::fail;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream || (flags & ~cudaStreamNonBlocking) != 0) return fail(cudaErrorInvalidValue);
  tessera::emu::write_report_at_exit_once();  // TESSERA_EMU_REPORT (report.h)
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto s = std::make_shared<CUstream_st>();
  s->id = st.next_stream_id++;
  s->device = tessera::emu::t_device;
  s->non_blocking = (flags & cudaStreamNonBlocking) != 0;
  *stream = s.get();
  st.streams[s.get()] = std::move(s);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  if (!stream) return fail(cudaErrorInvalidResourceHandle);
  auto it = st.streams.find(stream);
  if (it == st.streams.end()) return fail(cudaErrorInvalidResourceHandle);
  StreamPtr s = it->second;
  // The device finishes a destroyed stream's work; here it runs now (not counted: the host does
  // not wait for it on a device). Events recorded on it keep its state alive and stay complete.
  tessera::emu::run_to_end(*s);
  st.streams.erase(it);
  return tessera::emu::report_failures({s});
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return tessera::emu::detail::run_stream(stream, "cudaStreamSynchronize", true);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  StreamPtr s = tessera::emu::find_stream(st, stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  const cudaError_t e = tessera::emu::query(st, *s, s->submitted, s->asked_not_ready);
  if (e != cudaSuccess) return e;
  return tessera::emu::report_failures({s});
}

cudaError_t cudaDeviceSynchronize() {
  return tessera::emu::detail::run_all(tessera::emu::t_device, "cudaDeviceSynchronize", true);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  constexpr unsigned int known = cudaEventBlockingSync | cudaEventDisableTiming;
  if (!event || (flags & ~known) != 0) return fail(cudaErrorInvalidValue);
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto e = std::make_unique<CUevent_st>();
  e->device = tessera::emu::t_device;
  e->flags = flags;
  *event = e.get();
  st.events[e.get()] = std::move(e);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  if (st.events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto it = st.events.find(event);
  StreamPtr s = tessera::emu::find_stream(st, stream);
  if (it == st.events.end() || !s) return fail(cudaErrorInvalidResourceHandle);
  // The programming guide: recording fails when the event and the stream belong to different
  // devices.
  if (it->second->device != s->device) return fail(cudaErrorInvalidResourceHandle);
  it->second->stream = s;
  it->second->position = s->submitted;
  it->second->asked_not_ready = false;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto it = st.events.find(event);
  if (it == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  tessera::emu::add_sync(st, "cudaEventSynchronize", true);
  const StreamPtr s = it->second->stream;
  if (!s) return cudaSuccess;  // never recorded: complete
  tessera::emu::run_until(*s, it->second->position);
  return tessera::emu::report_failures({s});
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto it = st.events.find(event);
  if (it == st.events.end()) return fail(cudaErrorInvalidResourceHandle);
  CUevent_st& e = *it->second;
  if (!e.stream) {
    ++st.counters.queries;
    return cudaSuccess;
  }
  const cudaError_t r = tessera::emu::query(st, *e.stream, e.position, e.asked_not_ready);
  if (r != cudaSuccess) return r;
  return tessera::emu::report_failures({e.stream});
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  auto& st = state();
  std::lock_guard<std::recursive_mutex> lock(st.mutex);
  auto it = st.events.find(event);
  StreamPtr waiter = tessera::emu::find_stream(st, stream);
  if (it == st.events.end() || !waiter) return fail(cudaErrorInvalidResourceHandle);
  if (flags != 0) return fail(cudaErrorInvalidValue);
  const StreamPtr source = it->second->stream;
  if (!source) return cudaSuccess;  // never recorded: nothing to wait for
  const uint64_t position = it->second->position;
  // Allowed across devices. When the item runs, the source stream first runs up to the position.
  std::string what = "cudaStreamWaitEvent on " + tessera::emu::label_of(*source) + " position " +
                     std::to_string(position);
  return tessera::emu::detail::submit(
      stream, std::move(what), [source, position] { tessera::emu::run_until(*source, position); });
}
