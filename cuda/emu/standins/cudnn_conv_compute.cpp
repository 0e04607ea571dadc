// The cuDNN stand-in's convolutions: cudnnConvolutionForward, BackwardData, BackwardFilter,
// BackwardBias and cudnnAddTensor. Each checks its rules (descriptors, shapes, algorithm,
// workspace, data pointers and their alignment), then queues the computation on the handle's
// stream: the described tensors are read into packed host tensors, the host backend computes,
// and the result is blended into the output with alpha and beta.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_core_internal.h"

namespace tessera::emu::cudnn_standin {

namespace {

Conv2dParams params_of(const ConvGeometry& g) {
  Conv2dParams p;
  p.stride_h = g.conv.stride_h;
  p.stride_w = g.conv.stride_w;
  p.pad_h = g.conv.pad_h;
  p.pad_w = g.conv.pad_w;
  p.dilation_h = g.conv.dilation_h;
  p.dilation_w = g.conv.dilation_w;
  p.groups = g.conv.groups;
  return p;
}

Shape x_shape(const ConvGeometry& g) {
  return {g.n, g.c, g.h, g.w};
}
Shape w_shape(const ConvGeometry& g) {
  return {g.k, g.c / g.conv.groups, g.r, g.s};
}
Shape y_shape(const ConvGeometry& g) {
  return {g.n, g.k, g.p, g.q};
}

// CUDNN_CONVOLUTION is cross-correlation with the window reversed: flip each R x S window.
std::vector<float> flip_windows(std::vector<float> v, const ConvGeometry& g) {
  if (g.conv.mode != CUDNN_CONVOLUTION) return v;
  const size_t window = static_cast<size_t>(g.r) * g.s;
  for (size_t base = 0; base < v.size(); base += window)
    std::reverse(v.begin() + static_cast<std::ptrdiff_t>(base),
                 v.begin() + static_cast<std::ptrdiff_t>(base + window));
  return v;
}

// The data pointers of a convolution against the algorithm's alignment (device memory and the
// element alignment are checked before).
bool check_algo_alignment(Rules& r, const AlgoModel& m, const void* const* ptrs,
                          const char* const* names, int count) {
  for (int i = 0; i < count; ++i) {
    const auto misalignment = reinterpret_cast<uintptr_t>(ptrs[i]) % m.alignment;
    if (!r.check(misalignment == 0, CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER,
                 std::string(names[i]) +
                     " is aligned as the algorithm needs (16 bytes unless it is the basic "
                     "implicit GEMM; cudnnFind* measures on 256-byte aligned buffers)",
                 std::string(names[i]) + " is " + std::to_string(misalignment) + " bytes past " +
                     std::to_string(m.alignment) + "-byte alignment"))
      return false;
  }
  return true;
}

// The rules every convolution call shares, after the descriptor and shape rules.
bool check_conv_data(Rules& r, ConvDirection d, int algo, const ConvGeometry& g,
                     const void* workspace, size_t workspace_bytes, const ConvArgs& a,
                     const void* x, const void* w, const void* y) {
  AlgoModel m;
  const void* ptrs[3] = {x, w, y};
  const char* names[3] = {d == ConvDirection::BackwardData ? "dx" : "x",
                          d == ConvDirection::BackwardFilter ? "dw" : "w",
                          d == ConvDirection::Forward ? "y" : "dy"};
  return check_algo(r, d, algo, g, workspace, workspace_bytes, m) &&
         r.device_data(x, tensor_bytes(*a.x), 4, names[0]) &&
         r.device_data(w, filter_bytes(*a.w), 4, names[1]) &&
         r.device_data(y, tensor_bytes(*a.y), 4, names[2]) &&
         check_algo_alignment(r, m, ptrs, names, 3);
}

// Every rule of one convolution call, in order: the handle and device, the descriptors and
// shapes (filling `g`), alpha and beta, the algorithm, workspace and data pointers.
bool check_conv_call(Rules& r, cudnnHandle_t handle, const ConvArgs& a, const void* alpha,
                     const void* beta, ConvDirection d, int algo, const void* workspace,
                     size_t workspace_bytes, const void* x, const void* w, const void* y,
                     ConvGeometry& g) {
  return r.launch(handle) && check_conv_args(r, handle, a, g) && r.scaling(alpha, beta) &&
         check_conv_data(r, d, algo, g, workspace, workspace_bytes, a, x, w, y);
}

// The host tensors of one convolution (in queued work): x, w (windows flipped for
// CUDNN_CONVOLUTION) and y, each read from the device when its pointer is set, zeros otherwise.
struct HostConv {
  Tensor x, w, y;
};
HostConv read_conv(const ConvGeometry& g, const cudnnTensorStruct& xd, const void* x,
                   const cudnnFilterStruct& wd, const void* w, const cudnnTensorStruct& yd,
                   const void* y) {
  return {host_tensor(x_shape(g), x ? gather(xd, x) : std::vector<float>()),
          host_tensor(w_shape(g),
                      w ? flip_windows(gather(filter_as_tensor(wd), w), g) : std::vector<float>()),
          host_tensor(y_shape(g), y ? gather(yd, y) : std::vector<float>())};
}

}  // namespace

}  // namespace tessera::emu::cudnn_standin

