// Each element-wise op of the CUDA backend runs on its backend's device whatever device the
// calling thread has made current: a data-parallel rank (or a model over shards) holds a backend
// on cuda-emu:1 while the thread's current device is another, and the emulator, like the CUDA
// runtime, refuses a launch on memory of a device that is not current.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cuda_runtime.h>

#include <vector>

#include "host/backend/backend.h"

namespace tessera {
namespace {

std::vector<float> values(const Tensor& host) {
  return std::vector<float>(host.data<float>(), host.data<float>() + host.numel());
}

TEST(EmuDeviceGuard, ElementwiseOpsRunOnTheirBackendsDevice) {
  auto be = make_backend("cuda-emu:1");
  Tensor x = be->to_device(Tensor::host_from<float>({4}, {1, 2, 3, 4}));
  Tensor y = be->to_device(Tensor::host_from<float>({4}, {10, 20, 30, 40}));
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  be->axpby(2.f, x, 0.5f, y);  // y = 2 x + 0.5 y
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  be->mul_add(x, x, 1.f, y);  // y = x * x + y
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  EXPECT_EQ(values(be->to_host(y)), (std::vector<float>{8, 18, 30, 44}));
}

}  // namespace
}  // namespace tessera

#endif
