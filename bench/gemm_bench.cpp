// Host-backend GEMM throughput against the machine's own f32 FMA peak, measured in the same run.
//
// Peak: every OpenMP thread runs kChains independent FMA accumulator chains (AVX-512 when the CPU
// has it, else AVX2+FMA) long enough to hide the FMA latency; flops = 2 * lanes per FMA. This is
// what a perfect sgemm inner loop could reach on these cores at the frequency they hold under
// vector load, so GEMM GFLOP/s divided by it is an honest efficiency.
//
// GEMM: tessera::make_host_backend()->gemm on Tensors, for the shapes the behaviour MLP runs per
// step (batch 256: forward X[256,K] W[K,128]; backward dW = X^T dY and dX = dY W^T) and square
// sizes. Each result is checked against a double-precision naive reference on a slice of rows and
// columns before timing; any mismatch or exception exits non-zero.
//
// Output: one JSON line per shape, then one summary JSON line (with "device_memory", the
// allocator's statistics, for a backend that has them: host/backend/memory_stats.h). Options:
//   --quick            fewer repetitions and no 2048^3 (for CI smoke runs)
//   --min-time SEC     timing budget per shape (default 0.5)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/backend/memory_stats.h"
#include "host/core/tensor.h"

namespace {

using tessera::Tensor;
using tessera::Transpose;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- FMA peak ----------------------------------------------------------------------------------

// FMA latency is 4 cycles on recent x86 with 2 FMA ports: >= 8 independent chains keep both busy.
// 12 leaves headroom without spilling (16 zmm / ymm registers at least).
constexpr int kChains = 12;

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * (c + 1));
  // acc = acc * a + b converges to b / (1 - a): no overflow, no denormals.
  const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-4f);
  for (int64_t i = 0; i < iters; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.001f * (c + 1));
  const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-4f);
  for (int64_t i = 0; i < iters; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float r = 0;
  for (float v : lanes) r += v;
  return r;
}

struct Peak {
  std::string isa;
  int threads = 0;
  double gflops = 0;
};

volatile float g_sink;  // keeps the FMA results alive

// Best of several timed rounds of all threads running the loop at once.
Peak measure_fma_peak(double min_seconds) {
  Peak p;
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!avx512 && !avx2) {
    p.isa = "none";
    return p;
  }
  p.isa = avx512 ? "avx512" : "avx2";
  const int lanes = avx512 ? 16 : 8;
  p.threads = omp_get_max_threads();
  auto run = [&](int64_t iters) {
    const auto t0 = Clock::now();
#pragma omp parallel
    {
      float r = avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
#pragma omp critical
      g_sink = g_sink + r;
    }
    return seconds_since(t0);
  };
  int64_t iters = 1 << 16;
  run(iters);  // wake the threads and the vector units
  while (run(iters) < 0.05) iters *= 2;
  for (int round = 0; round < 5; ++round) {
    const double t = run(iters);
    const double flops = 2.0 * lanes * kChains * static_cast<double>(iters) * p.threads;
    p.gflops = std::max(p.gflops, flops / t * 1e-9);
    if (round >= 2 && t * (round + 1) > min_seconds) break;
  }
  return p;
}

// ---- GEMM --------------------------------------------------------------------------------------

struct Case {
  const char* name;
  int64_t m, n, k;
  Transpose ta, tb;
};

Tensor random_tensor(int64_t rows, int64_t cols, std::mt19937& rng) {
  Tensor t = Tensor::host({rows, cols});
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < rows * cols; ++i) p[i] = u(rng);
  return t;
}

// op(X)[r, c] for a row-major X stored as [r, c] (No) or [c, r] (Yes).
inline float op_at(const Tensor& x, Transpose t, int64_t r, int64_t c) {
  const float* p = x.data<float>();
  return t == Transpose::No ? p[r * x.dim(1) + c] : p[c * x.dim(1) + r];
}

