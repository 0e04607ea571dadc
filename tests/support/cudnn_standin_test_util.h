#pragma once
// What the cuDNN stand-in's tests share (tests/emu_standin_cudnn_test.cpp: the calls against the
// host backend; tests/emu_standin_cudnn_rules_test.cpp: one negative case per rule): emulated
// device buffers, owners of the handle and descriptors, a convolution and a batch-norm problem
// with the host backend's answers, and the checks of a broken rule. Emulation build only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/include/cudnn.h"
#include "cuda/emu/runtime_api.h"
#include "cuda/emu/standin.h"
#include "host/backend/backend.h"

namespace tessera::emu_test::cudnn {

using emu::DeviceArray;
using emu::ElementKind;

// ---- helpers
// -------------------------------------------------------------------------------------

inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(gen);
  return v;
}

inline DeviceArray<float> device_from(const std::vector<float>& v) {
  DeviceArray<float> d(v.size(), ElementKind::F32, "cudnn test data");
  if (!v.empty()) std::memcpy(d.data(), v.data(), v.size() * sizeof(float));
  return d;
}
inline DeviceArray<float> device_filled(size_t n, float value) {
  DeviceArray<float> d(n, ElementKind::F32, "cudnn test output");
  for (size_t i = 0; i < n; ++i) d[i] = value;
  return d;
}
inline std::vector<float> values(const DeviceArray<float>& d) {
  return std::vector<float>(d.data(), d.data() + d.size());
}
inline std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

inline void expect_near_all(const std::vector<float>& got, const std::vector<float>& want,
                            const char* what, float tol = 1e-4f) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.f + std::fabs(want[i]))) << what << " at " << i;
}

#define CUDNN_OK(expr) ASSERT_EQ((expr), CUDNN_STATUS_SUCCESS) << cudnnGetErrorString(expr)

// A broken rule: the call's status and the rule named by last_rule_failure() and by
// cudnnGetErrorString.
inline void expect_broken(cudnnStatus_t got, cudnnStatus_t want, const std::string& rule) {
  EXPECT_EQ(got, want) << cudnnGetErrorString(got);
  EXPECT_NE(emu::last_rule_failure().find(rule), std::string::npos)
      << "last failure: " << emu::last_rule_failure() << "\nexpected rule: " << rule;
  EXPECT_NE(std::string(cudnnGetErrorString(got)).find(rule), std::string::npos)
      << cudnnGetErrorString(got);
}

// Owners of the stand-in's handle and descriptors.
struct Handle {
  cudnnHandle_t h = nullptr;
  cudaStream_t stream = nullptr;
  Handle() {
    EXPECT_EQ(cudaStreamCreate(&stream), cudaSuccess);
    EXPECT_EQ(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnSetStream(h, stream), CUDNN_STATUS_SUCCESS);
  }
  ~Handle() {
    cudnnDestroy(h);
    cudaStreamDestroy(stream);
  }
  void sync() const { ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess); }
};

