// The cuDNN stand-in's batch normalisation: cudnnBatchNormalizationForwardTraining,
// ForwardInference and Backward, spatial mode (per channel over N and every spatial dim; the
// persistent variant computes the same). Per-activation mode is valid cuDNN but not an op tessera
// has: the stand-in answers it with CUDNN_STATUS_NOT_SUPPORTED. The host backend computes; a
// 5-d tensor [N, C, D, H, W] is normalised as [N, C, D*H, W].
#include <string>
#include <vector>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_core_internal.h"

using tessera::BatchNormMode;
using tessera::BatchNormParams;
using tessera::Shape;
using tessera::Tensor;
using tessera::emu::cudnn_standin::Rules;
namespace sd = tessera::emu::cudnn_standin;

namespace {

// The data tensor as the host sees it: [N, C, rest..., 1] folded to 4 dims.
Shape bn_shape(const cudnnTensorStruct& d) {
  int64_t spatial = 1;
  for (int i = 2; i < d.nb_dims - 1; ++i) spatial *= d.dims[i];
  return {d.dims[0], d.dims[1], spatial, d.dims[d.nb_dims - 1]};
}

// The rules on mode, the data descriptors (same dims and type, 4 or 5 of them) and the
// per-channel descriptor (1 x C x 1 x 1 or 1 x C x 1 x 1 x 1), and epsilon.
bool check_bn_descs(Rules& r, cudnnHandle_t handle, cudnnBatchNormMode_t mode,
                    const std::vector<std::pair<cudnnTensorDescriptor_t, const char*>>& data,
                    cudnnTensorDescriptor_t channel, const char* channel_name, double epsilon) {
  if (!r.launch(handle) ||
      !r.check(mode == CUDNN_BATCHNORM_SPATIAL || mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT,
               CUDNN_STATUS_NOT_SUPPORTED,
               "mode is SPATIAL or SPATIAL_PERSISTENT (the stand-in computes per-channel)",
               std::to_string(static_cast<int>(mode))))
    return false;
  for (const auto& [d, name] : data)
    if (!r.tensor(d, name) || !r.float_type(d->type, name)) return false;
  const cudnnTensorStruct& x = *data.front().first;
  if (!r.check(x.nb_dims == 4 || x.nb_dims == 5, CUDNN_STATUS_BAD_PARAM,
               std::string(data.front().second) + " has 4 or 5 dimensions", sd::dims_str(x)))
    return false;
  for (const auto& [d, name] : data)
    if (!r.check(sd::tensor_dims(*d) == sd::tensor_dims(x), CUDNN_STATUS_BAD_PARAM,
                 std::string(name) + " has the dims of " + data.front().second,
                 sd::dims_str(*d) + " vs " + sd::dims_str(x)))
      return false;
  Shape per_channel(static_cast<size_t>(x.nb_dims), 1);
  per_channel[1] = x.dims[1];
  return r.tensor(channel, channel_name) && r.float_type(channel->type, channel_name) &&
         r.check(sd::tensor_dims(*channel) == per_channel, CUDNN_STATUS_BAD_PARAM,
                 std::string(channel_name) + " is 1 x C x 1 x 1 (x 1) with the data's C",
                 sd::dims_str(*channel) + " for data " + sd::dims_str(x)) &&
         r.check(epsilon >= CUDNN_BN_MIN_EPSILON, CUDNN_STATUS_BAD_PARAM,
                 "epsilon >= CUDNN_BN_MIN_EPSILON", std::to_string(epsilon));
}

// Each pointer: device memory of `bytes`, 4-byte aligned.
bool check_pointers(Rules& r, const std::vector<std::pair<const void*, const char*>>& ptrs,
                    size_t bytes) {
  for (const auto& [p, name] : ptrs)
    if (!r.device_data(p, bytes, 4, name)) return false;
  return true;
}

bool both_or_neither(Rules& r, const void* a, const void* b, const char* names) {
  return r.check((a == nullptr) == (b == nullptr), CUDNN_STATUS_BAD_PARAM,
                 std::string(names) + " are both NULL or both set");
}

std::vector<float> read(const cudnnTensorStruct& d, const void* p) {
  return p ? sd::gather(d, p) : std::vector<float>();
}

// The statistics a forward leaves: running (or estimated) mean and variance, saved mean and
// inverse variance.
struct ForwardStats {
  Tensor rm, rv, sm, si;
};

// Both forwards' computation (in queued work): reads x, the scale and bias, and the running or
// estimated statistics (NULL: zeros), runs the host backend's forward with `p`, and blends y.
ForwardStats forward_on_host(const BatchNormParams& p, const cudnnTensorStruct& xd, const void* x,
                             const cudnnTensorStruct& yd, void* y, const cudnnTensorStruct& cd,
                             const void* scale, const void* bias, const void* mean,
                             const void* variance, float alpha, float beta) {
  const Shape cs = {xd.dims[1]};
  const Tensor X = sd::host_tensor(bn_shape(xd), sd::gather(xd, x));
  const Tensor G = sd::host_tensor(cs, sd::gather(cd, scale));
  const Tensor B = sd::host_tensor(cs, sd::gather(cd, bias));
  ForwardStats st{sd::host_tensor(cs, read(cd, mean)), sd::host_tensor(cs, read(cd, variance)),
                  sd::host_tensor(cs), sd::host_tensor(cs)};
  Tensor Y = sd::host_tensor(bn_shape(xd));
  sd::host().batchnorm_forward(p, X, G, B, st.rm, st.rv, Y, st.sm, st.si);
  sd::blend(yd, y, sd::host_values(Y), alpha, beta);
  return st;
}

}  // namespace

