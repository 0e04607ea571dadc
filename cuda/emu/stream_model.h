#pragma once
// Internal to the emulated runtime (runtime_api.cpp, streams.cpp, pinned_memory.cpp,
// launch_emu.h): streams as FIFO queues of deferred work, the current device, the counters.
#include <cstddef>
#include <functional>
#include <string>

#include "cuda/emu/runtime_api.h"
#include "cuda/emu/runtime_counters.h"

namespace tessera::emu {

struct LaunchRequest;

// Queues a kernel launch on `stream` (the request owns its parameters). Throws tessera::Error
// (kind Backend) naming the kernel for what the launch itself would report: a stream that
// belongs to another device than the current one, an unknown stream, a bad configuration, a
// pointer argument outside device memory. On the legacy stream (nullptr) the kernel runs before
// this returns and its failures are thrown here; elsewhere they surface at the synchronisation
// that runs it.
void launch_on_stream(cudaStream_t stream, LaunchRequest request);

namespace detail {

cudaError_t fail(cudaError_t e);  // sets the thread's last error; returns e
int device_count();
int current_device();                 // of the calling host thread (0 until cudaSetDevice)
void set_current_device(int device);  // the caller has validated it

// Work item submission. `what` names the work in messages. Returns cudaErrorInvalidResourceHandle
// for a stream that does not exist. On the legacy stream (nullptr) the work runs now (after the
// current device's blocking streams drained) and its exceptions propagate.
cudaError_t submit(cudaStream_t stream, std::string what, std::function<void()> work);
// Runs `stream`'s queued work to the end and reports its deferred failures. `kind` names the
// synchronisation for the counters ("" = not counted).
cudaError_t run_stream(cudaStream_t stream, const char* kind, bool explicit_sync);
// Runs every stream (all devices when device < 0) to the end; reports their failures.
cudaError_t run_all(int device, const char* kind, bool explicit_sync);
// The device a stream belongs to (the current device for the legacy stream); -1 if unknown.
int stream_device(cudaStream_t stream);
// "stream #3 (device 0)" / "the legacy stream (device 0)".
std::string stream_label(cudaStream_t stream);

// The most items a stream holds before its oldest runs (TESSERA_EMU_QUEUE_CAP, default 4096);
// returns the previous cap (tests).
size_t set_queue_cap(size_t cap);

// Counters (runtime_counters.h), updated under the runtime's lock.
void count(uint64_t RuntimeCounters::*field, uint64_t n = 1);
void count_sync(const char* kind, bool explicit_sync);

}  // namespace detail
}  // namespace tessera::emu
