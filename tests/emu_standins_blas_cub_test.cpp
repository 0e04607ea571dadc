// The cuBLAS and CUB/Thrust stand-ins of the emulation build (cuda/emu/include/cublas_v2.h,
// cub/, thrust/; cuda/emu/standins/cublas.cpp, cub.cpp): results against plain host loops and
// the standard library, and for every argument rule they check, a call that breaks it, gets the
// vendor's status (or Thrust's exception), queues nothing, and is named by last_rule_failure().
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cublas_v2.h>
#include <thrust/execution_policy.h>
#include <thrust/sequence.h>
#include <thrust/system/cuda/execution_policy.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/cublas_gemm.h"
#include "cuda/emu/device_memory.h"
#include "cuda/emu/runtime_counters.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cub_standin.h"
#include "host/core/error.h"
#include "tests/support/error_of.h"

namespace tessera::emu_test {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

template <typename T>
DeviceArray<T> device_from(const std::vector<T>& v) {
  DeviceArray<T> d(v.size(), ElementKind::Bytes, "test data");
  if (!v.empty()) std::memcpy(d.data(), v.data(), v.size() * sizeof(T));
  return d;
}
template <typename T>
std::vector<T> host_copy(const DeviceArray<T>& d) {
  return std::vector<T>(d.data(), d.data() + d.size());
}
void sync() {
  ASSERT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
}

// The last broken rule names `rule` (a phrase of it).
#define EXPECT_RULE(rule)                                           \
  EXPECT_NE(emu::last_rule_failure().find(rule), std::string::npos) \
      << "last rule failure: \"" << emu::last_rule_failure() << "\", expected \"" << rule << "\""

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(gen);
  return v;
}

// ---- cuBLAS: results ----------------------------------------------------------------------------

// Column-major C = alpha op(A) op(B) + beta C by the definition, in double; beta == 0 ignores C.
void reference_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const std::vector<float>& a, int64_t lda, const std::vector<float>& b,
                    int64_t ldb, float beta, std::vector<float>& c, int64_t ldc) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p) {
        const float av = ta ? a[p + i * lda] : a[i + p * lda];
        const float bv = tb ? b[j + p * ldb] : b[p + j * ldb];
        sum += static_cast<double>(av) * bv;
      }
      float& cv = c[i + j * ldc];
      cv = static_cast<float>(alpha * sum + (beta == 0.f ? 0.0 : static_cast<double>(beta) * cv));
    }
}

struct Handle {
  cublasHandle_t h = nullptr;
  Handle() { EXPECT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS); }
  ~Handle() { EXPECT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS); }
};

TEST(EmuStandinCublas, SgemmMatchesTheColumnMajorDefinitionForEveryTransposeAndLeadingDim) {
  Handle handle;
  const int64_t m = 7, n = 5, k = 9;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.f, 0.5f}) {
        const int64_t rows_a = ta ? k : m, cols_a = ta ? m : k;
        const int64_t rows_b = tb ? n : k, cols_b = tb ? k : n;
        const int64_t lda = rows_a + 3, ldb = rows_b + 2, ldc = m + 4;  // padded columns
        std::vector<float> a = random_floats(lda * cols_a, 1 + ta),
                           b = random_floats(ldb * cols_b, 3 + tb);
        std::vector<float> c = random_floats(ldc * n, 5);
        if (beta == 0.f)  // cuBLAS: beta == 0 does not read C, so NaN there must not survive
          for (float& x : c) x = std::numeric_limits<float>::quiet_NaN();
        auto da = device_from(a), db = device_from(b), dc = device_from(c);
        const float alpha = 1.5f;
        ASSERT_EQ(
            cublasSgemm_64(handle.h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                           m, n, k, &alpha, da.data(), lda, db.data(), ldb, &beta, dc.data(), ldc),
            CUBLAS_STATUS_SUCCESS)
            << emu::last_rule_failure();
        sync();
        reference_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        const std::vector<float> got = host_copy(dc);
        for (int64_t j = 0; j < n; ++j)
          for (int64_t i = 0; i < ldc; ++i) {
            const int64_t at = i + j * ldc;
            if (i < m)
              EXPECT_NEAR(got[at], c[at], 1e-5f) << "ta " << ta << " tb " << tb << " beta " << beta
                                                 << " C(" << i << ", " << j << ")";
            else  // padding rows between columns are not written
              EXPECT_TRUE(std::memcmp(&got[at], &c[at], sizeof(float)) == 0) << "padding " << at;
          }
      }
}

