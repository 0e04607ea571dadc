// The cuDNN stand-in's argument rules on every call that launches work, swept one argument at a
// time from a valid call: the handle (destroyed, another current device, its stream destroyed),
// alpha, each data pointer (NULL, host memory, 2 bytes off, another device's memory, released
// while the work is queued) and each descriptor (never set, destroyed). Each is refused with
// cuDNN's status, or reported at the stream's synchronisation, with the rule named.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "tests/support/cudnn_standin_test_util.h"

namespace tessera::emu_test::cudnn {
namespace {

// ---- every argument of every call that launches work -------------------------------------------

enum class DescKind { Tensor, Filter, Convolution, Pooling };
struct DescArg {
  const char* name;
  DescKind kind;
};
struct PtrArg {
  const char* name;
  bool nullable_pair = false;  // NULL allowed together with its partner (a pair rule covers it)
};
// The arguments a sweep varies: the handle, alpha/beta, data pointers, descriptors.
struct Args {
  cudnnHandle_t h;
  const void* alpha;
  const void* beta;
  std::vector<void*> p;
  std::vector<void*> d;
};
// One entry point with valid arguments (`ptrs`, `descs`); the sweep replaces one at a time.
struct CallSpec {
  std::string entry;
  cudnnHandle_t handle;
  std::vector<PtrArg> ptr_args;
  std::vector<DescArg> desc_args;
  std::vector<void*> ptrs;
  std::vector<void*> descs;
  std::function<cudnnStatus_t(const Args&)> call;
};

const char* kind_text(DescKind k) {
  switch (k) {
    case DescKind::Tensor:
      return "a tensor descriptor";
    case DescKind::Filter:
      return "a filter descriptor";
    case DescKind::Convolution:
      return "a convolution descriptor";
    case DescKind::Pooling:
      return "a pooling descriptor";
  }
  return "";
}

// A created descriptor of `k`, never set (destroyed by the caller, or at once when `destroy`).
void* fresh_descriptor(DescKind k, bool destroy) {
  void* d = nullptr;
  switch (k) {
    case DescKind::Tensor: {
      cudnnTensorDescriptor_t t = nullptr;
      EXPECT_EQ(cudnnCreateTensorDescriptor(&t), CUDNN_STATUS_SUCCESS);
      if (destroy) cudnnDestroyTensorDescriptor(t);
      d = t;
      break;
    }
    case DescKind::Filter: {
      cudnnFilterDescriptor_t f = nullptr;
      EXPECT_EQ(cudnnCreateFilterDescriptor(&f), CUDNN_STATUS_SUCCESS);
      if (destroy) cudnnDestroyFilterDescriptor(f);
      d = f;
      break;
    }
    case DescKind::Convolution: {
      cudnnConvolutionDescriptor_t c = nullptr;
      EXPECT_EQ(cudnnCreateConvolutionDescriptor(&c), CUDNN_STATUS_SUCCESS);
      if (destroy) cudnnDestroyConvolutionDescriptor(c);
      d = c;
      break;
    }
    case DescKind::Pooling: {
      cudnnPoolingDescriptor_t p = nullptr;
      EXPECT_EQ(cudnnCreatePoolingDescriptor(&p), CUDNN_STATUS_SUCCESS);
      if (destroy) cudnnDestroyPoolingDescriptor(p);
      d = p;
      break;
    }
  }
  return d;
}

void destroy_descriptor(DescKind k, void* d) {
  switch (k) {
    case DescKind::Tensor:
      cudnnDestroyTensorDescriptor(static_cast<cudnnTensorDescriptor_t>(d));
      break;
    case DescKind::Filter:
      cudnnDestroyFilterDescriptor(static_cast<cudnnFilterDescriptor_t>(d));
      break;
    case DescKind::Convolution:
      cudnnDestroyConvolutionDescriptor(static_cast<cudnnConvolutionDescriptor_t>(d));
      break;
    case DescKind::Pooling:
      cudnnDestroyPoolingDescriptor(static_cast<cudnnPoolingDescriptor_t>(d));
      break;
  }
}

// The handle's rules: destroyed, another current device, a stream destroyed since it was set;
// alpha NULL.
void sweep_handle(const CallSpec& s, const Args& ok) {
  cudnnHandle_t dead = nullptr;
  ASSERT_EQ(cudnnCreate(&dead), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnDestroy(dead), CUDNN_STATUS_SUCCESS);
  Args a = ok;
  a.h = dead;
  expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM,
                "handle was created by cudnnCreate and not destroyed");
  a = ok;
  a.alpha = nullptr;
  expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
                "alpha and beta point to host scaling factors");
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  const cudnnStatus_t other_device = s.call(ok);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  expect_broken(other_device, CUDNN_STATUS_EXECUTION_FAILED,
                "the current device is the one the handle was created on");
  cudaStream_t kept = nullptr, doomed = nullptr;
  ASSERT_EQ(cudnnGetStream(s.handle, &kept), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamCreate(&doomed), cudaSuccess);
  ASSERT_EQ(cudnnSetStream(s.handle, doomed), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamDestroy(doomed), cudaSuccess);
  expect_broken(s.call(ok), CUDNN_STATUS_EXECUTION_FAILED,
                "the handle's stream exists and belongs to the handle's device");
  ASSERT_EQ(cudnnSetStream(s.handle, kept), CUDNN_STATUS_SUCCESS);
}