// Checks up to 24 rows x 24 columns (first, last and strided between) of C = op(A) op(B) against
// a double-precision dot product. Tolerance scales with sum |a||b| (the forward error bound of a
// float dot product of length K is ~ K * eps * sum|a||b|; blocked GEMMs do far better).
bool verify(const Case& cs, const Tensor& a, const Tensor& b, const Tensor& c, double* max_err) {
  auto pick = [](int64_t size) {
    std::vector<int64_t> idx;
    const int64_t want = std::min<int64_t>(size, 24);
    for (int64_t i = 0; i < want; ++i) idx.push_back(want == 1 ? 0 : i * (size - 1) / (want - 1));
    return idx;
  };
  const float* cp = c.data<float>();
  bool ok = true;
  *max_err = 0;
  for (int64_t i : pick(cs.m)) {
    for (int64_t j : pick(cs.n)) {
      double ref = 0, mag = 0;
      for (int64_t kk = 0; kk < cs.k; ++kk) {
        const double x = op_at(a, cs.ta, i, kk), y = op_at(b, cs.tb, kk, j);
        ref += x * y;
        mag += std::fabs(x * y);
      }
      const double err = std::fabs(cp[i * cs.n + j] - ref);
      *max_err = std::max(*max_err, err);
      const double tol = 1e-5 + 4.0 * 1.2e-7 * std::sqrt(static_cast<double>(cs.k)) * mag;
      if (!(err <= tol)) {  // NaN fails too
        if (ok)
          std::fprintf(stderr, "gemm %s: C[%lld,%lld] = %.9g, reference %.9g (tolerance %.3g)\n",
                       cs.name, static_cast<long long>(i), static_cast<long long>(j),
                       cp[i * cs.n + j], ref, tol);
        ok = false;
      }
    }
  }
  return ok;
}

struct Timing {
  double best_s = 0, median_s = 0;
  int reps = 0;
};

Timing time_gemm(tessera::Backend& be, const Case& cs, const Tensor& a, const Tensor& b, Tensor& c,
                 double min_seconds) {
  // Warm-up: first call pays for thread start-up and oneDNN's kernel selection.
  for (int w = 0; w < 3; ++w) be.gemm(cs.ta, cs.tb, 1.f, a, b, 0.f, c);
  be.synchronize();
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 5 || (seconds_since(start) < min_seconds && times.size() < 100000)) {
    const auto t0 = Clock::now();
    be.gemm(cs.ta, cs.tb, 1.f, a, b, 0.f, c);
    be.synchronize();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  Timing t;
  t.reps = static_cast<int>(times.size());
  t.best_s = times.front();
  t.median_s = times[times.size() / 2];
  return t;
}

