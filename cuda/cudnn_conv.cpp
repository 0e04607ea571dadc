// cuDNN convolution for the CUDA backend: the handle, descriptor owners, the plan caches (per
// layer: the measured algorithms; per shape: descriptors and workspace sizes), the algorithm
// fallback, the shared workspace, and CudaBackend's conv2d overrides. Aligned argument staging:
// cuda/cudnn_staging.h.
#include <limits>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_ops.h"
#include "cuda/device_guard.h"

namespace tessera::cuda {

// ---- RAII --------------------------------------------------------------------------------------

void CudnnHandleDeleter::operator()(cudnnContext* h) const noexcept {
  if (h) log_status(cudnnDestroy(h), CUDNN_STATUS_SUCCESS, "cudnnDestroy", __FILE__, __LINE__);
}
void TensorDescDeleter::operator()(cudnnTensorStruct* d) const noexcept {
  if (d)
    log_status(cudnnDestroyTensorDescriptor(d), CUDNN_STATUS_SUCCESS,
               "cudnnDestroyTensorDescriptor", __FILE__, __LINE__);
}
void FilterDescDeleter::operator()(cudnnFilterStruct* d) const noexcept {
  if (d)
    log_status(cudnnDestroyFilterDescriptor(d), CUDNN_STATUS_SUCCESS,
               "cudnnDestroyFilterDescriptor", __FILE__, __LINE__);
}
void ConvDescDeleter::operator()(cudnnConvolutionStruct* d) const noexcept {
  if (d)
    log_status(cudnnDestroyConvolutionDescriptor(d), CUDNN_STATUS_SUCCESS,
               "cudnnDestroyConvolutionDescriptor", __FILE__, __LINE__);
}
void PoolDescDeleter::operator()(cudnnPoolingStruct* d) const noexcept {
  if (d)
    log_status(cudnnDestroyPoolingDescriptor(d), CUDNN_STATUS_SUCCESS,
               "cudnnDestroyPoolingDescriptor", __FILE__, __LINE__);
}

namespace {

int as_int(int64_t v, const char* what) {
  TESSERA_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(),
                "cuDNN takes int dimensions: " << what << " = " << v << " does not fit");
  return static_cast<int>(v);
}

FilterDesc make_filter_desc(const Shape& w) {
  cudnnFilterDescriptor_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreateFilterDescriptor(&raw));
  FilterDesc d(raw);
  // [K, C/groups, R, S]: cuDNN's grouped-filter layout is the same.
  TESSERA_CUDA_CHECK(cudnnSetFilter4dDescriptor(raw, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                                as_int(w[0], "K"), as_int(w[1], "C/groups"),
                                                as_int(w[2], "R"), as_int(w[3], "S")));
  return d;
}

ConvDesc make_conv_desc(const Conv2dParams& p) {
  cudnnConvolutionDescriptor_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&raw));
  ConvDesc d(raw);
  TESSERA_CUDA_CHECK(cudnnSetConvolution2dDescriptor(
      raw, as_int(p.pad_h, "pad_h"), as_int(p.pad_w, "pad_w"), as_int(p.stride_h, "stride_h"),
      as_int(p.stride_w, "stride_w"), as_int(p.dilation_h, "dilation_h"),
      as_int(p.dilation_w, "dilation_w"), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  TESSERA_CUDA_CHECK(cudnnSetConvolutionGroupCount(raw, as_int(p.groups, "groups")));
  // FMA math: no TF32 tensor-core paths, so results stay within float rounding of the host.
  TESSERA_CUDA_CHECK(cudnnSetConvolutionMathType(raw, CUDNN_FMA_MATH));
  return d;
}

// Measures the candidate algorithms with a cudnnFind* call, `find(requested, &returned, perfs)`,
// and returns the fastest that succeeded within the workspace limit.
template <typename Perf, typename Find>
Perf find_fastest(int candidates, const char* direction, const std::string& key, Find find) {
  std::vector<Perf> perfs(static_cast<size_t>(candidates));
  int returned = 0;
  TESSERA_CUDA_CHECK(find(candidates, &returned, perfs.data()));
  for (int i = 0; i < returned; ++i)
    if (perfs[i].status == CUDNN_STATUS_SUCCESS && perfs[i].memory <= CudnnOps::kWorkspaceLimit)
      return perfs[i];
  TESSERA_THROW(Backend, "cuDNN found no " << direction << " convolution algorithm for " << key
                                           << " within a " << (CudnnOps::kWorkspaceLimit >> 20)
                                           << " MiB workspace");
}

}  // namespace

