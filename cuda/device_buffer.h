#pragma once
// DeviceBuffer: one cudaMalloc allocation on one device, owned (the tiny-cuda-nn GPUMemory
// pattern). Move-only; the destructor never throws (a failing cudaFree is logged to stderr).
// Memory is NOT zeroed here: CudaBackend::empty_impl zeroes it on the backend's stream, so the
// zeroing is ordered with the ops that follow.
#include <cstddef>

#include "host/core/tensor.h"

namespace tessera::cuda {

class DeviceBuffer final : public Buffer {
 public:
  // Allocates max(bytes, 256) bytes on `device_index` (zero-byte tensors still get a valid,
  // aligned pointer). Throws Error(Backend) naming the size and device on failure.
  DeviceBuffer(size_t bytes, int device_index);
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
};

}  // namespace tessera::cuda
