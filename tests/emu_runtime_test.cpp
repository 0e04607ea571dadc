// The CUDA emulator's semantics, one feature per test, with results predicted on the host:
// block/thread indices in 3-D, static and dynamic shared memory with barriers, warp shuffles
// (lanes exchange values; widths; exited lanes), ballot/any/all/match/reduce, atomics on every
// type the kernels use, vector loads, 64-bit offsets into a small window, the launch checks and
// the emulated runtime API. Kernels: tests/emu_kernels/features.cu.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "host/core/error.h"
#include "tests/emu_kernels/emu_test_kernels.h"

namespace tessera::emu_test {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

template <typename T>
constexpr ElementKind kind_of() {
  if constexpr (std::is_same_v<T, float>)
    return ElementKind::F32;
  else if constexpr (std::is_same_v<T, int32_t>)
    return ElementKind::I32;
  else if constexpr (std::is_same_v<T, int64_t>)
    return ElementKind::I64;
  else
    return ElementKind::Bytes;
}

template <typename T>
DeviceArray<T> device_from(const std::vector<T>& v) {
  DeviceArray<T> d(v.size(), kind_of<T>(), "test input");
  if (!v.empty()) std::memcpy(d.data(), v.data(), v.size() * sizeof(T));
  return d;
}
template <typename T>
DeviceArray<T> device_filled(size_t n, T value) {
  DeviceArray<T> d(n, kind_of<T>(), "test output");
  for (size_t i = 0; i < n; ++i) d[i] = value;
  return d;
}
template <typename T>
std::vector<T> host_copy(const DeviceArray<T>& d) {
  return std::vector<T>(d.data(), d.data() + d.size());
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(gen);
  return v;
}

// ---- shared memory, barriers, shuffles
// -----------------------------------------------------------

TEST(EmuRuntime, BlockSumsUseStaticSharedMemoryAndShuffles) {
  for (unsigned block : {32u, 64u, 256u, 1024u}) {
    for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{33}, int64_t{1000}, int64_t{4097}}) {
      const std::vector<float> x =
          random_floats(static_cast<size_t>(n), static_cast<uint32_t>(n + block));
      const size_t blocks = static_cast<size_t>((n + block - 1) / block);
      auto dx = device_from(x);
      auto sums = device_filled<float>(blocks, -7.f);
      launch_block_sums(dx.data(), n, sums.data(), block, nullptr);
      for (size_t b = 0; b < blocks; ++b) {
        double expect = 0;
        for (size_t i = b * block; i < std::min<size_t>(x.size(), (b + 1) * block); ++i)
          expect += x[i];
        EXPECT_NEAR(sums[b], expect, 1e-4)
            << "block size " << block << ", n " << n << ", block " << b;
      }
    }
  }
}

TEST(EmuRuntime, DynamicSharedMemoryReversesEachBlock) {
  for (unsigned block : {32u, 96u, 128u}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{128}, int64_t{300}}) {
      const std::vector<float> x = random_floats(static_cast<size_t>(n), 7);
      auto dx = device_from(x);
      auto out = device_filled<float>(static_cast<size_t>(n), 0.f);
      launch_reverse_blocks(dx.data(), out.data(), n, block, nullptr);
      for (int64_t start = 0; start < n; start += block) {
        const int64_t count = std::min<int64_t>(block, n - start);
        for (int64_t t = 0; t < count; ++t)
          ASSERT_EQ(out[static_cast<size_t>(start + t)],
                    x[static_cast<size_t>(start + count - 1 - t)])
              << "block size " << block << ", n " << n << ", element " << start + t;
      }
    }
  }
}

TEST(EmuRuntime, ThreeDimensionalGridAndBlockIndices) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const size_t per_block = 4 * 3 * 2, blocks = 3 * 2 * 2;
  auto ids = device_filled<uint64_t>(per_block * blocks, ~uint64_t{0});
  auto dims = device_filled<unsigned>(6, 0u);
  launch_write_indices(ids.data(), dims.data(), grid, block, nullptr);
  EXPECT_EQ(host_copy(dims), (std::vector<unsigned>{4, 3, 2, 3, 2, 2}));
  for (size_t b = 0; b < blocks; ++b)
    for (size_t t = 0; t < per_block; ++t)
      ASSERT_EQ(ids[b * per_block + t], (uint64_t{b} << 32) | t)
          << "block " << b << " thread " << t;
}