// Each data pointer NULL, in host memory, 2 bytes off, on another device.
void sweep_pointers(const CallSpec& s, const Args& ok) {
  std::vector<float> host_memory(4096, 0.f);
  float* other_device = nullptr;
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&other_device, 4096 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  for (size_t i = 0; i < s.ptr_args.size(); ++i) {
    const std::string n = s.ptr_args[i].name;
    SCOPED_TRACE(n);
    Args a = ok;
    if (!s.ptr_args[i].nullable_pair) {
      a.p[i] = nullptr;
      expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM_NULL_POINTER, n + " is not NULL");
    }
    a.p[i] = host_memory.data();
    expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM, n + " points to device memory");
    a.p[i] = static_cast<char*>(ok.p[i]) + 2;
    expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER,
                  n + " is aligned to 4 bytes");
    a.p[i] = other_device;
    expect_broken(s.call(a), CUDNN_STATUS_EXECUTION_FAILED,
                  n + " is memory of the handle's device");
    // Released while the work is still queued: reported when the stream runs it.
    auto released = std::make_unique<DeviceArray<float> >(4096, ElementKind::F32, "released");
    std::memcpy(released->data(), ok.p[i], 4096 * sizeof(float));
    a.p[i] = released->data();
    ASSERT_EQ(s.call(a), CUDNN_STATUS_SUCCESS);
    released.reset();
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudnnGetStream(s.handle, &stream), CUDNN_STATUS_SUCCESS);
    EXPECT_NE(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_NE(emu::last_deferred_failure().find(
                  "the operands stay allocated until the queued work has run (" + n +
                  " was released before the work ran)"),
              std::string::npos)
        << emu::last_deferred_failure();
  }
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  EXPECT_EQ(cudaFree(other_device), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

// Each descriptor never set, then destroyed.
void sweep_descriptors(const CallSpec& s, const Args& ok) {
  for (size_t i = 0; i < s.desc_args.size(); ++i) {
    const std::string n = s.desc_args[i].name, kind = kind_text(s.desc_args[i].kind);
    SCOPED_TRACE(n);
    Args a = ok;
    a.d[i] = fresh_descriptor(s.desc_args[i].kind, false);
    expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM,
                  n + " is " + kind + " whose dimensions were set");
    destroy_descriptor(s.desc_args[i].kind, a.d[i]);
    a.d[i] = fresh_descriptor(s.desc_args[i].kind, true);
    expect_broken(s.call(a), CUDNN_STATUS_BAD_PARAM,
                  n + " is " + kind + " created and not destroyed");
  }
}

// Every argument rule of one call that launches work, one argument at a time.
void sweep(const CallSpec& s) {
  SCOPED_TRACE(s.entry);
  const Args ok{s.handle, &kOne, &kZero, s.ptrs, s.descs};
  const cudnnStatus_t valid = s.call(ok);
  ASSERT_EQ(valid, CUDNN_STATUS_SUCCESS) << cudnnGetErrorString(valid);
  sweep_handle(s, ok);
  sweep_pointers(s, ok);
  sweep_descriptors(s, ok);
}

// Device buffers large enough for every argument (and for the 2-byte-off variants).
struct Buffers {
  std::vector<DeviceArray<float> > arrays;
  void* operator()() {
    arrays.push_back(device_filled(4096, 0.5f));
    return arrays.back().data();
  }
};

