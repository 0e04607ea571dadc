// The emulated CUDA runtime API: memory calls work on emulated device memory (host memory that
// device_memory.cpp registers), streams are synchronous, and errors that the real runtime
// returns as codes are returned as codes (the launch itself throws tessera::Error instead).
#include "cuda/emu/runtime_api.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "host/core/error.h"

namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

struct FunctionAttributes {
  std::mutex mutex;
  std::map<const void*, size_t> max_dynamic_smem;
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

}  // namespace

cudaError_t cudaGetLastError() {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
  }
  return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  try {
    *ptr = tessera::emu::device_alloc(bytes, tessera::emu::ElementKind::Bytes, "cudaMalloc");
  } catch (const tessera::Error&) {
    *ptr = nullptr;
    return fail(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr && !tessera::emu::find_device_allocation(ptr)) return fail(cudaErrorInvalidDevicePointer);
  tessera::emu::device_free(ptr);
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
}  // namespace

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  if (!device_range_ok(dst, bytes)) return fail(cudaErrorInvalidValue);
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  return cudaMemsetAsync(dst, value, bytes, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return fail(cudaErrorInvalidMemcpyDirection);
  if (kind != cudaMemcpyDefault && kind != cudaMemcpyHostToHost) {
    if (src_dev && !device_range_ok(src, bytes)) return fail(cudaErrorInvalidValue);
    if (dst_dev && !device_range_ok(dst, bytes)) return fail(cudaErrorInvalidValue);
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kDefaultDynamicSmem); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = kOptinDynamicSmem; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

namespace tessera::emu::detail {

cudaError_t set_function_attribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return fail(cudaErrorInvalidValue);
  if (value < 0 || value > kOptinDynamicSmem) return fail(cudaErrorInvalidValue);
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.max_dynamic_smem[func] = static_cast<size_t>(value);
  return cudaSuccess;
}

}  // namespace tessera::emu::detail

namespace tessera::emu::detail {
size_t max_dynamic_smem(const void* kernel_address) {
  FunctionAttributes& a = function_attributes();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.max_dynamic_smem.find(kernel_address);
  return it == a.max_dynamic_smem.end() ? kDefaultDynamicSmem : std::max(kDefaultDynamicSmem, it->second);
}
}  // namespace tessera::emu::detail

long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
