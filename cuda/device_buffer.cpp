#include "cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>

#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"

namespace tessera::cuda {

DeviceBuffer::DeviceBuffer(size_t bytes, int device_index)
    : bytes_(bytes), device_index_(device_index) {
  DeviceGuard guard(device_index);
  const size_t request = std::max<size_t>(bytes, 256);
  cudaError_t st = cudaMalloc(&ptr_, request);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    ptr_ = nullptr;
    TESSERA_THROW(Backend, "cudaMalloc of " << bytes << " bytes on cuda:" << device_index
                                            << " failed: " << describe_status(st));
  }
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(o.ptr_), bytes_(o.bytes_), device_index_(o.device_index_) {
  o.ptr_ = nullptr;
  o.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    device_index_ = o.device_index_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { release(); }

void DeviceBuffer::release() noexcept {
  if (!ptr_) return;
  // cudaFree synchronizes the device, so kernels still reading this memory finish first. With
  // unified addressing it frees a pointer of any device, whichever device is current.
  const cudaError_t st = cudaFree(ptr_);
  // At process exit the runtime may already be torn down; the memory goes with the context.
  if (st != cudaErrorCudartUnloading) log_status(st, cudaSuccess, "cudaFree", __FILE__, __LINE__);
  (void)cudaGetLastError();
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace tessera::cuda
