// The emulated CUDA runtime API: devices, memory and copies (streams and events: streams.cpp).
// Memory calls work on emulated device memory (host memory that device_memory.cpp registers) and
// pinned memory (pinned_memory.cpp); copies and memsets are queued on their stream; errors that
// the real runtime returns as codes are returned as codes (a launch throws tessera::Error).
#include "cuda/emu/runtime_api.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <memory>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/emu/pinned_memory.h"
#include "cuda/emu/runtime_counters.h"
#include "cuda/emu/stream_model.h"
#include "host/core/error.h"

namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

using tessera::emu::detail::fail;

struct FunctionAttributes {
  std::mutex mutex;
  std::map<const void*, size_t> max_dynamic_smem;
  std::map<const void*, size_t> static_smem;  // declare_static_shared_bytes
};
FunctionAttributes& function_attributes() {
  static FunctionAttributes* a = new FunctionAttributes();
  return *a;
}

constexpr size_t kDefaultDynamicSmem = 48u << 10;  // without the opt-in attribute
constexpr int kOptinDynamicSmem = 232448;          // sm_90: 227 KiB

int sm_count() {
  if (const char* env = std::getenv("TESSERA_EMU_SM_COUNT")) {
    int v = std::atoi(env);
    if (v >= 1 && v <= 1024) return v;
  }
  return 8;
}

size_t device_memory_bytes() {
  if (const char* env = std::getenv("TESSERA_EMU_DEVICE_MEMORY_MB")) {
    const long long v = std::atoll(env);
    if (v >= 1) return static_cast<size_t>(v) << 20;
  }
  return size_t{16384} << 20;
}

std::atomic<int> g_failing_allocations{0};  // fail_next_device_allocations

// Takes one of the failures fail_next_device_allocations asked for, if any is left.
bool take_injected_failure() {
  int left = g_failing_allocations.load();
  while (left > 0)
    if (g_failing_allocations.compare_exchange_weak(left, left - 1)) return true;
  return false;
}

bool valid_device(int device) {
  return device >= 0 && device < tessera::emu::detail::device_count();
}

}  // namespace

namespace tessera::emu::detail {
cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}
}  // namespace tessera::emu::detail

cudaError_t cudaGetLastError() {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  return t_last_error;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection:
      return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported:
      return "cudaErrorNotSupported";
    case cudaErrorInitializationError:
      return "cudaErrorInitializationError";
    case cudaErrorCudartUnloading:
      return "cudaErrorCudartUnloading";
    case cudaErrorInsufficientDriver:
      return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection:
      return "invalid copy direction for memcpy";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: {
      // Names the deferred work that failed (stream_model.h): the kernel, block and thread.
      static thread_local std::string text;
      const std::string& last = tessera::emu::last_deferred_failure();
      text = "unspecified launch failure";
      if (!last.empty()) text += " (emulator: " + last + ")";
      return text.c_str();
    }
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorInitializationError:
      return "initialization error";
    case cudaErrorCudartUnloading:
      return "driver shutting down";
    case cudaErrorInsufficientDriver:
      return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
  }
  return "unknown error";
}

// ---- devices
// -------------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = tessera::emu::detail::device_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  tessera::emu::detail::set_current_device(device);
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = tessera::emu::detail::current_device();
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "tessera emulated CUDA device %d (CPU)", device);
  prop->totalGlobalMem = device_memory_bytes();
  prop->sharedMemPerBlock = kDefaultDynamicSmem;
  prop->sharedMemPerBlockOptin = static_cast<size_t>(kOptinDynamicSmem);
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->multiProcessorCount = sm_count();
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
  const size_t total = device_memory_bytes();
  const size_t used = tessera::emu::device_bytes_in_use(tessera::emu::detail::current_device());
  *total_bytes = total;
  *free_bytes = used >= total ? 0 : total - used;
  return cudaSuccess;
}

// ---- memory
// --------------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  const int device = tessera::emu::detail::current_device();
  if (take_injected_failure()) {
    *ptr = nullptr;
    return fail(cudaErrorMemoryAllocation);
  }
  try {
    *ptr = tessera::emu::device_alloc(bytes, tessera::emu::ElementKind::Bytes,
                                      "cudaMalloc on device " + std::to_string(device), device);
  } catch (const tessera::Error&) {
    *ptr = nullptr;
    return fail(cudaErrorMemoryAllocation);
  }
  using C = tessera::emu::RuntimeCounters;
  tessera::emu::detail::count(&C::device_allocations);
  tessera::emu::detail::count(&C::device_bytes_allocated, bytes);
  return cudaSuccess;
}