TEST(EmuStandinCublas, DevicePointerModeReadsScalarsFromDeviceMemoryAndKZeroScalesC) {
  Handle handle;
  ASSERT_EQ(cublasSetPointerMode(handle.h, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  std::vector<float> a = random_floats(6, 7), b = random_floats(6, 8), c = random_floats(4, 9);
  auto da = device_from(a), db = device_from(b), dc = device_from(c);
  auto scalars = device_from(std::vector<float>{2.f, -1.f});
  ASSERT_EQ(cublasSgemm_64(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, scalars.data(), da.data(),
                           2, db.data(), 3, scalars.data() + 1, dc.data(), 2),
            CUBLAS_STATUS_SUCCESS);
  sync();
  std::vector<float> expect = c;
  reference_gemm(false, false, 2, 2, 3, 2.f, a, 2, b, 3, -1.f, expect, 2);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(dc[i], expect[i], 1e-5f);
  // K = 0: no products, C = beta * C (here beta = -1).
  ASSERT_EQ(cublasSgemm_64(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, scalars.data(), da.data(),
                           2, db.data(), 1, scalars.data() + 1, dc.data(), 2),
            CUBLAS_STATUS_SUCCESS);
  sync();
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(dc[i], -expect[i], 1e-6f);
}

// ---- cuBLAS: every rule, broken once ------------------------------------------------------------

TEST(EmuStandinCublas, HandleRulesReturnNotInitializedOrInvalidValue) {
  EXPECT_EQ(cublasCreate(nullptr), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_RULE("cublasCreate: handle (the output pointer) is not null");
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  const float one = 1.f;
  EXPECT_EQ(cublasSetStream(h, nullptr), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("cublasSetStream: handle created by cublasCreate and not destroyed (handle");
  EXPECT_EQ(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("cublasSetPointerMode: handle created by cublasCreate and not destroyed");
  EXPECT_EQ(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("cublasSetMathMode: handle created by cublasCreate and not destroyed");
  EXPECT_EQ(cublasSgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, 0, 0, 0, &one, nullptr, 1, nullptr, 1, &one,
                           nullptr, 1),
            CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("was destroyed");
  EXPECT_EQ(cublasDestroy(h), CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("cublasDestroy: handle created by cublasCreate and not destroyed");
  int never = 0;
  EXPECT_EQ(cublasSetStream(reinterpret_cast<cublasHandle_t>(&never), nullptr),
            CUBLAS_STATUS_NOT_INITIALIZED);
  EXPECT_RULE("was never created");
}

TEST(EmuStandinCublas, ModeRulesReturnInvalidValue) {
  Handle handle;
  EXPECT_EQ(cublasSetPointerMode(handle.h, static_cast<cublasPointerMode_t>(2)),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_RULE("mode is CUBLAS_POINTER_MODE_HOST or _DEVICE");
  EXPECT_EQ(cublasSetMathMode(handle.h, static_cast<cublasMath_t>(7)), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_RULE("mode is a cublasMath_t the library defines");
  EXPECT_EQ(cublasSetMathMode(handle.h, static_cast<cublasMath_t>(
                                            CUBLAS_TF32_TENSOR_OP_MATH |
                                            CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
            CUBLAS_STATUS_SUCCESS);
}

// One GEMM call with valid arguments (m = 3, n = 2, k = 4, no transposes) that a case then breaks
// in one place; C holds a sentinel that must survive a refused call (nothing was queued).
struct GemmCase {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int64_t m = 3, n = 2, k = 4, lda = 3, ldb = 4, ldc = 3;
  const float* alpha = &one;
  const float* beta = &one;
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;
  static constexpr float one = 1.f;
};

void expect_refused(const GemmCase& g, cublasHandle_t h, const char* rule, const char* what,
                    DeviceArray<float>& c, cublasStatus_t status = CUBLAS_STATUS_INVALID_VALUE) {
  std::fill(c.data(), c.data() + c.size(), 42.f);
  EXPECT_EQ(cublasSgemm_64(h, g.ta, g.tb, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta,
                           g.c, g.ldc),
            status)
      << what;
  EXPECT_RULE(rule) << " (" << what << ")";
  sync();
  for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], 42.f) << what << ": work was queued";
}

TEST(EmuStandinCublas, EveryDocumentedGemmRuleReturnsInvalidValueAndQueuesNothing) {
  Handle handle;
  DeviceArray<float> a(12, ElementKind::F32, "A"), b(8, ElementKind::F32, "B"),
      c(6, ElementKind::F32, "C");
  GemmCase ok;
  ok.a = a.data(), ok.b = b.data(), ok.c = c.data();
  struct Break {
    const char* what;
    const char* rule;
    void (*apply)(GemmCase&);
  };
  static const float* null_scalar = nullptr;
  const Break breaks[] = {
      {"transa 5", "transa is CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C",
       [](GemmCase& g) { g.ta = static_cast<cublasOperation_t>(5); }},
      {"transb CONJG", "transb is CUBLAS_OP_N, CUBLAS_OP_T or CUBLAS_OP_C",
       [](GemmCase& g) { g.tb = CUBLAS_OP_CONJG; }},
      {"m < 0", "m, n, k >= 0", [](GemmCase& g) { g.m = -1; }},
      {"n < 0", "m, n, k >= 0", [](GemmCase& g) { g.n = -2; }},
      {"k < 0", "m, n, k >= 0", [](GemmCase& g) { g.k = -3; }},
      {"lda < m (N)", "lda >= max(1, m) when transa is N, else max(1, k)",
       [](GemmCase& g) { g.lda = 2; }},
      {"lda < k (T)", "lda >= max(1, m) when transa is N, else max(1, k)",
       [](GemmCase& g) {
         g.ta = CUBLAS_OP_T;
         g.lda = 3;
       }},
      {"ldb < k (N)", "ldb >= max(1, k) when transb is N, else max(1, n)",
       [](GemmCase& g) { g.ldb = 3; }},
      {"ldb < n (T)", "ldb >= max(1, k) when transb is N, else max(1, n)",
       [](GemmCase& g) {
         g.tb = CUBLAS_OP_T;
         g.ldb = 1;
       }},
      {"ldc < m", "ldc >= max(1, m)", [](GemmCase& g) { g.ldc = 2; }},
      {"ldc 0 with m 0", "ldc >= max(1, m)",
       [](GemmCase& g) {
         g.m = 0;
         g.ldc = 0;
       }},
      {"alpha null", "alpha and beta are not null", [](GemmCase& g) { g.alpha = null_scalar; }},
      {"beta null", "alpha and beta are not null", [](GemmCase& g) { g.beta = null_scalar; }},
      {"C null", "C is not null when it is written", [](GemmCase& g) { g.c = nullptr; }},
  };
  for (const Break& br : breaks) {
    GemmCase g = ok;
    br.apply(g);
    expect_refused(g, handle.h, br.rule, br.what, c);
  }
  // The valid call itself is accepted (so each refusal above is the broken rule's doing).
  std::fill(c.data(), c.data() + c.size(), 0.f);
  EXPECT_EQ(cublasSgemm_64(handle.h, ok.ta, ok.tb, ok.m, ok.n, ok.k, ok.alpha, ok.a, ok.lda, ok.b,
                           ok.ldb, ok.beta, ok.c, ok.ldc),
            CUBLAS_STATUS_SUCCESS);
  sync();
}

TEST(EmuStandinCublas, ScalarsMustLiveWhereThePointerModeSays) {
  Handle handle;
  DeviceArray<float> a(12, ElementKind::F32, "A"), b(8, ElementKind::F32, "B"),
      c(6, ElementKind::F32, "C");
  auto device_one = device_from(std::vector<float>{1.f});
  GemmCase g;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  const char* rule = "alpha and beta are host pointers in host pointer mode, device pointers in";
  g.alpha = device_one.data();  // host mode, device alpha
  expect_refused(g, handle.h, rule, "device alpha in host mode", c);
  ASSERT_EQ(cublasSetPointerMode(handle.h, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  g.alpha = device_one.data();
  g.beta = &GemmCase::one;  // device mode, host beta
  expect_refused(g, handle.h, rule, "host beta in device mode", c);
}

TEST(EmuStandinCublas, EveryOperandsReferencedRangeMustBeDeviceMemory) {
  Handle handle;
  // A is 3 x 4 with lda 5: it spans 5 * 3 + 3 = 18 floats; 17 are too few.
  DeviceArray<float> a17(17, ElementKind::F32, "A"), a18(18, ElementKind::F32, "A"),
      b(8, ElementKind::F32, "B"), c(6, ElementKind::F32, "C"), c5(5, ElementKind::F32, "C");
  std::vector<float> host_b(8);
  GemmCase g;
  g.lda = 5, g.a = a17.data(), g.b = b.data(), g.c = c.data();
  expect_refused(g, handle.h, "A's referenced range (lda * (cols - 1) + rows) is device memory",
                 "A one float short", c);
  g.a = a18.data();
  g.b = host_b.data();
  expect_refused(g, handle.h, "B's referenced range (ldb * (cols - 1) + rows) is device memory",
                 "B in host memory", c);
  g.b = b.data();
  g.c = c5.data();
  expect_refused(g, handle.h, "C's referenced range (ldc * (n - 1) + m) is device memory",
                 "C one float short", c);
  g.c = c.data();
  EXPECT_EQ(cublasSgemm_64(handle.h, g.ta, g.tb, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb,
                           g.beta, g.c, g.ldc),
            CUBLAS_STATUS_SUCCESS);
  sync();
}

// A stream of `device`; the current device is 0 again afterwards.
cudaStream_t stream_on(int device) {
  cudaStream_t s = nullptr;
  EXPECT_EQ(cudaSetDevice(device), cudaSuccess);
  EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
  return s;
}

TEST(EmuStandinCublas, TheHandleIsUsedOnItsDeviceWithAStreamAndMemoryOfThatDevice) {
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  ASSERT_GE(devices, 2) << "the emulator's default is two devices (TESSERA_EMU_DEVICE_COUNT)";
  Handle handle;  // on device 0
  DeviceArray<float> a(12, ElementKind::F32, "A"), b(8, ElementKind::F32, "B"),
      c(6, ElementKind::F32, "C");
  GemmCase g;
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  expect_refused(g, handle.h, "the current device is the one the handle was created on",
                 "called with device 1 current", c, CUBLAS_STATUS_EXECUTION_FAILED);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t other = stream_on(1);
  ASSERT_EQ(cublasSetStream(handle.h, other), CUBLAS_STATUS_SUCCESS);
  expect_refused(g, handle.h, "the handle's stream exists and belongs to the handle's device",
                 "stream of device 1", c, CUBLAS_STATUS_EXECUTION_FAILED);
  ASSERT_EQ(cublasSetStream(handle.h, nullptr), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamDestroy(other), cudaSuccess);
  void* on_1 = nullptr;
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&on_1, 12 * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  g.a = static_cast<const float*>(on_1);
  expect_refused(g, handle.h, "A, B and C are memory of the handle's device (A is on device 1",
                 "A on device 1", c);
  ASSERT_EQ(cudaFree(on_1), cudaSuccess);
}

TEST(EmuStandinCublas, AnOperandReleasedBeforeTheQueuedProductRanIsReportedAtTheSynchronisation) {
  Handle handle;
  cudaStream_t s = stream_on(0);
  ASSERT_EQ(cublasSetStream(handle.h, s), CUBLAS_STATUS_SUCCESS);
  DeviceArray<float> a(6, ElementKind::F32, "A"), c(4, ElementKind::F32, "C");
  auto b = std::make_unique<DeviceArray<float> >(6, ElementKind::F32, "B");
  std::fill(c.data(), c.data() + 4, 7.f);
  const float one = 1.f;
  ASSERT_EQ(cublasSgemm_64(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, a.data(), 2,
                           b->data(), 3, &one, c.data(), 2),
            CUBLAS_STATUS_SUCCESS);
  b.reset();  // released while the product is still queued
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorLaunchFailure);
  EXPECT_NE(emu::last_deferred_failure().find("stay allocated until the queued work has run (B "
                                              "was released before the work ran)"),
            std::string::npos)
      << emu::last_deferred_failure();
  EXPECT_RULE("cublasSgemm_64: A, B, C (and device alpha, beta) stay allocated");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i], 7.f) << "the product ran on released memory";
  (void)cudaGetLastError();
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// tessera's own cuBLAS code (cuda/cublas_gemm.cpp), as CudaBackend::gemm_impl runs it: a handle on
// the backend's stream, row-major operands handed to column-major cuBLAS with swapped operands.
TEST(EmuStandinCublas, TesserasRowMajorGemmRunsThroughTheStandIn) {
  cudaStream_t s = stream_on(0);
  {
    const cuda::CublasHandle handle = cuda::make_cublas_handle(s);
    const int64_t m = 4, n = 3, k = 5;
    for (Transpose ta : {Transpose::No, Transpose::Yes})
      for (Transpose tb : {Transpose::No, Transpose::Yes}) {
        const bool at = ta == Transpose::Yes, bt = tb == Transpose::Yes;
        // Row-major storage: A [m, k] or [k, m], B [k, n] or [n, k], each row padded by 2.
        const int64_t lda = (at ? m : k) + 2, ldb = (bt ? k : n) + 2, ldc = n + 1;
        std::vector<float> a = random_floats((at ? k : m) * lda, 31),
                           b = random_floats((bt ? n : k) * ldb, 32);
        std::vector<float> c = random_floats(m * ldc, 33);
        auto da = device_from(a), db = device_from(b), dc = device_from(c);
        cuda::gemm_row_major(handle.get(), s, ta, tb, m, n, k, 0.5f, da.data(), lda, db.data(), ldb,
                             2.f, dc.data(), ldc);
        ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < k; ++p)
              sum += static_cast<double>(at ? a[p * lda + i] : a[i * lda + p]) *
                     (bt ? b[j * ldb + p] : b[p * ldb + j]);
            EXPECT_NEAR(dc[i * ldc + j], 0.5 * sum + 2.0 * c[i * ldc + j], 1e-5)
                << "ta " << at << " tb " << bt << " C[" << i << ", " << j << "]";
          }
      }
    // K = 0: C = beta * C through the scale kernel on the same stream, nothing for cuBLAS.
    auto dc = device_from(std::vector<float>{1.f, 2.f, 3.f, 4.f});
    cuda::gemm_row_major(handle.get(), s, Transpose::No, Transpose::No, 2, 2, 0, 1.f, nullptr, 1,
                         nullptr, 2, 3.f, dc.data(), 2);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(dc[i], 3.f * static_cast<float>(i + 1));
  }
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST(EmuStandinCublas, SgemmIsQueuedOnTheHandlesStreamInStreamOrder) {
  Handle handle;
  cudaStream_t s = stream_on(0);
  ASSERT_EQ(cublasSetStream(handle.h, s), CUBLAS_STATUS_SUCCESS);
  std::vector<float> a = random_floats(6, 21), b = random_floats(6, 22);
  auto da = device_from(a), db = device_from(b);
  DeviceArray<float> dc(4, ElementKind::F32, "C");
  std::fill(dc.data(), dc.data() + 4, 7.f);
  const float alpha = 1.f, beta = 0.f;
  ASSERT_EQ(cublasSgemm_64(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, da.data(), 2,
                           db.data(), 3, &beta, dc.data(), 2),
            CUBLAS_STATUS_SUCCESS);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(dc[i], 7.f) << "ran before its stream was synchronised";
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  std::vector<float> expect(4, 7.f);
  reference_gemm(false, false, 2, 2, 3, alpha, a, 2, b, 3, beta, expect, 2);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(dc[i], expect[i], 1e-5f);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// ---- CUB: results -------------------------------------------------------------------------------

// Runs a CUB call the way callers do: query the size, allocate it, call again.
template <typename Call>
void with_temp_storage(Call call) {
  size_t bytes = 0;
  ASSERT_EQ(call(nullptr, bytes), cudaSuccess);
  ASSERT_GT(bytes, 0u);
  DeviceArray<unsigned char> temp(bytes, ElementKind::Bytes, "temp");
  ASSERT_EQ(call(temp.data(), bytes), cudaSuccess) << emu::last_rule_failure();
  sync();
}

TEST(EmuStandinCub, SortPairsIsAStableSortByTheKeysBitsInRange) {
  std::mt19937 gen(11);
  std::uniform_int_distribution<int64_t> key(-40, 200);
  const int n = 500;
  std::vector<int64_t> keys(n), values(n);
  for (int i = 0; i < n; ++i) keys[i] = key(gen), values[i] = i;
  keys[3] = (int64_t{1} << 40) + 5;  // bits outside [begin, end) must not take part
  for (const auto& [begin, end] :
       {std::pair{0, 64}, std::pair{0, 6}, std::pair{2, 9}, std::pair{5, 5}}) {
    auto dk = device_from(keys), dv = device_from(values);
    DeviceArray<int64_t> ok(n, ElementKind::I64, "keys out"), ov(n, ElementKind::I64, "values out");
    with_temp_storage([&](void* t, size_t& bytes) {
      return cub::DeviceRadixSort::SortPairs(t, bytes, dk.data(), ok.data(), dv.data(), ov.data(),
                                             n, begin, end, nullptr);
    });
    // CUB's radix form of a signed key flips its sign bit; the sort orders by the bits in range.
    const auto digit = [&](int64_t k) {
      const uint64_t u = static_cast<uint64_t>(k) ^ (uint64_t{1} << 63);
      const int w = end - begin;
      return w == 0 ? 0 : (u >> begin) & (w == 64 ? ~uint64_t{0} : (uint64_t{1} << w) - 1);
    };
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return digit(keys[a]) < digit(keys[b]); });
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(ok[i], keys[order[i]]) << "bits [" << begin << ", " << end << ") at " << i;
      ASSERT_EQ(ov[i], values[order[i]]) << "bits [" << begin << ", " << end << ") at " << i;
    }
  }
  // A full-range sort of signed keys is the numeric order.
  auto dk = device_from(keys), dv = device_from(values);
  DeviceArray<int64_t> ok(n, ElementKind::I64, "keys out"), ov(n, ElementKind::I64, "values out");
  with_temp_storage([&](void* t, size_t& bytes) {
    return cub::DeviceRadixSort::SortPairs(t, bytes, dk.data(), ok.data(), dv.data(), ov.data(), n);
  });
  EXPECT_TRUE(std::is_sorted(ok.data(), ok.data() + n));
  EXPECT_EQ(ok[0], *std::min_element(keys.begin(), keys.end()));
  EXPECT_EQ(ok[n - 1], keys[3]);
}

TEST(EmuStandinCub, FloatKeysSortNumericallyWithNegativeAndPositiveZeroEqual) {
  const std::vector<float> keys = {2.5f, -0.f, -3.f, 0.f, 1e-30f, -1e-30f, 7.f, -0.f, -3.f, 0.5f};
  const int n = static_cast<int>(keys.size());
  std::vector<int32_t> values(n);
  std::iota(values.begin(), values.end(), 0);
  auto dk = device_from(keys);
  auto dv = device_from(values);
  DeviceArray<float> ok(n, ElementKind::F32, "keys out");
  DeviceArray<int32_t> ov(n, ElementKind::I32, "values out");
  with_temp_storage([&](void* t, size_t& bytes) {
    return cub::DeviceRadixSort::SortPairs(t, bytes, dk.data(), ok.data(), dv.data(), ov.data(), n);
  });
  std::vector<int32_t> order = values;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return keys[a] < keys[b]; });
  for (int i = 0; i < n; ++i) EXPECT_EQ(ov[i], order[i]) << i;  // -0 == +0: input order kept
}

TEST(EmuStandinCub, RunLengthEncodeAndExclusiveSumMatchTheStandardLibrary) {
  const std::vector<int64_t> in = {4, 4, 4, 7, 9, 9, 4, 1, 1, 1, 1};
  auto din = device_from(in);
  DeviceArray<int64_t> unique(in.size(), ElementKind::I64, "unique"),
      counts(in.size() + 1, ElementKind::I64, "counts"), runs(1, ElementKind::I64, "runs"),
      starts(in.size() + 1, ElementKind::I64, "starts");
  std::fill(counts.data(), counts.data() + counts.size(), 0);
  const int n = static_cast<int>(in.size());
  with_temp_storage([&](void* t, size_t& bytes) {
    return cub::DeviceRunLengthEncode::Encode(t, bytes, din.data(), unique.data(), counts.data(),
                                              runs.data(), n, nullptr);
  });
  const std::vector<int64_t> want_unique = {4, 7, 9, 4, 1}, want_counts = {3, 1, 2, 1, 4};
  ASSERT_EQ(runs[0], 5);
  for (size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(unique[r], want_unique[r]) << r;
    EXPECT_EQ(counts[r], want_counts[r]) << r;
  }
  with_temp_storage([&](void* t, size_t& bytes) {
    return cub::DeviceScan::ExclusiveSum(t, bytes, counts.data(), starts.data(), n + 1, nullptr);
  });
  std::vector<int64_t> want(in.size() + 1);
  std::exclusive_scan(counts.data(), counts.data() + n + 1, want.begin(), int64_t{0});
  for (int i = 0; i <= n; ++i) EXPECT_EQ(starts[i], want[i]) << i;
  // In place (d_in == d_out) is allowed and gives the same.
  with_temp_storage([&](void* t, size_t& bytes) {
    return cub::DeviceScan::ExclusiveSum(t, bytes, counts.data(), counts.data(), n + 1, nullptr);
  });
  for (int i = 0; i <= n; ++i) EXPECT_EQ(counts[i], want[i]) << i;
}

TEST(EmuStandinCub, ANullTempStorageOnlyAnswersTheSize) {
  auto dk = device_from(std::vector<int64_t>{3, 1, 2}),
       dv = device_from(std::vector<int64_t>{0, 1, 2});
  auto ok = device_from(std::vector<int64_t>{-9, -9, -9}),
       ov = device_from(std::vector<int64_t>{-9, -9, -9});
  size_t bytes = 0;
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(nullptr, bytes, dk.data(), ok.data(), dv.data(),
                                            ov.data(), 3),
            cudaSuccess);
  sync();
  EXPECT_GT(bytes, 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ok[i], -9);
    EXPECT_EQ(ov[i], -9);
  }
  // The size grows with the number of items (CUB sizes its buffers from num_items).
  size_t more = 0;
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(nullptr, more, dk.data(), ok.data(), dv.data(),
                                            ov.data(), 3000),
            cudaSuccess);
  EXPECT_GT(more, bytes);
}

// ---- CUB: every rule, broken once ---------------------------------------------------------------

struct SortArgs {
  DeviceArray<int64_t> keys{8, ElementKind::I64, "keys"}, keys_out{8, ElementKind::I64, "keys out"};
  DeviceArray<int64_t> values{8, ElementKind::I64, "values"},
      values_out{8, ElementKind::I64, "values out"};
  DeviceArray<unsigned char> temp{1 << 16, ElementKind::Bytes, "temp"};
  SortArgs() {
    for (int i = 0; i < 8; ++i)
      keys[i] = 8 - i, values[i] = i, keys_out[i] = -1, values_out[i] = -1;
  }
  cudaError_t sort(int n = 8, int begin = 0, int end = 64, const int64_t* kin = nullptr,
                   int64_t* kout = nullptr, void* t = nullptr, size_t bytes = 1 << 16) {
    return cub::DeviceRadixSort::SortPairs(t ? t : temp.data(), bytes, kin ? kin : keys.data(),
                                           kout ? kout : keys_out.data(), values.data(),
                                           values_out.data(), n, begin, end, nullptr);
  }
  void expect_untouched(const char* what) {
    sync();
    for (int i = 0; i < 8; ++i) ASSERT_EQ(keys_out[i], -1) << what << ": work was queued";
  }
};

TEST(EmuStandinCub, SortRulesReturnInvalidValueAndQueueNothing) {
  SortArgs s;
  EXPECT_EQ(s.sort(-1), cudaErrorInvalidValue);
  EXPECT_RULE("SortPairs: num_items >= 0");
  for (const auto& [begin, end] : {std::pair{-1, 8}, std::pair{9, 8}, std::pair{0, 65}}) {
    EXPECT_EQ(s.sort(8, begin, end), cudaErrorInvalidValue) << begin << ", " << end;
    EXPECT_RULE("SortPairs: 0 <= begin_bit <= end_bit <= 8 * sizeof(KeyT)");
  }
  EXPECT_EQ(s.sort(8, 0, 64, nullptr, nullptr, nullptr, 16), cudaErrorInvalidValue);
  EXPECT_RULE("SortPairs: temp_storage_bytes >= the size a null d_temp_storage call returns");
  std::vector<unsigned char> host_temp(1 << 16);
  EXPECT_EQ(s.sort(8, 0, 64, nullptr, nullptr, host_temp.data()), cudaErrorInvalidValue);
  EXPECT_RULE(
      "inputs, outputs and temp storage are device memory of sufficient size (d_temp_storage");
  std::vector<int64_t> host_keys(8);
  EXPECT_EQ(s.sort(8, 0, 64, host_keys.data()), cudaErrorInvalidValue);
  EXPECT_RULE("inputs, outputs and temp storage are device memory of sufficient size (d_keys_in");
  EXPECT_EQ(s.sort(9), cudaErrorInvalidValue);  // one item more than the arrays hold
  EXPECT_RULE("device memory of sufficient size (d_keys_in");
  EXPECT_EQ(s.sort(8, 0, 64, s.keys.data(), s.keys.data()), cudaErrorInvalidValue);
  EXPECT_RULE("the key and value input and output ranges do not overlap (not in place)");
  s.expect_untouched("refused sorts");
  ASSERT_EQ(s.sort(), cudaSuccess) << emu::last_rule_failure();
  sync();
  EXPECT_EQ(s.keys_out[0], 1);
}

TEST(EmuStandinCub, RunLengthEncodeRulesAtTheCallAndWhenTheWorkRuns) {
  auto in = device_from(std::vector<int64_t>{1, 2, 2, 3});
  DeviceArray<int64_t> unique(4, ElementKind::I64, "u"), counts(4, ElementKind::I64, "c"),
      unique2(2, ElementKind::I64, "u2"), runs(1, ElementKind::I64, "r");
  DeviceArray<unsigned char> temp(1 << 16, ElementKind::Bytes, "temp");
  size_t bytes = temp.size();
  const auto encode = [&](int64_t* u, int64_t* c, int64_t* r, int n, size_t b) {
    size_t tb = b;
    return cub::DeviceRunLengthEncode::Encode(temp.data(), tb, in.data(), u, c, r, n, nullptr);
  };
  EXPECT_EQ(encode(unique.data(), counts.data(), runs.data(), -4, bytes), cudaErrorInvalidValue);
  EXPECT_RULE("Encode: num_items >= 0");
  EXPECT_EQ(encode(unique.data(), counts.data(), runs.data(), 4, 8), cudaErrorInvalidValue);
  EXPECT_RULE("Encode: temp_storage_bytes >= the size");
  int64_t host_runs = 0;
  EXPECT_EQ(encode(unique.data(), counts.data(), &host_runs, 4, bytes), cudaErrorInvalidValue);
  EXPECT_RULE("device memory of sufficient size (d_num_runs_out");
  // Three runs do not fit in a two-element d_unique_out: found when the work runs.
  std::string message = test::error_of_kind(ErrorKind::Backend, [&] {
    (void)encode(unique2.data(), counts.data(), runs.data(), 4, bytes);
    sync();
  });
  EXPECT_NE(message.find("d_unique_out and d_counts_out hold one element per run (3 runs)"),
            std::string::npos)
      << message;
  message = test::error_of_kind(ErrorKind::Backend, [&] {
    (void)encode(unique.data(), unique.data(), runs.data(), 4, bytes);
    sync();
  });
  EXPECT_NE(message.find("d_in, d_unique_out, d_counts_out, d_num_runs_out do not overlap"),
            std::string::npos)
      << message;
}

TEST(EmuStandinCub, ExclusiveSumRules) {
  DeviceArray<int64_t> data(10, ElementKind::I64, "data");
  DeviceArray<unsigned char> temp(1 << 16, ElementKind::Bytes, "temp");
  std::fill(data.data(), data.data() + 10, 1);
  const auto scan = [&](const int64_t* in, int64_t* out, int n, size_t b) {
    return cub::DeviceScan::ExclusiveSum(temp.data(), b, in, out, n, nullptr);
  };
  EXPECT_EQ(scan(data.data(), data.data() + 5, -1, temp.size()), cudaErrorInvalidValue);
  EXPECT_RULE("ExclusiveSum: num_items >= 0");
  EXPECT_EQ(scan(data.data(), data.data() + 5, 5, 1), cudaErrorInvalidValue);
  EXPECT_RULE("ExclusiveSum: temp_storage_bytes >= the size");
  EXPECT_EQ(scan(data.data(), data.data() + 5, 6, temp.size()), cudaErrorInvalidValue);
  EXPECT_RULE("device memory of sufficient size (d_out");
  EXPECT_EQ(scan(data.data(), data.data() + 2, 5, temp.size()), cudaErrorInvalidValue);
  EXPECT_RULE("ExclusiveSum: d_in == d_out (in place) or the ranges do not overlap");
  sync();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(data[i], 1) << "work was queued";
}

TEST(EmuStandinCub, WorkRunsInStreamOrderAndTheStreamAndMemoryAreTheCurrentDevices) {
  SortArgs s;
  cudaStream_t stream = stream_on(0);
  size_t bytes = s.temp.size();
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(s.temp.data(), bytes, s.keys.data(), s.keys_out.data(),
                                            s.values.data(), s.values_out.data(), 8, 0, 64, stream),
            cudaSuccess);
  EXPECT_EQ(s.keys_out[0], -1) << "ran before its stream was synchronised";
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(s.keys_out[0], 1);
  cudaStream_t other = stream_on(1);
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(s.temp.data(), bytes, s.keys.data(), s.keys_out.data(),
                                            s.values.data(), s.values_out.data(), 8, 0, 64, other),
            cudaErrorInvalidResourceHandle);
  EXPECT_RULE("SortPairs: the stream exists and belongs to the current device");
  EXPECT_EQ(cub::DeviceScan::ExclusiveSum(s.temp.data(), bytes, s.keys.data(), s.keys_out.data(), 8,
                                          other),
            cudaErrorInvalidResourceHandle);
  EXPECT_RULE("ExclusiveSum: the stream exists and belongs to the current device");
  DeviceArray<int64_t> runs(1, ElementKind::I64, "runs");
  EXPECT_EQ(
      cub::DeviceRunLengthEncode::Encode(s.temp.data(), bytes, s.keys.data(), s.keys_out.data(),
                                         s.values_out.data(), runs.data(), 8, other),
      cudaErrorInvalidResourceHandle);
  EXPECT_RULE("Encode: the stream exists and belongs to the current device");
  const std::string message = test::error_of_kind(ErrorKind::Backend, [&] {
    thrust::sequence(thrust::cuda::par.on(other), s.keys_out.data(), s.keys_out.data() + 8,
                     int64_t{0});
  });
  EXPECT_NE(message.find("the stream exists and belongs to the current device"), std::string::npos)
      << message;
  void* on_1 = nullptr;
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&on_1, 8 * sizeof(int64_t)), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  EXPECT_EQ(s.sort(8, 0, 64, static_cast<const int64_t*>(on_1)), cudaErrorInvalidValue);
  EXPECT_RULE(
      "SortPairs: inputs, outputs and temp storage are memory of the current device "
      "(d_keys_in is on device 1");
  ASSERT_EQ(cudaFree(on_1), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(other), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(EmuStandinCub, TempStorageFreedBeforeTheQueuedWorkRanIsReportedAtTheSynchronisation) {
  SortArgs s;
  cudaStream_t stream = stream_on(0);
  auto temp = std::make_unique<DeviceArray<unsigned char> >(1 << 16, ElementKind::Bytes, "temp");
  size_t bytes = temp->size();
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(temp->data(), bytes, s.keys.data(), s.keys_out.data(),
                                            s.values.data(), s.values_out.data(), 8, 0, 64, stream),
            cudaSuccess);
  temp.reset();  // released while the sort is still queued
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorLaunchFailure);
  EXPECT_NE(emu::last_deferred_failure().find(
                "temp storage stays allocated until the queued work has run"),
            std::string::npos)
      << emu::last_deferred_failure();
  EXPECT_RULE("SortPairs: temp storage stays allocated until the queued work has run");
  EXPECT_EQ(s.keys_out[0], -1) << "the sort ran on freed temp storage";
  (void)cudaGetLastError();
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(EmuStandinCub, AnInputReleasedBeforeTheQueuedWorkRanIsReportedAtTheSynchronisation) {
  cudaStream_t stream = stream_on(0);
  DeviceArray<int64_t> out(8, ElementKind::I64, "out");
  DeviceArray<unsigned char> temp(1 << 16, ElementKind::Bytes, "temp");
  auto in = std::make_unique<DeviceArray<int64_t> >(8, ElementKind::I64, "in");
  size_t bytes = temp.size();
  ASSERT_EQ(cub::DeviceScan::ExclusiveSum(temp.data(), bytes, in->data(), out.data(), 8, stream),
            cudaSuccess);
  in.reset();
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorLaunchFailure);
  EXPECT_RULE(
      "ExclusiveSum: inputs and outputs stay allocated until the queued work has run (d_in");
  (void)cudaGetLastError();
  auto seq = std::make_unique<DeviceArray<int64_t> >(8, ElementKind::I64, "seq");
  thrust::sequence(thrust::cuda::par_nosync.on(stream), seq->data(), seq->data() + 8, int64_t{0});
  seq.reset();
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaErrorLaunchFailure);
  EXPECT_RULE("thrust::sequence: inputs and outputs stay allocated until the queued work has run");
  (void)cudaGetLastError();
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