TensorDesc make_tensor_desc(const Shape& s) {
  cudnnTensorDescriptor_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreateTensorDescriptor(&raw));
  TensorDesc d(raw);
  const int64_t h = s.size() == 4 ? s[2] : 1, w = s.size() == 4 ? s[3] : 1;
  TESSERA_CUDA_CHECK(cudnnSetTensor4dDescriptor(raw, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                as_int(s[0], "N"), as_int(s[1], "C"),
                                                as_int(h, "H"), as_int(w, "W")));
  return d;
}

// ---- CudnnOps: handle, plans, workspace ------------------------------------------------------

CudnnOps::CudnnOps(int device_index, cudaStream_t stream)
    : device_index_(device_index), stream_(stream), scratch_(device_index, stream) {
  cudnnHandle_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreate(&raw));
  handle_.reset(raw);
  TESSERA_CUDA_CHECK(cudnnSetStream(raw, stream));
}

void* CudnnOps::workspace(size_t bytes) {
  if (bytes == 0) return nullptr;
  if (!workspace_ || workspace_->bytes() < bytes) {
    // Queued ops may still read the old buffer: let them finish before it is freed.
    TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));
    workspace_.reset();
    workspace_ = std::make_unique<DeviceBuffer>(bytes, device_index_);
  }
  return workspace_->data();
}

ConvPlan& CudnnOps::plan(const Conv2dParams& p, const Shape& xs, const Shape& ws) {
  return plans_.get(conv_shape_key(p, xs, ws), [&] { return build_plan(p, xs, ws); });
}

std::unique_ptr<ConvPlan> CudnnOps::build_plan(const Conv2dParams& p, const Shape& xs,
                                               const Shape& ws) {
  const std::string key = conv_shape_key(p, xs, ws);
  const Shape ys = conv2d_output_shape(p, xs, ws);
  auto pl = std::make_unique<ConvPlan>();
  pl->x = make_tensor_desc(xs);
  pl->y = make_tensor_desc(ys);
  pl->bias = make_tensor_desc({1, ws[0], 1, 1});
  pl->w = make_filter_desc(ws);
  pl->conv = make_conv_desc(p);
  int n = 0, c = 0, h = 0, w = 0;
  TESSERA_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->conv.get(), pl->x.get(), pl->w.get(),
                                                           &n, &c, &h, &w));
  TESSERA_CHECK(Shape({n, c, h, w}) == ys, "cuDNN computes the output of "
                                               << key << " as [" << n << ", " << c << ", " << h
                                               << ", " << w << "], the Backend as "
                                               << shape_str(ys));
  // Another batch size of this layer was measured: its algorithms, this N's workspace sizes.
  const std::string layer = conv_layer_key(p, xs, ws);
  if (const ConvAlgos* known = algos_.find(layer))
    if (reuse_algos(*known, *pl)) return pl;
  measure(*pl, key);
  if (!algos_.find(layer)) {
    ConvAlgos chosen{pl->fwd, pl->bwd_data, pl->bwd_filter};
    algos_.get(layer, [&] { return std::make_unique<ConvAlgos>(chosen); });
  }
  return pl;
}

