// The emulated CUDA runtime's stream model (cuda/emu/README.md, "Runtime"), one behaviour per
// test: deferred work in FIFO order, events between streams (a missing wait shows as stale data),
// the device rules for launches and events, pageable vs pinned copies, the report of a host read
// of pinned memory before a synchronisation, failures of deferred work, and the counters.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cuda/emu/grid_launch.h"
#include "cuda/emu/runtime_counters.h"
#include "cuda/emu/stream_model.h"
#include "cuda/kernel_prelude.cuh"
#include "cuda/launch.cuh"
#include "host/core/error.h"
#include "tests/emu_kernels/emu_test_kernels.h"
#include "tests/support/error_of.h"

namespace tessera::emu_test {

__global__ void add_kernel(float* x, int n, float v) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += v;
}
__global__ void scale_into_kernel(const float* in, float* out, int n, float s) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = in[i] * s;
}

__global__ void wild_write_kernel(float* p, int64_t offset) {
  p[offset] = 1.f;
}

namespace {

void launch_add(float* x, int n, float v, cudaStream_t s) {
  TESSERA_LAUNCH(add_kernel, dim3((n + 63) / 64), dim3(64), 0, s, x, n, v);
}
void launch_scale_into(const float* in, float* out, int n, float scale, cudaStream_t s) {
  TESSERA_LAUNCH(scale_into_kernel, dim3((n + 63) / 64), dim3(64), 0, s, in, out, n, scale);
}

constexpr int kN = 100;

// Device memory from cudaMalloc, freed at scope exit; the test reads it directly (it is host
// memory in the emulator) to see what has run.
struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(int n) { EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess); }
  ~DeviceFloats() { EXPECT_EQ(cudaFree(p), cudaSuccess); }
};
struct PinnedFloats {
  float* p = nullptr;
  explicit PinnedFloats(int n) {
    void* raw = nullptr;
    EXPECT_EQ(cudaHostAlloc(&raw, n * sizeof(float), cudaHostAllocDefault), cudaSuccess);
    p = static_cast<float*>(raw);
  }
  ~PinnedFloats() { EXPECT_EQ(cudaFreeHost(p), cudaSuccess); }
};
struct Stream {
  cudaStream_t s = nullptr;
  explicit Stream(unsigned flags = cudaStreamNonBlocking) {
    EXPECT_EQ(cudaStreamCreateWithFlags(&s, flags), cudaSuccess);
  }
  ~Stream() { EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess); }
};
struct Event {
  cudaEvent_t e = nullptr;
  Event() { EXPECT_EQ(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess); }
  ~Event() { EXPECT_EQ(cudaEventDestroy(e), cudaSuccess); }
};

