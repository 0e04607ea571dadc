// The cuDNN stand-in's pooling: the pooling descriptor, cudnnPoolingForward and
// cudnnPoolingBackward. Max (both variants) and average counting the padding run through the
// host backend's pooling; average excluding the padding is valid cuDNN but not an op tessera has,
// so the stand-in answers it with CUDNN_STATUS_NOT_SUPPORTED (a rule of the stand-in, reported).
#include <string>
#include <vector>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_core_internal.h"

using tessera::Pool2dParams;
using tessera::PoolKind;
using tessera::Shape;
using tessera::Tensor;
using tessera::emu::cudnn_standin::ObjectKind;
using tessera::emu::cudnn_standin::Rules;
namespace sd = tessera::emu::cudnn_standin;

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* desc) {
  Rules r("cudnnCreatePoolingDescriptor");
  if (!r.check(desc != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "poolingDesc is not NULL"))
    return r.status();
  *desc = new cudnnPoolingStruct();
  sd::add_live(*desc, ObjectKind::Pooling);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t desc) {
  Rules r("cudnnDestroyPoolingDescriptor");
  if (desc == nullptr) return CUDNN_STATUS_SUCCESS;  // destroying NULL is a no-op
  if (!r.check(sd::is_live(desc, ObjectKind::Pooling), CUDNN_STATUS_BAD_PARAM,
               "poolingDesc is a pooling descriptor created and not destroyed"))
    return r.status();
  sd::remove_live(desc);
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t desc, cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight,
                                          int windowWidth, int verticalPadding,
                                          int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  Rules r("cudnnSetPooling2dDescriptor");
  const auto pair = [](int a, int b) { return std::to_string(a) + "," + std::to_string(b); };
  if (!r.check(sd::is_live(desc, ObjectKind::Pooling), CUDNN_STATUS_BAD_PARAM,
               "poolingDesc is a pooling descriptor created and not destroyed") ||
      !r.check(mode >= CUDNN_POOLING_MAX && mode <= CUDNN_POOLING_MAX_DETERMINISTIC,
               CUDNN_STATUS_BAD_PARAM, "mode is a valid cudnnPoolingMode_t",
               std::to_string(static_cast<int>(mode))) ||
      !r.check(
          maxpoolingNanOpt == CUDNN_NOT_PROPAGATE_NAN || maxpoolingNanOpt == CUDNN_PROPAGATE_NAN,
          CUDNN_STATUS_BAD_PARAM, "maxpoolingNanOpt is a valid cudnnNanPropagation_t") ||
      !r.check(windowHeight > 0 && windowWidth > 0, CUDNN_STATUS_BAD_PARAM,
               "windowHeight and windowWidth are > 0", pair(windowHeight, windowWidth)) ||
      !r.check(verticalPadding >= 0 && horizontalPadding >= 0, CUDNN_STATUS_BAD_PARAM,
               "verticalPadding and horizontalPadding are >= 0",
               pair(verticalPadding, horizontalPadding)) ||
      !r.check(verticalStride > 0 && horizontalStride > 0, CUDNN_STATUS_BAD_PARAM,
               "verticalStride and horizontalStride are > 0",
               pair(verticalStride, horizontalStride)))
    return r.status();
  *desc = cudnnPoolingStruct{true,
                             mode,
                             maxpoolingNanOpt,
                             windowHeight,
                             windowWidth,
                             verticalPadding,
                             horizontalPadding,
                             verticalStride,
                             horizontalStride};
  return CUDNN_STATUS_SUCCESS;
}

