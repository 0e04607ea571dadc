#include "cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <utility>

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

DeviceBuffer::DeviceBuffer(size_t bytes, int device_index,
                           std::shared_ptr<CachingAllocator> allocator,
                           CachingAllocator::StreamKey stream)
    : bytes_(bytes), device_index_(device_index), allocator_(std::move(allocator)) {
  TESSERA_CHECK(allocator_, "DeviceBuffer of " << bytes << " bytes: no allocator");
  block_ = allocator_->allocate(bytes, stream);
  ptr_ = block_.ptr;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)),
      device_index_(o.device_index_),
      allocator_(std::move(o.allocator_)),
      block_(std::exchange(o.block_, {})) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    device_index_ = o.device_index_;
    allocator_ = std::move(o.allocator_);
    block_ = std::exchange(o.block_, {});
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  release();
}

void DeviceBuffer::release() noexcept {
  if (!ptr_) return;
  if (allocator_) {
    // Back to its stream's cache: work queued on that stream later runs after every use so far.
    allocator_->free(block_);
    allocator_.reset();
    block_ = {};
  } else {
    // cudaFree synchronizes the device, so kernels still reading this memory finish first. With
    // unified addressing it frees a pointer of any device, whichever device is current.
    const cudaError_t st = cudaFree(ptr_);
    // At process exit the runtime may already be torn down; the memory goes with the context.
    if (st != cudaErrorCudartUnloading) log_status(st, cudaSuccess, "cudaFree", __FILE__, __LINE__);
    (void)cudaGetLastError();
  }
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace tessera::cuda
