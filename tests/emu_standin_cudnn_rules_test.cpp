// The cuDNN stand-in's rules (cuda/emu/README.md, "Stand-in: cuDNN"): for each, a call that
// breaks it gets cuDNN's status, queues nothing, and last_rule_failure() and cudnnGetErrorString
// name the rule. The issue-17 case: an algorithm cudnnFind* chose refused on a 4-byte aligned view.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/cudnn_standin_test_util.h"

namespace tessera::emu_test::cudnn {
namespace {

TEST(EmuStandinCudnnRules, HandleAndTensorDescriptors) {
  // The live objects first: a destroyed object's address may be reused by the next creation.
  Handle h;
  cudnnTensorDescriptor_t gone = nullptr, unset = nullptr;
  ASSERT_EQ(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
  cudnnHandle_t dead = nullptr;
  ASSERT_EQ(cudnnCreate(&dead), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroy(dead), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateTensorDescriptor(&gone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroyTensorDescriptor(gone), CUDNN_STATUS_SUCCESS);
  const int dims[3] = {2, 3, 4}, strides[3] = {12, 4, 1}, zero_stride[3] = {12, 0, 1};
  cudnnDataType_t type;
  int nb = 0, got[3], got_strides[3];
  const auto live = "tensorDesc is a tensor descriptor created and not destroyed";
  expect_all_broken({
      {"create into NULL", [] { return cudnnCreate(nullptr); }, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       "handle is not NULL"},
      {"destroyed handle", [&] { return cudnnSetStream(dead, nullptr); }, CUDNN_STATUS_BAD_PARAM,
       "handle was created by cudnnCreate and not destroyed"},
      {"destroy twice", [&] { return cudnnDestroy(dead); }, CUDNN_STATUS_BAD_PARAM,
       "handle was created by cudnnCreate and not destroyed"},
      {"get stream into NULL", [&] { return cudnnGetStream(h.h, nullptr); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "streamId is not NULL"},
      {"create tensor into NULL", [] { return cudnnCreateTensorDescriptor(nullptr); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "tensorDesc is not NULL"},
      {"destroy tensor twice", [&] { return cudnnDestroyTensorDescriptor(gone); },
       CUDNN_STATUS_BAD_PARAM, live},
      {"set 4d on a destroyed descriptor",
       [&] {
         return cudnnSetTensor4dDescriptor(gone, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1);
       },
       CUDNN_STATUS_BAD_PARAM, live},
      {"VECT_C format",
       [&] {
         return cudnnSetTensor4dDescriptor(unset, CUDNN_TENSOR_NCHW_VECT_C, CUDNN_DATA_FLOAT, 1, 4,
                                           1, 1);
       },
       CUDNN_STATUS_BAD_PARAM, "format is CUDNN_TENSOR_NCHW or CUDNN_TENSOR_NHWC"},
      {"data type outside the enum",
       [&] {
         return cudnnSetTensor4dDescriptor(unset, CUDNN_TENSOR_NCHW, cudnnDataType_t(77), 1, 1, 1,
                                           1);
       },
       CUDNN_STATUS_BAD_PARAM, "dataType is a valid cudnnDataType_t"},
      {"n = 0",
       [&] {
         return cudnnSetTensor4dDescriptor(unset, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 1, 1, 1);
       },
       CUDNN_STATUS_BAD_PARAM, "every dimension is > 0"},
      {"2^32 elements",
       [&] {
         return cudnnSetTensor4dDescriptor(unset, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 65536, 65536,
                                           1, 1);
       },
       CUDNN_STATUS_NOT_SUPPORTED, "the tensor has at most 2^31 - 1 elements"},
      {"set Nd on a destroyed descriptor",
       [&] { return cudnnSetTensorNdDescriptor(gone, CUDNN_DATA_FLOAT, 3, dims, strides); },
       CUDNN_STATUS_BAD_PARAM, live},
      {"nbDims 2",
       [&] { return cudnnSetTensorNdDescriptor(unset, CUDNN_DATA_FLOAT, 2, dims, strides); },
       CUDNN_STATUS_NOT_SUPPORTED, "3 <= nbDims <= CUDNN_DIM_MAX"},
      {"nbDims 9",
       [&] { return cudnnSetTensorNdDescriptor(unset, CUDNN_DATA_FLOAT, 9, dims, strides); },
       CUDNN_STATUS_NOT_SUPPORTED, "3 <= nbDims <= CUDNN_DIM_MAX"},
      {"NULL dims",
       [&] { return cudnnSetTensorNdDescriptor(unset, CUDNN_DATA_FLOAT, 3, nullptr, strides); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "dimA and strideA are not NULL"},
      {"stride 0",
       [&] { return cudnnSetTensorNdDescriptor(unset, CUDNN_DATA_FLOAT, 3, dims, zero_stride); },
       CUDNN_STATUS_BAD_PARAM, "every stride is > 0"},
      {"get from an unset descriptor",
       [&] { return cudnnGetTensorNdDescriptor(unset, 3, &type, &nb, got, got_strides); },
       CUDNN_STATUS_BAD_PARAM, "tensorDesc is a tensor descriptor whose dimensions were set"},
      {"get from a destroyed descriptor",
       [&] { return cudnnGetTensorNdDescriptor(gone, 3, &type, &nb, got, got_strides); },
       CUDNN_STATUS_BAD_PARAM, live},
  });
  ASSERT_EQ(cudnnSetTensorNdDescriptor(unset, CUDNN_DATA_FLOAT, 3, dims, strides),
            CUDNN_STATUS_SUCCESS);
  expect_all_broken({
      {"nbDimsRequested -1",
       [&] { return cudnnGetTensorNdDescriptor(unset, -1, &type, &nb, got, got_strides); },
       CUDNN_STATUS_BAD_PARAM, "nbDimsRequested >= 0"},
      {"NULL dataType",
       [&] { return cudnnGetTensorNdDescriptor(unset, 3, nullptr, &nb, got, got_strides); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "dataType, nbDims and"},
  });
  ASSERT_EQ(cudnnGetTensorNdDescriptor(unset, 3, &type, &nb, got, got_strides),
            CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(nb, 3);
  EXPECT_EQ(std::vector<int>(got, got + 3), std::vector<int>(dims, dims + 3));
  EXPECT_EQ(std::vector<int>(got_strides, got_strides + 3), std::vector<int>(strides, strides + 3));
  cudnnDestroyTensorDescriptor(unset);
}

TEST(EmuStandinCudnnRules, FilterAndConvolutionDescriptors) {
  cudnnFilterDescriptor_t fgone = nullptr, f = nullptr;
  cudnnConvolutionDescriptor_t cgone = nullptr, c = nullptr;
  ASSERT_EQ(cudnnCreateFilterDescriptor(&f), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateConvolutionDescriptor(&c), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateFilterDescriptor(&fgone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroyFilterDescriptor(fgone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateConvolutionDescriptor(&cgone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroyConvolutionDescriptor(cgone), CUDNN_STATUS_SUCCESS);
  const auto flive = "filterDesc is a filter descriptor created and not destroyed";
  const auto clive = "convDesc is a convolution descriptor created and not destroyed";
  const auto set2d = [&](cudnnConvolutionDescriptor_t d, int pad, int stride, int dil, int mode,
                         cudnnDataType_t t) {
    return cudnnSetConvolution2dDescriptor(d, pad, pad, stride, stride, dil, dil,
                                           cudnnConvolutionMode_t(mode), t);
  };
  const auto setf = [&](cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t fmt,
                        int k,
                        int ch) { return cudnnSetFilter4dDescriptor(d, t, fmt, k, ch, 3, 3); };
  expect_all_broken({
      {"create filter into NULL", [] { return cudnnCreateFilterDescriptor(nullptr); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "filterDesc is not NULL"},
      {"destroy filter twice", [&] { return cudnnDestroyFilterDescriptor(fgone); },
       CUDNN_STATUS_BAD_PARAM, flive},
      {"set a destroyed filter",
       [&] { return setf(fgone, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1); },
       CUDNN_STATUS_BAD_PARAM, flive},
      {"filter type", [&] { return setf(f, cudnnDataType_t(77), CUDNN_TENSOR_NCHW, 1, 1); },
       CUDNN_STATUS_BAD_PARAM, "dataType is a valid cudnnDataType_t"},
      {"filter format", [&] { return setf(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW_VECT_C, 1, 1); },
       CUDNN_STATUS_BAD_PARAM, "format is CUDNN_TENSOR_NCHW or CUDNN_TENSOR_NHWC"},
      {"k = 0", [&] { return setf(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 0, 1); },
       CUDNN_STATUS_BAD_PARAM, "k, c, h and w are > 0"},
      {"huge filter", [&] { return setf(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 65536, 65536); },
       CUDNN_STATUS_NOT_SUPPORTED, "the filter has at most 2^31 - 1 elements"},
      {"create convolution into NULL", [] { return cudnnCreateConvolutionDescriptor(nullptr); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "convDesc is not NULL"},
      {"destroy convolution twice", [&] { return cudnnDestroyConvolutionDescriptor(cgone); },
       CUDNN_STATUS_BAD_PARAM, clive},
      {"set a destroyed convolution", [&] { return set2d(cgone, 0, 1, 1, 1, CUDNN_DATA_FLOAT); },
       CUDNN_STATUS_BAD_PARAM, clive},
      {"pad -1", [&] { return set2d(c, -1, 1, 1, 1, CUDNN_DATA_FLOAT); }, CUDNN_STATUS_BAD_PARAM,
       "pad_h and pad_w are >= 0"},
      {"stride 0", [&] { return set2d(c, 0, 0, 1, 1, CUDNN_DATA_FLOAT); }, CUDNN_STATUS_BAD_PARAM,
       "the strides u and v are > 0"},
      {"dilation 0", [&] { return set2d(c, 0, 1, 0, 1, CUDNN_DATA_FLOAT); }, CUDNN_STATUS_BAD_PARAM,
       "dilation_h and dilation_w are > 0"},
      {"mode 5", [&] { return set2d(c, 0, 1, 1, 5, CUDNN_DATA_FLOAT); }, CUDNN_STATUS_BAD_PARAM,
       "mode is CUDNN_CONVOLUTION or CUDNN_CROSS_CORRELATION"},
      {"compute type 77", [&] { return set2d(c, 0, 1, 1, 1, cudnnDataType_t(77)); },
       CUDNN_STATUS_BAD_PARAM, "computeType is a valid cudnnDataType_t"},
      {"groups on a destroyed descriptor", [&] { return cudnnSetConvolutionGroupCount(cgone, 1); },
       CUDNN_STATUS_BAD_PARAM, clive},
      {"0 groups", [&] { return cudnnSetConvolutionGroupCount(c, 0); }, CUDNN_STATUS_BAD_PARAM,
       "groupCount >= 1"},
      {"math on a destroyed descriptor",
       [&] { return cudnnSetConvolutionMathType(cgone, CUDNN_FMA_MATH); }, CUDNN_STATUS_BAD_PARAM,
       clive},
      {"math type 9", [&] { return cudnnSetConvolutionMathType(c, cudnnMathType_t(9)); },
       CUDNN_STATUS_BAD_PARAM, "mathType is a valid cudnnMathType_t"},
  });
  cudnnDestroyFilterDescriptor(f);
  cudnnDestroyConvolutionDescriptor(c);
}

// A forward convolution whose arguments a test may replace one at a time.
struct ForwardCall {
  ConvCase& c;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  const void *alpha = &kOne, *beta = &kZero, *x, *w;
  void* y;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  ForwardCall(ConvCase& cc, const void* xp, const void* wp, void* yp)
      : c(cc), xd(cc.xd), yd(cc.yd), wd(cc.wd), cd(cc.cd), x(xp), w(wp), y(yp) {}
  cudnnStatus_t operator()() const {
    return cudnnConvolutionForward(c.handle.h, alpha, xd, x, wd, w, cd, algo, ws, ws_bytes, beta,
                                   yd, y);
  }
};

TEST(EmuStandinCudnnRules, ConvolutionShapesAlgorithmsAndData) {
  ConvCase c;
  c.set_up();
  Scratch s;
  auto x = device_from(c.x), w = device_from(c.w);
  auto y = device_filled(static_cast<size_t>(shape_numel(c.ys)), -5.f);
  auto ws = workspace_of(1 << 20);
  std::vector<float> host_x(c.x);
  DeviceArray<float> short_x(c.x.size() - 1, ElementKind::F32, "one float short");
  const auto with = [&](auto change) {
    return [&, change] {
      ForwardCall f(c, x.data(), w.data(), y.data());
      change(f);
      return f();
    };
  };
  cudnnConvolutionDescriptor_t unset = nullptr;
  ASSERT_EQ(cudnnCreateConvolutionDescriptor(&unset), CUDNN_STATUS_SUCCESS);
  s.c(unset);
  Conv2dParams one_group = c.p;
  one_group.groups = 1;
  Conv2dParams no_pad = c.p;
  no_pad.pad_h = no_pad.pad_w = 0;
  const cudnnTensorDescriptor_t x5 = s.t(tensor_nd({2, 4, 7, 6, 1}));
  const cudnnTensorDescriptor_t x_half = s.t(tensor_nd({2, 4, 7, 6}, CUDNN_DATA_HALF));
  cudnnConvolutionDescriptor_t half_compute = s.c(conv2d(c.p));
  ASSERT_EQ(cudnnSetConvolution2dDescriptor(half_compute, 1, 1, 2, 1, 1, 2, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_HALF),
            CUDNN_STATUS_SUCCESS);
  int n, ch, hh, ww;
  expect_all_broken({
      {"output dims of an unset convolution",
       [&] { return cudnnGetConvolution2dForwardOutputDim(unset, c.xd, c.wd, &n, &ch, &hh, &ww); },
       CUDNN_STATUS_BAD_PARAM, "convDesc is a convolution descriptor whose dimensions were set"},
      {"output dims into NULL",
       [&] {
         return cudnnGetConvolution2dForwardOutputDim(c.cd, c.xd, c.wd, nullptr, &ch, &hh, &ww);
       },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "n, c, h and w are not NULL"},
      {"output dims of a 5-d input",
       [&] { return cudnnGetConvolution2dForwardOutputDim(c.cd, x5, c.wd, &n, &ch, &hh, &ww); },
       CUDNN_STATUS_BAD_PARAM, "inputTensorDesc has 4 dimensions"},
      {"5-d x", with([&](ForwardCall& f) { f.xd = x5; }), CUDNN_STATUS_BAD_PARAM,
       "xDesc has 4 dimensions"},
      {"5-d y", with([&](ForwardCall& f) { f.yd = x5; }), CUDNN_STATUS_BAD_PARAM,
       "yDesc has 4 dimensions"},
      {"half x", with([&](ForwardCall& f) { f.xd = x_half; }), CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
       "xDesc is CUDNN_DATA_FLOAT"},
      {"half y", with([&](ForwardCall& f) {
         f.yd = s.t(tensor_nd({2, 6, 4, 2}, CUDNN_DATA_HALF));
       }),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "yDesc is CUDNN_DATA_FLOAT"},
      {"half w", with([&](ForwardCall& f) {
         f.wd = s.f(filter4(6, 2, 3, 3));
         cudnnSetFilter4dDescriptor(f.wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NCHW, 6, 2, 3, 3);
       }),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "wDesc is CUDNN_DATA_FLOAT"},
      {"half compute type", with([&](ForwardCall& f) { f.cd = half_compute; }),
       CUDNN_STATUS_NOT_SUPPORTED, "convDesc's computeType is CUDNN_DATA_FLOAT"},
      {"one group for a grouped filter",
       with([&](ForwardCall& f) { f.cd = s.c(conv2d(one_group)); }), CUDNN_STATUS_BAD_PARAM,
       "xDesc's C equals wDesc's C times the group count"},
      {"K not a multiple of groups", with([&](ForwardCall& f) { f.wd = s.f(filter4(5, 2, 3, 3)); }),
       CUDNN_STATUS_BAD_PARAM, "wDesc's K is a multiple of the group count"},
      {"filter larger than the input", with([&](ForwardCall& f) {
         f.xd = s.t(tensor4(2, 4, 2, 2));
         f.cd = s.c(conv2d(no_pad));
       }),
       CUDNN_STATUS_BAD_PARAM, "the dilated filter fits in the padded input"},
      {"y of the wrong size", with([&](ForwardCall& f) { f.yd = s.t(tensor4(2, 6, 4, 3)); }),
       CUDNN_STATUS_BAD_PARAM, "yDesc's dims equal cudnnGetConvolution2dForwardOutputDim's"},
      {"algo 99", with([&](ForwardCall& f) { f.algo = cudnnConvolutionFwdAlgo_t(99); }),
       CUDNN_STATUS_BAD_PARAM, "algo is a valid enumerant of its direction"},
      {"FFT with stride 2", with([&](ForwardCall& f) { f.algo = CUDNN_CONVOLUTION_FWD_ALGO_FFT; }),
       CUDNN_STATUS_NOT_SUPPORTED, "algo supports this convolution"},
      {"GEMM without its workspace",
       with([&](ForwardCall& f) { f.algo = CUDNN_CONVOLUTION_FWD_ALGO_GEMM; }),
       CUDNN_STATUS_BAD_PARAM, "workSpaceSizeInBytes >= the workspace the algorithm needs"},
      {"workspace size without a pointer", with([&](ForwardCall& f) { f.ws_bytes = 64; }),
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "workSpace is not NULL"},
      {"host workspace", with([&](ForwardCall& f) {
         f.ws = host_x.data();
         f.ws_bytes = 64;
       }),
       CUDNN_STATUS_BAD_PARAM, "workSpace points to device memory"},
      {"NULL alpha", with([&](ForwardCall& f) { f.alpha = nullptr; }),
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "alpha and beta point to host scaling factors"},
      {"NULL x", with([&](ForwardCall& f) { f.x = nullptr; }), CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       "x is not NULL"},
      {"host x", with([&](ForwardCall& f) { f.x = host_x.data(); }), CUDNN_STATUS_BAD_PARAM,
       "x points to device memory holding all of its descriptor's elements"},
      {"x one float short", with([&](ForwardCall& f) { f.x = short_x.data(); }),
       CUDNN_STATUS_BAD_PARAM,
       "x points to device memory holding all of its descriptor's elements"},
      {"w 2 bytes off",
       with([&](ForwardCall& f) { f.w = reinterpret_cast<const char*>(ws.data()) + 2; }),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "w is aligned to 4 bytes"},
  });
  c.handle.sync();
  for (float v : values(y)) ASSERT_EQ(v, -5.f) << "a refused call queued work";

  cudnnConvolutionFwdAlgoPerf_t perf;
  size_t bytes = 0;
  expect_all_broken({
      {"Find 0 algorithms",
       [&] {
         return cudnnFindConvolutionForwardAlgorithm(c.handle.h, c.xd, c.wd, c.cd, c.yd, 0, &n,
                                                     &perf);
       },
       CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount > 0"},
      {"Find into NULL",
       [&] {
         return cudnnFindConvolutionForwardAlgorithm(c.handle.h, c.xd, c.wd, c.cd, c.yd, 1, &n,
                                                     nullptr);
       },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "returnedAlgoCount and perfResults are not NULL"},
      {"workspace size into NULL",
       [&] {
         return cudnnGetConvolutionForwardWorkspaceSize(c.handle.h, c.xd, c.wd, c.cd, c.yd,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_GEMM, nullptr);
       },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "sizeInBytes is not NULL"},
      {"workspace size of algo 99",
       [&] {
         return cudnnGetConvolutionBackwardDataWorkspaceSize(
             c.handle.h, c.wd, c.yd, c.cd, c.xd, cudnnConvolutionBwdDataAlgo_t(99), &bytes);
       },
       CUDNN_STATUS_BAD_PARAM, "algo is a valid enumerant of its direction"},
      {"workspace size of an unsupported algo",
       [&] {
         return cudnnGetConvolutionBackwardFilterWorkspaceSize(
             c.handle.h, c.xd, c.yd, c.cd, c.wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD,
             &bytes);
       },
       CUDNN_STATUS_NOT_SUPPORTED, "algo supports this convolution"},
  });
}

// The defect: cudnnFind* measures on aligned buffers of its own, and the fastest
// algorithm it returns needs 16-byte aligned data; a view 4 bytes into a buffer is refused with
// the rule named, while the basic implicit GEMM runs it and matches the host.
TEST(EmuStandinCudnnRules, AnAlgorithmFindChoseIsRefusedOnAFourByteAlignedView) {
  ConvCase c;
  c.set_up();
  cudnnConvolutionFwdAlgoPerf_t perf;
  int n = 0;
  CUDNN_OK(cudnnFindConvolutionForwardAlgorithm(c.handle.h, c.xd, c.wd, c.cd, c.yd, 1, &n, &perf));
  ASSERT_NE(perf.algo, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  std::vector<float> guarded(c.x.size() + 1, 0.f);
  std::copy(c.x.begin(), c.x.end(), guarded.begin() + 1);
  auto x = device_from(guarded), w = device_from(c.w);
  auto y = device_filled(static_cast<size_t>(shape_numel(c.ys)), kNaN);
  auto ws = workspace_of(perf.memory);
  expect_broken(cudnnConvolutionForward(c.handle.h, &kOne, c.xd, x.data() + 1, c.wd, w.data(), c.cd,
                                        perf.algo, ws.data(), perf.memory, &kZero, c.yd, y.data()),
                CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "x is aligned as the algorithm needs");
  CUDNN_OK(cudnnConvolutionForward(c.handle.h, &kOne, c.xd, x.data() + 1, c.wd, w.data(), c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &kZero,
                                   c.yd, y.data()));
  c.handle.sync();
  expect_near_all(values(y), c.host_forward(), "implicit GEMM on the view");
}

// The data rules of the backward calls name their own arguments: one case per argument.
TEST(EmuStandinCudnnRules, BackwardConvolutionDataArgumentsAndBias) {
  ConvCase c;
  c.set_up();
  Scratch s;
  auto x = device_from(c.x), w = device_from(c.w), dy = device_from(c.dy);
  auto dx = device_filled(c.x.size() + 4, 0.f), dw = device_filled(c.w.size() + 4, 0.f);
  auto ws = workspace_of(1 << 20);
  const float* xp = x.data();
  const auto bwd_data = [&](const void* wp, const void* dyp, void* dxp, int algo) {
    return [&, wp, dyp, dxp, algo] {
      return cudnnConvolutionBackwardData(c.handle.h, &kOne, c.wd, wp, c.yd, dyp, c.cd,
                                          cudnnConvolutionBwdDataAlgo_t(algo), ws.data(), 1 << 20,
                                          &kZero, c.xd, dxp);
    };
  };
  const auto bwd_filter = [&](const void* xq, const void* dyp, void* dwp, int algo) {
    return [&, xq, dyp, dwp, algo] {
      return cudnnConvolutionBackwardFilter(c.handle.h, &kOne, c.xd, xq, c.yd, dyp, c.cd,
                                            cudnnConvolutionBwdFilterAlgo_t(algo), ws.data(),
                                            1 << 20, &kZero, c.wd, dwp);
    };
  };
  cudnnTensorDescriptor_t bd = s.t(tensor4(1, 6, 1, 1)), bad_bias = s.t(tensor4(1, 5, 1, 1));
  cudnnTensorDescriptor_t half_bias = s.t(tensor_nd({1, 6, 1, 1}, CUDNN_DATA_HALF));
  cudnnTensorDescriptor_t dy5 = s.t(tensor_nd({2, 6, 4, 2, 1}));
  auto db = device_filled(6, 0.f);
  const auto bias = [&](cudnnTensorDescriptor_t dyd, cudnnTensorDescriptor_t dbd) {
    return [&, dyd, dbd] {
      return cudnnConvolutionBackwardBias(c.handle.h, &kOne, dyd, dy.data(), &kZero, dbd,
                                          db.data());
    };
  };
  const int precomp = 1;  // BWD_DATA_ALGO_1 / BWD_FILTER_ALGO_1: 16-byte aligned data
  expect_all_broken({
      {"NULL w", bwd_data(nullptr, dy.data(), dx.data(), 0), CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       "w is not NULL"},
      {"host dy", bwd_data(w.data(), c.dy.data(), dx.data(), 0), CUDNN_STATUS_BAD_PARAM,
       "dy points to device memory"},
      {"dx 2 bytes off", bwd_data(w.data(), dy.data(), reinterpret_cast<char*>(dx.data()) + 2, 0),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "dx is aligned to 4 bytes"},
      {"dx 4 bytes off for ALGO_1", bwd_data(w.data(), dy.data(), dx.data() + 1, precomp),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "dx is aligned as the algorithm needs"},
      {"w 4 bytes off for ALGO_1", bwd_data(dw.data() + 1, dy.data(), dx.data(), precomp),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "w is aligned as the algorithm needs"},
      {"NULL x", bwd_filter(nullptr, dy.data(), dw.data(), 0), CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       "x is not NULL"},
      {"dw past its allocation", bwd_filter(xp, dy.data(), dw.data() + 8, 0),
       CUDNN_STATUS_BAD_PARAM, "dw points to device memory"},
      {"dw 4 bytes off for ALGO_1", bwd_filter(xp, dy.data(), dw.data() + 1, precomp),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "dw is aligned as the algorithm needs"},
      {"dy 4 bytes off for ALGO_1", bwd_filter(xp, dx.data() + 1, dw.data(), precomp),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "dy is aligned as the algorithm needs"},
      {"5-d dy for the bias", bias(dy5, bd), CUDNN_STATUS_BAD_PARAM, "dyDesc has 4 dimensions"},
      {"bias of 5 channels", bias(c.yd, bad_bias), CUDNN_STATUS_BAD_PARAM,
       "dbDesc is 1 x C x 1 x 1 with dyDesc's C"},
      {"half bias", bias(c.yd, half_bias), CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
       "dbDesc is CUDNN_DATA_FLOAT"},
  });
}

TEST(EmuStandinCudnnRules, AddTensor) {
  Handle h;
  Scratch s;
  auto a = device_filled(64, 1.f), cbuf = device_filled(64, 1.f);
  const auto add = [&](cudnnTensorDescriptor_t ad, cudnnTensorDescriptor_t cd) {
    return [&, ad, cd] { return cudnnAddTensor(h.h, &kOne, ad, a.data(), &kOne, cd, cbuf.data()); };
  };
  expect_all_broken({
      {"3-d into 4-d", add(s.t(tensor_nd({1, 2, 1})), s.t(tensor4(2, 2, 2, 2))),
       CUDNN_STATUS_BAD_PARAM, "aDesc and cDesc have the same number of dimensions"},
      {"6-d", add(s.t(tensor_nd({1, 2, 1, 1, 1, 1})), s.t(tensor_nd({2, 2, 2, 1, 1, 1}))),
       CUDNN_STATUS_NOT_SUPPORTED, "cDesc has at most 5 dimensions"},
      {"3 channels into 2", add(s.t(tensor4(1, 3, 1, 1)), s.t(tensor4(2, 2, 2, 2))),
       CUDNN_STATUS_BAD_PARAM, "each of aDesc's dims equals cDesc's or is 1"},
      {"half C", add(s.t(tensor4(1, 2, 1, 1)), s.t(tensor_nd({2, 2, 2, 2}, CUDNN_DATA_HALF))),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "cDesc is CUDNN_DATA_FLOAT"},
      {"unset handle",
       [&] {
         return cudnnAddTensor(nullptr, &kOne, s.t(tensor4(1, 2, 1, 1)), a.data(), &kOne,
                               s.t(tensor4(2, 2, 2, 2)), cbuf.data());
       },
       CUDNN_STATUS_BAD_PARAM, "handle was created by cudnnCreate and not destroyed"},
  });
}

TEST(EmuStandinCudnnRules, Pooling) {
  Handle h;
  Scratch s;
  cudnnPoolingDescriptor_t pd = nullptr, gone = nullptr, pd2 = nullptr;
  ASSERT_EQ(cudnnCreatePoolingDescriptor(&pd), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreatePoolingDescriptor(&pd2), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreatePoolingDescriptor(&gone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroyPoolingDescriptor(gone), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(
      cudnnSetPooling2dDescriptor(pd, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 2, 2),
      CUDNN_STATUS_SUCCESS);
  const auto set = [&](cudnnPoolingDescriptor_t d, int mode, int nan, int win, int pad, int str) {
    return [=] {
      return cudnnSetPooling2dDescriptor(d, cudnnPoolingMode_t(mode), cudnnNanPropagation_t(nan),
                                         win, win, pad, pad, str, str);
    };
  };
  auto x = device_filled(2 * 3 * 4 * 4, 1.f), y = device_filled(2 * 3 * 2 * 2, 1.f);
  auto dx = device_filled(2 * 3 * 4 * 4, 1.f), dy = device_filled(2 * 3 * 2 * 2, 1.f);
  std::vector<float> host_dx(96);
  const cudnnTensorDescriptor_t xd = s.t(tensor4(2, 3, 4, 4)), yd = s.t(tensor4(2, 3, 2, 2));
  const auto fwd = [&](cudnnPoolingDescriptor_t p, cudnnTensorDescriptor_t xdesc,
                       cudnnTensorDescriptor_t ydesc) {
    return [&, p, xdesc, ydesc] {
      return cudnnPoolingForward(h.h, p, &kOne, xdesc, x.data(), &kZero, ydesc, y.data());
    };
  };
  const auto bwd = [&](cudnnTensorDescriptor_t dyd, cudnnTensorDescriptor_t dxd, void* dxp) {
    return [&, dyd, dxd, dxp] {
      return cudnnPoolingBackward(h.h, pd, &kOne, yd, y.data(), dyd, dy.data(), xd, x.data(),
                                  &kZero, dxd, dxp);
    };
  };
  // pd2 set to (mode, window, padding, stride 1) when the case runs, then the forward call.
  const auto fwd_pd2 = [&](int mode, int win, int pad, cudnnTensorDescriptor_t ydesc) {
    return [&, mode, win, pad, ydesc] {
      EXPECT_EQ(set(pd2, mode, 0, win, pad, 1)(), CUDNN_STATUS_SUCCESS);
      return fwd(pd2, xd, ydesc)();
    };
  };
  const auto live = "poolingDesc is a pooling descriptor created and not destroyed";
  expect_all_broken({
      {"create into NULL", [] { return cudnnCreatePoolingDescriptor(nullptr); },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "poolingDesc is not NULL"},
      {"destroy twice", [&] { return cudnnDestroyPoolingDescriptor(gone); }, CUDNN_STATUS_BAD_PARAM,
       live},
      {"set a destroyed descriptor", set(gone, 0, 0, 2, 0, 2), CUDNN_STATUS_BAD_PARAM, live},
      {"mode 7", set(pd2, 7, 0, 2, 0, 2), CUDNN_STATUS_BAD_PARAM,
       "mode is a valid cudnnPoolingMode_t"},
      {"NaN option 3", set(pd2, 0, 3, 2, 0, 2), CUDNN_STATUS_BAD_PARAM,
       "maxpoolingNanOpt is a valid cudnnNanPropagation_t"},
      {"window 0", set(pd2, 0, 0, 0, 0, 2), CUDNN_STATUS_BAD_PARAM,
       "windowHeight and windowWidth are > 0"},
      {"padding -1", set(pd2, 0, 0, 2, -1, 2), CUDNN_STATUS_BAD_PARAM,
       "verticalPadding and horizontalPadding are >= 0"},
      {"stride 0", set(pd2, 0, 0, 2, 0, 0), CUDNN_STATUS_BAD_PARAM,
       "verticalStride and horizontalStride are > 0"},
      {"unset descriptor", fwd(pd2, xd, yd), CUDNN_STATUS_BAD_PARAM,
       "poolingDesc is a pooling descriptor whose dimensions were set"},
  });
  expect_all_broken({
      {"average excluding padding", fwd_pd2(CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING, 2, 0, yd),
       CUDNN_STATUS_NOT_SUPPORTED, "mode is not AVERAGE_COUNT_EXCLUDE_PADDING"},
      {"half x", fwd(pd, s.t(tensor_nd({2, 3, 4, 4}, CUDNN_DATA_HALF)), yd),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "xDesc is CUDNN_DATA_FLOAT"},
      {"5-d x", fwd(pd, s.t(tensor_nd({2, 3, 4, 4, 1})), yd), CUDNN_STATUS_BAD_PARAM,
       "xDesc and yDesc have 4 dimensions"},
      {"other C in y", fwd(pd, xd, s.t(tensor4(2, 2, 2, 2))), CUDNN_STATUS_BAD_PARAM,
       "xDesc and yDesc have the same N and C"},
      {"padding as large as the window", fwd_pd2(CUDNN_POOLING_MAX, 2, 2, yd),
       CUDNN_STATUS_NOT_SUPPORTED, "the padding is smaller than the window"},
      {"window larger than the input", fwd_pd2(CUDNN_POOLING_MAX, 5, 0, s.t(tensor4(2, 3, 1, 1))),
       CUDNN_STATUS_BAD_PARAM, "the window fits in the padded input"},
      {"y of the wrong size", fwd(pd, xd, s.t(tensor4(2, 3, 3, 3))), CUDNN_STATUS_BAD_PARAM,
       "yDesc's dims equal cudnnGetPooling2dForwardOutputDim's"},
      {"dy unlike y", bwd(s.t(tensor4(2, 3, 2, 1)), xd, dx.data()), CUDNN_STATUS_BAD_PARAM,
       "yDesc and dyDesc have the same dims"},
      {"dx unlike x", bwd(yd, s.t(tensor4(2, 3, 4, 3)), dx.data()), CUDNN_STATUS_BAD_PARAM,
       "xDesc and dxDesc have the same dims"},
      {"half dy", bwd(s.t(tensor_nd({2, 3, 2, 2}, CUDNN_DATA_HALF)), xd, dx.data()),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "dyDesc is CUDNN_DATA_FLOAT"},
      {"host dx", bwd(yd, xd, host_dx.data()), CUDNN_STATUS_BAD_PARAM,
       "dx points to device memory"},
  });
  cudnnDestroyPoolingDescriptor(pd);
  cudnnDestroyPoolingDescriptor(pd2);
}

// A batch-normalisation training forward whose arguments a test may replace one at a time.
struct BnTrainCall {
  BnCase& b;
  cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL;
  cudnnTensorDescriptor_t xd, yd, cd;
  const void *x, *scale, *bias;
  void *y, *rm, *rv, *sm, *si;
  double factor = 0.1, eps = 1e-5;
  cudnnStatus_t operator()() const {
    return cudnnBatchNormalizationForwardTraining(b.h.h, mode, &kOne, &kZero, xd, x, yd, y, cd,
                                                  scale, bias, factor, rm, rv, eps, sm, si);
  }
};

TEST(EmuStandinCudnnRules, BatchNormalisation) {
  BnCase b;
  Scratch s;
  auto x = device_from(b.x), y = device_filled(300, 0.f), dx = device_filled(301, 0.f);
  auto ch = device_filled(3, 1.f), rm = device_filled(3, 0.f), rv = device_filled(3, 1.f);
  auto sm = device_filled(3, 0.f), si = device_filled(3, 1.f), dg = device_filled(3, 0.f);
  std::vector<float> host_scale(3, 1.f);
  const auto train = [&](auto change) {
    return [&, change] {
      BnTrainCall t{b,         CUDNN_BATCHNORM_SPATIAL,
                    b.xd,      b.xd,
                    b.cd,      x.data(),
                    ch.data(), ch.data(),
                    y.data(),  rm.data(),
                    rv.data(), sm.data(),
                    si.data()};
      change(t);
      return t();
    };
  };
  const auto bwd = [&](void* dxp, const void* saved_mean, const void* alpha_param) {
    return [&, dxp, saved_mean, alpha_param] {
      return cudnnBatchNormalizationBackward(
          b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, alpha_param, &kZero, b.xd, x.data(), b.xd,
          y.data(), b.xd, dxp, b.cd, ch.data(), dg.data(), dg.data(), 1e-5, saved_mean, si.data());
    };
  };
  const auto ones_per_channel = s.t(tensor4(1, 3, 1, 1));
  expect_all_broken({
      {"per-activation mode",
       train([](BnTrainCall& t) { t.mode = CUDNN_BATCHNORM_PER_ACTIVATION; }),
       CUDNN_STATUS_NOT_SUPPORTED, "mode is SPATIAL or SPATIAL_PERSISTENT"},
      {"half x", train([&](BnTrainCall& t) {
         t.xd = s.t(tensor_nd({4, 3, 5, 5}, CUDNN_DATA_HALF));
       }),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "xDesc is CUDNN_DATA_FLOAT"},
      {"3-d x", train([&](BnTrainCall& t) {
         t.xd = t.yd = s.t(tensor_nd({4, 3, 25}));
       }),
       CUDNN_STATUS_BAD_PARAM, "xDesc has 4 or 5 dimensions"},
      {"y unlike x", train([&](BnTrainCall& t) { t.yd = s.t(tensor4(4, 3, 5, 4)); }),
       CUDNN_STATUS_BAD_PARAM, "yDesc has the dims of xDesc"},
      {"per-channel descriptor of 2 channels",
       train([&](BnTrainCall& t) { t.cd = s.t(tensor4(1, 2, 1, 1)); }), CUDNN_STATUS_BAD_PARAM,
       "bnScaleBiasMeanVarDesc is 1 x C x 1 x 1 (x 1) with the data's C"},
      {"half per-channel descriptor", train([&](BnTrainCall& t) {
         t.cd = s.t(tensor_nd({1, 3, 1, 1}, CUDNN_DATA_HALF));
       }),
       CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, "bnScaleBiasMeanVarDesc is CUDNN_DATA_FLOAT"},
      {"negative epsilon", train([](BnTrainCall& t) { t.eps = -1e-5; }), CUDNN_STATUS_BAD_PARAM,
       "epsilon >= CUDNN_BN_MIN_EPSILON"},
      {"running mean without variance", train([](BnTrainCall& t) { t.rv = nullptr; }),
       CUDNN_STATUS_BAD_PARAM,
       "resultRunningMean and resultRunningVariance are both NULL or both set"},
      {"saved mean without inverse variance", train([](BnTrainCall& t) { t.sm = nullptr; }),
       CUDNN_STATUS_BAD_PARAM,
       "resultSaveMean and resultSaveInvVariance are both NULL or both set"},
      {"epsilon 0", train([](BnTrainCall& t) { t.eps = 0; }), CUDNN_STATUS_NOT_SUPPORTED,
       "epsilon > 0"},
      {"one value per channel",
       train([&](BnTrainCall& t) { t.xd = t.yd = s.t(tensor4(1, 3, 1, 1)); }),
       CUDNN_STATUS_NOT_SUPPORTED, "training has at least 2 values per channel"},
      {"factor 1.5", train([](BnTrainCall& t) { t.factor = 1.5; }), CUDNN_STATUS_BAD_PARAM,
       "exponentialAverageFactor is in [0, 1]"},
      {"NULL x", train([](BnTrainCall& t) { t.x = nullptr; }), CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       "x is not NULL"},
      {"host bnScale", train([&](BnTrainCall& t) { t.scale = host_scale.data(); }),
       CUDNN_STATUS_BAD_PARAM, "bnScale points to device memory"},
      {"inference without a variance",
       [&] {
         return cudnnBatchNormalizationForwardInference(
             b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, b.xd, x.data(), b.xd, y.data(),
             ones_per_channel, ch.data(), ch.data(), rm.data(), nullptr, 1e-5);
       },
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "estimatedVariance is not NULL"},
      {"backward saved mean without inverse variance", bwd(dx.data(), nullptr, &kOne),
       CUDNN_STATUS_BAD_PARAM, "savedMean and savedInvVariance are both NULL or both set"},
      {"backward NULL alphaParamDiff", bwd(dx.data(), sm.data(), nullptr),
       CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "alpha and beta point to host scaling factors"},
      {"backward dx 2 bytes off", bwd(reinterpret_cast<char*>(dx.data()) + 2, sm.data(), &kOne),
       CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, "dx is aligned to 4 bytes"},
  });
}

// cuDNN ties a handle to the device current at cudnnCreate: its stream, the device current when
// it launches, and (without peer access) its operands belong to that device.
TEST(EmuStandinCudnnRules, TheHandlesDevice) {
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  ASSERT_GE(devices, 2) << "the emulated runtime has two devices unless TESSERA_EMU_DEVICE_COUNT";
  Handle h;  // device 0
  Scratch s;
  cudaStream_t other = nullptr;
  float* other_memory = nullptr;
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaStreamCreate(&other), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&other_memory, 64 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudnnTensorDescriptor_t bd = s.t(tensor4(1, 2, 1, 1)), cd = s.t(tensor4(2, 2, 2, 2));
  auto a = device_filled(2, 1.f), c = device_filled(16, 0.f);
  const auto add = [&](const float* ap) {
    return cudnnAddTensor(h.h, &kOne, bd, ap, &kOne, cd, c.data());
  };
  expect_all_broken({
      {"a stream of device 1", [&] { return cudnnSetStream(h.h, other); },
       CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH,
       "streamId exists and belongs to the handle's device"},
      {"an operand on device 1", [&] { return add(other_memory); }, CUDNN_STATUS_EXECUTION_FAILED,
       "A is memory of the handle's device"},
      {"launched with device 1 current",
       [&] {
         EXPECT_EQ(cudaSetDevice(1), cudaSuccess);
         const cudnnStatus_t st = add(a.data());
         EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
         return st;
       },
       CUDNN_STATUS_EXECUTION_FAILED, "the current device is the one the handle was created on"},
  });
  // The stream rule at launch: cudnnSetStream checked the stream when it was set, so the case is
  // a stream destroyed after that.
  cudaStream_t doomed = nullptr;
  ASSERT_EQ(cudaStreamCreate(&doomed), cudaSuccess);
  ASSERT_EQ(cudnnSetStream(h.h, doomed), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamDestroy(doomed), cudaSuccess);
  expect_broken(add(a.data()), CUDNN_STATUS_EXECUTION_FAILED,
                "the handle's stream exists and belongs to the handle's device");
  EXPECT_EQ(std::string(cudnnGetErrorString(cudnnSetStream(h.h, other)))
                .rfind("CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH: ", 0),
            0u);
  ASSERT_EQ(cudnnSetStream(h.h, h.stream), CUDNN_STATUS_SUCCESS);
  CUDNN_OK(add(a.data()));
  h.sync();
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(other), cudaSuccess);
  EXPECT_EQ(cudaFree(other_memory), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

}  // namespace
}  // namespace tessera::emu_test::cudnn

#endif  // TESSERA_CUDA_EMULATION
