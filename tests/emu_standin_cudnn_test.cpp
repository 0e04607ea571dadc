// The cuDNN stand-in (cuda/emu/standins/cudnn_*.cpp) through cuDNN's API on emulated device
// memory: every convolution, pooling and batch-normalisation call against the host backend
// (with alpha/beta blending, NHWC and CUDNN_CONVOLUTION mode), cudnnFind* and the workspace
// queries. The negative cases, one per rule: emu_standin_cudnn_rules_test.cpp.
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

// ---- convolution vs the host backend
// ---------------------------------------------------------------

TEST(EmuStandinCudnn, EveryForwardAlgorithmFindReturnsMatchesTheHostAndBlendsAlphaBeta) {
  ConvCase c;
  c.set_up();
  cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  CUDNN_OK(cudnnFindConvolutionForwardAlgorithm(c.handle.h, c.xd, c.wd, c.cd, c.yd,
                                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perfs));
  ASSERT_EQ(n, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  const std::vector<float> want = c.host_forward();
  auto x = device_from(c.x), w = device_from(c.w);
  int ran = 0;
  for (int i = 0; i < n && perfs[i].status == CUDNN_STATUS_SUCCESS; ++i, ++ran) {
    SCOPED_TRACE("algo " + std::to_string(perfs[i].algo));
    size_t bytes = 0;
    CUDNN_OK(cudnnGetConvolutionForwardWorkspaceSize(c.handle.h, c.xd, c.wd, c.cd, c.yd,
                                                     perfs[i].algo, &bytes));
    EXPECT_EQ(bytes, perfs[i].memory);
    auto ws = workspace_of(bytes);
    auto y = device_filled(want.size(), kNaN);  // beta 0: y is not read
    CUDNN_OK(cudnnConvolutionForward(c.handle.h, &kOne, c.xd, x.data(), c.wd, w.data(), c.cd,
                                     perfs[i].algo, ws.data(), bytes, &kZero, c.yd, y.data()));
    c.handle.sync();
    expect_near_all(values(y), want, "y");
    const float half = 0.5f, two = 2.f;  // y = 0.5 conv + 2 y = 2.5 conv
    CUDNN_OK(cudnnConvolutionForward(c.handle.h, &half, c.xd, x.data(), c.wd, w.data(), c.cd,
                                     perfs[i].algo, ws.data(), bytes, &two, c.yd, y.data()));
    c.handle.sync();
    std::vector<float> blended(want);
    for (float& v : blended) v *= 2.5f;
    expect_near_all(values(y), blended, "alpha 0.5, beta 2");
  }
  // This geometry (stride 2, dilation 2, groups 2) rules out FFT, Winograd and DIRECT.
  EXPECT_EQ(ran, 3);
}

TEST(EmuStandinCudnn, BackwardDataFilterAndBiasMatchTheHost) {
  ConvCase c;
  c.set_up();
  std::vector<float> want_dx, want_dw, want_db;
  c.host_backward(want_dx, want_dw, want_db);
  auto x = device_from(c.x), w = device_from(c.w), dy = device_from(c.dy);
  for (int algo = 0; algo < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++algo) {
    size_t bytes = 0;
    const auto a = static_cast<cudnnConvolutionBwdDataAlgo_t>(algo);
    if (cudnnGetConvolutionBackwardDataWorkspaceSize(c.handle.h, c.wd, c.yd, c.cd, c.xd, a,
                                                     &bytes) != CUDNN_STATUS_SUCCESS)
      continue;  // not supported for this geometry
    SCOPED_TRACE("backward-data algo " + std::to_string(algo));
    auto ws = workspace_of(bytes);
    auto dx = device_filled(want_dx.size(), kNaN);
    CUDNN_OK(cudnnConvolutionBackwardData(c.handle.h, &kOne, c.wd, w.data(), c.yd, dy.data(), c.cd,
                                          a, ws.data(), bytes, &kZero, c.xd, dx.data()));
    c.handle.sync();
    expect_near_all(values(dx), want_dx, "dx");
  }
  // Backward filter accumulating (beta 1) onto ones, as a gradient accumulation would.
  auto dw = device_filled(want_dw.size(), 1.f);
  CUDNN_OK(cudnnConvolutionBackwardFilter(c.handle.h, &kOne, c.xd, x.data(), c.yd, dy.data(), c.cd,
                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &kOne,
                                          c.wd, dw.data()));
  cudnnTensorDescriptor_t bd = tensor4(1, static_cast<int>(c.ws[0]), 1, 1);
  auto db = device_filled(want_db.size(), kNaN);
  CUDNN_OK(cudnnConvolutionBackwardBias(c.handle.h, &kOne, c.yd, dy.data(), &kZero, bd, db.data()));
  c.handle.sync();
  for (float& v : want_dw) v += 1.f;
  expect_near_all(values(dw), want_dw, "dw + 1");
  expect_near_all(values(db), want_db, "db");
  cudnnDestroyTensorDescriptor(bd);
}

TEST(EmuStandinCudnn, ConvolutionModeReversesTheWindow) {
  ConvCase c;
  c.p.groups = 1;
  c.xs = {1, 3, 6, 5};
  c.ws = {2, 3, 3, 2};
  c.set_up(CUDNN_CONVOLUTION);
  // The host's cross-correlation with each 3 x 2 window reversed.
  std::vector<float> flipped(c.w);
  for (size_t base = 0; base < flipped.size(); base += 6)
    std::reverse(flipped.begin() + static_cast<long>(base),
                 flipped.begin() + static_cast<long>(base + 6));
  Tensor y = Tensor::host(c.ys);
  host()->conv2d_forward(c.p, Tensor::host_from(c.xs, c.x), Tensor::host_from(c.ws, flipped),
                         Tensor(), y);
  auto x = device_from(c.x), w = device_from(c.w);
  auto dy = device_filled(static_cast<size_t>(shape_numel(c.ys)), kNaN);
  CUDNN_OK(cudnnConvolutionForward(c.handle.h, &kOne, c.xd, x.data(), c.wd, w.data(), c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &kZero,
                                   c.yd, dy.data()));
  c.handle.sync();
  expect_near_all(values(dy), values(y), "convolution mode");
}

// [N, C, H, W] values in NHWC order.
std::vector<float> to_nhwc(const std::vector<float>& v, const Shape& s) {
  std::vector<float> out(v.size());
  const int64_t C = s[1], H = s[2], W = s[3];
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          out[static_cast<size_t>(((n * H + h) * W + w) * C + c)] =
              v[static_cast<size_t>(((n * C + c) * H + h) * W + w)];
  return out;
}

TEST(EmuStandinCudnn, NhwcTensorsAndFiltersAreReadThroughTheirStrides) {
  ConvCase c;
  c.p.groups = 1;
  c.ws = {5, 4, 3, 3};
  c.set_up();
  cudnnTensorDescriptor_t xn = tensor4(2, 4, 7, 6, CUDNN_TENSOR_NHWC);
  const Shape& ys = c.ys;
  cudnnTensorDescriptor_t yn =
      tensor4(int(ys[0]), int(ys[1]), int(ys[2]), int(ys[3]), CUDNN_TENSOR_NHWC);
  cudnnFilterDescriptor_t wn = filter4(5, 4, 3, 3, CUDNN_TENSOR_NHWC);
  auto x = device_from(to_nhwc(c.x, c.xs)), w = device_from(to_nhwc(c.w, c.ws));
  auto y = device_filled(static_cast<size_t>(shape_numel(ys)), kNaN);
  CUDNN_OK(cudnnConvolutionForward(c.handle.h, &kOne, xn, x.data(), wn, w.data(), c.cd,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &kZero, yn,
                                   y.data()));
  c.handle.sync();
  expect_near_all(values(y), to_nhwc(c.host_forward(), ys), "NHWC y");
  cudnnDestroyTensorDescriptor(xn);
  cudnnDestroyTensorDescriptor(yn);
  cudnnDestroyFilterDescriptor(wn);
}

TEST(EmuStandinCudnn, AddTensorBroadcastsTheBias) {
  Handle h;
  cudnnTensorDescriptor_t bd = tensor4(1, 3, 1, 1), yd = tensor4(2, 3, 2, 2);
  const std::vector<float> b = {1.f, 2.f, 3.f}, y0 = random_floats(24, 9);
  auto db = device_from(b), dy = device_from(y0);
  const float two = 2.f;
  CUDNN_OK(cudnnAddTensor(h.h, &two, bd, db.data(), &kOne, yd, dy.data()));
  h.sync();
  std::vector<float> want(y0);
  for (size_t i = 0; i < want.size(); ++i) want[i] += 2.f * b[(i / 4) % 3];
  expect_near_all(values(dy), want, "y + 2 b");
  cudnnDestroyTensorDescriptor(bd);
  cudnnDestroyTensorDescriptor(yd);
}

TEST(EmuStandinCudnn, FindReturnsEveryAlgorithmFastestFirstWithTheQueriedWorkspace) {
  ConvCase c;
  c.p = Conv2dParams{};  // 3x3, stride 1, pad 1: FFT and Winograd apply
  c.p.pad_h = c.p.pad_w = 1;
  c.xs = {2, 4, 8, 8};
  c.ws = {4, 4, 3, 3};
  c.set_up();
  cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int n = 0;
  CUDNN_OK(cudnnFindConvolutionBackwardFilterAlgorithm(
      c.handle.h, c.xd, c.yd, c.cd, c.wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perfs));
  ASSERT_EQ(n, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
  std::vector<bool> seen(static_cast<size_t>(n), false);
  bool unsupported_seen = false;
  for (int i = 0; i < n; ++i) {
    seen[static_cast<size_t>(perfs[i].algo)] = true;
    if (perfs[i].status != CUDNN_STATUS_SUCCESS) {
      unsupported_seen = true;
      EXPECT_EQ(perfs[i].status, CUDNN_STATUS_NOT_SUPPORTED);
      continue;
    }
    EXPECT_FALSE(unsupported_seen) << "a supported algorithm after an unsupported one";
    if (i > 0 && perfs[i - 1].status == CUDNN_STATUS_SUCCESS)
      EXPECT_LE(perfs[i - 1].time, perfs[i].time);
    size_t bytes = 0;
    CUDNN_OK(cudnnGetConvolutionBackwardFilterWorkspaceSize(c.handle.h, c.xd, c.yd, c.cd, c.wd,
                                                            perfs[i].algo, &bytes));
    EXPECT_EQ(bytes, perfs[i].memory);
    EXPECT_EQ(perfs[i].mathType, CUDNN_FMA_MATH);
  }
  EXPECT_TRUE(unsupported_seen);  // backward-filter WINOGRAD has no implementation
  for (bool s : seen) EXPECT_TRUE(s);
  // Fewer requested: the first ones of the same order.
  cudnnConvolutionBwdFilterAlgoPerf_t two[2];
  CUDNN_OK(
      cudnnFindConvolutionBackwardFilterAlgorithm(c.handle.h, c.xd, c.yd, c.cd, c.wd, 2, &n, two));
  ASSERT_EQ(n, 2);
  EXPECT_EQ(two[0].algo, perfs[0].algo);
  EXPECT_EQ(two[1].algo, perfs[1].algo);
  int on = 0, oc = 0, oh = 0, ow = 0;
  CUDNN_OK(cudnnGetConvolution2dForwardOutputDim(c.cd, c.xd, c.wd, &on, &oc, &oh, &ow));
  EXPECT_EQ(Shape({on, oc, oh, ow}), c.ys);
}

// ---- pooling and batch normalisation vs the host backend
// ---------------------------------------------

TEST(EmuStandinCudnn, PoolingForwardAndBackwardMatchTheHost) {
  for (const auto& [mode, kind] :
       {std::pair{CUDNN_POOLING_MAX_DETERMINISTIC, PoolKind::Max},
        std::pair{CUDNN_POOLING_MAX, PoolKind::Max},
        std::pair{CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, PoolKind::Average}}) {
    SCOPED_TRACE("mode " + std::to_string(mode));
    Handle h;
    Pool2dParams p;
    p.kind = kind;
    p.window_h = p.window_w = 3;
    p.stride_h = p.stride_w = 2;
    p.pad_h = p.pad_w = 1;
    const Shape xs = {2, 3, 7, 6}, ys = pool2d_output_shape(p, xs);
    const auto xv = random_floats(static_cast<size_t>(shape_numel(xs)), 4);
    const auto dyv = random_floats(static_cast<size_t>(shape_numel(ys)), 5);
    Tensor hy = Tensor::host(ys), hdx = Tensor::host(xs);
    host()->pool2d_forward(p, Tensor::host_from(xs, xv), hy);
    host()->pool2d_backward(p, Tensor::host_from(xs, xv), hy, Tensor::host_from(ys, dyv), hdx);

    cudnnPoolingDescriptor_t pd = nullptr;
    CUDNN_OK(cudnnCreatePoolingDescriptor(&pd));
    CUDNN_OK(cudnnSetPooling2dDescriptor(pd, mode, CUDNN_NOT_PROPAGATE_NAN, 3, 3, 1, 1, 2, 2));
    cudnnTensorDescriptor_t xd = tensor4(2, 3, 7, 6), yd = tensor4(2, 3, int(ys[2]), int(ys[3]));
    auto x = device_from(xv), dy = device_from(dyv);
    auto y = device_filled(values(hy).size(), kNaN), dx = device_filled(xv.size(), kNaN);
    CUDNN_OK(cudnnPoolingForward(h.h, pd, &kOne, xd, x.data(), &kZero, yd, y.data()));
    CUDNN_OK(cudnnPoolingBackward(h.h, pd, &kOne, yd, y.data(), yd, dy.data(), xd, x.data(), &kZero,
                                  xd, dx.data()));
    h.sync();
    expect_near_all(values(y), values(hy), "pool y");
    expect_near_all(values(dx), values(hdx), "pool dx");
    cudnnDestroyPoolingDescriptor(pd);
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(yd);
  }
}

TEST(EmuStandinCudnn, BatchNormTrainingInferenceAndBackwardMatchTheHost) {
  BnCase b;
  const Shape cs = {3};
  Tensor y = Tensor::host(b.xs), rm = Tensor::host_from(cs, b.rmean),
         rv = Tensor::host_from(cs, b.rvar), sm = Tensor::host(cs), si = Tensor::host(cs);
  const Tensor X = Tensor::host_from(b.xs, b.x), G = Tensor::host_from(cs, b.gamma),
               B = Tensor::host_from(cs, b.beta);
  host()->batchnorm_forward(b.p, X, G, B, rm, rv, y, sm, si);
  Tensor dx = Tensor::host(b.xs), dg = Tensor::host(cs), dbeta = Tensor::host(cs);
  host()->batchnorm_backward(b.p, X, Tensor::host_from(b.xs, b.dy), G, sm, si, dx, dg, dbeta);

  auto x = device_from(b.x), g = device_from(b.gamma), be = device_from(b.beta);
  auto drm = device_from(b.rmean), drv = device_from(b.rvar);
  auto dsm = device_filled(3, kNaN), dsi = device_filled(3, kNaN), dy_ = device_from(b.dy);
  auto dyv = device_filled(300, kNaN);
  CUDNN_OK(cudnnBatchNormalizationForwardTraining(
      b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, b.xd, x.data(), b.xd, dyv.data(), b.cd,
      g.data(), be.data(), b.p.momentum, drm.data(), drv.data(), b.p.eps, dsm.data(), dsi.data()));
  auto ddx = device_filled(300, kNaN), ddg = device_filled(3, kNaN), ddb = device_filled(3, kNaN);
  CUDNN_OK(cudnnBatchNormalizationBackward(b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne,
                                           &kZero, b.xd, x.data(), b.xd, dy_.data(), b.xd,
                                           ddx.data(), b.cd, g.data(), ddg.data(), ddb.data(),
                                           b.p.eps, dsm.data(), dsi.data()));
  // Without saved statistics the backward recomputes them: the same gradients.
  auto ddx2 = device_filled(300, kNaN), ddg2 = device_filled(3, kNaN),
       ddb2 = device_filled(3, kNaN);
  CUDNN_OK(cudnnBatchNormalizationBackward(b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne,
                                           &kZero, b.xd, x.data(), b.xd, dy_.data(), b.xd,
                                           ddx2.data(), b.cd, g.data(), ddg2.data(), ddb2.data(),
                                           b.p.eps, nullptr, nullptr));
  b.h.sync();
  expect_near_all(values(dyv), values(y), "bn y");
  expect_near_all(values(drm), values(rm), "running mean");
  expect_near_all(values(drv), values(rv), "running var");
  expect_near_all(values(dsm), values(sm), "saved mean");
  expect_near_all(values(dsi), values(si), "saved invstd");
  expect_near_all(values(ddx), values(dx), "bn dx");
  expect_near_all(values(ddg), values(dg), "dgamma");
  expect_near_all(values(ddb), values(dbeta), "dbeta");
  expect_near_all(values(ddx2), values(dx), "bn dx, statistics recomputed");
  expect_near_all(values(ddg2), values(dg), "dgamma, statistics recomputed");

  BatchNormParams inf = b.p;
  inf.mode = BatchNormMode::Inference;
  Tensor yi = Tensor::host(b.xs), rm0 = Tensor::host_from(cs, b.rmean),
         rv0 = Tensor::host_from(cs, b.rvar), unused1 = Tensor::host(cs),
         unused2 = Tensor::host(cs);
  host()->batchnorm_forward(inf, X, G, B, rm0, rv0, yi, unused1, unused2);
  auto irm = device_from(b.rmean), irv = device_from(b.rvar), iy = device_filled(300, kNaN);
  CUDNN_OK(cudnnBatchNormalizationForwardInference(b.h.h, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero,
                                                   b.xd, x.data(), b.xd, iy.data(), b.cd, g.data(),
                                                   be.data(), irm.data(), irv.data(), b.p.eps));
  b.h.sync();
  expect_near_all(values(iy), values(yi), "bn inference y");
}

TEST(EmuStandinCudnn, TheReportListsEntryPointsAndTheirRules) {
  ConvCase c;
  c.set_up();
  const std::string report = emu::format_standin_report();
  EXPECT_NE(report.find("cuDNN cudnnSetConvolution2dDescriptor"), std::string::npos) << report;
  EXPECT_NE(report.find("\"the strides u and v are > 0\""), std::string::npos) << report;
}

}  // namespace
}  // namespace tessera::emu_test::cudnn

#endif  // TESSERA_CUDA_EMULATION
