#pragma once
// DeviceGuard: makes a device current for a scope and restores the previous one on exit, so a
// backend for cuda:1 never leaves the calling thread pointed at cuda:1 (or works on cuda:0).
#include <cuda_runtime_api.h>

#include "cuda/cuda_check.h"

namespace tessera::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device_index) {
    TESSERA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device_index) TESSERA_CUDA_CHECK(cudaSetDevice(device_index));
    else previous_ = -1;  // nothing to restore
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard() {
    if (previous_ >= 0) log_status(cudaSetDevice(previous_), cudaSuccess, "cudaSetDevice", __FILE__, __LINE__);
  }

 private:
  int previous_ = -1;
};

}  // namespace tessera::cuda
