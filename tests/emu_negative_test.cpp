// Negative tests: each kernel in tests/emu_kernels/negative.cu has one deliberate bug, and the
// emulation harness must report it (an emulator that never fails proves nothing):
//   off-by-one write         -> guard bytes (or AddressSanitizer in the sanitizer build)
//   missing __syncthreads()  -> the schedule check (forward vs reverse thread order differ)
//   divergent barrier        -> "barrier not reached by all threads", naming kernel and block
// and the other bug finders: two barrier call sites, a shared-memory write-write race, lanes at
// different warp collectives, a mask without the calling lane, a host pointer argument, __trap().
// After each failure the emulator must still run a correct kernel.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "host/core/error.h"
#include "tests/emu_kernels/emu_test_kernels.h"

namespace tessera::emu_test {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

// The tessera::Error message a call throws, or "" (with a test failure) when it does not throw.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Backend) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than tessera::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "the bug was not reported";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "message: " << (haystack)

// A correct kernel still runs after a failed launch (fibers abandoned mid-kernel are cleaned up).
void expect_emulator_still_works() {
  std::vector<float> x(300);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  DeviceArray<float> dx(x.size(), ElementKind::F32, "x"), sums(5, ElementKind::F32, "sums");
  std::memcpy(dx.data(), x.data(), x.size() * sizeof(float));
  launch_block_sums(dx.data(), 300, sums.data(), 64, nullptr);
  EXPECT_EQ(sums[0], 2016.f);       // 0 + ... + 63
  EXPECT_EQ(sums[4], 12210.f);      // 256 + ... + 299
}

TEST(EmuNegative, OffByOneWriteIsCaught) {
  DeviceArray<float> out(100, ElementKind::F32, "off-by-one output");
#if defined(__SANITIZE_ADDRESS__)
  // The allocation is exact: AddressSanitizer stops the process at the write, with the stack.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(launch_off_by_one(out.data(), 100, nullptr), "heap-buffer-overflow");
#else
  ASSERT_TRUE(emu::device_guards_enabled());
  const std::string msg = error_of([&] { launch_off_by_one(out.data(), 100, nullptr); });
  EXPECT_CONTAINS(msg, "kernel off_by_one_kernel");
  EXPECT_CONTAINS(msg, "out-of-bounds write to allocation 'off-by-one output' (400 bytes)");
  EXPECT_CONTAINS(msg, "offset 400 (0 bytes past its end)");
  expect_emulator_still_works();
#endif
}

TEST(EmuNegative, MissingSyncthreadsIsCaughtByTheScheduleCheck) {
  const unsigned block = 128;
  std::vector<float> x(2 * block);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
  DeviceArray<float> dx(x.size(), ElementKind::F32, "x"), out(x.size(), ElementKind::F32, "neighbour");
  std::memcpy(dx.data(), x.data(), x.size() * sizeof(float));
  emu::ScopedChecks all(emu::EmulatorChecks{});
  const std::string msg = error_of([&] { launch_missing_syncthreads(dx.data(), out.data(), block, nullptr); });
  EXPECT_CONTAINS(msg, "kernel missing_syncthreads_kernel: result depends on the order threads run");
  EXPECT_CONTAINS(msg, "allocation 'neighbour'");
  EXPECT_CONTAINS(msg, "missing __syncthreads()");
  expect_emulator_still_works();
}

TEST(EmuNegative, MissingSyncthreadsGoesUnnoticedWithoutTheScheduleCheck) {
  // Documents why the schedule check exists: one sequential schedule gives *some* answer (here
  // wrong in every thread that read its neighbour's slot before the neighbour wrote it) and no
  // error; only comparing two schedules (or the host backend) shows it.
  const unsigned block = 64;
  std::vector<float> x(2 * block, 1.f);
  DeviceArray<float> dx(x.size(), ElementKind::F32, "x"), out(x.size(), ElementKind::F32, "neighbour");
  std::memcpy(dx.data(), x.data(), x.size() * sizeof(float));
  emu::ScopedChecks none(emu::EmulatorChecks{false, false, true});
  EXPECT_NO_THROW(launch_missing_syncthreads(dx.data(), out.data(), block, nullptr));
}

TEST(EmuNegative, DivergentBarrierIsReportedInsteadOfHanging) {
  DeviceArray<float> out(64, ElementKind::F32, "out");
  const std::string msg = error_of([&] { launch_divergent_barrier(out.data(), 64, 40, nullptr); });
  EXPECT_CONTAINS(msg, "kernel divergent_barrier_kernel, block (0,0,0): barrier not reached by all threads");
  EXPECT_CONTAINS(msg, "40 of 64 threads wait at __syncthreads()");
  EXPECT_CONTAINS(msg, "negative.cu:");
  EXPECT_CONTAINS(msg, "24 have exited without reaching it [threads 40-63]");
  expect_emulator_still_works();
}

TEST(EmuNegative, TwoBarrierCallSitesAreReported) {
  DeviceArray<float> out(32, ElementKind::F32, "out");
  const std::string msg = error_of([&] { launch_two_barrier_sites(out.data(), 32, nullptr); });
  EXPECT_CONTAINS(msg, "kernel two_barrier_sites_kernel, block (0,0,0)");
  EXPECT_CONTAINS(msg, "divergent barriers");
  expect_emulator_still_works();
}

TEST(EmuNegative, SharedMemoryWriteWriteRaceIsReported) {
  DeviceArray<int> out(1, ElementKind::I32, "out");
  emu::ScopedChecks all(emu::EmulatorChecks{});
  const std::string msg = error_of([&] { launch_shared_write_race(out.data(), 64, nullptr); });
  EXPECT_CONTAINS(msg, "kernel shared_write_race_kernel, block (0,0,0): shared-memory race");
  EXPECT_CONTAINS(msg, "dynamic shared memory byte");
  expect_emulator_still_works();
}

TEST(EmuNegative, LanesAtDifferentWarpCollectivesAreReported) {
  DeviceArray<int> out(32, ElementKind::I32, "out");
  const std::string msg = error_of([&] { launch_divergent_warp_ops(out.data(), nullptr); });
  EXPECT_CONTAINS(msg, "kernel divergent_warp_ops_kernel, block (0,0,0)");
  EXPECT_CONTAINS(msg, "diverges at warp collectives");
  expect_emulator_still_works();
}

TEST(EmuNegative, MaskWithoutTheCallingLaneIsReported) {
  DeviceArray<int> out(32, ElementKind::I32, "out");
  const std::string msg = error_of([&] { launch_mask_without_self(out.data(), nullptr); });
  EXPECT_CONTAINS(msg, "thread (0,0,0): __shfl_sync");
  EXPECT_CONTAINS(msg, "does not include the calling lane 0");
  expect_emulator_still_works();
}

TEST(EmuNegative, HostPointerArgumentIsReported) {
  std::vector<float> host(64, 1.f);
  const std::string msg = error_of([&] { launch_write_through(host.data(), 64, nullptr); });
  EXPECT_CONTAINS(msg, "kernel write_through_kernel: argument 0");
  EXPECT_CONTAINS(msg, "does not point into device memory");
  EXPECT_EQ(host[0], 1.f) << "the kernel must not have run";
}

// Static __shared__ arrays are thread_locals the emulator cannot watch; UBSan's bounds check on
// constant-size arrays (part of -fsanitize=undefined) stops the process at s[32]. Without the
// sanitizer build (-DTESSERA_SANITIZE=ON) the overflow is not detected, so only it compiles the
// test.
#if defined(__SANITIZE_ADDRESS__)
TEST(EmuNegative, StaticSharedArrayOverflowIsCaughtByUBSan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DeviceArray<float> out(33, ElementKind::F32, "out");
  EXPECT_DEATH(launch_static_shared_overflow(out.data(), nullptr), "index 32 out of bounds for type 'float \\[32\\]'");
}
#endif

TEST(EmuNegative, TrapNamesBlockAndThread) {
  DeviceArray<float> out(16, ElementKind::F32, "out");
  const std::string msg = error_of([&] { launch_trap(out.data(), nullptr); });
  EXPECT_CONTAINS(msg, "kernel trap_kernel, block (1,0,0), thread (3,0,0): __trap()");
  expect_emulator_still_works();
}

TEST(EmuNegative, FailedLaunchesShowInTheKernelReport) {
  DeviceArray<float> out(64, ElementKind::F32, "out");
  (void)error_of([&] { launch_divergent_barrier(out.data(), 64, 10, nullptr); });
  const std::string report = emu::format_kernel_report();
  EXPECT_CONTAINS(report, "divergent_barrier_kernel");
  EXPECT_CONTAINS(report, "FAILED: kernel divergent_barrier_kernel");
}

}  // namespace
}  // namespace tessera::emu_test

#endif  // TESSERA_CUDA_EMULATION
