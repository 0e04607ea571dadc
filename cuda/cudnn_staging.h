#pragma once
// Aligned argument staging for cuDNN calls, shared by the convolution, pooling and batch-norm ops
// (cuda/cudnn_ops.h) and the LSTM (cuda/cudnn_lstm.cpp): cuDNN gets every data pointer
// cudnn_aligned (16 bytes, cuda/cudnn_plans.h). A tensor that is a view at another offset (the
// parity harness's guard rows, a slice) is passed as an aligned scratch copy made device to device
// on the stream, and outputs are copied back after the call; aligned tensors are passed as they
// are. All on the stream: no host wait.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "cuda/device_buffer.h"
#include "host/core/tensor.h"

namespace tessera::cuda {

// One scratch buffer per argument position, grown to the largest need and reused by every call
// on the stream (calls on one stream are ordered, so they never use a slot at the same time).
class CudnnScratch {
 public:
  CudnnScratch(int device_index, cudaStream_t stream)
      : device_index_(device_index), stream_(stream) {}
  // At least `bytes` of device memory in slot `slot`, valid until the next call for that slot
  // (growing waits for the stream first: queued calls may still read the old buffer).
  void* slot(size_t slot, size_t bytes);
  cudaStream_t stream() const { return stream_; }

 private:
  int device_index_;
  cudaStream_t stream_;
  std::vector<std::unique_ptr<DeviceBuffer>> slots_;
};

// The pointers one cuDNN call gets: each tensor's own data when cudnn_aligned, else scratch slot
// k (the k-th unaligned tensor of the call), copied in for inputs; finish() copies the scratch of
// outputs back into their tensors. Undefined tensors give nullptr.
class CudnnAligned {
 public:
  explicit CudnnAligned(CudnnScratch& scratch) : scratch_(scratch) {}
  const void* in(const Tensor& t) { return stage(t, true, false); }
  void* out(Tensor& t) { return stage(t, false, true); }
  void* inout(Tensor& t) { return stage(t, true, true); }
  void finish();

 private:
  void* stage(const Tensor& t, bool copy_in, bool copy_back);
  struct Back {
    void* dst;
    const void* src;
    size_t bytes;
  };
  CudnnScratch& scratch_;
  size_t next_slot_ = 0;
  std::vector<Back> back_;
};

}  // namespace tessera::cuda