TEST(EmuRuntime, WarpPrimitivesExchangeValuesBetweenLanes) {
  const int warps = 2;
  std::mt19937 gen(11);
  std::vector<int> in(static_cast<size_t>(warps) * 32);
  for (int& v : in) v = static_cast<int>(gen() % 100);
  auto din = device_from(in);
  auto out = device_filled<int>(in.size() * kWarpResults, -1);
  launch_warp_primitives(din.data(), out.data(), warps, nullptr);
  for (int w = 0; w < warps; ++w) {
    const int* v = in.data() + w * 32;
    unsigned ballot = 0, match_expect[32] = {};
    bool any = false, all = true;
    int total = 0;
    for (int l = 0; l < 32; ++l) {
      if (v[l] % 3 == 0) ballot |= 1u << l;
      any = any || v[l] > 90;
      all = all && v[l] >= 0;
      total += v[l];
      for (int k = 0; k < 32; ++k)
        if (v[k] % 4 == v[l] % 4) match_expect[l] |= 1u << k;
    }
    for (int l = 0; l < 32; ++l) {
      std::vector<int> expect = {
          v[0],
          v[31 - l],
          l >= 3 ? v[l - 3] : v[l],
          l + 5 < 32 ? v[l + 5] : v[l],
          v[l ^ 1],
          v[l ^ 16],
          v[(l / 8) * 8 + 2],
          (l % 8) + 2 < 8 ? v[l + 2] : v[l],
          (l % 16) >= 1 ? v[l - 1] : v[l],
          static_cast<int>(ballot),
          any ? 1 : 0,
          all ? 1 : 0,
          static_cast<int>(match_expect[l]),
          total,
          total,
          v[l ^ 3],
      };
      for (int k = 0; k < kWarpResults; ++k)
        EXPECT_EQ(out[static_cast<size_t>((w * kWarpResults + k) * 32 + l)],
                  expect[static_cast<size_t>(k)])
            << "warp " << w << ", collective #" << k << ", lane " << l;
    }
  }
}

TEST(EmuRuntime, ExitedLanesAreExcusedAndReadAsUndefined) {
  // Lanes 20..31 return at once; the full-mask shuffle still completes (exited lanes are
  // excused, as on the device), and lane 19 reading exited lane 20 gets the NaN poison.
  const int active = 20;
  std::vector<float> in(32);
  std::iota(in.begin(), in.end(), 1.f);
  auto din = device_from(in);
  auto out = device_filled<float>(32, -1.f);
  launch_partial_warp_shuffle(din.data(), out.data(), active, nullptr);
  for (int l = 0; l < active - 1; ++l)
    EXPECT_EQ(out[static_cast<size_t>(l)], in[static_cast<size_t>(l + 1)]) << "lane " << l;
  EXPECT_TRUE(std::isnan(out[static_cast<size_t>(active - 1)]))
      << out[static_cast<size_t>(active - 1)];
  for (int l = active; l < 32; ++l) EXPECT_EQ(out[static_cast<size_t>(l)], -1.f) << "lane " << l;
}

// ---- atomics
// -------------------------------------------------------------------------------------

