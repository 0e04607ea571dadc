// The CUDA backend's recovery and staging paths on the emulated runtime (no GPU):
//   - the caching allocator (cuda/device_allocator.h) bound to the runtime: a failing cudaMalloc
//     releases the cache and retries once; over its cap it gives back only blocks whose stream has
//     run past their last use (a fence event), without a device-wide synchronisation;
//   - a cuDNN convolution whose chosen algorithm fails later (a status, or a workspace that cannot
//     be allocated) is retried with the default algorithm, which the plan keeps;
//   - the LSTM passes unaligned views to cuDNN through aligned scratch copies, as the
//     convolutions do (cuda/cudnn_staging.h).
// Failures are injected through the emulator's test hooks: emu::fail_next_device_allocations
// (cuda/emu/runtime_counters.h) and emu::fail_next_calls (cuda/emu/standin.h).
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#endif

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/cudnn_ops.h"
#include "cuda/device_allocator.h"
#include "cuda/emu/runtime_counters.h"
#include "cuda/emu/standin.h"
#include "host/backend/backend.h"
#include "host/backend/lstm_types.h"
#include "tests/support/error_of.h"

namespace tessera {
namespace {

Tensor uniform(const Shape& s, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::host(s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

void expect_close(const Tensor& want, const Tensor& got, float tol, const std::string& what) {
  ASSERT_EQ(want.shape(), got.shape()) << what;
  const float* w = want.data<float>();
  const float* g = got.data<float>();
  int bad = 0;
  for (int64_t i = 0; i < want.numel() && bad < 5; ++i)
    if (!(std::fabs(w[i] - g[i]) <= tol * (1.f + std::fabs(w[i])))) {
      ADD_FAILURE() << what << "[" << i << "]: want " << w[i] << ", got " << g[i];
      ++bad;
    }
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess); }
  ~Stream() { (void)cudaStreamDestroy(s); }
};

// ---- the caching allocator on the emulated runtime
// -----------------------------------------------

TEST(EmuCudaRecovery, AFailingCudaMallocReleasesTheCacheAndRetriesOnce) {
  auto a = cuda::make_device_allocator(0, size_t{64} << 20);
  Stream st;
  a->free(a->allocate(size_t{1} << 20, st.s));  // 1 MiB cached
  ASSERT_EQ(a->cached_bytes(), size_t{1} << 20);
  emu::reset_runtime_counters();
  emu::fail_next_device_allocations(1);  // the device is "full" once
  const auto b = a->allocate(size_t{3} << 20, st.s);
  EXPECT_NE(b.ptr, nullptr);
  emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.device_frees, 1u) << "the cached block went back before the retry\n" << c.describe();
  EXPECT_EQ(c.device_allocations, 1u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind["cudaDeviceSynchronize"], 1u) << c.describe();
  EXPECT_EQ(a->cached_bytes(), 0u);
  EXPECT_EQ(a->stats().raw_frees, 1);
  EXPECT_EQ(a->stats().bytes_reserved, 4 << 20);
  // Failing twice (the try and the retry): an Error(Backend) naming the device and the size.
  emu::fail_next_device_allocations(2);
  const std::string what =
      test::error_of_kind(ErrorKind::Backend, [&] { (void)a->allocate(size_t{5} << 20, st.s); });
  EXPECT_NE(what.find("out of device memory on cuda:0"), std::string::npos) << what;
  EXPECT_NE(what.find("5242880 bytes"), std::string::npos) << what;
  emu::fail_next_device_allocations(0);
  a->free(b);
}

TEST(EmuCudaRecovery, OverItsCapTheCacheGivesBackOnlyBlocksItsStreamHasRunPast) {
  auto a = cuda::make_device_allocator(0, size_t{1} << 20);
  EXPECT_EQ(a->max_cached_bytes(), size_t{1} << 20);
  Stream st;
  std::vector<cuda::CachingAllocator::Block> blocks;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(a->allocate(size_t{512} << 10, st.s));
    // Queued work that still uses the block when it is freed.
    ASSERT_EQ(cudaMemsetAsync(blocks.back().ptr, i, size_t{512} << 10, st.s), cudaSuccess);
  }
  emu::reset_runtime_counters();
  for (const auto& b : blocks) a->free(b);
  emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.device_frees, 0u) << "the memsets have not run: nothing may go back\n"
                                << c.describe();
  EXPECT_EQ(c.synchronisations, 0u) << c.describe();
  EXPECT_EQ(a->cached_bytes(), size_t{3} << 19);
  // A later free over the cap asks the fence again; the emulated runtime runs the stream's work up
  // to it (a second query), so the blocks it covers go back until the cache is under the cap.
  a->free(a->allocate(100, st.s));
  c = emu::runtime_counters();
  EXPECT_GE(c.device_frees, 1u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind["cudaDeviceSynchronize"], 0u) << c.describe();
  EXPECT_EQ(c.synchronisations_by_kind["cudaStreamSynchronize"], 0u) << c.describe();
  EXPECT_LE(a->cached_bytes(), a->max_cached_bytes());
  EXPECT_EQ(static_cast<size_t>(a->stats().bytes_reserved), a->cached_bytes());
}