// Thrust's par waits for its stream before the algorithm returns; par_nosync does not (tessera
// uses par_nosync in the training step: a par there is a host stall per step).
TEST(EmuStandinThrust, ParWaitsForItsStreamAndParNosyncDoesNot) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  DeviceArray<int64_t> d(8, ElementKind::I64, "d");
  emu::reset_runtime_counters();
  thrust::sequence(thrust::cuda::par_nosync.on(stream), d.data(), d.data() + 8, int64_t{0});
  EXPECT_EQ(emu::runtime_counters().synchronisations, 0u);
  thrust::sequence(thrust::cuda::par.on(stream), d.data(), d.data() + 8, int64_t{5});
  EXPECT_EQ(emu::runtime_counters().synchronisations, 1u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(d[static_cast<size_t>(i)], 5 + i);  // ran: no sync needed
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(EmuStandinCub, TempStorageMustStillBeDeviceMemoryWhenTheWorkRuns) {
  // The check the queued work makes before it uses the storage (freed or handed to something
  // else before the stream ran the work): here with memory that is not device memory at all.
  std::vector<unsigned char> host(512);
  const std::string message = test::error_of_kind(ErrorKind::Backend, [&] {
    emu::cub_standin::use_temp_storage("cub::DeviceScan::ExclusiveSum", host.data(), host.size());
  });
  EXPECT_NE(message.find("temp storage stays allocated until the queued work has run"),
            std::string::npos)
      << message;
  EXPECT_RULE("ExclusiveSum: temp storage stays allocated until the queued work has run");
}

// ---- Thrust -------------------------------------------------------------------------------------

TEST(EmuStandinThrust, SequenceOnAStreamAndItsRules) {
  DeviceArray<int64_t> d(6, ElementKind::I64, "seq");
  thrust::sequence(thrust::cuda::par.on(nullptr), d.data(), d.data() + 6, int64_t{10});
  sync();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(d[i], 10 + i);
  thrust::sequence(thrust::cuda::par, d.data(), d.data() + 6, int64_t{0}, int64_t{3});
  sync();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(d[i], 3 * i);
  std::string message = test::error_of_kind(ErrorKind::Backend, [&] {
    thrust::sequence(thrust::cuda::par.on(nullptr), d.data() + 3, d.data(), int64_t{0});
  });
  EXPECT_NE(message.find("last >= first"), std::string::npos) << message;
  EXPECT_RULE("thrust::sequence: last >= first");
  std::vector<int64_t> host(6);
  message = test::error_of_kind(ErrorKind::Backend, [&] {
    thrust::sequence(thrust::cuda::par.on(nullptr), host.data(), host.data() + 6, int64_t{0});
  });
  EXPECT_RULE("thrust::sequence: [first, last) is device memory");
  message = test::error_of_kind(ErrorKind::Backend, [&] {
    thrust::sequence(thrust::cuda::par.on(nullptr), d.data(), d.data() + 7, int64_t{0});
  });
  EXPECT_RULE("thrust::sequence: [first, last) is device memory (7 elements)");
  sync();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(d[i], 3 * i) << "a refused sequence wrote";
}

// ---- the report ---------------------------------------------------------------------------------

TEST(EmuStandinReport, ListsEveryEntryPointAndTheRulesCheckedOnIt) {
  { (void)cuda::make_cublas_handle(nullptr); }  // create, stream, modes, destroy
  {
    Handle handle;
    DeviceArray<float> m(4, ElementKind::F32, "m");
    const float one = 1.f;
    ASSERT_EQ(cublasSgemm_64(handle.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, m.data(), 2,
                             m.data(), 2, &one, m.data(), 2),
              CUBLAS_STATUS_SUCCESS);
    sync();
  }
  SortArgs s;
  ASSERT_EQ(s.sort(), cudaSuccess);
  sync();
  const std::string report = emu::format_standin_report();
  for (const char* line :
       {"cuBLAS cublasCreate:", "cuBLAS cublasDestroy:", "cuBLAS cublasSgemm_64:",
        "cuBLAS cublasSetStream:", "cuBLAS cublasSetPointerMode:", "cuBLAS cublasSetMathMode:",
        "rule \"ldc >= max(1, m)\":", "rule \"handle created by cublasCreate and not destroyed\":",
        "CUB cub::DeviceRadixSort::SortPairs:",
        "rule \"0 <= begin_bit <= end_bit <= 8 * sizeof(KeyT)\":",
        "rule \"temp_storage_bytes >= the size a null d_temp_storage call returns\":"}) {
    EXPECT_NE(report.find(line), std::string::npos) << "missing \"" << line << "\" in\n" << report;
  }
}

}  // namespace
}  // namespace tessera::emu_test

#endif  // TESSERA_CUDA_EMULATION