TEST(EmuRuntime, AtomicsOnEveryTypeTheKernelsUse) {
  const int64_t n = 1000;
  const int bins = 7;
  std::mt19937 gen(5);
  std::vector<int> values(static_cast<size_t>(n));
  for (int& v : values) v = static_cast<int>(gen() % 5000);
  const std::vector<float> x = random_floats(static_cast<size_t>(n), 9);
  auto dv = device_from(values);
  auto dxs = device_from(x);
  auto hist = device_filled<int>(bins, 0);
  auto fsum = device_filled<float>(1, 0.f);
  auto usum = device_filled<unsigned long long>(1, 0ull);
  auto imax = device_filled<int>(1, -1);
  auto llmin = device_filled<long long>(1, 0ll);
  auto ullmin = device_filled<unsigned long long>(1, ~0ull);
  auto slots = device_filled<int>(bins, 0);
  auto wins = device_filled<int>(1, 0);
  auto inc = device_filled<unsigned>(1, 0u);
  AtomicOut o{hist.data(),   fsum.data(),  usum.data(), imax.data(), llmin.data(),
              ullmin.data(), slots.data(), wins.data(), inc.data()};
  launch_atomics(dv.data(), dxs.data(), n, bins, o, nullptr);

  std::vector<int> expect_hist(bins, 0);
  double expect_fsum = 0;
  unsigned long long expect_usum = 0;
  std::set<int> used;
  for (int64_t i = 0; i < n; ++i) {
    const int v = values[static_cast<size_t>(i)];
    ++expect_hist[static_cast<size_t>(v % bins)];
    expect_fsum += x[static_cast<size_t>(i)];
    expect_usum += static_cast<unsigned long long>(v);
    used.insert(v % bins);
  }
  const int vmax = *std::max_element(values.begin(), values.end());
  const int vmin = *std::min_element(values.begin(), values.end());
  EXPECT_EQ(host_copy(hist), expect_hist);
  EXPECT_NEAR(fsum[0], expect_fsum, 1e-3);
  EXPECT_EQ(usum[0], expect_usum);
  EXPECT_EQ(imax[0], vmax);
  EXPECT_EQ(llmin[0], static_cast<long long>(vmin) - 1000000000000LL);
  EXPECT_EQ(ullmin[0], static_cast<unsigned long long>(vmin) + 5ull);
  EXPECT_EQ(wins[0], static_cast<int>(used.size())) << "exactly one atomicCAS winner per slot";
  EXPECT_EQ(inc[0], static_cast<unsigned>(n % 8)) << "atomicInc wraps to 0 past the limit 7";
}

TEST(EmuRuntime, SharedMemoryAtomicsAndBarrierReductions) {
  // Every thread's atomicAdd on one shared int is not a race; the race detector must agree.
  const int blocks = 3;
  const unsigned block = 96;
  std::vector<int> pred(blocks * block, 0);
  for (unsigned t = 0; t < block; ++t) pred[t] = static_cast<int>(t % 3 == 0);  // block 0: some
  for (unsigned t = 0; t < block; ++t) pred[block + t] = 1;                     // block 1: all
  auto dp = device_from(pred);                                                  // block 2: none
  auto results = device_filled<int>(blocks * 4, -1);
  emu::ScopedChecks all_checks(emu::EmulatorChecks{});
  launch_shared_atomics(dp.data(), results.data(), blocks, block, nullptr);
  EXPECT_EQ(host_copy(results), (std::vector<int>{32, 32, 0, 1, 96, 96, 1, 1, 0, 0, 0, 0}));
}

TEST(EmuRuntime, VectorTypesThroughLdg) {
  const int64_t n4 = 37;
  std::vector<float> a(static_cast<size_t>(n4) * 4);
  std::vector<int32_t> b(static_cast<size_t>(n4) * 4);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = 0.5f * static_cast<float>(i);
    b[i] = static_cast<int32_t>(i % 11);
  }
  auto da = device_from(a);
  auto db = device_from(b);
  auto out = device_filled<float>(static_cast<size_t>(n4), 0.f);
  launch_vector_loads(reinterpret_cast<const float4*>(da.data()),
                      reinterpret_cast<const int4*>(db.data()), out.data(), n4, nullptr);
  for (int64_t i = 0; i < n4; ++i) {
    float e = 0;
    for (int k = 0; k < 4; ++k) e += a[static_cast<size_t>(i * 4 + k)];
    int s = 0;
    for (int k = 0; k < 4; ++k) s += b[static_cast<size_t>(i * 4 + k)];
    EXPECT_EQ(out[static_cast<size_t>(i)], e + static_cast<float>(s)) << i;
  }
}

