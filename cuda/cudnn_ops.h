#pragma once
// cuDNN in its own files (vendor-library code apart from the kernels): convolution
// (cuda/cudnn_conv.cpp), pooling and batch normalisation (cuda/cudnn_pool_bn.cpp) for the CUDA
// backend, NCHW f32.
//   - One cuDNN handle per CudaBackend, bound to the backend's stream.
//   - Convolution algorithms are chosen per layer (the shape without the batch size N,
//     cuda/cudnn_plans.h) by cudnnFind* (measured, FMA math: no TF32, so the results stay close
//     to the host backend) among those whose workspace fits the limit. Plans (descriptors and
//     workspace sizes) are per full shape: a new N (the last partial batch) reuses the layer's
//     algorithms and asks cudnnGetConvolution*WorkspaceSize for its sizes; only if cuDNN refuses
//     an algorithm for that N, or it needs more than the limit, is that shape measured itself.
//   - A call that fails with the chosen algorithm (a status such as CUDNN_STATUS_NOT_SUPPORTED,
//     or a workspace that cannot be allocated) is retried once with the default algorithm
//     (forward IMPLICIT_GEMM, backward ALGO_0: little or no workspace, any alignment), which that
//     shape's plan then keeps; a failure with the default algorithm is an Error(Backend).
//   - Data pointers must be cudnn_aligned (16 bytes, cuda/cudnn_plans.h): unaligned views go
//     through aligned scratch copies on the stream (cuda/cudnn_staging.h, shared with the LSTM).
//   - One workspace buffer per backend, grown to the largest plan's need and reused by every op
//     on the stream (ops on one stream are ordered, so they never use it at the same time).
#include <cudnn.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cudnn_plans.h"
#include "cuda/cudnn_staging.h"
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

// The algorithms cudnnFind* chose for one convolution layer (any batch size).
struct ConvAlgos {
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
};

// Descriptors, algorithms and their workspace sizes for one convolution shape.
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
  size_t measured_layers() const { return measured_; }  // cudnnFind* searches run so far
  // This shape's plan: its algorithms and workspace sizes (building it if needed).
  const ConvPlan& plan_of(const Conv2dParams& p, const Shape& x, const Shape& w) {
    return plan(p, x, w);
  }
  size_t fallbacks() const { return fallbacks_; }  // calls retried with the default algorithm

 private:
  // Aligned argument staging (cuda/cudnn_staging.h) through this backend's scratch slots.
  class Aligned : public CudnnAligned {
   public:
    explicit Aligned(CudnnOps& ops) : CudnnAligned(ops.scratch_) {}
  };

  // The plan for this shape, built on first use (its algorithms reused from the layer's or
  // measured). Measuring runs convolutions on scratch buffers of its own, so the caller's
  // tensors are never touched.
  ConvPlan& plan(const Conv2dParams& p, const Shape& x, const Shape& w);
  std::unique_ptr<ConvPlan> build_plan(const Conv2dParams& p, const Shape& x, const Shape& w);
  bool reuse_algos(const ConvAlgos& a, ConvPlan& pl);  // false: cuDNN refuses one for this N
  void measure(ConvPlan& pl, const std::string& key);
  // One convolution call with the plan's algorithm, retried once with `fallback` (kept in the
  // plan) if it fails (cudnn_conv.cpp).
  template <typename Algo, typename SizeOf, typename Call>
  void run_with_fallback(const char* direction, const std::string& key, Algo& algo, size_t& bytes,
                         Algo fallback, SizeOf size_of, Call call);
  void* workspace(size_t bytes);  // at least `bytes` of device memory, valid until the next call

  int device_index_;
  cudaStream_t stream_;
  CudnnHandle handle_;
  BoundedCache<std::string, ConvAlgos> algos_{kMaxPlans};  // by conv_layer_key
  BoundedCache<std::string, ConvPlan> plans_{kMaxPlans};   // by conv_shape_key
  size_t measured_ = 0;
  size_t fallbacks_ = 0;
  std::unique_ptr<DeviceBuffer> workspace_;
  CudnnScratch scratch_;
};

}  // namespace tessera::cuda