namespace tessera::emu {
void fail_next_device_allocations(int count) {
  g_failing_allocations.store(count > 0 ? count : 0);
}
}  // namespace tessera::emu

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  const auto a = tessera::emu::find_device_allocation(ptr);
  if (!a || a->base != ptr) return fail(cudaErrorInvalidDevicePointer);
  // Like the device, cudaFree waits for queued work (which may still use the memory).
  const cudaError_t pending = tessera::emu::detail::run_all(-1, "cudaFree", false);
  tessera::emu::device_free(ptr);
  tessera::emu::detail::count(&tessera::emu::RuntimeCounters::device_frees);
  return pending;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags) {
  constexpr unsigned int known =
      cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined;
  if (!ptr || (flags & ~known) != 0) return fail(cudaErrorInvalidValue);
  *ptr = tessera::emu::detail::pinned_alloc(bytes);
  if (!*ptr) return fail(cudaErrorMemoryAllocation);
  tessera::emu::detail::count(&tessera::emu::RuntimeCounters::pinned_allocations);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void* ptr) {
  if (!ptr) return cudaSuccess;
  if (!tessera::emu::detail::is_pinned_range(ptr, 0)) return fail(cudaErrorInvalidValue);
  const cudaError_t pending = tessera::emu::detail::run_all(-1, "cudaFreeHost", false);
  if (!tessera::emu::detail::pinned_free(ptr)) return fail(cudaErrorInvalidValue);
  tessera::emu::detail::count(&tessera::emu::RuntimeCounters::pinned_frees);
  return pending;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  if (!attributes) return fail(cudaErrorInvalidValue);
  *attributes = cudaPointerAttributes{};
  attributes->device = -2;  // what the runtime reports for unregistered memory
  if (!ptr) return cudaSuccess;
  if (const auto a = tessera::emu::find_device_allocation(ptr)) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->device = a->device;
    attributes->devicePointer = const_cast<void*>(ptr);
  } else if (tessera::emu::detail::is_pinned_range(ptr, 0)) {
    attributes->type = cudaMemoryTypeHost;
    attributes->device = tessera::emu::detail::current_device();
    attributes->hostPointer = const_cast<void*>(ptr);
  }
  return cudaSuccess;
}

