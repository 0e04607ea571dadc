#include "cuda/device_allocator.h"

#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"

namespace tessera::cuda {

std::shared_ptr<CachingAllocator> make_device_allocator(int device_index) {
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
    // waits for the device: only cache releases and the backend's end come here.
    const cudaError_t st = cudaFree(p);
    // At process exit the runtime may already be torn down; the memory goes with the context.
    if (st != cudaErrorCudartUnloading) log_status(st, cudaSuccess, "cudaFree", __FILE__, __LINE__);
    (void)cudaGetLastError();
  };
  raw.synchronize = [device_index] {
    DeviceGuard guard(device_index);
    TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
  };
  return std::make_shared<CachingAllocator>(std::move(raw), "cuda:" + std::to_string(device_index));
}

}  // namespace tessera::cuda
