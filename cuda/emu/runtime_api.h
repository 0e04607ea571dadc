#pragma once
// The slice of the CUDA runtime API that tessera's CUDA code touches, for the emulation build.
// Kernel files and launchers get it through cuda/emu/emulator.h; the backend's own .cpp files get
// it through the stand-in headers cuda/emu/include/cuda_runtime_api.h and cuda_runtime.h.
//
// The model (cuda/emu/README.md, "Runtime"): "device memory" is registered host memory
// (device_memory.h); TESSERA_EMU_DEVICE_COUNT devices (default 2) with a current device per host
// thread; streams are FIFO queues of deferred work (kernel launches, copies, memsets, event
// waits, vendor stand-in work) that runs when something forces it (a synchronisation, a
// synchronous call, a queue-length cap); the legacy default stream (stream 0) runs its work at
// once. Counters for synchronisations, allocations and copies: cuda/emu/runtime_counters.h.
// Declarations follow the runtime's C API in our own words; only what tessera uses is here.
#include <cstddef>

// Global namespace, spelled as in cuda_runtime_api.h.
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;

enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorCudartUnloading = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
};

enum cudaMemcpyKind : int {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,  // the runtime infers each side from the pointer (unified addressing)
};

enum cudaFuncAttribute : int {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr : int {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

// Stream, event and pinned-allocation flags (the values the runtime uses).
constexpr unsigned int cudaStreamDefault = 0x0;      // blocking: orders with the legacy stream
constexpr unsigned int cudaStreamNonBlocking = 0x1;  // no implicit order with the legacy stream
constexpr unsigned int cudaEventDefault = 0x0;
constexpr unsigned int cudaEventBlockingSync = 0x1;
constexpr unsigned int cudaEventDisableTiming = 0x2;
constexpr unsigned int cudaHostAllocDefault = 0x0;
constexpr unsigned int cudaHostAllocPortable = 0x1;
constexpr unsigned int cudaHostAllocMapped = 0x2;
constexpr unsigned int cudaHostAllocWriteCombined = 0x4;

// Where a pointer points (cudaPointerGetAttributes).
enum cudaMemoryType : int {
  cudaMemoryTypeUnregistered = 0,  // ordinary (pageable) host memory
  cudaMemoryTypeHost = 1,          // pinned host memory
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};
struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;  // null for unregistered host memory
  void* hostPointer;    // null for device memory
};

// The fields of the device properties tessera and its tests read (the real struct has many more).
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major;
  int minor;
  size_t sharedMemPerBlockOptin;
};

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
// For cudaErrorLaunchFailure the string names the deferred work that failed last on this thread
// (the kernel, block and thread where known), so a TESSERA_CUDA_CHECK around a synchronisation
// reports which kernel failed.
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);

// ---- devices
// -------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);  // the calling host thread's current device
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
// The emulated device reports an H100-like shared-memory limit and thread limits, and a small
// multiprocessor count (8, or TESSERA_EMU_SM_COUNT) so grid-stride loops take several turns.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
// Total: TESSERA_EMU_DEVICE_MEMORY_MB (default 16384) per device; free: total minus the bytes
// cudaMalloc'ed on the current device.
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
// Runs every stream of the current device to completion (an explicit synchronisation).
cudaError_t cudaDeviceSynchronize();

// ---- memory
// -------------------------------------------------------------------------------------- Emulated
// device memory (device_memory.h) on the current device: registered, exact-size host allocations.
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
// Like the device's, cudaFree synchronises: queued work on every stream runs first (an implicit
// synchronisation, counted).
cudaError_t cudaFree(void* ptr);
// Pinned (page-locked) host memory: page-aligned and page-padded, so a pending device-to-host
// copy into it can protect its pages (see cudaMemcpyAsync).
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);  // synchronises like cudaFree

// Device memory: cudaMemoryTypeDevice with its device; pinned memory: cudaMemoryTypeHost; any other
// address: cudaMemoryTypeUnregistered (cudaSuccess, as CUDA 11 and later answer).
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr);

// A memset is queued on the stream; device ranges must lie inside one allocation.
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
// Queued on the stream, with the device's rules for the host side:
//   host to device from pageable memory: the source is copied at the call (reusable at once);
//   host to device from pinned memory: the source is read when the copy runs;
//   device to host into pageable memory: completes before the call returns (an implicit
//     synchronisation of the stream, counted);
//   device to host into pinned memory: completes when the stream runs it; until then the
//     destination holds a poison pattern and its pages are protected, so a host access before a
//     synchronisation that covers the copy is reported (and aborts);
//   device to device (also across devices): queued.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
// On the legacy stream; host <-> device copies count as an implicit synchronisation.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);

// ---- streams and events
// --------------------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
// Runs the stream's remaining work, then releases the handle.
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
// cudaSuccess when the stream has no queued work. Otherwise cudaErrorNotReady the first time it is
// asked, and the queued work runs when it is asked again (a polling loop ends; code that takes
// one "not ready" for "done" is not rewarded). Counted as a query, not a synchronisation.
cudaError_t cudaStreamQuery(cudaStream_t stream);
// The waiting stream's later work runs only after the event's recorded position on its stream
// has run. Allowed across devices. An event never recorded is complete.
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
// Captures the stream's current position. The event and the stream must belong to the same
// device (cudaErrorInvalidResourceHandle otherwise).
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);  // runs the stream up to the position
// cudaSuccess when the captured position has run; otherwise like cudaStreamQuery: "not ready"
// once, then the work up to the position runs. Counted as a query.
cudaError_t cudaEventQuery(cudaEvent_t event);

// What cudaFuncGetAttributes reports (the fields tessera reads are first).
struct cudaFuncAttributes {
  size_t sharedSizeBytes;  // static shared memory per block (the kernel's __shared__ arrays)
  size_t constSizeBytes;
  size_t localSizeBytes;
  int maxThreadsPerBlock;
  int numRegs;
  int ptxVersion;
  int binaryVersion;
  int cacheModeCA;
  int maxDynamicSharedSizeBytes;  // the MaxDynamicSharedMemorySize attribute
  int preferredShmemCarveout;
};

namespace tessera::emu::detail {
cudaError_t set_function_attribute(const void* func, cudaFuncAttribute attr, int value);
cudaError_t get_function_attributes(cudaFuncAttributes* attributes, const void* func);
void set_static_shared_bytes(const void* func, size_t bytes);
}  // namespace tessera::emu::detail

namespace tessera::emu {
// The emulator cannot see a kernel's static shared memory (__shared__ is a thread_local here), so
// it reports 0 unless a test declares it: the size nvcc would report for `kernel`, which then
// counts in the launch rules below and in cudaFuncGetAttributes.
template <typename F>
void declare_static_shared_bytes(F* kernel, size_t bytes) {
  detail::set_static_shared_bytes(reinterpret_cast<const void*>(kernel), bytes);
}
}  // namespace tessera::emu

// sharedSizeBytes as declared above (0 otherwise) and the dynamic limit in force.
template <typename F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, F* func) {
  return ::tessera::emu::detail::get_function_attributes(attributes,
                                                         reinterpret_cast<const void*>(func));
}

// As on the device: a block's static + dynamic shared memory must fit 48 KiB unless
// cudaFuncAttributeMaxDynamicSharedMemorySize was raised to the dynamic size (a launch may ask for
// at most the attribute, whose default is 48 KiB minus the static size), and raising it fails
// (cudaErrorInvalidValue) when static + the value exceed the opt-in limit (227 KiB).
template <typename F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return ::tessera::emu::detail::set_function_attribute(reinterpret_cast<const void*>(func), attr,
                                                        value);
}
