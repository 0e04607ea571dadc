#pragma once
// DeviceBuffer: device memory on one device, owned (the tiny-cuda-nn GPUMemory pattern), from
// one of two sources:
//   - a backend's caching allocator (cuda/device_allocator.h), for memory used on that backend's
//     stream: Backend::empty and the backend's temporaries. Freeing returns the block to the
//     stream's cache without any wait; the buffer keeps the allocator alive, so a tensor may
//     outlive its backend.
//   - a plain cudaMalloc, for memory written or read on another stream (the pinned stager's
//     device tensors, written on its copy stream) or kept for an object's life (cuDNN plans and
//     workspaces, the validation flags). Freeing is cudaFree, which waits for the device.
// Move-only; the destructor never throws (a failing cudaFree is logged to stderr). Memory is NOT
// zeroed here: CudaBackend::empty_impl zeroes it on the backend's stream, so the zeroing is
// ordered with the ops that follow.
#include <cstddef>
#include <memory>

#include "cuda/device_allocator.h"
#include "host/core/tensor.h"

namespace tessera::cuda {

class DeviceBuffer final : public Buffer {
 public:
  // cudaMalloc of max(bytes, 256) bytes on `device_index` (zero-byte tensors still get a valid,
  // aligned pointer). Throws Error(Backend) naming the size and device on failure.
  DeviceBuffer(size_t bytes, int device_index);
  // A block of at least `bytes` from `allocator` (device `device_index`'s), for work queued on
  // `stream`; it goes back to that stream's cache when the buffer goes.
  DeviceBuffer(size_t bytes, int device_index, std::shared_ptr<CachingAllocator> allocator,
               CachingAllocator::StreamKey stream);
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  ~DeviceBuffer() override;

  void* data() override { return ptr_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device{DeviceKind::Cuda, device_index_}; }

 private:
  void release() noexcept;

  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_index_ = 0;
  std::shared_ptr<CachingAllocator> allocator_;  // null: ptr_ is a plain cudaMalloc
  CachingAllocator::Block block_;                // allocator_'s block
};

}  // namespace tessera::cuda
