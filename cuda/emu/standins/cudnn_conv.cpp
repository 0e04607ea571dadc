// The cuDNN stand-in's convolution set-up: filter and convolution descriptors, the output-dims
// helper, the algorithm model (support, workspace, alignment, modelled time), cudnnFind* and
// cudnnGetConvolution*WorkspaceSize. The convolutions themselves: cudnn_conv_compute.cpp.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_core_internal.h"

namespace tessera::emu::cudnn_standin {

namespace {

std::string geometry_str(const ConvGeometry& g) {
  return "x [" + std::to_string(g.n) + "," + std::to_string(g.c) + "," + std::to_string(g.h) + "," +
         std::to_string(g.w) + "], w [" + std::to_string(g.k) + "," +
         std::to_string(g.c / std::max(1, g.conv.groups)) + "," + std::to_string(g.r) + "," +
         std::to_string(g.s) + "], groups " + std::to_string(g.conv.groups);
}

int out_extent(int in, int window, int stride, int pad, int dilation) {
  return (in + 2 * pad - dilation * (window - 1) - 1) / stride + 1;
}

}  // namespace

bool check_conv_shapes(Rules& r, const cudnnTensorStruct* x, const char* x_name,
                       const cudnnFilterStruct* w, const char* w_name,
                       const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y,
                       const char* y_name, ConvGeometry& g) {
  const std::string xn = x_name, wn = w_name, yn = y_name;
  if (!r.check(x->nb_dims == 4, CUDNN_STATUS_BAD_PARAM,
               xn + " has 4 dimensions (a 2-d convolution)", dims_str(*x)) ||
      !r.check(y->nb_dims == 4, CUDNN_STATUS_BAD_PARAM,
               yn + " has 4 dimensions (a 2-d convolution)", dims_str(*y)) ||
      !r.float_type(x->type, x_name) || !r.float_type(w->type, w_name) ||
      !r.float_type(y->type, y_name) ||
      !r.check(conv->compute == CUDNN_DATA_FLOAT, CUDNN_STATUS_NOT_SUPPORTED,
               "convDesc's computeType is CUDNN_DATA_FLOAT for float data",
               std::to_string(static_cast<int>(conv->compute))))
    return false;
  g = ConvGeometry{x->dims[0], x->dims[1], x->dims[2], x->dims[3], w->k, w->h, w->w, 0, 0, *conv};
  const int groups = conv->groups;
  if (!r.check(g.c == w->c * groups, CUDNN_STATUS_BAD_PARAM,
               xn + "'s C equals " + wn + "'s C times the group count",
               "C " + std::to_string(g.c) + ", filter C " + std::to_string(w->c) + ", groups " +
                   std::to_string(groups)) ||
      !r.check(g.k % groups == 0, CUDNN_STATUS_BAD_PARAM,
               wn + "'s K is a multiple of the group count",
               "K " + std::to_string(g.k) + ", groups " + std::to_string(groups)))
    return false;
  g.p = out_extent(g.h, g.r, conv->stride_h, conv->pad_h, conv->dilation_h);
  g.q = out_extent(g.w, g.s, conv->stride_w, conv->pad_w, conv->dilation_w);
  const bool same =
      y->dims[0] == g.n && y->dims[1] == g.k && y->dims[2] == g.p && y->dims[3] == g.q;
  return r.check(g.p > 0 && g.q > 0, CUDNN_STATUS_BAD_PARAM,
                 "the dilated filter fits in the padded input", geometry_str(g)) &&
         r.check(same, CUDNN_STATUS_BAD_PARAM,
                 yn + "'s dims equal cudnnGetConvolution2dForwardOutputDim's",
                 yn + " " + dims_str(*y) + ", output [" + std::to_string(g.n) + "," +
                     std::to_string(g.k) + "," + std::to_string(g.p) + "," + std::to_string(g.q) +
                     "]");
}

ConvArgs conv_args(ConvDirection d, cudnnTensorStruct* x, cudnnFilterStruct* w,
                   cudnnConvolutionStruct* conv, cudnnTensorStruct* y) {
  switch (d) {
    case ConvDirection::BackwardData:
      return {x, w, conv, y, "dxDesc", "wDesc", "dyDesc"};
    case ConvDirection::BackwardFilter:
      return {x, w, conv, y, "xDesc", "dwDesc", "dyDesc"};
    case ConvDirection::Forward:
      break;
  }
  return {x, w, conv, y, "xDesc", "wDesc", "yDesc"};
}

bool check_conv_args(Rules& r, cudnnHandle_t handle, const ConvArgs& a, ConvGeometry& g) {
  return r.handle(handle) && r.tensor(a.x, a.x_name) && r.filter(a.w, a.w_name) &&
         r.convolution(a.conv, "convDesc") && r.tensor(a.y, a.y_name) &&
         check_conv_shapes(r, a.x, a.x_name, a.w, a.w_name, a.conv, a.y, a.y_name, g);
}

// ---- the algorithm model -----------------------------------------------------------------------

int algo_count(ConvDirection d) {
  switch (d) {
    case ConvDirection::Forward:
      return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    case ConvDirection::BackwardData:
      return CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    case ConvDirection::BackwardFilter:
      return CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  }
  return 0;
}

namespace {

// The kinds of kernel the algorithms of the three directions map to.
enum class Kind : uint8_t { Implicit, Precomp, Gemm, Direct, Fft, FftTiling, Winograd, WinogradNF };

Kind kind_of(ConvDirection d, int algo) {
  static const Kind fwd[] = {Kind::Implicit, Kind::Precomp,   Kind::Gemm,     Kind::Direct,
                             Kind::Fft,      Kind::FftTiling, Kind::Winograd, Kind::WinogradNF};
  static const Kind data[] = {Kind::Implicit,  Kind::Precomp,  Kind::Fft,
                              Kind::FftTiling, Kind::Winograd, Kind::WinogradNF};
  static const Kind filter[] = {Kind::Implicit, Kind::Precomp,    Kind::Fft,      Kind::Gemm,
                                Kind::Winograd, Kind::WinogradNF, Kind::FftTiling};
  if (d == ConvDirection::Forward) return fwd[algo];
  if (d == ConvDirection::BackwardData) return data[algo];
  return filter[algo];
}

// Why `kind` cannot run this geometry ("" when it can).
std::string unsupported_because(ConvDirection d, Kind kind, const ConvGeometry& g) {
  const auto& c = g.conv;
  const bool unit = c.stride_h == 1 && c.stride_w == 1 && c.dilation_h == 1 && c.dilation_w == 1;
  switch (kind) {
    case Kind::Direct:
      return "DIRECT has no implementation";
    case Kind::Fft:
    case Kind::FftTiling:
      if (!unit || c.groups != 1) return "FFT needs stride 1, dilation 1 and one group";
      if (c.pad_h >= g.r || c.pad_w >= g.s) return "FFT needs padding smaller than the filter";
      return "";
    case Kind::Winograd:
      if (d == ConvDirection::BackwardFilter)
        return "WINOGRAD backward-filter has no implementation";
      if (!unit || g.r != 3 || g.s != 3) return "WINOGRAD needs a 3x3 filter, stride 1, dilation 1";
      return "";
    case Kind::WinogradNF:
      if (!unit || g.r != g.s || (g.r != 3 && g.r != 5))
        return "WINOGRAD_NONFUSED needs a 3x3 or 5x5 filter, stride 1, dilation 1";
      return "";
    default:
      return "";
  }
}

}  // namespace

AlgoModel model_algo(ConvDirection d, int algo, const ConvGeometry& g) {
  AlgoModel m;
  const Kind kind = kind_of(d, algo);
  m.why_not = unsupported_because(d, kind, g);
  m.supported = m.why_not.empty();
  const double cg = static_cast<double>(g.c) / g.conv.groups;
  const double col = static_cast<double>(g.n) * g.p * g.q * g.c * g.r * g.s;  // im2col floats
  const double maps = static_cast<double>(g.n) * g.c + g.k * cg + static_cast<double>(g.n) * g.k;
  const double tiles = std::ceil(g.p / 4.0) * std::ceil(g.q / 4.0);
  double ws = 0, speed = 1.0;  // workspace bytes; relative cost (lower is faster)
  switch (kind) {
    case Kind::Implicit:
      speed = 2.0;
      break;
    case Kind::Precomp:
      ws = 8.0 * cg * g.r * g.s;
      speed = 1.0;
      break;
    case Kind::Gemm:
      ws = 4.0 * col;
      speed = 1.4;
      break;
    case Kind::Direct:
      speed = 3.0;
      break;
    case Kind::Fft:
      ws = 8.0 * maps * (g.h + 2 * g.conv.pad_h) * ((g.w + 2 * g.conv.pad_w) / 2 + 1);
      speed = 1.6;
      break;
    case Kind::FftTiling:
      ws = 8.0 * maps * 32 * 17;
      speed = 1.8;
      break;
    case Kind::Winograd:
      speed = 0.8;
      break;
    case Kind::WinogradNF:
      ws = 4.0 * 36 * (g.n * g.c * tiles + g.k * cg + g.n * g.k * tiles);
      speed = 0.9;
      break;
  }
  m.workspace = static_cast<size_t>(ws);
  // The basic implicit-GEMM kernels read element by element; every other kernel uses 16-byte
  // vector loads and stores (the model's alignment rule).
  m.alignment = kind == Kind::Implicit ? 4 : 16;
  m.deterministic = !(kind == Kind::Implicit && d != ConvDirection::Forward) &&
                    !(kind == Kind::Gemm && d == ConvDirection::BackwardFilter);
  // 2 * MACs at 20 TFLOP/s, times the relative cost, plus the workspace traffic at 2 TB/s.
  const double flops = 2.0 * g.n * g.k * g.p * g.q * cg * g.r * g.s;
  m.time_ms = static_cast<float>(flops / 20e12 * 1e3 * speed + ws / 2e12 * 1e3);
  return m;
}

bool check_algo(Rules& r, ConvDirection d, int algo, const ConvGeometry& g, const void* workspace,
                size_t workspace_bytes, AlgoModel& m) {
  if (!r.check(algo >= 0 && algo < algo_count(d), CUDNN_STATUS_BAD_PARAM,
               "algo is a valid enumerant of its direction", "algo " + std::to_string(algo)))
    return false;
  m = model_algo(d, algo, g);
  return r.check(m.supported, CUDNN_STATUS_NOT_SUPPORTED, "algo supports this convolution",
                 m.why_not + "; " + geometry_str(g)) &&
         r.check(workspace_bytes >= m.workspace, CUDNN_STATUS_BAD_PARAM,
                 "workSpaceSizeInBytes >= the workspace the algorithm needs",
                 std::to_string(workspace_bytes) + " < " + std::to_string(m.workspace)) &&
         (workspace_bytes == 0 || r.device_data(workspace, workspace_bytes, 1, "workSpace"));
}

}  // namespace tessera::emu::cudnn_standin

