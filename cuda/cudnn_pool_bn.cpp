// cuDNN pooling and batch normalisation for the CUDA backend, and CudaBackend's overrides.
//   - Max pooling: CUDNN_POOLING_MAX_DETERMINISTIC; average: COUNT_INCLUDE_PADDING (the Backend
//     contract, as the host's oneDNN pooling_avg_include_padding).
//   - Batch normalisation: spatial mode (per channel over N, H, W); [N, C] is [N, C, 1, 1]. cuDNN
//     saves the mean and 1/sqrt(var + eps) and updates the running variance with the unbiased
//     estimate, exactly the Backend contract. cuDNN 9 marks these entry points as legacy; they
//     remain supported and are the plain per-op API this backend needs.
//   - Unaligned tensors (views at offsets that are not cudnn_aligned) go through aligned scratch
//     copies, as for convolution (cuda/cudnn_ops.h).
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_ops.h"
#include "cuda/device_guard.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace tessera::cuda {

namespace {

PoolDesc make_pool_desc(const Pool2dParams& p) {
  cudnnPoolingDescriptor_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreatePoolingDescriptor(&raw));
  PoolDesc d(raw);
  const cudnnPoolingMode_t mode = p.kind == PoolKind::Max
                                      ? CUDNN_POOLING_MAX_DETERMINISTIC
                                      : CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
  TESSERA_CUDA_CHECK(cudnnSetPooling2dDescriptor(
      raw, mode, CUDNN_NOT_PROPAGATE_NAN, static_cast<int>(p.window_h),
      static_cast<int>(p.window_w), static_cast<int>(p.pad_h), static_cast<int>(p.pad_w),
      static_cast<int>(p.stride_h), static_cast<int>(p.stride_w)));
  return d;
}

void check_bn_eps(float eps) {
  TESSERA_CHECK(eps >= CUDNN_BN_MIN_EPSILON,
                "batchnorm eps " << eps << " is below cuDNN's minimum " << CUDNN_BN_MIN_EPSILON);
}

}  // namespace

void CudnnOps::pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  // Descriptors are cheap host-side structs: built per call rather than cached.
  const PoolDesc pd = make_pool_desc(p);
  const TensorDesc xd = make_tensor_desc(x.shape()), yd = make_tensor_desc(y.shape());
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* xp = a.in(x);
  void* yp = a.out(y);
  TESSERA_CUDA_CHECK(
      cudnnPoolingForward(handle_.get(), pd.get(), &one, xd.get(), xp, &zero, yd.get(), yp));
  a.finish();
}

void CudnnOps::pool2d_backward(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                               const Tensor& dy, Tensor& dx) {
  const PoolDesc pd = make_pool_desc(p);
  const TensorDesc xd = make_tensor_desc(x.shape()), yd = make_tensor_desc(y.shape());
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* yp = a.in(y);
  const void* dyp = a.in(dy);
  const void* xp = a.in(x);
  void* dxp = a.out(dx);
  TESSERA_CUDA_CHECK(cudnnPoolingBackward(handle_.get(), pd.get(), &one, yd.get(), yp, yd.get(),
                                          dyp, xd.get(), xp, &zero, xd.get(), dxp));
  a.finish();
}

void CudnnOps::batchnorm_forward(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                                 Tensor& y, Tensor& saved_mean, Tensor& saved_invstd) {
  check_bn_eps(p.eps);
  const TensorDesc xd = make_tensor_desc(x.shape());
  const TensorDesc cd = make_tensor_desc({1, x.dim(1), 1, 1});
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* xp = a.in(x);
  const void* gp = a.in(gamma);
  const void* bp = a.in(beta);
  void* yp = a.out(y);
  if (p.mode == BatchNormMode::Training) {
    void* rm = a.inout(running_mean);
    void* rv = a.inout(running_var);
    void* sm = a.out(saved_mean);
    void* si = a.out(saved_invstd);
    TESSERA_CUDA_CHECK(cudnnBatchNormalizationForwardTraining(
        handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(), xp, xd.get(), yp, cd.get(),
        gp, bp, static_cast<double>(p.momentum), rm, rv, static_cast<double>(p.eps), sm, si));
  } else {
    const void* rm = a.in(running_mean);
    const void* rv = a.in(running_var);
    TESSERA_CUDA_CHECK(cudnnBatchNormalizationForwardInference(
        handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(), xp, xd.get(), yp, cd.get(),
        gp, bp, rm, rv, static_cast<double>(p.eps)));
  }
  a.finish();
}

void CudnnOps::batchnorm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean,
                                  const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) {
  check_bn_eps(p.eps);
  const TensorDesc xd = make_tensor_desc(x.shape());
  const TensorDesc cd = make_tensor_desc({1, x.dim(1), 1, 1});
  const float one = 1.f, zero = 0.f;
  Aligned a(*this);
  const void* xp = a.in(x);
  const void* dyp = a.in(dy);
  const void* gp = a.in(gamma);
  const void* sm = a.in(saved_mean);
  const void* si = a.in(saved_invstd);
  void* dxp = a.out(dx);
  void* dgp = a.out(dgamma);
  void* dbp = a.out(dbeta);
  TESSERA_CUDA_CHECK(cudnnBatchNormalizationBackward(
      handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd.get(), xp, xd.get(), dyp,
      xd.get(), dxp, cd.get(), gp, dgp, dbp, static_cast<double>(p.eps), sm, si));
  a.finish();
}

// ---- CudaBackend overrides ---------------------------------------------------------------------

void CudaBackend::pool2d_forward_impl(const Pool2dParams& p, const Tensor& x, Tensor& y) {
  DeviceGuard guard(device_index_);
  cudnn().pool2d_forward(p, x, y);
}

void CudaBackend::pool2d_backward_impl(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                                       const Tensor& dy, Tensor& dx) {
  DeviceGuard guard(device_index_);
  cudnn().pool2d_backward(p, x, y, dy, dx);
}

void CudaBackend::batchnorm_forward_impl(const BatchNormParams& p, const Tensor& x,
                                         const Tensor& gamma, const Tensor& beta,
                                         Tensor& running_mean, Tensor& running_var, Tensor& y,
                                         Tensor& saved_mean, Tensor& saved_invstd) {
  DeviceGuard guard(device_index_);
  cudnn().batchnorm_forward(p, x, gamma, beta, running_mean, running_var, y, saved_mean,
                            saved_invstd);
}

void CudaBackend::batchnorm_backward_impl(const BatchNormParams& p, const Tensor& x,
                                          const Tensor& dy, const Tensor& gamma,
                                          const Tensor& saved_mean, const Tensor& saved_invstd,
                                          Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  DeviceGuard guard(device_index_);
  cudnn().batchnorm_backward(p, x, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}

}  // namespace tessera::cuda