TEST(EmuRuntime, SixtyFourBitOffsetsIntoASmallWindow) {
  // The kernel reads base[offset + i] with offset = 3e9 (beyond 2^31): base is positioned so
  // that base + offset lands in a 100-float allocation. Truncating the offset to 32 bits would
  // read far outside it (a guard/ASan report) or the wrong values.
  const int64_t n = 100;
  const int64_t offset = 3'000'000'000LL;
  const std::vector<float> x = random_floats(static_cast<size_t>(n), 3);
  auto window = device_from(x);
  const float* base = reinterpret_cast<const float*>(
      reinterpret_cast<uintptr_t>(window.data()) - static_cast<uintptr_t>(offset) * sizeof(float));
  emu::DeviceWindow registered(base, window.data());
  auto out = device_filled<float>(static_cast<size_t>(n), 0.f);
  launch_offset_copy(base, offset, out.data(), n, nullptr);
  EXPECT_EQ(host_copy(out), x);
}

// ---- launch checks
// -------------------------------------------------------------------------------

__global__ void config_probe_kernel(int* out) {
  TESSERA_DYNAMIC_SHARED(int, smem);
  smem[0] = 1;
  out[0] = smem[0];
}

std::string launch_error(dim3 grid, dim3 block, size_t smem, int* out) {
  try {
    TESSERA_LAUNCH(config_probe_kernel, grid, block, smem, nullptr, out);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The runtime's own launch, without the launcher's shared-memory opt-in.
std::string raw_launch_error(void (*kernel)(int*), size_t smem, int* out) {
  try {
    cuda::emu_detail::queue_launch("probe", kernel, dim3(1), dim3(1), smem, nullptr, out);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EmuRuntime, LaunchConfigurationIsCheckedLikeTheDevice) {
  auto out = device_filled<int>(1, 0);
  EXPECT_EQ(launch_error(dim3(1), dim3(1), 4, out.data()), "");
  EXPECT_EQ(out[0], 1);
  EXPECT_NE(launch_error(dim3(1), dim3(64, 32), 4, out.data()).find("2048 threads, more than 1024"),
            std::string::npos);
  EXPECT_NE(launch_error(dim3(1), dim3(1025), 4, out.data()).find("exceeds (1024, 1024, 64)"),
            std::string::npos);
  EXPECT_NE(launch_error(dim3(0), dim3(32), 4, out.data()).find("zero dimension"),
            std::string::npos);
  EXPECT_NE(launch_error(dim3(1), dim3(1, 1, 65), 4, out.data()).find("exceeds"),
            std::string::npos);
  EXPECT_NE(launch_error(dim3(1, 65536), dim3(1), 4, out.data()).find("exceeds"),
            std::string::npos);
  // Over 48 KiB without the opt-in attribute: the runtime refuses the launch.
  const std::string too_much = raw_launch_error(config_probe_kernel, 64 << 10, out.data());
  EXPECT_NE(too_much.find("kernel probe"), std::string::npos) << too_much;
  EXPECT_NE(too_much.find("cudaFuncSetAttribute"), std::string::npos) << too_much;
  // The launcher opts in (cudaFuncSetAttribute) itself, as the CUDA one does.
  EXPECT_EQ(launch_error(dim3(1), dim3(1), 64 << 10, out.data()), "");
  EXPECT_EQ(raw_launch_error(config_probe_kernel, 64 << 10, out.data()), "") << "opted in now";
  EXPECT_NE(cudaFuncSetAttribute(config_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 300 << 10),
            cudaSuccess);
  EXPECT_NE(launch_error(dim3(1), dim3(1), 300 << 10, out.data())
                .find("exceed the device's per-block limit of 232448 B"),
            std::string::npos);
}

// A kernel with 40 KiB of static shared memory (declared to the emulator, as nvcc would report
// it): 16 KiB of dynamic shared memory is under 48 KiB on its own, but the block needs 56 KiB.
__global__ void static_probe_kernel(int* out) {
  TESSERA_DYNAMIC_SHARED(int, smem);
  smem[0] = 2;
  out[0] = smem[0];
}

TEST(EmuRuntime, StaticAndDynamicSharedMemoryCountTogether) {
  emu::declare_static_shared_bytes(static_probe_kernel, 40 << 10);
  cudaFuncAttributes attributes{};
  ASSERT_EQ(cudaFuncGetAttributes(&attributes, static_probe_kernel), cudaSuccess);
  EXPECT_EQ(attributes.sharedSizeBytes, size_t{40} << 10);
  EXPECT_EQ(attributes.maxDynamicSharedSizeBytes, 8 << 10) << "48 KiB minus the static 40 KiB";
  auto out = device_filled<int>(1, 0);
  // The runtime's rule: without the opt-in, static + dynamic must fit 48 KiB.
  const std::string refused = raw_launch_error(static_probe_kernel, 16 << 10, out.data());
  EXPECT_NE(refused.find("40960 bytes of static shared memory"), std::string::npos) << refused;
  // Raising the attribute fails when static + the value exceed the opt-in limit (227 KiB).
  EXPECT_EQ(cudaFuncSetAttribute(static_probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 200 << 10),
            cudaErrorInvalidValue);
  (void)cudaGetLastError();
  // The launcher counts the static part: it opts in for 16 KiB, and the kernel runs.
  std::string what;
  try {
    TESSERA_LAUNCH(static_probe_kernel, dim3(1), dim3(1), 16 << 10, nullptr, out.data());
  } catch (const Error& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "");
  EXPECT_EQ(out[0], 2);
  // 40 KiB static + 190 KiB dynamic exceed 227 KiB: the launcher says so, naming both parts.
  try {
    TESSERA_LAUNCH(static_probe_kernel, dim3(1), dim3(1), 190 << 10, nullptr, out.data());
    what = "";
  } catch (const Error& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("40960 B of static and 194560 B of dynamic shared memory exceed"),
            std::string::npos)
      << what;
  emu::declare_static_shared_bytes(static_probe_kernel, 0);
}

// smem = 0 bytes: the kernel's write to smem[0] is past the end of a zero-byte allocation.
// Under AddressSanitizer that is a report; without it the write lands in malloc padding, so only
// the ASan build (-DTESSERA_SANITIZE=ON) can prove this one, and only it compiles the test (see
// emu_negative_test for the reporting paths).
#if defined(__SANITIZE_ADDRESS__)
TEST(EmuRuntime, DynamicSharedMemoryIsExactlyTheRequestedSize) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto out = device_filled<int>(1, 0);
  EXPECT_DEATH(launch_error(dim3(1), dim3(1), 0, out.data()), "heap-buffer-overflow");
}
#endif

TEST(EmuRuntime, KernelStatsCountBlocksBarriersAndWarpCollectives) {
  emu::reset_kernel_stats();
  emu::ScopedChecks no_schedule(emu::EmulatorChecks{false, true, true});
  std::vector<float> x(100, 1.f);
  auto dx = device_from(x);
  auto sums = device_filled<float>(2, 0.f);
  launch_block_sums(dx.data(), 100, sums.data(), 64, nullptr);
  const auto stats = emu::kernel_stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].kernel, "block_sums_kernel");
  EXPECT_EQ(stats[0].launches, 1u);
  EXPECT_EQ(stats[0].blocks, 2u);
  EXPECT_EQ(stats[0].threads, 128u);
  EXPECT_EQ(stats[0].barriers, 2u);  // one per block
  // Per block: 5 shuffles in each of 2 warps, then 5 more in warp 0.
  EXPECT_EQ(stats[0].warp_collectives, 2u * (5 * 2 + 5));
  const std::string report = emu::format_kernel_report();
  EXPECT_NE(report.find("block_sums_kernel"), std::string::npos) << report;
  std::cout << report;
}

// ---- the emulated runtime API
// --------------------------------------------------------------------

TEST(EmuRuntime, RuntimeApiChecksDeviceRanges) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 16 * sizeof(float)), cudaSuccess);
  std::vector<float> h(16, 2.f), back(16, 0.f);
  EXPECT_EQ(cudaMemcpy(d, h.data(), 16 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(back.data(), d, 16 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, h);
  EXPECT_EQ(cudaMemsetAsync(d, 0, 16 * sizeof(float), nullptr), cudaSuccess);
  EXPECT_EQ(d[3], 0.f);
  // One float too many, and a host pointer as the device side.
  EXPECT_EQ(cudaMemsetAsync(d, 0, 17 * sizeof(float), nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), back.data(), 4, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  int sms = 0;
  EXPECT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_GE(sms, 1);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(h.data()), cudaErrorInvalidDevicePointer);
}

}  // namespace
}  // namespace tessera::emu_test

#endif  // TESSERA_CUDA_EMULATION