bool CudnnOps::reuse_algos(const ConvAlgos& a, ConvPlan& pl) {
  cudnnHandle_t handle = handle_.get();
  size_t fwd = 0, data = 0, filter = 0;
  // A refusal is an answer here (that algorithm does not take this N), not an error.
  if (cudnnGetConvolutionForwardWorkspaceSize(handle, pl.x.get(), pl.w.get(), pl.conv.get(),
                                              pl.y.get(), a.fwd, &fwd) != CUDNN_STATUS_SUCCESS ||
      cudnnGetConvolutionBackwardDataWorkspaceSize(handle, pl.w.get(), pl.y.get(), pl.conv.get(),
                                                   pl.x.get(), a.bwd_data,
                                                   &data) != CUDNN_STATUS_SUCCESS ||
      cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, pl.x.get(), pl.y.get(), pl.conv.get(),
                                                     pl.w.get(), a.bwd_filter,
                                                     &filter) != CUDNN_STATUS_SUCCESS)
    return false;
  if (fwd > kWorkspaceLimit || data > kWorkspaceLimit || filter > kWorkspaceLimit) return false;
  pl.fwd = a.fwd;
  pl.bwd_data = a.bwd_data;
  pl.bwd_filter = a.bwd_filter;
  pl.fwd_bytes = fwd;
  pl.bwd_data_bytes = data;
  pl.bwd_filter_bytes = filter;
  return true;
}

void CudnnOps::measure(ConvPlan& pl, const std::string& key) {
  // cudnnFind* runs each candidate on buffers it allocates itself and returns them by time.
  cudnnHandle_t handle = handle_.get();
  ++measured_;
  const auto fwd = find_fastest<cudnnConvolutionFwdAlgoPerf_t>(
      CUDNN_CONVOLUTION_FWD_ALGO_COUNT, "forward", key,
      [&](int requested, int* returned, auto* perfs) {
        return cudnnFindConvolutionForwardAlgorithm(handle, pl.x.get(), pl.w.get(), pl.conv.get(),
                                                    pl.y.get(), requested, returned, perfs);
      });
  pl.fwd = fwd.algo;
  pl.fwd_bytes = fwd.memory;
  const auto bwd_data = find_fastest<cudnnConvolutionBwdDataAlgoPerf_t>(
      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, "backward-data", key,
      [&](int requested, int* returned, auto* perfs) {
        return cudnnFindConvolutionBackwardDataAlgorithm(
            handle, pl.w.get(), pl.y.get(), pl.conv.get(), pl.x.get(), requested, returned, perfs);
      });
  pl.bwd_data = bwd_data.algo;
  pl.bwd_data_bytes = bwd_data.memory;
  const auto bwd_filter = find_fastest<cudnnConvolutionBwdFilterAlgoPerf_t>(
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, "backward-filter", key,
      [&](int requested, int* returned, auto* perfs) {
        return cudnnFindConvolutionBackwardFilterAlgorithm(
            handle, pl.x.get(), pl.y.get(), pl.conv.get(), pl.w.get(), requested, returned, perfs);
      });
  pl.bwd_filter = bwd_filter.algo;
  pl.bwd_filter_bytes = bwd_filter.memory;
}

// Runs `call(algo, workspace, bytes)` with the plan's algorithm. If that fails (a status other
// than success, e.g. CUDNN_STATUS_NOT_SUPPORTED for this shape, or its workspace cannot be
// allocated), it runs once more with `fallback` (the basic implicit GEMM: no or little workspace,
// any alignment) and the plan keeps `fallback` from then on. `size_of(algo, &bytes)` is the
// direction's cudnnGet*WorkspaceSize.
template <typename Algo, typename SizeOf, typename Call>
void CudnnOps::run_with_fallback(const char* direction, const std::string& key, Algo& algo,
                                 size_t& bytes, Algo fallback, SizeOf size_of, Call call) {
  std::string why;
  try {
    const cudnnStatus_t st = call(algo, workspace(bytes), bytes);
    if (st == CUDNN_STATUS_SUCCESS) return;
    why = cudnnGetErrorString(st);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Backend) throw;
    why = e.what();
  }
  if (algo == fallback)
    TESSERA_THROW(Backend, "cuDNN " << direction << " convolution of " << key << " failed with "
                                    << "the default algorithm: " << why);
  size_t fallback_bytes = 0;
  TESSERA_CUDA_CHECK(size_of(fallback, &fallback_bytes));
  const cudnnStatus_t st = call(fallback, workspace(fallback_bytes), fallback_bytes);
  if (st != CUDNN_STATUS_SUCCESS)
    TESSERA_THROW(
        Backend, "cuDNN " << direction << " convolution of " << key << " failed with algorithm "
                          << static_cast<int>(algo) << " (" << why
                          << ") and again with the default algorithm: " << cudnnGetErrorString(st));
  algo = fallback;
  bytes = fallback_bytes;
  ++fallbacks_;
}