namespace {

// Limits of the host computation behind the stand-in (not cuDNN's): reported like rules.
bool check_host_limits(Rules& r, const cudnnTensorStruct& x, double epsilon, bool training,
                       double factor) {
  const Shape s = bn_shape(x);
  return r.check(epsilon > 0, CUDNN_STATUS_NOT_SUPPORTED,
                 "epsilon > 0 (the host backend behind the stand-in divides by sqrt(var + eps))",
                 std::to_string(epsilon)) &&
         (!training || (r.check(s[0] * s[2] * s[3] >= 2, CUDNN_STATUS_NOT_SUPPORTED,
                                "training has at least 2 values per channel (an unbiased variance)",
                                sd::dims_str(x)) &&
                        r.check(factor >= 0 && factor <= 1, CUDNN_STATUS_BAD_PARAM,
                                "exponentialAverageFactor is in [0, 1]", std::to_string(factor))));
}

}  // namespace

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, double exponentialAverageFactor, void* resultRunningMean,
    void* resultRunningVariance, double epsilon, void* resultSaveMean,
    void* resultSaveInvVariance) {
  Rules r("cudnnBatchNormalizationForwardTraining");
  if (!check_bn_descs(r, handle, mode, {{xDesc, "xDesc"}, {yDesc, "yDesc"}}, bnScaleBiasMeanVarDesc,
                      "bnScaleBiasMeanVarDesc", epsilon) ||
      !r.scaling(alpha, beta) ||
      !both_or_neither(r, resultRunningMean, resultRunningVariance,
                       "resultRunningMean and resultRunningVariance") ||
      !both_or_neither(r, resultSaveMean, resultSaveInvVariance,
                       "resultSaveMean and resultSaveInvVariance") ||
      !check_host_limits(r, *xDesc, epsilon, true, exponentialAverageFactor) ||
      !r.device_data(x, sd::tensor_bytes(*xDesc), 4, "x") ||
      !r.device_data(y, sd::tensor_bytes(*yDesc), 4, "y"))
    return r.status();
  const size_t cb = sd::tensor_bytes(*bnScaleBiasMeanVarDesc);
  std::vector<std::pair<const void*, const char*>> ptrs = {{bnScale, "bnScale"},
                                                           {bnBias, "bnBias"}};
  if (resultRunningMean)
    ptrs.insert(ptrs.end(), {{resultRunningMean, "resultRunningMean"},
                             {resultRunningVariance, "resultRunningVariance"}});
  if (resultSaveMean)
    ptrs.insert(ptrs.end(), {{resultSaveMean, "resultSaveMean"},
                             {resultSaveInvVariance, "resultSaveInvVariance"}});
  if (!check_pointers(r, ptrs, cb)) return r.status();
  const cudnnTensorStruct xd = *xDesc, yd = *yDesc, cd = *bnScaleBiasMeanVarDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  BatchNormParams p;
  p.mode = BatchNormMode::Training;
  p.eps = static_cast<float>(epsilon);
  p.momentum = static_cast<float>(exponentialAverageFactor);
  tessera::emu::enqueue(handle->stream, "cudnnBatchNormalizationForwardTraining", [=] {
    const size_t xb = sd::tensor_bytes(xd), cb = sd::tensor_bytes(cd);
    sd::require_allocated("cudnnBatchNormalizationForwardTraining",
                          {{"x", x, xb},
                           {"y", y, sd::tensor_bytes(yd)},
                           {"bnScale", bnScale, cb},
                           {"bnBias", bnBias, cb},
                           {"resultRunningMean", resultRunningMean, cb},
                           {"resultRunningVariance", resultRunningVariance, cb},
                           {"resultSaveMean", resultSaveMean, cb},
                           {"resultSaveInvVariance", resultSaveInvVariance, cb}});
    const ForwardStats st = forward_on_host(p, xd, x, yd, y, cd, bnScale, bnBias, resultRunningMean,
                                            resultRunningVariance, al, be);
    if (resultRunningMean) {
      sd::blend(cd, resultRunningMean, sd::host_values(st.rm), 1.f, 0.f);
      sd::blend(cd, resultRunningVariance, sd::host_values(st.rv), 1.f, 0.f);
    }
    if (resultSaveMean) {
      sd::blend(cd, resultSaveMean, sd::host_values(st.sm), 1.f, 0.f);
      sd::blend(cd, resultSaveInvVariance, sd::host_values(st.si), 1.f, 0.f);
    }
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc,
    void* y, const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale,
    const void* bnBias, const void* estimatedMean, const void* estimatedVariance, double epsilon) {
  Rules r("cudnnBatchNormalizationForwardInference");
  if (!check_bn_descs(r, handle, mode, {{xDesc, "xDesc"}, {yDesc, "yDesc"}}, bnScaleBiasMeanVarDesc,
                      "bnScaleBiasMeanVarDesc", epsilon) ||
      !r.scaling(alpha, beta) || !check_host_limits(r, *xDesc, epsilon, false, 0) ||
      !r.device_data(x, sd::tensor_bytes(*xDesc), 4, "x") ||
      !r.device_data(y, sd::tensor_bytes(*yDesc), 4, "y") ||
      !check_pointers(r,
                      {{bnScale, "bnScale"},
                       {bnBias, "bnBias"},
                       {estimatedMean, "estimatedMean"},
                       {estimatedVariance, "estimatedVariance"}},
                      sd::tensor_bytes(*bnScaleBiasMeanVarDesc)))
    return r.status();
  const cudnnTensorStruct xd = *xDesc, yd = *yDesc, cd = *bnScaleBiasMeanVarDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  BatchNormParams p;
  p.mode = BatchNormMode::Inference;
  p.eps = static_cast<float>(epsilon);
  tessera::emu::enqueue(handle->stream, "cudnnBatchNormalizationForwardInference", [=] {
    const size_t xb = sd::tensor_bytes(xd), cb = sd::tensor_bytes(cd);
    sd::require_allocated("cudnnBatchNormalizationForwardInference",
                          {{"x", x, xb},
                           {"y", y, sd::tensor_bytes(yd)},
                           {"bnScale", bnScale, cb},
                           {"bnBias", bnBias, cb},
                           {"estimatedMean", estimatedMean, cb},
                           {"estimatedVariance", estimatedVariance, cb}});
    (void)forward_on_host(p, xd, x, yd, y, cd, bnScale, bnBias, estimatedMean, estimatedVariance,
                          al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff,
    const void* betaDataDiff, const void* alphaParamDiff, const void* betaParamDiff,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void* bnScale, void* dBnScaleResult,
    void* dBnBiasResult, double epsilon, const void* savedMean, const void* savedInvVariance) {
  Rules r("cudnnBatchNormalizationBackward");
  if (!check_bn_descs(r, handle, mode, {{xDesc, "xDesc"}, {dyDesc, "dyDesc"}, {dxDesc, "dxDesc"}},
                      dBnScaleBiasDesc, "dBnScaleBiasDesc", epsilon) ||
      !r.scaling(alphaDataDiff, betaDataDiff) || !r.scaling(alphaParamDiff, betaParamDiff) ||
      !both_or_neither(r, savedMean, savedInvVariance, "savedMean and savedInvVariance") ||
      !check_host_limits(r, *xDesc, epsilon, true, 0) ||
      !check_pointers(r, {{x, "x"}, {dy, "dy"}, {dx, "dx"}}, sd::tensor_bytes(*xDesc)))
    return r.status();
  std::vector<std::pair<const void*, const char*>> ptrs = {
      {bnScale, "bnScale"}, {dBnScaleResult, "dBnScaleResult"}, {dBnBiasResult, "dBnBiasResult"}};
  if (savedMean)
    ptrs.insert(ptrs.end(), {{savedMean, "savedMean"}, {savedInvVariance, "savedInvVariance"}});
  if (!check_pointers(r, ptrs, sd::tensor_bytes(*dBnScaleBiasDesc))) return r.status();
  const cudnnTensorStruct xd = *xDesc, dyd = *dyDesc, dxd = *dxDesc, cd = *dBnScaleBiasDesc;
  const float ad = sd::scale(alphaDataDiff), bd = sd::scale(betaDataDiff);
  const float ap = sd::scale(alphaParamDiff), bp = sd::scale(betaParamDiff);
  BatchNormParams p;
  p.eps = static_cast<float>(epsilon);
  tessera::emu::enqueue(handle->stream, "cudnnBatchNormalizationBackward", [=] {
    const size_t xb = sd::tensor_bytes(xd), cb = sd::tensor_bytes(cd);
    sd::require_allocated("cudnnBatchNormalizationBackward",
                          {{"x", x, xb},
                           {"dy", dy, sd::tensor_bytes(dyd)},
                           {"dx", dx, sd::tensor_bytes(dxd)},
                           {"bnScale", bnScale, cb},
                           {"dBnScaleResult", dBnScaleResult, cb},
                           {"dBnBiasResult", dBnBiasResult, cb},
                           {"savedMean", savedMean, cb},
                           {"savedInvVariance", savedInvVariance, cb}});
    const Shape cs = {xd.dims[1]};
    const Tensor X = sd::host_tensor(bn_shape(xd), sd::gather(xd, x));
    const Tensor DY = sd::host_tensor(bn_shape(xd), sd::gather(dyd, dy));
    const Tensor G = sd::host_tensor(cs, sd::gather(cd, bnScale));
    Tensor SM = sd::host_tensor(cs, read(cd, savedMean));
    Tensor SI = sd::host_tensor(cs, read(cd, savedInvVariance));
    if (!savedMean) {  // cuDNN recomputes the batch statistics when none are passed
      BatchNormParams stats = p;
      stats.mode = BatchNormMode::Training;
      Tensor RM = sd::host_tensor(cs), RV = sd::host_tensor(cs), Y = sd::host_tensor(bn_shape(xd));
      sd::host().batchnorm_forward(stats, X, G, sd::host_tensor(cs), RM, RV, Y, SM, SI);
    }
    Tensor DX = sd::host_tensor(bn_shape(xd)), DG = sd::host_tensor(cs), DB = sd::host_tensor(cs);
    sd::host().batchnorm_backward(p, X, DY, G, SM, SI, DX, DG, DB);
    sd::blend(dxd, dx, sd::host_values(DX), ad, bd);
    sd::blend(cd, dBnScaleResult, sd::host_values(DG), ap, bp);
    sd::blend(cd, dBnBiasResult, sd::host_values(DB), ap, bp);
  });
  return CUDNN_STATUS_SUCCESS;
}
