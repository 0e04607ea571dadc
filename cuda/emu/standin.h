#pragma once
// What the vendor-library stand-ins (cuda/emu/standins/: cuBLAS, cuDNN, CUB/Thrust) share with the
// emulated CUDA runtime. A stand-in is a validating twin of one vendor entry point that tessera
// calls: it checks the argument rules the vendor's documentation states (returning the vendor's
// error status when one is broken, as the real library would), records which rules it checked
// for the report, and queues the computation on the caller's stream.
#include <cstddef>
#include <functional>
#include <string>

#include "cuda/emu/runtime_api.h"

namespace tessera::emu {

// Queues `work` on `stream` in stream order, as a library's device work is. The runtime's stream
// model decides when it runs (cuda/emu/runtime_api.cpp); an exception it throws surfaces at the
// next synchronisation of that stream, as a device fault would. `what` names it in messages.
void enqueue(cudaStream_t stream, const std::string& what, std::function<void()> work);

// True when [p, p + bytes) lies inside one emulated device allocation (bytes may be 0).
bool is_device_range(const void* p, size_t bytes);

// One call of a vendor entry point ("cuBLAS", "cublasSgemm_64"), for the report.
void record_call(const char* library, const char* entry_point);

// Records that `rule` (a short sentence from the vendor's documentation, e.g. "lda >= max(1, rows
// of op(A))") was checked on a call of `entry_point`, and whether it held. Returns `ok`. A broken
// rule is remembered with `detail` (the values involved) as the thread's last stand-in failure.
bool check_rule(const char* library, const char* entry_point, const char* rule, bool ok,
                const std::string& detail = "");

// A test hook: the next `count` calls of `entry_point` (a cuDNN stand-in's entry point, e.g.
// "cudnnConvolutionForward") fail with `status` before any rule is checked, as a library call can
// fail for a reason of its own (CUDNN_STATUS_NOT_SUPPORTED for a shape, an internal error), so
// callers' recovery paths can be tested. count 0 clears it.
void fail_next_calls(const char* entry_point, int status, int count = 1);
// The status the current call of `entry_point` must fail with (0: none), taking one of the count.
int take_injected_failure(const char* entry_point);

// "<entry point>: <rule> (<detail>)" for the last rule this thread broke; "" if none.
const std::string& last_rule_failure();

// Every entry point called so far with its call count and the rules checked on it (with pass and
// fail counts), one line per rule; used by format_report() in the emulator's report.
std::string format_standin_report();

}  // namespace tessera::emu