void CudnnOps::conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                              const Tensor& bias, Tensor& y) {
  ConvPlan& pl = plan(p, x.shape(), w.shape());
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* xp = a.in(x);
  const void* wp = a.in(w);
  const void* bp = a.in(bias);
  void* yp = a.out(y);
  cudnnHandle_t h = handle_.get();
  run_with_fallback(
      "forward", conv_shape_key(p, x.shape(), w.shape()), pl.fwd, pl.fwd_bytes,
      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(h, pl.x.get(), pl.w.get(), pl.conv.get(),
                                                       pl.y.get(), algo, bytes);
      },
      [&](cudnnConvolutionFwdAlgo_t algo, void* ws, size_t bytes) {
        return cudnnConvolutionForward(h, &one, pl.x.get(), xp, pl.w.get(), wp, pl.conv.get(), algo,
                                       ws, bytes, &zero, pl.y.get(), yp);
      });
  if (bp) TESSERA_CUDA_CHECK(cudnnAddTensor(h, &one, pl.bias.get(), bp, &one, pl.y.get(), yp));
  a.finish();
}

void CudnnOps::conv2d_backward(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                               const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  ConvPlan& pl = plan(p, x.shape(), w.shape());
  const std::string key = conv_shape_key(p, x.shape(), w.shape());
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* xp = a.in(x);
  const void* wp = a.in(w);
  const void* dyp = a.in(dy);
  void* dxp = a.out(dx);
  void* dwp = a.out(dw);
  void* dbp = a.out(dbias);
  cudnnHandle_t h = handle_.get();
  if (dxp)
    run_with_fallback(
        "backward-data", key, pl.bwd_data, pl.bwd_data_bytes, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
        [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
          return cudnnGetConvolutionBackwardDataWorkspaceSize(
              h, pl.w.get(), pl.y.get(), pl.conv.get(), pl.x.get(), algo, bytes);
        },
        [&](cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t bytes) {
          return cudnnConvolutionBackwardData(h, &one, pl.w.get(), wp, pl.y.get(), dyp,
                                              pl.conv.get(), algo, ws, bytes, &zero, pl.x.get(),
                                              dxp);
        });
  run_with_fallback(
      "backward-filter", key, pl.bwd_filter, pl.bwd_filter_bytes,
      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(
            h, pl.x.get(), pl.y.get(), pl.conv.get(), pl.w.get(), algo, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardFilter(h, &one, pl.x.get(), xp, pl.y.get(), dyp,
                                              pl.conv.get(), algo, ws, bytes, &zero, pl.w.get(),
                                              dwp);
      });
  if (dbp)
    TESSERA_CUDA_CHECK(
        cudnnConvolutionBackwardBias(h, &one, pl.y.get(), dyp, &zero, pl.bias.get(), dbp));
  a.finish();
}

// ---- CudaBackend overrides ---------------------------------------------------------------------

CudnnOps& CudaBackend::cudnn() {
  if (!cudnn_) cudnn_ = std::make_unique<CudnnOps>(device_index_, stream());
  return *cudnn_;
}

void CudaBackend::conv2d_forward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                      const Tensor& bias, Tensor& y) {
  DeviceGuard guard(device_index_);
  cudnn().conv2d_forward(p, x, w, bias, y);
}

void CudaBackend::conv2d_backward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                                       const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) {
  DeviceGuard guard(device_index_);
  cudnn().conv2d_backward(p, x, w, dy, dx, dw, dbias);
}

}  // namespace tessera::cuda