std::vector<float> iota_floats(int n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

void upload(float* d, const std::vector<float>& h) {
  ASSERT_EQ(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
}

// ---- stream order ------------------------------------------------------------------------------

TEST(EmuStreams, WorkIsDeferredUntilASynchronisationAndRunsInFifoOrder) {
  Stream stream;
  DeviceFloats x(kN), y(kN);
  upload(x.p, iota_floats(kN, 0.f));
  launch_add(x.p, kN, 1.f, stream.s);              // x + 1
  launch_scale_into(x.p, y.p, kN, 2.f, stream.s);  // y = 2 (x + 1)
  launch_add(y.p, kN, 3.f, stream.s);              // y = 2 (x + 1) + 3
  EXPECT_EQ(x.p[5], 5.f) << "a launch on a stream ran before anything forced it";
  EXPECT_EQ(cudaStreamQuery(stream.s), cudaErrorNotReady);
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(x.p[i], static_cast<float>(i) + 1.f);
    EXPECT_EQ(y.p[i], 2.f * (static_cast<float>(i) + 1.f) + 3.f) << i;
  }
  EXPECT_EQ(cudaStreamQuery(stream.s), cudaSuccess);
}

TEST(EmuStreams, QueryReportsNotReadyOnceThenRunsTheWork) {
  Stream stream;
  DeviceFloats x(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  launch_add(x.p, kN, 1.f, stream.s);
  EXPECT_EQ(cudaStreamQuery(stream.s), cudaErrorNotReady);
  EXPECT_EQ(x.p[0], 0.f);
  EXPECT_EQ(cudaStreamQuery(stream.s), cudaSuccess);  // a polling loop ends
  EXPECT_EQ(x.p[0], 1.f);
}

TEST(EmuStreams, AnEventOrdersWorkBetweenStreams) {
  Stream producer, consumer;
  Event produced;
  DeviceFloats x(kN), y(kN);
  upload(x.p, std::vector<float>(kN, 1.f));
  launch_add(x.p, kN, 10.f, producer.s);  // x = 11
  ASSERT_EQ(cudaEventRecord(produced.e, producer.s), cudaSuccess);
  launch_add(x.p, kN, 100.f, producer.s);  // after the event: the consumer must not wait for it
  ASSERT_EQ(cudaStreamWaitEvent(consumer.s, produced.e, 0), cudaSuccess);
  launch_scale_into(x.p, y.p, kN, 1.f, consumer.s);
  ASSERT_EQ(cudaStreamSynchronize(consumer.s), cudaSuccess);
  EXPECT_EQ(y.p[7], 11.f) << "the consumer read x before (or after more than) the event";
  EXPECT_EQ(x.p[7], 11.f) << "work recorded after the event ran too early";
  ASSERT_EQ(cudaStreamSynchronize(producer.s), cudaSuccess);
  EXPECT_EQ(x.p[7], 111.f);
}

TEST(EmuStreams, WithoutAWaitTheOtherStreamSeesStaleData) {
  Stream producer, consumer;
  DeviceFloats x(kN), y(kN);
  upload(x.p, std::vector<float>(kN, 1.f));
  launch_add(x.p, kN, 10.f, producer.s);
  launch_scale_into(x.p, y.p, kN, 1.f, consumer.s);  // missing cudaStreamWaitEvent
  ASSERT_EQ(cudaStreamSynchronize(consumer.s), cudaSuccess);
  EXPECT_EQ(y.p[0], 1.f) << "streams are ordered without an event";
  ASSERT_EQ(cudaStreamSynchronize(producer.s), cudaSuccess);
  EXPECT_EQ(x.p[0], 11.f);
}

TEST(EmuStreams, EventSynchronizeRunsTheStreamOnlyUpToTheEvent) {
  Stream stream;
  Event e;
  DeviceFloats x(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  launch_add(x.p, kN, 1.f, stream.s);
  ASSERT_EQ(cudaEventRecord(e.e, stream.s), cudaSuccess);
  launch_add(x.p, kN, 1.f, stream.s);
  EXPECT_EQ(cudaEventQuery(e.e), cudaErrorNotReady);
  ASSERT_EQ(cudaEventSynchronize(e.e), cudaSuccess);
  EXPECT_EQ(x.p[0], 1.f);
  EXPECT_EQ(cudaEventQuery(e.e), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(x.p[0], 2.f);
}

TEST(EmuStreams, TheLegacyStreamRunsAtOnceAfterBlockingStreamsButNotNonBlockingOnes) {
  Stream blocking(cudaStreamDefault), non_blocking(cudaStreamNonBlocking);
  DeviceFloats x(kN), y(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  upload(y.p, std::vector<float>(kN, 0.f));
  launch_add(x.p, kN, 1.f, blocking.s);
  launch_add(y.p, kN, 1.f, non_blocking.s);
  DeviceFloats z(kN);
  launch_scale_into(x.p, z.p, kN, 1.f, nullptr);  // the legacy stream: runs now
  EXPECT_EQ(z.p[0], 1.f) << "the legacy stream did not wait for the blocking stream";
  EXPECT_EQ(y.p[0], 0.f) << "the legacy stream waited for a non-blocking stream";
  ASSERT_EQ(cudaStreamSynchronize(non_blocking.s), cudaSuccess);
  EXPECT_EQ(y.p[0], 1.f);
}

TEST(EmuStreams, AStreamOverItsQueueCapRunsItsOldestItem) {
  Stream stream;
  DeviceFloats x(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  const size_t previous = emu::detail::set_queue_cap(2);
  emu::reset_runtime_counters();
  launch_add(x.p, kN, 1.f, stream.s);
  launch_add(x.p, kN, 1.f, stream.s);
  EXPECT_EQ(x.p[0], 0.f) << "two items fit under a cap of two";
  launch_add(x.p, kN, 1.f, stream.s);  // the third: the oldest runs
  EXPECT_EQ(x.p[0], 1.f);
  EXPECT_EQ(emu::runtime_counters().queue_cap_runs, 1u) << emu::runtime_counters().describe();
  emu::detail::set_queue_cap(previous);
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(x.p[0], 3.f);
}

TEST(EmuStreams, LaunchParametersAreCopiedWhenTheLaunchIsQueued) {
  Stream stream;
  DeviceFloats x(kN), y(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  upload(y.p, std::vector<float>(kN, 0.f));
  float* target = x.p;
  float amount = 5.f;
  launch_add(target, kN, amount, stream.s);
  target = y.p;  // changing the caller's variables after the launch changes nothing
  amount = 7.f;
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(x.p[3], 5.f);
  EXPECT_EQ(y.p[3], 0.f);
  (void)target;
  (void)amount;
}

// ---- devices -----------------------------------------------------------------------------------

struct DeviceScope {
  int previous = 0;
  explicit DeviceScope(int d) {
    EXPECT_EQ(cudaGetDevice(&previous), cudaSuccess);
    EXPECT_EQ(cudaSetDevice(d), cudaSuccess);
  }
  ~DeviceScope() { EXPECT_EQ(cudaSetDevice(previous), cudaSuccess); }
};

TEST(EmuStreams, TwoDevicesAndACurrentDevicePerHostThread) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  ASSERT_GE(count, 2) << "TESSERA_EMU_DEVICE_COUNT defaults to 2";
  EXPECT_EQ(cudaSetDevice(count), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  DeviceScope one(1);
  int other_thread_device = -1;
  std::thread([&] { EXPECT_EQ(cudaGetDevice(&other_thread_device), cudaSuccess); }).join();
  EXPECT_EQ(other_thread_device, 0);
  int here = -1;
  ASSERT_EQ(cudaGetDevice(&here), cudaSuccess);
  EXPECT_EQ(here, 1);
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 1), cudaSuccess);
  EXPECT_NE(std::string(prop.name).find("device 1"), std::string::npos) << prop.name;
}

TEST(EmuStreams, ALaunchOnAStreamOfAnotherDeviceFails) {
  DeviceFloats x(kN);
  upload(x.p, std::vector<float>(kN, 0.f));
  cudaStream_t on_device1 = nullptr;
  {
    DeviceScope one(1);
    ASSERT_EQ(cudaStreamCreateWithFlags(&on_device1, cudaStreamNonBlocking), cudaSuccess);
  }
  const std::string msg =
      test::error_of_kind(ErrorKind::Backend, [&] { launch_add(x.p, kN, 1.f, on_device1); });
  EXPECT_NE(msg.find("kernel add_kernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("while device 0 is current"), std::string::npos) << msg;
  float* x1 = nullptr;
  {
    DeviceScope one(1);  // with the stream's device current, a launch on its memory is fine
    ASSERT_EQ(cudaMalloc(&x1, kN * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(x1, 0, kN * sizeof(float), on_device1), cudaSuccess);
    launch_add(x1, kN, 1.f, on_device1);
  }
  EXPECT_EQ(cudaStreamSynchronize(on_device1), cudaSuccess);  // any device may synchronise it
  EXPECT_EQ(x1[0], 1.f);
  EXPECT_EQ(cudaFree(x1), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(on_device1), cudaSuccess);
}

TEST(EmuStreams, AKernelArgumentInAnotherDevicesMemoryIsAnIllegalAddress) {
  DeviceFloats on_device0(kN);
  DeviceScope one(1);
  Stream on_device1;
  const std::string msg = test::error_of_kind(
      ErrorKind::Backend, [&] { launch_add(on_device0.p, kN, 1.f, on_device1.s); });
  EXPECT_NE(msg.find("argument 0 points into 'cudaMalloc on device 0' on device 0, but the kernel "
                     "runs on device 1"),
            std::string::npos)
      << msg;
  DeviceFloats on_device1_memory(kN);  // the same launch on the device's own memory is fine
  ASSERT_EQ(cudaMemsetAsync(on_device1_memory.p, 0, kN * sizeof(float), on_device1.s), cudaSuccess);
  launch_add(on_device1_memory.p, kN, 2.f, on_device1.s);
  ASSERT_EQ(cudaStreamSynchronize(on_device1.s), cudaSuccess);
  EXPECT_EQ(on_device1_memory.p[kN - 1], 2.f);
}

TEST(EmuStreams, EventRecordNeedsTheEventsDeviceButWaitsAndCopiesMayCrossDevices) {
  Stream on_device0;
  Event event0;
  cudaStream_t on_device1 = nullptr;
  cudaEvent_t event1 = nullptr;
  {
    DeviceScope one(1);
    ASSERT_EQ(cudaStreamCreateWithFlags(&on_device1, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&event1, cudaEventDisableTiming), cudaSuccess);
  }
  EXPECT_EQ(cudaEventRecord(event0.e, on_device1), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventRecord(event1, on_device1), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(on_device0.s, event1, 0), cudaSuccess);
  DeviceFloats a(kN), b(kN);
  upload(a.p, std::vector<float>(kN, 4.f));
  EXPECT_EQ(cudaMemcpyAsync(b.p, a.p, kN * sizeof(float), cudaMemcpyDeviceToDevice, on_device1),
            cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(on_device1), cudaSuccess);
  EXPECT_EQ(b.p[kN - 1], 4.f);
  EXPECT_EQ(cudaEventDestroy(event1), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(on_device1), cudaSuccess);
}

TEST(EmuStreams, ADestroyedStreamIsAnInvalidHandle) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  DeviceFloats x(kN);
  EXPECT_EQ(cudaMemsetAsync(x.p, 0, kN * sizeof(float), s), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);
  (void)cudaGetLastError();
  const std::string msg =
      test::error_of_kind(ErrorKind::Backend, [&] { launch_add(x.p, kN, 1.f, s); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

// ---- pageable and pinned host memory
// -------------------------------------------------------------

TEST(EmuStreams, AHostToDeviceCopyFromPageableMemorySnapshotsTheSource) {
  Stream stream;
  DeviceFloats d(kN);
  std::vector<float> host = iota_floats(kN, 0.f);
  ASSERT_EQ(cudaMemcpyAsync(d.p, host.data(), kN * sizeof(float), cudaMemcpyHostToDevice, stream.s),
            cudaSuccess);
  std::fill(host.begin(), host.end(), -1.f);  // allowed at once for pageable memory
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(d.p[9], 9.f);
}

TEST(EmuStreams, AHostToDeviceCopyFromPinnedMemoryReadsTheSourceWhenItRuns) {
  Stream stream;
  DeviceFloats d(kN);
  PinnedFloats pinned(kN);
  for (int i = 0; i < kN; ++i) pinned.p[i] = static_cast<float>(i);
  ASSERT_EQ(cudaMemcpyAsync(d.p, pinned.p, kN * sizeof(float), cudaMemcpyHostToDevice, stream.s),
            cudaSuccess);
  pinned.p[9] = -1.f;  // a bug: the copy has not run; on a device this is a race
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(d.p[9], -1.f) << "the pinned source was read at the call, hiding the race";
}

TEST(EmuStreams, ADeviceToPageableCopyCompletesBeforeItReturnsAsAnImplicitSynchronisation) {
  Stream stream;
  DeviceFloats d(kN);
  upload(d.p, std::vector<float>(kN, 2.f));
  launch_add(d.p, kN, 1.f, stream.s);
  emu::reset_runtime_counters();
  std::vector<float> host(kN, 0.f);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), d.p, kN * sizeof(float), cudaMemcpyDeviceToHost, stream.s),
            cudaSuccess);
  EXPECT_EQ(host[0], 3.f) << "the launch queued before the copy did not run first";
  const emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.implicit_synchronisations, 1u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind.count("cudaMemcpyAsync to pageable host"), 1u)
      << c.describe();
}

TEST(EmuStreams, ADeviceToPinnedCopyCompletesWhenTheStreamRuns) {
  Stream stream;
  DeviceFloats d(kN);
  PinnedFloats pinned(kN);
  upload(d.p, std::vector<float>(kN, 2.f));
  launch_add(d.p, kN, 1.f, stream.s);
  emu::reset_runtime_counters();
  ASSERT_EQ(cudaMemcpyAsync(pinned.p, d.p, kN * sizeof(float), cudaMemcpyDeviceToHost, stream.s),
            cudaSuccess);
  EXPECT_EQ(emu::runtime_counters().synchronisations, 0u) << emu::runtime_counters().describe();
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(pinned.p[kN - 1], 3.f);
}

TEST(EmuStreamsDeathTest, AHostReadOfPinnedMemoryBeforeTheCopyRanIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Stream stream;
        DeviceFloats d(kN);
        PinnedFloats pinned(kN);
        ASSERT_EQ(
            cudaMemcpyAsync(pinned.p, d.p, kN * sizeof(float), cudaMemcpyDeviceToHost, stream.s),
            cudaSuccess);
        volatile float* v = pinned.p;
        const float read = v[3];  // before cudaStreamSynchronize
        (void)read;
      },
      "host read of pinned memory \\[0x[0-9a-f]+, 0x[0-9a-f]+\\) \\(400 bytes\\) written by a "
      "cudaMemcpyAsync on stream #[0-9]+ \\(device 0\\) that has not been synchronised");
}

TEST(EmuStreams, PinnedMemoryIsReadableAgainAfterTheSynchronisation) {
  // The positive twin of the death test: the same read after the synchronisation is fine, and a
  // neighbour on the same page as a pending destination stays usable.
  Stream stream;
  DeviceFloats d(kN);
  PinnedFloats pinned(2 * kN);
  upload(d.p, std::vector<float>(kN, 6.f));
  pinned.p[kN + 1] = 42.f;
  ASSERT_EQ(cudaMemcpyAsync(pinned.p, d.p, kN * sizeof(float), cudaMemcpyDeviceToHost, stream.s),
            cudaSuccess);
  volatile float* v = pinned.p;
  EXPECT_EQ(v[kN + 1], 42.f);  // outside the destination
  ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
  EXPECT_EQ(v[3], 6.f);
}

TEST(EmuStreams, ACopyRunningPastTheEndOfADeviceAllocationIsRefused) {
  Stream stream;
  DeviceFloats d(kN);
  std::vector<float> host(kN + 1, 1.f);
  EXPECT_EQ(
      cudaMemcpyAsync(d.p, host.data(), (kN + 1) * sizeof(float), cudaMemcpyDefault, stream.s),
      cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpyAsync(host.data(), d.p + 1, kN * sizeof(float), cudaMemcpyDefault, stream.s),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(
      cudaMemcpyAsync(host.data(), d.p + 1, (kN - 1) * sizeof(float), cudaMemcpyDefault, stream.s),
      cudaSuccess);
}

TEST(EmuStreams, PointerAttributesTellDevicePinnedAndPageableMemoryApart) {
  DeviceFloats d(kN);
  PinnedFloats pinned(kN);
  std::vector<float> pageable(kN);
  cudaPointerAttributes a{};
  ASSERT_EQ(cudaPointerGetAttributes(&a, d.p + 5), cudaSuccess);
  EXPECT_EQ(a.type, cudaMemoryTypeDevice);
  EXPECT_EQ(a.device, 0);
  ASSERT_EQ(cudaPointerGetAttributes(&a, pinned.p + 5), cudaSuccess);
  EXPECT_EQ(a.type, cudaMemoryTypeHost);
  ASSERT_EQ(cudaPointerGetAttributes(&a, pageable.data()), cudaSuccess);
  EXPECT_EQ(a.type, cudaMemoryTypeUnregistered);
  EXPECT_EQ(cudaPointerGetAttributes(nullptr, d.p), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  DeviceScope one(1);
  DeviceFloats on_device1(4);
  ASSERT_EQ(cudaPointerGetAttributes(&a, on_device1.p), cudaSuccess);
  EXPECT_EQ(a.device, 1);
}

// The kernel crash handler (block_runner.cpp) still names a kernel's wild access after the pinned
// guard's handler opened a page for a neighbour of a pending destination: the two handlers chain.
TEST(EmuStreamsDeathTest, AKernelsWildAccessIsStillNamedAfterThePinnedGuardRan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
#if defined(__SANITIZE_ADDRESS__)
  const char* expected = "SEGV";  // AddressSanitizer reports the fault itself
#else
  const char* expected =
      "kernel wild_write_kernel, block \\(0,0,0\\), thread \\(0,0,0\\): illegal memory access";
#endif
  EXPECT_DEATH(
      {
        Stream stream;
        DeviceFloats d(kN);
        PinnedFloats pinned(2 * kN);
        ASSERT_EQ(
            cudaMemcpyAsync(pinned.p, d.p, kN * sizeof(float), cudaMemcpyDeviceToHost, stream.s),
            cudaSuccess);
        DeviceFloats other(kN);
        launch_add(other.p, kN, 1.f, nullptr);  // the first kernel of the process runs now
        volatile float* v = pinned.p;
        v[kN + 1] = 1.f;  // a neighbour on the protected page: opened, no report
        ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
        emu::ScopedChecks no_checks(emu::EmulatorChecks{false, false, false});
        TESSERA_LAUNCH(wild_write_kernel, dim3(1), dim3(1), 0, nullptr, d.p, int64_t{1} << 42);
      },
      expected);
}

// ---- failures of deferred work
// -------------------------------------------------------------------

TEST(EmuStreams, AFailureInDeferredWorkIsReportedByTheSynchronisationThatRunsIt) {
  Stream stream;
  DeviceFloats out(64);
  launch_trap(out.p, stream.s);  // queued: nothing fails yet
  const cudaError_t e = cudaStreamSynchronize(stream.s);
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  const std::string text = cudaGetErrorString(e);
  EXPECT_NE(text.find("trap_kernel"), std::string::npos) << text;
  EXPECT_NE(text.find("stream #"), std::string::npos) << text;
  EXPECT_NE(emu::last_deferred_failure().find("__trap"), std::string::npos)
      << emu::last_deferred_failure();
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess) << "reported once";
}

// ---- counters
// ------------------------------------------------------------------------------------

TEST(EmuStreams, CountersCountAllocationsCopiesLaunchesAndSynchronisations) {
  Stream stream;
  emu::reset_runtime_counters();
  {
    DeviceFloats a(kN), b(kN);
    PinnedFloats h(kN);
    std::vector<float> pageable(kN, 1.f);
    ASSERT_EQ(
        cudaMemcpyAsync(a.p, pageable.data(), kN * sizeof(float), cudaMemcpyHostToDevice, stream.s),
        cudaSuccess);
    launch_add(a.p, kN, 1.f, stream.s);
    ASSERT_EQ(cudaMemcpyAsync(b.p, a.p, kN * sizeof(float), cudaMemcpyDefault, stream.s),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpyAsync(h.p, b.p, kN * sizeof(float), cudaMemcpyDefault, stream.s),
              cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream.s), cudaSuccess);
    EXPECT_EQ(h.p[0], 2.f);
  }
  const emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.device_allocations, 2u) << c.describe();
  EXPECT_EQ(c.device_bytes_allocated, 2u * kN * sizeof(float)) << c.describe();
  EXPECT_EQ(c.pinned_allocations, 1u) << c.describe();
  EXPECT_EQ(c.device_frees, 2u) << c.describe();
  EXPECT_EQ(c.pinned_frees, 1u) << c.describe();
  EXPECT_EQ(c.h2d_copies, 1u) << c.describe();
  EXPECT_EQ(c.d2d_copies, 1u) << c.describe();
  EXPECT_EQ(c.d2h_copies, 1u) << c.describe();
  EXPECT_EQ(c.launches, 1u) << c.describe();
  EXPECT_EQ(c.explicit_synchronisations, 1u) << c.describe();
  // Freeing synchronises: two cudaFree and one cudaFreeHost.
  EXPECT_EQ(c.implicit_synchronisations, 3u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind.at("cudaFree"), 2u) << c.describe();
  EXPECT_EQ(c.synchronisations, 4u) << c.describe();
}

TEST(EmuStreams, SynchronousCopiesCountOneImplicitSynchronisationEach) {
  DeviceFloats d(kN);
  std::vector<float> host(kN, 1.f);
  emu::reset_runtime_counters();
  ASSERT_EQ(cudaMemcpy(d.p, host.data(), kN * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(host.data(), d.p, kN * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  DeviceFloats e(kN);
  const uint64_t before_d2d = emu::runtime_counters().synchronisations;
  ASSERT_EQ(cudaMemcpy(e.p, d.p, kN * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
  const emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(before_d2d, 2u) << c.describe();
  EXPECT_EQ(c.synchronisations, 2u) << "a device-to-device cudaMemcpy does not wait\n"
                                    << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind.at("cudaMemcpy"), 1u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind.at("cudaMemcpy to pageable host"), 1u) << c.describe();
}

TEST(EmuStreams, AStepWithPreallocatedBuffersAndPinnedStagingCountsNoSyncAndNoAllocation) {
  Stream compute, copy;
  Event uploaded;
  DeviceFloats x(kN), y(kN);
  PinnedFloats in(kN), out(kN);
  auto step = [&](float value) {
    for (int i = 0; i < kN; ++i) in.p[i] = value;
    ASSERT_EQ(cudaMemcpyAsync(x.p, in.p, kN * sizeof(float), cudaMemcpyHostToDevice, copy.s),
              cudaSuccess);
    ASSERT_EQ(cudaEventRecord(uploaded.e, copy.s), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(compute.s, uploaded.e, 0), cudaSuccess);
    launch_scale_into(x.p, y.p, kN, 2.f, compute.s);
    ASSERT_EQ(cudaMemcpyAsync(out.p, y.p, kN * sizeof(float), cudaMemcpyDeviceToHost, compute.s),
              cudaSuccess);
  };
  step(1.f);
  ASSERT_EQ(cudaStreamSynchronize(compute.s), cudaSuccess);
  emu::reset_runtime_counters();
  step(2.f);
  emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.synchronisations, 0u) << c.describe();
  EXPECT_EQ(c.device_allocations + c.pinned_allocations, 0u) << c.describe();
  EXPECT_EQ(c.launches, 1u) << c.describe();
  // The negative twin: reading the result back into pageable memory is a synchronisation.
  std::vector<float> pageable(kN);
  ASSERT_EQ(
      cudaMemcpyAsync(pageable.data(), y.p, kN * sizeof(float), cudaMemcpyDeviceToHost, compute.s),
      cudaSuccess);
  c = emu::runtime_counters();
  EXPECT_EQ(c.synchronisations, 1u) << c.describe();
  EXPECT_EQ(pageable[0], 4.f);
  EXPECT_EQ(out.p[0], 4.f);  // the pinned copy ran before the pageable one (FIFO)
}

}  // namespace
}  // namespace tessera::emu_test

#endif  // TESSERA_CUDA_EMULATION