inline cudnnTensorDescriptor_t tensor4(int n, int c, int h, int w,
                                       cudnnTensorFormat_t f = CUDNN_TENSOR_NCHW) {
  cudnnTensorDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateTensorDescriptor(&d), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetTensor4dDescriptor(d, f, CUDNN_DATA_FLOAT, n, c, h, w), CUDNN_STATUS_SUCCESS);
  return d;
}
inline cudnnFilterDescriptor_t filter4(int k, int c, int h, int w,
                                       cudnnTensorFormat_t f = CUDNN_TENSOR_NCHW) {
  cudnnFilterDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateFilterDescriptor(&d), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, f, k, c, h, w), CUDNN_STATUS_SUCCESS);
  return d;
}
inline cudnnConvolutionDescriptor_t conv2d(const Conv2dParams& p,
                                           cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION) {
  cudnnConvolutionDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateConvolutionDescriptor(&d), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(
      cudnnSetConvolution2dDescriptor(d, static_cast<int>(p.pad_h), static_cast<int>(p.pad_w),
                                      static_cast<int>(p.stride_h), static_cast<int>(p.stride_w),
                                      static_cast<int>(p.dilation_h),
                                      static_cast<int>(p.dilation_w), mode, CUDNN_DATA_FLOAT),
      CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetConvolutionGroupCount(d, static_cast<int>(p.groups)), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetConvolutionMathType(d, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
  return d;
}

inline std::unique_ptr<Backend>& host() {
  static std::unique_ptr<Backend> b = make_host_backend();
  return b;
}

// One convolution problem: x [2, 4, 7, 6], w [6, 2, 3, 3] in 2 groups, stride (2, 1), pad 1,
// dilation (1, 2) unless the test changes p before set_up().
struct ConvCase {
  Conv2dParams p;
  Shape xs{2, 4, 7, 6}, ws{6, 2, 3, 3}, ys;
  std::vector<float> x, w, dy;
  Handle handle;
  cudnnTensorDescriptor_t xd = nullptr, yd = nullptr;
  cudnnFilterDescriptor_t wd = nullptr;
  cudnnConvolutionDescriptor_t cd = nullptr;

  ConvCase() {
    p.stride_h = 2;
    p.pad_h = p.pad_w = 1;
    p.dilation_w = 2;
    p.groups = 2;
  }
  void set_up(cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION) {
    ys = conv2d_output_shape(p, xs, ws);
    x = random_floats(static_cast<size_t>(shape_numel(xs)), 1);
    w = random_floats(static_cast<size_t>(shape_numel(ws)), 2);
    dy = random_floats(static_cast<size_t>(shape_numel(ys)), 3);
    xd = tensor4(int(xs[0]), int(xs[1]), int(xs[2]), int(xs[3]));
    yd = tensor4(int(ys[0]), int(ys[1]), int(ys[2]), int(ys[3]));
    wd = filter4(int(ws[0]), int(ws[1]), int(ws[2]), int(ws[3]));
    cd = conv2d(p, mode);
  }
  ~ConvCase() {
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(yd);
    cudnnDestroyFilterDescriptor(wd);
    cudnnDestroyConvolutionDescriptor(cd);
  }
  // The host backend's results for x, w, dy.
  std::vector<float> host_forward() const {
    Tensor y = Tensor::host(ys);
    host()->conv2d_forward(p, Tensor::host_from(xs, x), Tensor::host_from(ws, w), Tensor(), y);
    return values(y);
  }
  void host_backward(std::vector<float>& dx, std::vector<float>& dw, std::vector<float>& db) const {
    Tensor tdx = Tensor::host(xs), tdw = Tensor::host(ws), tdb = Tensor::host({ws[0]});
    host()->conv2d_backward(p, Tensor::host_from(xs, x), Tensor::host_from(ws, w),
                            Tensor::host_from(ys, dy), tdx, tdw, tdb);
    dx = values(tdx);
    dw = values(tdw);
    db = values(tdb);
  }
};

// Workspace of at least `bytes` (one float when none is needed).
inline DeviceArray<float> workspace_of(size_t bytes) {
  return DeviceArray<float>(bytes / sizeof(float) + 1, ElementKind::F32, "cudnn workspace");
}

inline const float kOne = 1.f, kZero = 0.f;
inline const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct BnCase {
  Handle h;
  Shape xs{4, 3, 5, 5};
  BatchNormParams p;
  std::vector<float> x = random_floats(300, 6), dy = random_floats(300, 7);
  std::vector<float> gamma = {0.5f, 1.5f, -1.f}, beta = {0.1f, -0.2f, 0.3f};
  std::vector<float> rmean = {0.f, 0.1f, -0.1f}, rvar = {1.f, 0.5f, 2.f};
  cudnnTensorDescriptor_t xd = tensor4(4, 3, 5, 5), cd = tensor4(1, 3, 1, 1);
  BnCase() { p.momentum = 0.25f; }
  ~BnCase() {
    cudnnDestroyTensorDescriptor(xd);
    cudnnDestroyTensorDescriptor(cd);
  }
};

// ---- negative tests: one per rule
// ---------------------------------------------------------------------

// A call that breaks one rule: the status cuDNN returns and the rule's text.
struct Broken {
  std::string what;
  std::function<cudnnStatus_t()> call;
  cudnnStatus_t status;
  std::string rule;
};

inline void expect_all_broken(const std::vector<Broken>& cases) {
  for (const Broken& b : cases) {
    SCOPED_TRACE(b.what);
    expect_broken(b.call(), b.status, b.rule);
  }
}

inline cudnnTensorDescriptor_t tensor_nd(std::vector<int> dims,
                                         cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  std::vector<int> strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
  cudnnTensorDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateTensorDescriptor(&d), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetTensorNdDescriptor(d, type, static_cast<int>(dims.size()), dims.data(),
                                       strides.data()),
            CUDNN_STATUS_SUCCESS);
  return d;
}

// Descriptors a test breaks rules with; destroyed at the end of the test.
struct Scratch {
  std::vector<cudnnTensorDescriptor_t> tensors;
  std::vector<cudnnFilterDescriptor_t> filters;
  std::vector<cudnnConvolutionDescriptor_t> convs;
  cudnnTensorDescriptor_t t(cudnnTensorDescriptor_t d) { return tensors.emplace_back(d); }
  cudnnFilterDescriptor_t f(cudnnFilterDescriptor_t d) { return filters.emplace_back(d); }
  cudnnConvolutionDescriptor_t c(cudnnConvolutionDescriptor_t d) { return convs.emplace_back(d); }
  ~Scratch() {
    for (auto d : tensors) cudnnDestroyTensorDescriptor(d);
    for (auto d : filters) cudnnDestroyFilterDescriptor(d);
    for (auto d : convs) cudnnDestroyConvolutionDescriptor(d);
  }
};

}  // namespace tessera::emu_test::cudnn