// ---- the C entry points ------------------------------------------------------------------------

using tessera::Shape;
using tessera::Tensor;
using tessera::emu::cudnn_standin::ConvArgs;
using tessera::emu::cudnn_standin::ConvDirection;
using tessera::emu::cudnn_standin::ConvGeometry;
using tessera::emu::cudnn_standin::Rules;
namespace sd = tessera::emu::cudnn_standin;

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                      const cudnnTensorDescriptor_t xDesc, const void* x,
                                      const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc,
                                      cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                      size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  Rules r("cudnnConvolutionForward");
  ConvGeometry g;
  const ConvArgs a = sd::conv_args(ConvDirection::Forward, xDesc, wDesc, convDesc, yDesc);
  if (!sd::check_conv_call(r, handle, a, alpha, beta, ConvDirection::Forward, algo, workSpace,
                           workSpaceSizeInBytes, x, w, y, g))
    return r.status();
  const cudnnTensorStruct xd = *xDesc, yd = *yDesc;
  const cudnnFilterStruct wd = *wDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  const size_t xb = sd::tensor_bytes(xd), wb = sd::filter_bytes(wd), yb = sd::tensor_bytes(yd);
  tessera::emu::enqueue(handle->stream, "cudnnConvolutionForward", [=] {
    sd::require_allocated(
        "cudnnConvolutionForward",
        {{"x", x, xb}, {"w", w, wb}, {"y", y, yb}, {"workSpace", workSpace, workSpaceSizeInBytes}});
    const sd::HostConv c = sd::read_conv(g, xd, x, wd, w, yd, nullptr);
    Tensor Y = sd::host_tensor(sd::y_shape(g));
    sd::host().conv2d_forward(sd::params_of(g), c.x, c.w, Tensor(), Y);
    sd::blend(yd, y, sd::host_values(Y), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                           const cudnnFilterDescriptor_t wDesc, const void* w,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  Rules r("cudnnConvolutionBackwardData");
  ConvGeometry g;
  const ConvArgs a = sd::conv_args(ConvDirection::BackwardData, dxDesc, wDesc, convDesc, dyDesc);
  if (!sd::check_conv_call(r, handle, a, alpha, beta, ConvDirection::BackwardData, algo, workSpace,
                           workSpaceSizeInBytes, dx, w, dy, g))
    return r.status();
  const cudnnTensorStruct dxd = *dxDesc, dyd = *dyDesc;
  const cudnnFilterStruct wd = *wDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  const size_t xb = sd::tensor_bytes(dxd), wb = sd::filter_bytes(wd), yb = sd::tensor_bytes(dyd);
  tessera::emu::enqueue(handle->stream, "cudnnConvolutionBackwardData", [=] {
    sd::require_allocated("cudnnConvolutionBackwardData",
                          {{"w", w, wb},
                           {"dy", dy, yb},
                           {"dx", dx, xb},
                           {"workSpace", workSpace, workSpaceSizeInBytes}});
    const sd::HostConv c = sd::read_conv(g, dxd, nullptr, wd, w, dyd, dy);  // x not read for dx
    Tensor DX = sd::host_tensor(sd::x_shape(g)), DW = sd::host_tensor(sd::w_shape(g)), none;
    sd::host().conv2d_backward(sd::params_of(g), c.x, c.w, c.y, DX, DW, none);
    sd::blend(dxd, dx, sd::host_values(DX), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                             const cudnnTensorDescriptor_t xDesc, const void* x,
                                             const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  Rules r("cudnnConvolutionBackwardFilter");
  ConvGeometry g;
  const ConvArgs a = sd::conv_args(ConvDirection::BackwardFilter, xDesc, dwDesc, convDesc, dyDesc);
  if (!sd::check_conv_call(r, handle, a, alpha, beta, ConvDirection::BackwardFilter, algo,
                           workSpace, workSpaceSizeInBytes, x, dw, dy, g))
    return r.status();
  const cudnnTensorStruct xd = *xDesc, dyd = *dyDesc;
  const cudnnTensorStruct dwd = sd::filter_as_tensor(*dwDesc);
  const float al = sd::scale(alpha), be = sd::scale(beta);
  const size_t xb = sd::tensor_bytes(xd), wb = sd::tensor_bytes(dwd), yb = sd::tensor_bytes(dyd);
  tessera::emu::enqueue(handle->stream, "cudnnConvolutionBackwardFilter", [=] {
    sd::require_allocated("cudnnConvolutionBackwardFilter",
                          {{"x", x, xb},
                           {"dy", dy, yb},
                           {"dw", dw, wb},
                           {"workSpace", workSpace, workSpaceSizeInBytes}});
    const sd::HostConv c =
        sd::read_conv(g, xd, x, cudnnFilterStruct{}, nullptr, dyd, dy);  // w not read for dw
    Tensor DW = sd::host_tensor(sd::w_shape(g)), none_dx, none_db;
    sd::host().conv2d_backward(sd::params_of(g), c.x, c.w, c.y, none_dx, DW, none_db);
    sd::blend(dwd, dw, sd::flip_windows(sd::host_values(DW), g), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

namespace {

bool check_two_tensors(Rules& r, cudnnHandle_t handle, const void* alpha, const void* beta,
                       cudnnTensorDescriptor_t in, const char* in_name, cudnnTensorDescriptor_t out,
                       const char* out_name) {
  return r.launch(handle) && r.tensor(in, in_name) && r.tensor(out, out_name) &&
         r.float_type(in->type, in_name) && r.float_type(out->type, out_name) &&
         r.scaling(alpha, beta);
}

}  // namespace

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                           const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                           void* db) {
  Rules r("cudnnConvolutionBackwardBias");
  if (!check_two_tensors(r, handle, alpha, beta, dyDesc, "dyDesc", dbDesc, "dbDesc") ||
      !r.check(dyDesc->nb_dims == 4, CUDNN_STATUS_BAD_PARAM, "dyDesc has 4 dimensions",
               sd::dims_str(*dyDesc)))
    return r.status();
  const int c = dyDesc->dims[1];
  const bool bias_shape = dbDesc->nb_dims == 4 && dbDesc->dims[0] == 1 && dbDesc->dims[1] == c &&
                          dbDesc->dims[2] == 1 && dbDesc->dims[3] == 1;
  if (!r.check(bias_shape, CUDNN_STATUS_BAD_PARAM, "dbDesc is 1 x C x 1 x 1 with dyDesc's C",
               "dbDesc " + sd::dims_str(*dbDesc) + ", dyDesc " + sd::dims_str(*dyDesc)) ||
      !r.device_data(dy, sd::tensor_bytes(*dyDesc), 4, "dy") ||
      !r.device_data(db, sd::tensor_bytes(*dbDesc), 4, "db"))
    return r.status();
  const cudnnTensorStruct dyd = *dyDesc, dbd = *dbDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  tessera::emu::enqueue(handle->stream, "cudnnConvolutionBackwardBias", [=] {
    sd::require_allocated("cudnnConvolutionBackwardBias",
                          {{"dy", dy, sd::tensor_bytes(dyd)}, {"db", db, sd::tensor_bytes(dbd)}});
    const std::vector<float> v = sd::gather(dyd, dy);  // packed [N, C, H, W]
    const size_t n = static_cast<size_t>(dyd.dims[0]), cs = static_cast<size_t>(dyd.dims[1]);
    const size_t hw = static_cast<size_t>(dyd.dims[2]) * static_cast<size_t>(dyd.dims[3]);
    std::vector<double> sums(cs, 0.0);
    for (size_t i = 0; i < n; ++i)
      for (size_t ch = 0; ch < cs; ++ch)
        for (size_t e = 0; e < hw; ++e) sums[ch] += v[(i * cs + ch) * hw + e];
    sd::blend(dbd, db, std::vector<float>(sums.begin(), sums.end()), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}

namespace {

// A's elements in the packed order of C's dims, A broadcast along its dims of extent 1.
std::vector<float> broadcast_to(const cudnnTensorStruct& a, const std::vector<float>& av,
                                const cudnnTensorStruct& c) {
  size_t count = 1;
  for (int i = 0; i < c.nb_dims; ++i) count *= static_cast<size_t>(c.dims[i]);
  std::vector<float> out(count);
  std::vector<int> idx(static_cast<size_t>(c.nb_dims), 0);
  for (size_t n = 0; n < count; ++n) {
    size_t src = 0;
    for (int i = 0; i < c.nb_dims; ++i)
      src = src * static_cast<size_t>(a.dims[i]) + static_cast<size_t>(a.dims[i] == 1 ? 0 : idx[i]);
    out[n] = av[src];
    for (int i = c.nb_dims - 1; i >= 0; --i) {
      if (++idx[i] < c.dims[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

}  // namespace

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha,
                             const cudnnTensorDescriptor_t aDesc, const void* A, const void* beta,
                             const cudnnTensorDescriptor_t cDesc, void* C) {
  Rules r("cudnnAddTensor");
  if (!check_two_tensors(r, handle, alpha, beta, aDesc, "aDesc", cDesc, "cDesc") ||
      !r.check(aDesc->nb_dims == cDesc->nb_dims, CUDNN_STATUS_BAD_PARAM,
               "aDesc and cDesc have the same number of dimensions",
               sd::dims_str(*aDesc) + " vs " + sd::dims_str(*cDesc)) ||
      !r.check(cDesc->nb_dims <= 5, CUDNN_STATUS_NOT_SUPPORTED, "cDesc has at most 5 dimensions",
               sd::dims_str(*cDesc)))
    return r.status();
  bool broadcastable = true;
  for (int i = 0; i < cDesc->nb_dims; ++i)
    broadcastable = broadcastable && (aDesc->dims[i] == cDesc->dims[i] || aDesc->dims[i] == 1);
  if (!r.check(broadcastable, CUDNN_STATUS_BAD_PARAM, "each of aDesc's dims equals cDesc's or is 1",
               sd::dims_str(*aDesc) + " vs " + sd::dims_str(*cDesc)) ||
      !r.device_data(A, sd::tensor_bytes(*aDesc), 4, "A") ||
      !r.device_data(C, sd::tensor_bytes(*cDesc), 4, "C"))
    return r.status();
  const cudnnTensorStruct ad = *aDesc, cd = *cDesc;
  const float al = sd::scale(alpha), be = sd::scale(beta);
  tessera::emu::enqueue(handle->stream, "cudnnAddTensor", [=] {
    sd::require_allocated("cudnnAddTensor",
                          {{"A", A, sd::tensor_bytes(ad)}, {"C", C, sd::tensor_bytes(cd)}});
    sd::blend(cd, C, broadcast_to(ad, sd::gather(ad, A), cd), al, be);
  });
  return CUDNN_STATUS_SUCCESS;
}
