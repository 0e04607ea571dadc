// The project's own kernels (cuda/kernels/*.cu) at the launcher level, on what the Backend
// interface cannot express: 64-bit element offsets beyond 2^31 with little real memory. The
// embedding kernels index table + id * dim in 64 bits; here ids are around 8e8 (id * dim > 2^31
// for dim >= 3), and the table pointer is a window base positioned so that those rows land in a
// 7-row allocation (tessera::emu::DeviceWindow). A kernel that computed the offset in 32 bits
// would read or write far outside the window (a wrong value, a guard/ASan report or a crash).
// The same-shape parity against the host backend is tests/parity_test.cpp (ctest
// parity_cuda_emu) and tests/emu_backend_test.cpp.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/kernels/kernels.h"

namespace tessera {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

constexpr int64_t kIdBase = 800'000'000;  // * dim >= 3 is past 2^31
constexpr int64_t kRealRows = 7;

// A table window: `real` holds rows [kIdBase, kIdBase + kRealRows); base() is where row 0
// would be.
struct TableWindow {
  TableWindow(int64_t dim, ElementKind kind, const char* label)
      : dim(dim),
        real(static_cast<size_t>(kRealRows * dim), kind, label),
        window(base(), real.data()) {}
  float* base() const {
    return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(real.data()) -
                                    static_cast<uintptr_t>(kIdBase * dim) * sizeof(float));
  }
  int64_t dim;
  DeviceArray<float> real;
  emu::DeviceWindow window;
};

DeviceArray<int64_t> window_ids(int64_t n, std::mt19937& gen) {
  DeviceArray<int64_t> ids(static_cast<size_t>(n), ElementKind::I64, "ids");
  for (int64_t i = 0; i < n; ++i)
    ids[static_cast<size_t>(i)] = kIdBase + static_cast<int64_t>(gen() % kRealRows);
  return ids;
}

class EmuKernels64 : public ::testing::TestWithParam<int64_t> {};

TEST_P(EmuKernels64, EmbeddingForwardAndBackwardBeyond2To31) {
  const int64_t dim = GetParam();
  const int64_t n = 50;
  std::mt19937 gen(static_cast<uint32_t>(dim));
  TableWindow table(dim, ElementKind::F32, "table window");
  for (size_t i = 0; i < table.real.size(); ++i) table.real[i] = static_cast<float>(i) + 0.5f;
  DeviceArray<int64_t> ids = window_ids(n, gen);

  DeviceArray<unsigned long long> flag(1, ElementKind::Bytes, "first bad");
  flag[0] = cuda::kNoBadPosition;
  cuda::launch_embedding_check_ids(ids.data(), n, kIdBase + kRealRows, flag.data(), nullptr);
  EXPECT_EQ(flag[0], cuda::kNoBadPosition);

  DeviceArray<float> out(static_cast<size_t>(n * dim), ElementKind::F32, "out");
  cuda::launch_embedding_forward(table.base(), kIdBase + kRealRows, ids.data(), out.data(), n, dim,
                                 nullptr);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c)
      ASSERT_EQ(out[static_cast<size_t>(i * dim + c)],
                table.real[static_cast<size_t>((ids[static_cast<size_t>(i)] - kIdBase) * dim + c)])
          << "dim " << dim << ", row " << i << ", column " << c;

  TableWindow grad(dim, ElementKind::F32, "grad window");
  for (size_t i = 0; i < grad.real.size(); ++i) grad.real[i] = 0.f;
  DeviceArray<float> dout(static_cast<size_t>(n * dim), ElementKind::F32, "dout");
  std::vector<double> expect(static_cast<size_t>(kRealRows * dim), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c) {
      const float g = static_cast<float>((i * 7 + c) % 13) - 6.f;
      dout[static_cast<size_t>(i * dim + c)] = g;
      expect[static_cast<size_t>((ids[static_cast<size_t>(i)] - kIdBase) * dim + c)] += g;
    }
  cuda::launch_embedding_backward(ids.data(), dout.data(), grad.base(), kIdBase + kRealRows, n, dim,
                                  nullptr);
  for (size_t k = 0; k < expect.size(); ++k)
    EXPECT_EQ(grad.real[k], static_cast<float>(expect[k])) << "dim " << dim << ", element " << k;
}

// dim 4 and 8 take the float4 gather, 3 and 13 the scalar one.
INSTANTIATE_TEST_SUITE_P(Dims, EmuKernels64, ::testing::Values(3, 4, 8, 13));

TEST(EmuKernels, CheckIdsFindsTheFirstBadPositionBeyond2To31) {
  const int64_t n = 300;  // two blocks: the bad ids are found whatever order blocks run in
  std::mt19937 gen(1);
  DeviceArray<int64_t> ids = window_ids(n, gen);
  ids[257] = kIdBase + kRealRows;  // one past the last row
  ids[140] = -1;
  ids[12] = int64_t{1} << 40;
  DeviceArray<unsigned long long> flag(1, ElementKind::Bytes, "first bad");
  flag[0] = cuda::kNoBadPosition;
  cuda::launch_embedding_check_ids(ids.data(), n, kIdBase + kRealRows, flag.data(), nullptr);
  EXPECT_EQ(flag[0], 12u);
}

}  // namespace
}  // namespace tessera

#endif  // TESSERA_CUDA_EMULATION
