#pragma once
// cuDNN in its own files (vendor-library code apart from the kernels): convolution
// (cuda/cudnn_conv.cpp), pooling and batch normalisation (cuda/cudnn_pool_bn.cpp) for the CUDA
// backend, NCHW f32.
//   - One cuDNN handle per CudaBackend, bound to the backend's stream.
//   - Convolution plans are cached by shape and parameters: descriptors plus the algorithm for
//     each direction, chosen once per shape by cudnnFind* (measured, FMA math: no TF32, so the
//     results stay close to the host backend) among those whose workspace fits the limit.
//   - One workspace buffer per backend, grown to the largest plan's need and reused by every op
//     on the stream (ops on one stream are ordered, so they never use it at the same time).
#include <cudnn.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "cuda/device_buffer.h"
#include "host/backend/backend.h"

namespace tessera::cuda {

struct CudnnHandleDeleter {
  void operator()(cudnnContext* handle) const noexcept;  // cudnnDestroy, logged on failure
};
using CudnnHandle = std::unique_ptr<cudnnContext, CudnnHandleDeleter>;

// Move-only owners of cuDNN descriptors (destroyed with logging, never throwing).
struct TensorDescDeleter {
  void operator()(cudnnTensorStruct* d) const noexcept;
};
struct FilterDescDeleter {
  void operator()(cudnnFilterStruct* d) const noexcept;
};
struct ConvDescDeleter {
  void operator()(cudnnConvolutionStruct* d) const noexcept;
};
struct PoolDescDeleter {
  void operator()(cudnnPoolingStruct* d) const noexcept;
};
using TensorDesc = std::unique_ptr<cudnnTensorStruct, TensorDescDeleter>;
using FilterDesc = std::unique_ptr<cudnnFilterStruct, FilterDescDeleter>;
using ConvDesc = std::unique_ptr<cudnnConvolutionStruct, ConvDescDeleter>;
using PoolDesc = std::unique_ptr<cudnnPoolingStruct, PoolDescDeleter>;

// A packed NCHW f32 tensor descriptor; [N, C] is described as [N, C, 1, 1].
TensorDesc make_tensor_desc(const Shape& nchw_or_nc);

// Descriptors and the chosen algorithms for one convolution shape.
struct ConvPlan {
  TensorDesc x, y, bias;
  FilterDesc w;
  ConvDesc conv;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

class CudnnOps {
 public:
  // Workspace above this is not considered when choosing an algorithm.
  static constexpr size_t kWorkspaceLimit = size_t{512} << 20;
  // Plans kept before the cache is cleared (a workload with ever-changing shapes).
  static constexpr size_t kMaxPlans = 256;

  CudnnOps(int device_index, cudaStream_t stream);
  CudnnOps(const CudnnOps&) = delete;
  CudnnOps& operator=(const CudnnOps&) = delete;

  // The Backend's convolution, pooling and batch normalisation ops (conv2d_forward, ...), named
  // as there, arguments checked at the Backend edge (host/backend/backend_conv.cpp).
  TESSERA_BACKEND_CONV_OPS(TESSERA_BACKEND_MEMBER)

  size_t plan_count() const { return plans_.size(); }

 private:
  // The plan for this shape, built (and its algorithms measured) on first use. Measuring runs
  // convolutions on scratch buffers of its own, so the caller's tensors are never touched.
  const ConvPlan& plan(const Conv2dParams& p, const Shape& x, const Shape& w);
  void* workspace(size_t bytes);  // at least `bytes` of device memory, valid until the next call

  int device_index_;
  cudaStream_t stream_;
  CudnnHandle handle_;
  std::map<std::string, std::unique_ptr<ConvPlan>> plans_;
  std::unique_ptr<DeviceBuffer> workspace_;
};

}  // namespace tessera::cuda