// Other processes on the cores distort every number (OpenMP spin-waits badly when
// oversubscribed); the summary records the 1-minute load so a noisy run can be recognised.
double load_average() {
  double l[1] = {-1};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

const char* tr(Transpose t) {
  return t == Transpose::Yes ? "T" : "N";
}

int run(int argc, char** argv) {
  bool quick = false;
  double min_time = 0.5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
      min_time = 0.1;
    } else if (!std::strcmp(argv[i], "--min-time") && i + 1 < argc) {
      min_time = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--min-time SECONDS]\n", argv[0]);
      return 2;
    }
  }

  const Peak peak = measure_fma_peak(quick ? 0.2 : 0.5);
  std::printf(
      "{\"bench\":\"fma_peak\",\"isa\":\"%s\",\"threads\":%d,\"chains\":%d,\"peak_gflops\":%.2f}\n",
      peak.isa.c_str(), peak.threads, kChains, peak.gflops);
  std::fflush(stdout);

  // The behaviour MLP at batch 256: 8 categorical x 8-dim embeddings + 6 numeric = 70 inputs
  // (108 is the width with wider embeddings/one-hot extras), Dense 128 then Dense 64.
  const Transpose N = Transpose::No, T = Transpose::Yes;
  std::vector<Case> cases = {
      {"mlp_fwd_l1", 256, 128, 70, N, N},        // X[256,70] W1[70,128]
      {"mlp_fwd_l1_k108", 256, 128, 108, N, N},  // X[256,108] W1[108,128]
      // MlpModel splits the first layer instead of concatenating (host/model/mlp.h):
      {"mlp_fwd_l1_dense", 256, 128, 6, N, N},  // Xd[256,6] W1[:6]
      {"mlp_fwd_l1_emb", 256, 128, 64, N, N},   // E[256,64] W1[6:]
      {"mlp_fwd_l2", 256, 64, 128, N, N},       // H1[256,128] W2[128,64]
      {"mlp_bwd_dw2", 128, 64, 256, T, N},      // dW2 = H1^T[128,256] dY[256,64]
      {"mlp_bwd_dx2", 256, 128, 64, N, T},      // dH1 = dY[256,64] W2^T[64,128]
      {"mlp_bwd_dw1", 108, 128, 256, T, N},     // dW1 = X^T[108,256] dH1[256,128]
      {"square_512", 512, 512, 512, N, N},
      {"square_1024", 1024, 1024, 1024, N, N},
  };
  if (!quick) cases.push_back({"square_2048", 2048, 2048, 2048, N, N});

  auto backend = tessera::make_host_backend();
  std::mt19937 rng(42);
  int mismatches = 0;
  double log_ratio_sum = 0, min_ratio = 1e300, max_ratio = 0;
  for (const Case& cs : cases) {
    // Stored shapes: A is [M,K] or [K,M]; B is [K,N] or [N,K].
    Tensor a = cs.ta == N ? random_tensor(cs.m, cs.k, rng) : random_tensor(cs.k, cs.m, rng);
    Tensor b = cs.tb == N ? random_tensor(cs.k, cs.n, rng) : random_tensor(cs.n, cs.k, rng);
    Tensor c = Tensor::host({cs.m, cs.n});
    backend->gemm(cs.ta, cs.tb, 1.f, a, b, 0.f, c);
    double max_err = 0;
    const bool ok = verify(cs, a, b, c, &max_err);
    mismatches += !ok;
    const Timing t = time_gemm(*backend, cs, a, b, c, min_time);
    const double flops = 2.0 * cs.m * cs.n * cs.k;
    const double gflops = flops / t.median_s * 1e-9;
    const double best_gflops = flops / t.best_s * 1e-9;
    const double ratio = peak.gflops > 0 ? gflops / peak.gflops : 0;
    if (ratio > 0) {
      log_ratio_sum += std::log(ratio);
      min_ratio = std::min(min_ratio, ratio);
      max_ratio = std::max(max_ratio, ratio);
    }
    std::printf(
        "{\"bench\":\"gemm\",\"case\":\"%s\",\"backend\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,"
        "\"op\":\"%s%s\",\"threads\":%d,\"reps\":%d,\"median_ms\":%.4f,\"best_ms\":%.4f,"
        "\"gflops\":%.2f,\"best_gflops\":%.2f,\"peak_gflops\":%.2f,\"ratio\":%.4f,"
        "\"max_abs_err\":%.3g,\"ok\":%s}\n",
        cs.name, backend->name().c_str(), static_cast<long long>(cs.m),
        static_cast<long long>(cs.n), static_cast<long long>(cs.k), tr(cs.ta), tr(cs.tb),
        omp_get_max_threads(), t.reps, t.median_s * 1e3, t.best_s * 1e3, gflops, best_gflops,
        peak.gflops, ratio, max_err, ok ? "true" : "false");
    std::fflush(stdout);
  }
  const size_t n = cases.size();
  std::printf(
      "{\"bench\":\"gemm_summary\",\"backend\":\"%s\",\"isa\":\"%s\",\"threads\":%d,"
      "\"peak_gflops\":%.2f,\"cases\":%zu,\"mismatches\":%d,\"min_ratio\":%.4f,"
      "\"max_ratio\":%.4f,\"geomean_ratio\":%.4f,\"loadavg_1m\":%.2f,\"ok\":%s%s}\n",
      backend->name().c_str(), peak.isa.c_str(), omp_get_max_threads(), peak.gflops, n, mismatches,
      min_ratio > max_ratio ? 0.0 : min_ratio, max_ratio,
      max_ratio > 0 ? std::exp(log_ratio_sum / n) : 0.0, load_average(),
      mismatches ? "false" : "true", memory_stats_field(*backend).c_str());
  return mismatches ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemm_bench: %s\n", e.what());
    return 1;
  }
}