// ---- the cuDNN convolution's fallback algorithm
// --------------------------------------------------

struct ConvCase {
  std::unique_ptr<Backend> dev = make_backend("cuda-emu");
  std::unique_ptr<Backend> host = make_backend("host");
  Conv2dParams p;
  Tensor x, w, dy;  // host
  ConvCase(int64_t r, int64_t stride) {
    std::mt19937 rng(5);
    p.stride_h = p.stride_w = stride;
    p.pad_h = p.pad_w = r / 2;
    x = uniform({2, 3, 9, 9}, rng);
    w = uniform({4, 3, r, r}, rng, -0.5f, 0.5f);
    dy = uniform(conv2d_output_shape(p, x.shape(), w.shape()), rng);
  }
  Shape y_shape() const { return conv2d_output_shape(p, x.shape(), w.shape()); }
  Tensor host_forward() {
    Tensor y = Tensor::host(y_shape());
    host->conv2d_forward(p, x, w, Tensor(), y);
    return y;
  }
};

TEST(EmuCudaRecovery, AConvolutionThatFailsWithItsChosenAlgorithmRetriesWithTheDefaultOne) {
  ConvCase cc(3, 1);
  const Tensor xd = cc.dev->to_device(cc.x), wd = cc.dev->to_device(cc.w);
  const Tensor dyd = cc.dev->to_device(cc.dy);
  Tensor yd = cc.dev->empty(cc.y_shape());
  Tensor dxd = cc.dev->empty(cc.x.shape()), dwd = cc.dev->empty(cc.w.shape()), none;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the uploads ran on the backend's stream
  Stream st;
  cuda::CudnnOps ops(0, st.s);
  const cuda::ConvPlan& chosen = ops.plan_of(cc.p, cc.x.shape(), cc.w.shape());
  ASSERT_NE(chosen.fwd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM)
      << "the case needs a measured algorithm other than the default";
  ASSERT_NE(chosen.bwd_filter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);

  // The chosen forward algorithm is refused for this shape now: one retry with the default.
  emu::fail_next_calls("cudnnConvolutionForward", CUDNN_STATUS_NOT_SUPPORTED);
  ops.conv2d_forward(cc.p, xd, wd, Tensor(), yd);
  EXPECT_EQ(ops.fallbacks(), 1u);
  EXPECT_EQ(ops.plan_of(cc.p, cc.x.shape(), cc.w.shape()).fwd,
            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM)
      << "the plan keeps the default algorithm";
  ASSERT_EQ(cudaStreamSynchronize(st.s), cudaSuccess);
  expect_close(cc.host_forward(), cc.dev->to_host(yd), 1e-4f, "y after the fallback");
  ops.conv2d_forward(cc.p, xd, wd, Tensor(), yd);  // no failure: no second fallback
  EXPECT_EQ(ops.fallbacks(), 1u);

  // The backward filter call fails (an execution failure): its default algorithm takes over.
  emu::fail_next_calls("cudnnConvolutionBackwardFilter", CUDNN_STATUS_EXECUTION_FAILED);
  ops.conv2d_backward(cc.p, xd, wd, dyd, dxd, dwd, none);
  EXPECT_EQ(ops.fallbacks(), 2u);
  EXPECT_EQ(ops.plan_of(cc.p, cc.x.shape(), cc.w.shape()).bwd_filter,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
  ASSERT_EQ(cudaStreamSynchronize(st.s), cudaSuccess);
  Tensor dx = Tensor::host(cc.x.shape()), dw = Tensor::host(cc.w.shape()), hnone;
  cc.host->conv2d_backward(cc.p, cc.x, cc.w, cc.dy, dx, dw, hnone);
  expect_close(dx, cc.dev->to_host(dxd), 1e-4f, "dx");
  expect_close(dw, cc.dev->to_host(dwd), 1e-4f, "dw after the fallback");

  // The default algorithm failing too is an Error(Backend) naming both failures.
  emu::fail_next_calls("cudnnConvolutionForward", CUDNN_STATUS_NOT_SUPPORTED, 2);
  const std::string what = test::error_of_kind(
      ErrorKind::Backend, [&] { ops.conv2d_forward(cc.p, xd, wd, Tensor(), yd); });
  EXPECT_NE(what.find("with the default algorithm"), std::string::npos) << what;
  emu::fail_next_calls("cudnnConvolutionForward", 0, 0);
}

TEST(EmuCudaRecovery, AConvolutionWhoseWorkspaceCannotBeAllocatedRunsWithTheDefaultAlgorithm) {
  // A shape whose measured forward algorithm needs a workspace (3x3, stride 2: no Winograd).
  for (int64_t stride : {2, 1}) {
    ConvCase cc(3, stride);
    Stream st;
    cuda::CudnnOps ops(0, st.s);
    const cuda::ConvPlan& chosen = ops.plan_of(cc.p, cc.x.shape(), cc.w.shape());
    if (chosen.fwd_bytes == 0) continue;
    const Tensor xd = cc.dev->to_device(cc.x), wd = cc.dev->to_device(cc.w);
    Tensor yd = cc.dev->empty(cc.y_shape());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    emu::fail_next_device_allocations(1);  // the workspace's cudaMalloc
    ops.conv2d_forward(cc.p, xd, wd, Tensor(), yd);
    emu::fail_next_device_allocations(0);
    EXPECT_EQ(ops.fallbacks(), 1u);
    const cuda::ConvPlan& now = ops.plan_of(cc.p, cc.x.shape(), cc.w.shape());
    EXPECT_EQ(now.fwd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
    EXPECT_EQ(now.fwd_bytes, 0u);
    ASSERT_EQ(cudaStreamSynchronize(st.s), cudaSuccess);
    expect_close(cc.host_forward(), cc.dev->to_host(yd), 1e-4f, "y");
    return;
  }
  FAIL() << "no case with a forward workspace: the test needs another shape";
}

// ---- the LSTM's aligned staging
// ------------------------------------------------------------------

// Rows [1, T+1) of a [T+1, ...] device tensor: a view 1 row in, at an offset that is not a
// multiple of 16 bytes when a row is not.
Tensor shifted_view(Backend& be, const Tensor& host_rows) {
  Shape big = host_rows.shape();
  big[0] += 1;
  Tensor h = Tensor::host(big);
  const int64_t row = host_rows.numel() / host_rows.dim(0);
  for (int64_t i = 0; i < host_rows.numel(); ++i)
    h.data<float>()[row + i] = host_rows.data<float>()[i];
  return be.to_device(h).rows(1, big[0]);
}

TEST(EmuCudaRecovery, TheLstmStagesUnalignedViewsThroughAlignedScratch) {
  auto dev = make_backend("cuda-emu");
  auto host = make_backend("host");
  LstmConfig c;
  c.input_size = 5;
  c.hidden_size = 3;
  c.num_layers = 1;
  const int64_t t = 4, b = 2, p = lstm_weight_count(c);
  std::mt19937 rng(3);
  const Tensor x = uniform({t, b, 5}, rng), w = uniform({p}, rng, -0.4f, 0.4f);
  const Tensor h0 = uniform({1, b, 3}, rng), dy = uniform({t, b, 3}, rng);

  auto run = [&](Backend& be, bool views, bool count) {
    LstmIo io;
    io.x = views ? shifted_view(be, x) : be.to_device(x);
    io.h0 = views ? shifted_view(be, h0) : be.to_device(h0);
    io.w = be.to_device(w);
    io.y = views ? shifted_view(be, Tensor::host({t, b, 3})) : be.empty({t, b, 3});
    io.hn = views ? shifted_view(be, Tensor::host({1, b, 3})) : be.empty({1, b, 3});
    LstmGrads g;
    g.dy = views ? shifted_view(be, dy) : be.to_device(dy);
    g.dx = views ? shifted_view(be, Tensor::host({t, b, 5})) : be.empty({t, b, 5});
    g.dw = be.empty({p});
    if (views) {
      EXPECT_NE(reinterpret_cast<uintptr_t>(io.x.raw()) % 16, 0u);
      EXPECT_NE(reinterpret_cast<uintptr_t>(io.y.raw()) % 16, 0u);
    }
    (void)be.to_host(io.w);  // uploads done before counting
    if (count) emu::reset_runtime_counters();
    be.lstm_forward(c, LstmMode::Training, io);
    be.lstm_backward(c, io, g);
    const uint64_t d2d = emu::runtime_counters().d2d_copies;
    return std::make_tuple(be.to_host(io.y), be.to_host(io.hn), be.to_host(g.dx), be.to_host(g.dw),
                           d2d);
  };
  const auto [yh, hnh, dxh, dwh, unused] = run(*host, false, false);
  (void)unused;
  // Aligned tensors go to cuDNN as they are: no staging copy.
  const auto [ya, hna, dxa, dwa, copies_aligned] = run(*dev, false, true);
  EXPECT_EQ(copies_aligned, 0u);
  // Unaligned views: copied in (x, h0, dy) and out (y, hn, dx) through aligned scratch.
  const auto [yv, hnv, dxv, dwv, copies_views] = run(*dev, true, true);
  EXPECT_GE(copies_views, 6u) << "unaligned operands must reach cuDNN through aligned scratch";
  expect_close(yh, yv, 1e-4f, "y");
  expect_close(hnh, hnv, 1e-4f, "hn");
  expect_close(dxh, dxv, 1e-4f, "dx");
  expect_close(dwh, dwv, 1e-4f, "dw");
}

}  // namespace
}  // namespace tessera