using TD = cudnnTensorDescriptor_t;
template <typename T>
T as(void* p) {
  return static_cast<T>(p);
}

TEST(EmuStandinCudnnRules, EveryArgumentOfTheConvolutionCalls) {
  ConvCase c;
  c.set_up();
  Buffers b;
  const auto fwd = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnConvolutionForward(
        a.h, a.alpha, as<TD>(d[0]), p[0], as<cudnnFilterDescriptor_t>(d[1]), p[1],
        as<cudnnConvolutionDescriptor_t>(d[2]), CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr,
        0, a.beta, as<TD>(d[3]), p[2]);
  };
  const auto data = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnConvolutionBackwardData(a.h, a.alpha, as<cudnnFilterDescriptor_t>(d[0]), p[0],
                                        as<TD>(d[1]), p[1], as<cudnnConvolutionDescriptor_t>(d[2]),
                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, a.beta,
                                        as<TD>(d[3]), p[2]);
  };
  const auto filter = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnConvolutionBackwardFilter(a.h, a.alpha, as<TD>(d[0]), p[0], as<TD>(d[1]), p[1],
                                          as<cudnnConvolutionDescriptor_t>(d[2]),
                                          CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, a.beta,
                                          as<cudnnFilterDescriptor_t>(d[3]), p[2]);
  };
  cudnnTensorDescriptor_t bd = tensor4(1, 6, 1, 1);
  const auto bias = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnConvolutionBackwardBias(a.h, a.alpha, as<TD>(d[0]), p[0], a.beta, as<TD>(d[1]),
                                        p[1]);
  };
  const auto add = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnAddTensor(a.h, a.alpha, as<TD>(d[0]), p[0], a.beta, as<TD>(d[1]), p[1]);
  };
  const DescArg conv{"convDesc", DescKind::Convolution};
  sweep({"cudnnConvolutionForward",
         c.handle.h,
         {{"x"}, {"w"}, {"y"}},
         {{"xDesc", DescKind::Tensor},
          {"wDesc", DescKind::Filter},
          conv,
          {"yDesc", DescKind::Tensor}},
         {b(), b(), b()},
         {c.xd, c.wd, c.cd, c.yd},
         fwd});
  sweep({"cudnnConvolutionBackwardData",
         c.handle.h,
         {{"w"}, {"dy"}, {"dx"}},
         {{"wDesc", DescKind::Filter},
          {"dyDesc", DescKind::Tensor},
          conv,
          {"dxDesc", DescKind::Tensor}},
         {b(), b(), b()},
         {c.wd, c.yd, c.cd, c.xd},
         data});
  sweep({"cudnnConvolutionBackwardFilter",
         c.handle.h,
         {{"x"}, {"dy"}, {"dw"}},
         {{"xDesc", DescKind::Tensor},
          {"dyDesc", DescKind::Tensor},
          conv,
          {"dwDesc", DescKind::Filter}},
         {b(), b(), b()},
         {c.xd, c.yd, c.cd, c.wd},
         filter});
  sweep({"cudnnConvolutionBackwardBias",
         c.handle.h,
         {{"dy"}, {"db"}},
         {{"dyDesc", DescKind::Tensor}, {"dbDesc", DescKind::Tensor}},
         {b(), b()},
         {c.yd, bd},
         bias});
  sweep({"cudnnAddTensor",
         c.handle.h,
         {{"A"}, {"C"}},
         {{"aDesc", DescKind::Tensor}, {"cDesc", DescKind::Tensor}},
         {b(), b()},
         {bd, c.yd},
         add});
  c.handle.sync();
  cudnnDestroyTensorDescriptor(bd);
}