namespace {
// A device range must lie inside one emulated allocation; host memory is only valid on the host
// side of a copy.
bool device_range_ok(const void* p, size_t bytes) {
  if (bytes == 0) return true;
  auto a = tessera::emu::find_device_allocation(p);
  if (!a) return false;
  const size_t off = static_cast<size_t>(static_cast<const unsigned char*>(p) - a->base);
  return off + bytes <= a->bytes;
}

enum class Side { Device, Pinned, Pageable };

Side host_side(const void* p, size_t bytes) {
  return tessera::emu::detail::is_pinned_range(p, bytes) ? Side::Pinned : Side::Pageable;
}

// Resolves each side of a copy; false for a direction the pointers contradict.
bool resolve_sides(const void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, Side& d,
                   Side& s) {
  const bool dst_in_device = tessera::emu::find_device_allocation(dst).has_value();
  const bool src_in_device = tessera::emu::find_device_allocation(src).has_value();
  const bool dst_dev = dst_in_device && device_range_ok(dst, bytes);
  const bool src_dev = src_in_device && device_range_ok(src, bytes);
  // A range that starts in a device allocation and runs past its end is no host range either.
  if ((dst_in_device && !dst_dev) || (src_in_device && !src_dev)) return false;
  switch (kind) {
    case cudaMemcpyDefault:
      d = dst_dev ? Side::Device : host_side(dst, bytes);
      s = src_dev ? Side::Device : host_side(src, bytes);
      return true;
    case cudaMemcpyHostToHost:
      d = host_side(dst, bytes);
      s = host_side(src, bytes);
      return true;
    case cudaMemcpyHostToDevice:
      d = Side::Device;
      s = host_side(src, bytes);
      return dst_dev;
    case cudaMemcpyDeviceToHost:
      d = host_side(dst, bytes);
      s = Side::Device;
      return src_dev;
    case cudaMemcpyDeviceToDevice:
      d = s = Side::Device;
      return dst_dev && src_dev;
  }
  return false;
}

std::string copy_name(const char* call, Side d, Side s, size_t bytes) {
  auto side = [](Side x) {
    return x == Side::Device ? "device" : x == Side::Pinned ? "pinned host" : "pageable host";
  };
  return std::string(call) + " " + side(s) + " to " + side(d) + " (" + std::to_string(bytes) +
         " bytes)";
}

void count_copy(Side d, Side s, size_t bytes) {
  using C = tessera::emu::RuntimeCounters;
  using tessera::emu::detail::count;
  if (s != Side::Device && d == Side::Device) {
    count(&C::h2d_copies);
    count(&C::h2d_bytes, bytes);
  } else if (s == Side::Device && d != Side::Device) {
    count(&C::d2h_copies);
    count(&C::d2h_bytes, bytes);
  } else if (s == Side::Device && d == Side::Device) {
    count(&C::d2d_copies);
    count(&C::d2d_bytes, bytes);
  }
}

// Queues one copy with the host side's rules (runtime_api.h). `call` names it in messages.
cudaError_t queue_copy(const char* call, void* dst, const void* src, size_t bytes, Side d, Side s,
                       cudaStream_t stream) {
  namespace D = tessera::emu::detail;
  std::string what = copy_name(call, d, s, bytes);
  if (s == Side::Pageable && d != Side::Pageable) {
    // The source is staged at the call: the caller may reuse it at once.
    auto staged = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    return D::submit(stream, std::move(what),
                     [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  }
  if (d == Side::Pinned && s == Side::Device) {
    const int token = D::begin_pending_write(dst, bytes, D::stream_label(stream));
    return D::submit(stream, std::move(what),
                     [token, dst, src, bytes] { D::finish_pending_write(token, dst, src, bytes); });
  }
  const cudaError_t e =
      D::submit(stream, what, [dst, src, bytes] { std::memmove(dst, src, bytes); });
  if (e != cudaSuccess || d != Side::Pageable) return e;
  // Into pageable memory the call returns only when the copy is done: the stream runs to here.
  return D::run_stream(stream, (std::string(call) + " to pageable host").c_str(), false);
}
}  // namespace

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  if (!device_range_ok(dst, bytes) || (bytes && !dst)) return fail(cudaErrorInvalidValue);
  if (tessera::emu::detail::stream_device(stream) < 0) return fail(cudaErrorInvalidResourceHandle);
  tessera::emu::detail::count(&tessera::emu::RuntimeCounters::memsets);
  if (bytes == 0) return cudaSuccess;
  return tessera::emu::detail::submit(stream,
                                      "cudaMemsetAsync (" + std::to_string(bytes) + " bytes)",
                                      [dst, value, bytes] { std::memset(dst, value, bytes); });
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  return cudaMemsetAsync(dst, value, bytes, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  Side d = Side::Pageable, s = Side::Pageable;
  if (!resolve_sides(dst, src, bytes, kind, d, s)) return fail(cudaErrorInvalidValue);
  if (tessera::emu::detail::stream_device(stream) < 0) return fail(cudaErrorInvalidResourceHandle);
  count_copy(d, s, bytes);
  return queue_copy("cudaMemcpyAsync", dst, src, bytes, d, s, stream);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  Side d = Side::Pageable, s = Side::Pageable;
  if (!resolve_sides(dst, src, bytes, kind, d, s)) return fail(cudaErrorInvalidValue);
  count_copy(d, s, bytes);
  // The legacy stream runs it now; the host waits for it whenever a host side is involved (into
  // pageable memory queue_copy counts the wait itself, as "cudaMemcpy to pageable host").
  if ((d == Side::Device) != (s == Side::Device) && d != Side::Pageable)
    tessera::emu::detail::count_sync("cudaMemcpy", false);
  return queue_copy("cudaMemcpy", dst, src, bytes, d, s, nullptr);
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = 1024;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = static_cast<int>(kDefaultDynamicSmem);
      break;
    case cudaDevAttrWarpSize:
      *value = 32;
      break;
    case cudaDevAttrMultiProcessorCount:
      *value = sm_count();
      break;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
      *value = 2048;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = kOptinDynamicSmem;
      break;
    default:
      return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

namespace tessera::emu::detail {

cudaError_t set_function_attribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return fail(cudaErrorInvalidValue);
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  const auto st = a.static_smem.find(func);
  const size_t static_bytes = st == a.static_smem.end() ? 0 : st->second;
  if (value < 0 ||
      static_bytes + static_cast<size_t>(value) > static_cast<size_t>(kOptinDynamicSmem))
    return fail(cudaErrorInvalidValue);
  a.max_dynamic_smem[func] = static_cast<size_t>(value);
  return cudaSuccess;
}

void set_static_shared_bytes(const void* func, size_t bytes) {
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.static_smem[func] = bytes;
}

size_t static_smem(const void* kernel_address) {
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.static_smem.find(kernel_address);
  return it == a.static_smem.end() ? 0 : it->second;
}

// The attribute when raised, else 48 KiB minus the static size.
size_t max_dynamic_smem(const void* kernel_address) {
  const size_t static_bytes = static_smem(kernel_address);
  const size_t by_default =
      static_bytes >= kDefaultDynamicSmem ? 0 : kDefaultDynamicSmem - static_bytes;
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.max_dynamic_smem.find(kernel_address);
  return it == a.max_dynamic_smem.end() ? by_default : std::max(by_default, it->second);
}

cudaError_t get_function_attributes(cudaFuncAttributes* attributes, const void* func) {
  if (!attributes || !func) return fail(cudaErrorInvalidValue);
  *attributes = cudaFuncAttributes{};
  attributes->sharedSizeBytes = static_smem(func);
  attributes->maxThreadsPerBlock = 1024;
  attributes->maxDynamicSharedSizeBytes = static_cast<int>(max_dynamic_smem(func));
  return cudaSuccess;
}

}  // namespace tessera::emu::detail

long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