// ---- the C entry points ------------------------------------------------------------------------

using tessera::emu::cudnn_standin::AlgoModel;
using tessera::emu::cudnn_standin::ConvArgs;
using tessera::emu::cudnn_standin::ConvDirection;
using tessera::emu::cudnn_standin::ConvGeometry;
using tessera::emu::cudnn_standin::ObjectKind;
using tessera::emu::cudnn_standin::Rules;
namespace sd = tessera::emu::cudnn_standin;

namespace {

template <typename T>
cudnnStatus_t create_object(const char* entry, const char* arg, T** out, ObjectKind kind) {
  Rules r(entry);
  if (!r.check(out != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               std::string(arg) + " is not NULL"))
    return r.status();
  *out = new T();
  sd::add_live(*out, kind);
  return CUDNN_STATUS_SUCCESS;
}

template <typename T>
cudnnStatus_t destroy_object(const char* entry, const char* arg, T* d, ObjectKind kind,
                             const char* kind_name) {
  Rules r(entry);
  if (d == nullptr) return CUDNN_STATUS_SUCCESS;  // destroying NULL is a no-op
  if (!r.check(sd::is_live(d, kind), CUDNN_STATUS_BAD_PARAM,
               std::string(arg) + " is a " + kind_name + " created and not destroyed"))
    return r.status();
  sd::remove_live(d);
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
  return create_object("cudnnCreateFilterDescriptor", "filterDesc", desc, ObjectKind::Filter);
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
  return destroy_object("cudnnDestroyFilterDescriptor", "filterDesc", desc, ObjectKind::Filter,
                        "filter descriptor");
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  Rules r("cudnnSetFilter4dDescriptor");
  const long long elements = 1LL * k * c * h * w;
  if (!r.check(sd::is_live(desc, ObjectKind::Filter), CUDNN_STATUS_BAD_PARAM,
               "filterDesc is a filter descriptor created and not destroyed") ||
      !r.check(sd::data_type_bytes(type) != 0, CUDNN_STATUS_BAD_PARAM,
               "dataType is a valid cudnnDataType_t", std::to_string(static_cast<int>(type))) ||
      !r.check(format == CUDNN_TENSOR_NCHW || format == CUDNN_TENSOR_NHWC, CUDNN_STATUS_BAD_PARAM,
               "format is CUDNN_TENSOR_NCHW or CUDNN_TENSOR_NHWC",
               std::to_string(static_cast<int>(format))) ||
      !r.check(k > 0 && c > 0 && h > 0 && w > 0, CUDNN_STATUS_BAD_PARAM, "k, c, h and w are > 0",
               std::to_string(k) + "," + std::to_string(c) + "," + std::to_string(h) + "," +
                   std::to_string(w)) ||
      !r.check(elements <= (1LL << 31) - 1, CUDNN_STATUS_NOT_SUPPORTED,
               "the filter has at most 2^31 - 1 elements", std::to_string(elements)))
    return r.status();
  *desc = cudnnFilterStruct{true, type, format, k, c, h, w};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
  return create_object("cudnnCreateConvolutionDescriptor", "convDesc", desc,
                       ObjectKind::Convolution);
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
  return destroy_object("cudnnDestroyConvolutionDescriptor", "convDesc", desc,
                        ObjectKind::Convolution, "convolution descriptor");
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t desc, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  Rules r("cudnnSetConvolution2dDescriptor");
  if (!r.check(sd::is_live(desc, ObjectKind::Convolution), CUDNN_STATUS_BAD_PARAM,
               "convDesc is a convolution descriptor created and not destroyed") ||
      !r.check(pad_h >= 0 && pad_w >= 0, CUDNN_STATUS_BAD_PARAM, "pad_h and pad_w are >= 0",
               std::to_string(pad_h) + "," + std::to_string(pad_w)) ||
      !r.check(u > 0 && v > 0, CUDNN_STATUS_BAD_PARAM, "the strides u and v are > 0",
               std::to_string(u) + "," + std::to_string(v)) ||
      !r.check(dilation_h > 0 && dilation_w > 0, CUDNN_STATUS_BAD_PARAM,
               "dilation_h and dilation_w are > 0",
               std::to_string(dilation_h) + "," + std::to_string(dilation_w)) ||
      !r.check(mode == CUDNN_CONVOLUTION || mode == CUDNN_CROSS_CORRELATION, CUDNN_STATUS_BAD_PARAM,
               "mode is CUDNN_CONVOLUTION or CUDNN_CROSS_CORRELATION",
               std::to_string(static_cast<int>(mode))) ||
      !r.check(sd::data_type_bytes(computeType) != 0, CUDNN_STATUS_BAD_PARAM,
               "computeType is a valid cudnnDataType_t",
               std::to_string(static_cast<int>(computeType))))
    return r.status();
  const int groups = desc->groups;
  const cudnnMathType_t math = desc->math;
  *desc = cudnnConvolutionStruct{true,       pad_h, pad_w,       u,      v,   dilation_h,
                                 dilation_w, mode,  computeType, groups, math};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t desc, int groupCount) {
  Rules r("cudnnSetConvolutionGroupCount");
  if (!r.check(sd::is_live(desc, ObjectKind::Convolution), CUDNN_STATUS_BAD_PARAM,
               "convDesc is a convolution descriptor created and not destroyed") ||
      !r.check(groupCount >= 1, CUDNN_STATUS_BAD_PARAM, "groupCount >= 1",
               std::to_string(groupCount)))
    return r.status();
  desc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t desc,
                                          cudnnMathType_t mathType) {
  Rules r("cudnnSetConvolutionMathType");
  if (!r.check(sd::is_live(desc, ObjectKind::Convolution), CUDNN_STATUS_BAD_PARAM,
               "convDesc is a convolution descriptor created and not destroyed") ||
      !r.check(mathType >= CUDNN_DEFAULT_MATH && mathType <= CUDNN_FMA_MATH, CUDNN_STATUS_BAD_PARAM,
               "mathType is a valid cudnnMathType_t", std::to_string(static_cast<int>(mathType))))
    return r.status();
  desc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t desc,
                                                    const cudnnTensorDescriptor_t input,
                                                    const cudnnFilterDescriptor_t filter, int* n,
                                                    int* c, int* h, int* w) {
  Rules r("cudnnGetConvolution2dForwardOutputDim");
  if (!r.convolution(desc, "convDesc") || !r.tensor(input, "inputTensorDesc") ||
      !r.filter(filter, "filterDesc") ||
      !r.check(n && c && h && w, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "n, c, h and w are not NULL"))
    return r.status();
  // The output as its own descriptor, so the shared shape rules (except the output's) apply.
  cudnnTensorStruct y = *input;
  ConvGeometry g;
  if (!r.check(input->nb_dims == 4, CUDNN_STATUS_BAD_PARAM,
               "inputTensorDesc has 4 dimensions (a 2-d convolution)", sd::dims_str(*input)))
    return r.status();
  const int p =
      (input->dims[2] + 2 * desc->pad_h - desc->dilation_h * (filter->h - 1) - 1) / desc->stride_h +
      1;
  const int q =
      (input->dims[3] + 2 * desc->pad_w - desc->dilation_w * (filter->w - 1) - 1) / desc->stride_w +
      1;
  y.dims[1] = filter->k;
  y.dims[2] = p;
  y.dims[3] = q;
  if (!sd::check_conv_shapes(r, input, "inputTensorDesc", filter, "filterDesc", desc, &y,
                             "the output", g))
    return r.status();
  *n = g.n;
  *c = g.k;
  *h = g.p;
  *w = g.q;
  return CUDNN_STATUS_SUCCESS;
}

// ---- cudnnFind* and the workspace queries ------------------------------------------------------

namespace {

// Every algorithm of `d` modelled for `g`: the supported ones by modelled time, then the
// unsupported ones (status NOT_SUPPORTED), as cudnnFind* orders its results. x, w, conv and y are
// the convolution's descriptors in those roles (sd::conv_args).
template <typename Perf, typename Algo>
cudnnStatus_t find(const char* entry, cudnnHandle_t handle, ConvDirection d,
                   cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                   cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, int requested,
                   int* returned, Perf* perfs) {
  const ConvArgs a = sd::conv_args(d, x, w, conv, y);
  Rules r(entry);
  ConvGeometry g;
  if (!r.launch(handle) || !sd::check_conv_args(r, handle, a, g) ||
      !r.check(requested > 0, CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount > 0",
               std::to_string(requested)) ||
      !r.check(returned != nullptr && perfs != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "returnedAlgoCount and perfResults are not NULL"))
    return r.status();
  std::vector<Perf> all;
  for (int algo = 0; algo < sd::algo_count(d); ++algo) {
    const AlgoModel m = sd::model_algo(d, algo, g);
    Perf p{};
    p.algo = static_cast<Algo>(algo);
    p.status = m.supported ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
    p.time = m.supported ? m.time_ms : -1.f;
    p.memory = m.supported ? m.workspace : 0;
    p.determinism = m.deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = g.conv.math;
    all.push_back(p);
  }
  std::stable_sort(all.begin(), all.end(), [](const Perf& l, const Perf& rr) {
    if ((l.status == CUDNN_STATUS_SUCCESS) != (rr.status == CUDNN_STATUS_SUCCESS))
      return l.status == CUDNN_STATUS_SUCCESS;
    return l.time < rr.time;
  });
  const int n = std::min(requested, static_cast<int>(all.size()));
  for (int i = 0; i < n; ++i) perfs[i] = all[static_cast<size_t>(i)];
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_size(const char* entry, cudnnHandle_t handle, ConvDirection d,
                             cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                             cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, int algo,
                             size_t* bytes) {
  const ConvArgs a = sd::conv_args(d, x, w, conv, y);
  Rules r(entry);
  ConvGeometry g;
  if (!sd::check_conv_args(r, handle, a, g) ||
      !r.check(bytes != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "sizeInBytes is not NULL") ||
      !r.check(algo >= 0 && algo < sd::algo_count(d), CUDNN_STATUS_BAD_PARAM,
               "algo is a valid enumerant of its direction", "algo " + std::to_string(algo)))
    return r.status();
  const AlgoModel m = sd::model_algo(d, algo, g);
  if (!r.check(m.supported, CUDNN_STATUS_NOT_SUPPORTED, "algo supports this convolution",
               m.why_not))
    return r.status();
  *bytes = m.workspace;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfs) {
  return find<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      "cudnnFindConvolutionForwardAlgorithm", handle, ConvDirection::Forward, xDesc, wDesc,
      convDesc, yDesc, requestedAlgoCount, returnedAlgoCount, perfs);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdDataAlgoPerf_t* perfs) {
  return find<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      "cudnnFindConvolutionBackwardDataAlgorithm", handle, ConvDirection::BackwardData, dxDesc,
      wDesc, convDesc, dyDesc, requestedAlgoCount, returnedAlgoCount, perfs);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc,
    const int requestedAlgoCount, int* returnedAlgoCount,
    cudnnConvolutionBwdFilterAlgoPerf_t* perfs) {
  return find<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      "cudnnFindConvolutionBackwardFilterAlgorithm", handle, ConvDirection::BackwardFilter, xDesc,
      dwDesc, convDesc, dyDesc, requestedAlgoCount, returnedAlgoCount, perfs);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc,
    cudnnConvolutionFwdAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size("cudnnGetConvolutionForwardWorkspaceSize", handle, ConvDirection::Forward,
                        xDesc, wDesc, convDesc, yDesc, algo, sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size("cudnnGetConvolutionBackwardDataWorkspaceSize", handle,
                        ConvDirection::BackwardData, dxDesc, wDesc, convDesc, dyDesc, algo,
                        sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  return workspace_size("cudnnGetConvolutionBackwardFilterWorkspaceSize", handle,
                        ConvDirection::BackwardFilter, xDesc, dwDesc, convDesc, dyDesc, algo,
                        sizeInBytes);
}
