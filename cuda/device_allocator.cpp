#include "cuda/device_allocator.h"

#include <cuda_runtime_api.h>

#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"

namespace tessera::cuda {

namespace {

// The cap make_device_allocator uses when none is given: TESSERA_CUDA_CACHE_MAX_MB, else a
// quarter of the device's memory (CachingAllocator::kDefaultMaxCached if it cannot be read).
size_t default_max_cached(int device_index) {
  if (const char* env = std::getenv("TESSERA_CUDA_CACHE_MAX_MB")) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    TESSERA_CHECK(end != env && *end == '\0',
                  "TESSERA_CUDA_CACHE_MAX_MB must be a number of MiB, not '" << env << "'");
    return static_cast<size_t>(mb) << 20;
  }
  DeviceGuard guard(device_index);
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess || total_bytes == 0) {
    (void)cudaGetLastError();
    return CachingAllocator::kDefaultMaxCached;
  }
  return total_bytes / 4;
}

}  // namespace

std::shared_ptr<CachingAllocator> make_device_allocator(int device_index, size_t max_cached_bytes) {
  RawDeviceMemory raw;
  raw.allocate = [device_index](size_t bytes) -> void* {
    DeviceGuard guard(device_index);
    void* p = nullptr;
    const cudaError_t st = cudaMalloc(&p, bytes);
    if (st == cudaSuccess) return p;
    (void)cudaGetLastError();  // do not leave the error for the next, unrelated check
    if (st == cudaErrorMemoryAllocation) return nullptr;  // the cache releases and retries
    TESSERA_THROW(Backend, "cudaMalloc of " << bytes << " bytes on cuda:" << device_index
                                            << " failed: " << describe_status(st));
  };
  raw.free = [](void* p) {
    // With unified addressing cudaFree frees a pointer of any device, whichever is current. It
    // waits for the device: only cache trims and releases and the backend's end come here.
    const cudaError_t st = cudaFree(p);
    // At process exit the runtime may already be torn down; the memory goes with the context.
    if (st != cudaErrorCudartUnloading) log_status(st, cudaSuccess, "cudaFree", __FILE__, __LINE__);
    (void)cudaGetLastError();
  };
  raw.synchronize = [device_index] {
    DeviceGuard guard(device_index);
    TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
  };
  raw.record_fence = [device_index](const void* stream) -> void* {
    DeviceGuard guard(device_index);  // an event must belong to its stream's device
    cudaEvent_t ev = nullptr;
    TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    const cudaError_t st =
        cudaEventRecord(ev, static_cast<cudaStream_t>(const_cast<void*>(stream)));
    if (st != cudaSuccess) {
      (void)cudaEventDestroy(ev);
      (void)cudaGetLastError();
      TESSERA_THROW(Backend, "cudaEventRecord of a cache fence on cuda:"
                                 << device_index << " failed: " << describe_status(st));
    }
    return ev;
  };
  raw.fence_done = [device_index](void* fence) {
    const cudaError_t st = cudaEventQuery(static_cast<cudaEvent_t>(fence));
    if (st == cudaSuccess) return true;
    if (st == cudaErrorNotReady) return false;
    (void)cudaGetLastError();
    TESSERA_THROW(Backend, "cudaEventQuery of a cache fence on cuda:" << device_index << " failed: "
                                                                      << describe_status(st));
  };
  raw.drop_fence = [](void* fence) {
    const cudaError_t st = cudaEventDestroy(static_cast<cudaEvent_t>(fence));
    if (st != cudaErrorCudartUnloading)
      log_status(st, cudaSuccess, "cudaEventDestroy", __FILE__, __LINE__);
    (void)cudaGetLastError();
  };
  CachingAllocator::Options options;
  options.max_cached_bytes = max_cached_bytes ? max_cached_bytes : default_max_cached(device_index);
  return std::make_shared<CachingAllocator>(std::move(raw), "cuda:" + std::to_string(device_index),
                                            options);
}

}  // namespace tessera::cuda
