// cuDNN pooling and batch normalisation for the CUDA backend, and CudaBackend's overrides.
//   - Max pooling: CUDNN_POOLING_MAX_DETERMINISTIC; average: COUNT_INCLUDE_PADDING (the Backend
//     contract, as the host's oneDNN pooling_avg_include_padding).
//   - Batch normalisation: spatial mode (per channel over N, H, W); [N, C] is [N, C, 1, 1]. cuDNN
//     saves the mean and 1/sqrt(var + eps) and updates the running variance with the unbiased
//     estimate, exactly the Backend contract. cuDNN 9 marks these entry points as legacy; they
//     remain supported and are the plain per-op API this backend needs.
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
  TESSERA_CUDA_CHECK(cudnnPoolingForward(handle_.get(), pd.get(), &one, xd.get(), x.raw(), &zero,
                                         yd.get(), y.raw()));
}

void CudnnOps::pool2d_backward(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                               const Tensor& dy, Tensor& dx) {
  const PoolDesc pd = make_pool_desc(p);
  const TensorDesc xd = make_tensor_desc(x.shape()), yd = make_tensor_desc(y.shape());
  const float one = 1.f, zero = 0.f;
  TESSERA_CUDA_CHECK(cudnnPoolingBackward(handle_.get(), pd.get(), &one, yd.get(), y.raw(),
                                          yd.get(), dy.raw(), xd.get(), x.raw(), &zero, xd.get(),
                                          dx.raw()));
}

void CudnnOps::batchnorm_forward(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                                 Tensor& y, Tensor& saved_mean, Tensor& saved_invstd) {
  check_bn_eps(p.eps);
  const TensorDesc xd = make_tensor_desc(x.shape());
  const TensorDesc cd = make_tensor_desc({1, x.dim(1), 1, 1});
  const float one = 1.f, zero = 0.f;
  if (p.mode == BatchNormMode::Training) {
    TESSERA_CUDA_CHECK(cudnnBatchNormalizationForwardTraining(
        handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(), x.raw(), xd.get(), y.raw(),
        cd.get(), gamma.raw(), beta.raw(), static_cast<double>(p.momentum), running_mean.raw(),
        running_var.raw(), static_cast<double>(p.eps), saved_mean.raw(), saved_invstd.raw()));
  } else {
    TESSERA_CUDA_CHECK(cudnnBatchNormalizationForwardInference(
        handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.get(), x.raw(), xd.get(), y.raw(),
        cd.get(), gamma.raw(), beta.raw(), running_mean.raw(), running_var.raw(),
        static_cast<double>(p.eps)));
  }
}

void CudnnOps::batchnorm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& saved_mean,
                                  const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) {
  check_bn_eps(p.eps);
  const TensorDesc xd = make_tensor_desc(x.shape());
  const TensorDesc cd = make_tensor_desc({1, x.dim(1), 1, 1});
  const float one = 1.f, zero = 0.f;
  TESSERA_CUDA_CHECK(cudnnBatchNormalizationBackward(
      handle_.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd.get(), x.raw(), xd.get(),
      dy.raw(), xd.get(), dx.raw(), cd.get(), gamma.raw(), dgamma.raw(), dbeta.raw(),
      static_cast<double>(p.eps), saved_mean.raw(), saved_invstd.raw()));
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