namespace {

Pool2dParams params_of(const cudnnPoolingStruct& p) {
  Pool2dParams q;
  q.kind =
      p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? PoolKind::Average : PoolKind::Max;
  q.window_h = p.window_h;
  q.window_w = p.window_w;
  q.stride_h = p.stride_h;
  q.stride_w = p.stride_w;
  q.pad_h = p.pad_h;
  q.pad_w = p.pad_w;
  return q;
}

std::string dims4(const Shape& s) {
  return tessera::shape_str(s);
}

// The rules binding the pooling descriptor, x and y (forward) or dx and dy (backward).
bool check_pool_shapes(Rules& r, const cudnnPoolingStruct& p, const cudnnTensorStruct& x,
                       const char* x_name, const cudnnTensorStruct& y, const char* y_name) {
  const std::string xn = x_name, yn = y_name;
  if (!r.check(
          p.mode != CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, CUDNN_STATUS_NOT_SUPPORTED,
          "mode is not AVERAGE_COUNT_EXCLUDE_PADDING (the stand-in computes the other three)") ||
      !r.float_type(x.type, x_name) || !r.float_type(y.type, y_name) ||
      !r.check(x.nb_dims == 4 && y.nb_dims == 4, CUDNN_STATUS_BAD_PARAM,
               xn + " and " + yn + " have 4 dimensions (2-d pooling)",
               sd::dims_str(x) + ", " + sd::dims_str(y)) ||
      !r.check(x.dims[0] == y.dims[0] && x.dims[1] == y.dims[1], CUDNN_STATUS_BAD_PARAM,
               xn + " and " + yn + " have the same N and C",
               sd::dims_str(x) + ", " + sd::dims_str(y)) ||
      !r.check(p.pad_h < p.window_h && p.pad_w < p.window_w, CUDNN_STATUS_NOT_SUPPORTED,
               "the padding is smaller than the window (no window lies wholly in padding)"))
    return false;
  // pool2d_output_shape would throw for a window that does not fit: the extents directly.
  const Shape out = {x.dims[0], x.dims[1],
                     tessera::conv_out_extent(x.dims[2], p.window_h, p.stride_h, p.pad_h),
                     tessera::conv_out_extent(x.dims[3], p.window_w, p.stride_w, p.pad_w)};
  return r.check(out[2] > 0 && out[3] > 0, CUDNN_STATUS_BAD_PARAM,
                 "the window fits in the padded input", sd::dims_str(x)) &&
         r.check(out == sd::tensor_dims(y), CUDNN_STATUS_BAD_PARAM,
                 yn + "'s dims equal cudnnGetPooling2dForwardOutputDim's",
                 yn + " " + sd::dims_str(y) + ", output " + dims4(out));
}

}  // namespace

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                  const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                  const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  Rules r("cudnnPoolingForward");
  if (!r.launch(handle) || !r.pooling(poolingDesc, "poolingDesc") || !r.tensor(xDesc, "xDesc") ||
      !r.tensor(yDesc, "yDesc") || !r.scaling(alpha, beta) ||
      !check_pool_shapes(r, *poolingDesc, *xDesc, "xDesc", *yDesc, "yDesc") ||
      !r.device_data(x, sd::tensor_bytes(*xDesc), 4, "x") ||
      !r.device_data(y, sd::tensor_bytes(*yDesc), 4, "y"))
    return r.status();
  const cudnnTensorStruct xd = *xDesc, yd = *yDesc;
  const Pool2dParams p = params_of(*poolingDesc);
  const float al = sd::scale(alpha), be = sd::scale(beta);
  tessera::emu::enqueue(handle->stream, "cudnnPoolingForward", [=] {
    sd::require_allocated("cudnnPoolingForward",
                          {{"x", x, sd::tensor_bytes(xd)}, {"y", y, sd::tensor_bytes(yd)}});
    const Tensor X = sd::host_tensor(sd::tensor_dims(xd), sd::gather(xd, x));
    Tensor Y = sd::host_tensor(sd::tensor_dims(yd));
    sd::host().pool2d_forward(p, X, Y);
    sd::blend(yd, y, sd::host_values(Y), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc,
                                   const void* alpha, const cudnnTensorDescriptor_t yDesc,
                                   const void* y, const cudnnTensorDescriptor_t dyDesc,
                                   const void* dy, const cudnnTensorDescriptor_t xDesc,
                                   const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  Rules r("cudnnPoolingBackward");
  if (!r.launch(handle) || !r.pooling(poolingDesc, "poolingDesc") || !r.tensor(yDesc, "yDesc") ||
      !r.tensor(dyDesc, "dyDesc") || !r.tensor(xDesc, "xDesc") || !r.tensor(dxDesc, "dxDesc") ||
      !r.scaling(alpha, beta) ||
      !r.check(sd::tensor_dims(*yDesc) == sd::tensor_dims(*dyDesc), CUDNN_STATUS_BAD_PARAM,
               "yDesc and dyDesc have the same dims",
               sd::dims_str(*yDesc) + " vs " + sd::dims_str(*dyDesc)) ||
      !r.check(sd::tensor_dims(*xDesc) == sd::tensor_dims(*dxDesc), CUDNN_STATUS_BAD_PARAM,
               "xDesc and dxDesc have the same dims",
               sd::dims_str(*xDesc) + " vs " + sd::dims_str(*dxDesc)) ||
      !check_pool_shapes(r, *poolingDesc, *xDesc, "xDesc", *yDesc, "yDesc") ||
      !r.float_type(dyDesc->type, "dyDesc") || !r.float_type(dxDesc->type, "dxDesc") ||
      !r.device_data(y, sd::tensor_bytes(*yDesc), 4, "y") ||
      !r.device_data(dy, sd::tensor_bytes(*dyDesc), 4, "dy") ||
      !r.device_data(x, sd::tensor_bytes(*xDesc), 4, "x") ||
      !r.device_data(dx, sd::tensor_bytes(*dxDesc), 4, "dx"))
    return r.status();
  const cudnnTensorStruct yd = *yDesc, dyd = *dyDesc, xd = *xDesc, dxd = *dxDesc;
  const Pool2dParams p = params_of(*poolingDesc);
  const float al = sd::scale(alpha), be = sd::scale(beta);
  tessera::emu::enqueue(handle->stream, "cudnnPoolingBackward", [=] {
    sd::require_allocated("cudnnPoolingBackward", {{"y", y, sd::tensor_bytes(yd)},
                                                   {"dy", dy, sd::tensor_bytes(dyd)},
                                                   {"x", x, sd::tensor_bytes(xd)},
                                                   {"dx", dx, sd::tensor_bytes(dxd)}});
    const Tensor X = sd::host_tensor(sd::tensor_dims(xd), sd::gather(xd, x));
    const Tensor Y = sd::host_tensor(sd::tensor_dims(yd), sd::gather(yd, y));
    const Tensor DY = sd::host_tensor(sd::tensor_dims(dyd), sd::gather(dyd, dy));
    Tensor DX = sd::host_tensor(sd::tensor_dims(xd));
    sd::host().pool2d_backward(p, X, Y, DY, DX);
    sd::blend(dxd, dx, sd::host_values(DX), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}