TEST(EmuStandinCudnnRules, EveryArgumentOfThePoolingAndBatchNormCalls) {
  BnCase bn;
  Buffers b;
  cudnnPoolingDescriptor_t pd = nullptr;
  ASSERT_EQ(cudnnCreatePoolingDescriptor(&pd), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(
      cudnnSetPooling2dDescriptor(pd, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN, 2, 2, 0, 0, 1, 1),
      CUDNN_STATUS_SUCCESS);
  cudnnTensorDescriptor_t yd = tensor4(4, 3, 4, 4);  // bn.xd [4, 3, 5, 5] pooled 2x2, stride 1
  const cudnnHandle_t h = bn.h.h;
  const auto pool_fwd = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnPoolingForward(a.h, as<cudnnPoolingDescriptor_t>(d[0]), a.alpha, as<TD>(d[1]), p[0],
                               a.beta, as<TD>(d[2]), p[1]);
  };
  const auto pool_bwd = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnPoolingBackward(a.h, as<cudnnPoolingDescriptor_t>(d[0]), a.alpha, as<TD>(d[1]),
                                p[0], as<TD>(d[2]), p[1], as<TD>(d[3]), p[2], a.beta, as<TD>(d[4]),
                                p[3]);
  };
  const auto train = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnBatchNormalizationForwardTraining(
        a.h, CUDNN_BATCHNORM_SPATIAL, a.alpha, a.beta, as<TD>(d[0]), p[0], as<TD>(d[1]), p[1],
        as<TD>(d[2]), p[2], p[3], 0.1, p[4], p[5], 1e-5, p[6], p[7]);
  };
  const auto infer = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnBatchNormalizationForwardInference(a.h, CUDNN_BATCHNORM_SPATIAL, a.alpha, a.beta,
                                                   as<TD>(d[0]), p[0], as<TD>(d[1]), p[1],
                                                   as<TD>(d[2]), p[2], p[3], p[4], p[5], 1e-5);
  };
  const auto back = [&](const Args& a) {
    const auto& p = a.p;
    const auto& d = a.d;
    return cudnnBatchNormalizationBackward(
        a.h, CUDNN_BATCHNORM_SPATIAL, a.alpha, a.beta, a.alpha, a.beta, as<TD>(d[0]), p[0],
        as<TD>(d[1]), p[1], as<TD>(d[2]), p[2], as<TD>(d[3]), p[3], p[4], p[5], 1e-5, p[6], p[7]);
  };
  const DescArg x{"xDesc", DescKind::Tensor}, y{"yDesc", DescKind::Tensor};
  const DescArg dy{"dyDesc", DescKind::Tensor}, dx{"dxDesc", DescKind::Tensor};
  sweep({"cudnnPoolingForward",
         h,
         {{"x"}, {"y"}},
         {{"poolingDesc", DescKind::Pooling}, x, y},
         {b(), b()},
         {pd, bn.xd, yd},
         pool_fwd});
  sweep({"cudnnPoolingBackward",
         h,
         {{"y"}, {"dy"}, {"x"}, {"dx"}},
         {{"poolingDesc", DescKind::Pooling}, y, dy, x, dx},
         {b(), b(), b(), b()},
         {pd, yd, yd, bn.xd, bn.xd},
         pool_bwd});
  const DescArg per_channel{"bnScaleBiasMeanVarDesc", DescKind::Tensor};
  sweep({"cudnnBatchNormalizationForwardTraining",
         h,
         {{"x"},
          {"y"},
          {"bnScale"},
          {"bnBias"},
          {"resultRunningMean", true},
          {"resultRunningVariance", true},
          {"resultSaveMean", true},
          {"resultSaveInvVariance", true}},
         {x, y, per_channel},
         {b(), b(), b(), b(), b(), b(), b(), b()},
         {bn.xd, bn.xd, bn.cd},
         train});
  sweep({"cudnnBatchNormalizationForwardInference",
         h,
         {{"x"}, {"y"}, {"bnScale"}, {"bnBias"}, {"estimatedMean"}, {"estimatedVariance"}},
         {x, y, per_channel},
         {b(), b(), b(), b(), b(), b()},
         {bn.xd, bn.xd, bn.cd},
         infer});
  sweep({"cudnnBatchNormalizationBackward",
         h,
         {{"x"},
          {"dy"},
          {"dx"},
          {"bnScale"},
          {"dBnScaleResult"},
          {"dBnBiasResult"},
          {"savedMean", true},
          {"savedInvVariance", true}},
         {x, dy, dx, {"dBnScaleBiasDesc", DescKind::Tensor}},
         {b(), b(), b(), b(), b(), b(), b(), b()},
         {bn.xd, bn.xd, bn.xd, bn.cd},
         back});
  bn.h.sync();
  cudnnDestroyPoolingDescriptor(pd);
  cudnnDestroyTensorDescriptor(yd);
}

}  // namespace
}  // namespace tessera::emu_test::cudnn

#endif  // TESSERA_CUDA_EMULATION
