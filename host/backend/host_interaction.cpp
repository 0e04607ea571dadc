// Host DLRM dot interaction. Per sample the F + 1 vectors (d floats each, d typically 16-128)
// sit in L1, so loops that the compiler vectorises beat a batched GEMM call per sample (whose
// call overhead exceeds the ~F^2 d / 2 FMAs for DLRM sizes). The loops are compiled
// per instruction set (target_clones) and picked at load time; samples are split over the OpenMP
// threads only for large batches (see HostBackend::gemm_impl on why small ops stay serial).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "host/backend/host_backend.h"
#include "host/core/interaction.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define TESSERA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TESSERA_CLONES
#endif

namespace tessera {

namespace {

// FLOPs below which the op stays on the calling thread.
constexpr double kParallelFlops = 8.0 * 1024 * 1024;

// Vector v of sample s: v = 0 the dense row, v >= 1 embedding v - 1.
inline const float* vec(const float* dense, const float* emb, int64_t s, int64_t v, int64_t d,
                        int64_t f) {
  return v == 0 ? dense + s * d : emb + (s * f + (v - 1)) * d;
}

// Per sample, Z^T (d x V, rows padded with zeros to a multiple of 16 floats) is staged in `zt`
// so that row i of the Gram triangle, out[j] = sum_k Z_i[k] Z_j[k] for j < i, is d broadcast-
// multiply-adds over whole 16-float vectors (vectorised across j, no scalar tails) instead of i
// horizontal reductions. The sum runs over k in ascending order, as in the CUDA kernel.
constexpr int64_t kLanes = 16;
// 16 floats as one value (GCC/Clang vector extension): one register under AVX-512, split into
// narrower registers by the other clones. Loads and stores are unaligned.
typedef float Vec16 __attribute__((vector_size(kLanes * sizeof(float))));
// Vec16 never crosses a call in this file (internal, always-inlined helpers), so GCC's note that
// passing one would depend on AVX-512 (-Wpsabi) does not apply here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
__attribute__((always_inline)) inline Vec16 load16(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
__attribute__((always_inline)) inline void store16(float* p, Vec16 v) {
  std::memcpy(p, &v, sizeof(v));
}
inline int64_t padded(int64_t n) {
  return (n + kLanes - 1) / kLanes * kLanes;
}

TESSERA_CLONES
void forward_range(const float* __restrict dense, const float* __restrict emb, float* __restrict y,
                   float* __restrict zt, float* __restrict acc, int64_t d, int64_t f, int64_t s0,
                   int64_t s1) {
  const int64_t v = f + 1;
  const int64_t ldt = padded(v);
  const int64_t width = d + math::interaction_pairs(v);
  for (int64_t s = s0; s < s1; ++s) {
    for (int64_t j = 0; j < v; ++j) {
      const float* zj = vec(dense, emb, s, j, d, f);
      for (int64_t k = 0; k < d; ++k) zt[k * ldt + j] = zj[k];
    }
    float* ys = y + s * width;
    const float* z0 = dense + s * d;
    for (int64_t k = 0; k < d; ++k) ys[k] = z0[k];
    float* out = ys + d;
    for (int64_t i = 1; i <= f; ++i) {
      const float* zi = vec(dense, emb, s, i, d, f);
      const int64_t n = padded(i);
      for (int64_t j = 0; j < n; ++j) acc[j] = 0.f;
      for (int64_t k = 0; k < d; ++k) {
        const float a = zi[k];
        const float* row = zt + k * ldt;
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) acc[j] += a * row[j];
      }
      for (int64_t j = 0; j < i; ++j) out[j] = acc[j];
      out += i;
    }
  }
}

// dZ_i = [i == 0] dy_dense + sum_{j != i} g(i, j) Z_j with g(i, j) = g(j, i) = dy of pair
// (max, min): each output vector is accumulated once, in a fixed order (deterministic).
TESSERA_CLONES
void backward_range(const float* __restrict dense, const float* __restrict emb,
                    const float* __restrict dy, float* __restrict ddense, float* __restrict demb,
                    float* __restrict acc, float* __restrict gi, int64_t d, int64_t f, int64_t s0,
                    int64_t s1) {
  const int64_t width = d + math::interaction_pairs(f + 1);
  for (int64_t s = s0; s < s1; ++s) {
    const float* dys = dy + s * width;
    const float* g = dys + d;
    for (int64_t i = 0; i <= f; ++i) {
      float* dz = i == 0 ? ddense + s * d : demb + (s * f + (i - 1)) * d;
      // Row i of the symmetric pair-gradient matrix (0 on the diagonal).
      for (int64_t j = 0; j <= f; ++j)
        gi[j] = j == i ? 0.f
                       : g[i > j ? math::interaction_pair_index(i, j)
                                 : math::interaction_pair_index(j, i)];
      // Whole 16-float column blocks accumulate in a register across all j (the compiler keeps
      // a memory accumulator in L1 and stalls on store forwarding); a partial block goes through
      // memory.
      int64_t k0 = 0;
      for (; k0 + kLanes <= d; k0 += kLanes) {
        Vec16 r = i == 0 ? load16(dys + k0) : Vec16{};
        for (int64_t j = 0; j <= f; ++j) r += gi[j] * load16(vec(dense, emb, s, j, d, f) + k0);
        store16(dz + k0, r);
      }
      if (k0 < d) {
        for (int64_t k = k0; k < d; ++k) acc[k] = i == 0 ? dys[k] : 0.f;
        for (int64_t j = 0; j <= f; ++j) {
          const float gij = gi[j];
          const float* zj = vec(dense, emb, s, j, d, f);
          for (int64_t k = k0; k < d; ++k) acc[k] += gij * zj[k];
        }
        for (int64_t k = k0; k < d; ++k) dz[k] = acc[k];
      }
    }
  }
}

// fn(s0, s1) over the batch: serial below kParallelFlops, else one static range per thread.
template <typename Fn>
void over_samples(int64_t batch, double flops, Fn fn) {
  if (flops < kParallelFlops || omp_get_max_threads() == 1) {
    fn(int64_t{0}, batch);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = batch * t / nt, e = batch * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

#pragma GCC diagnostic pop

}  // namespace

void HostBackend::dot_interaction_forward_impl(const Tensor& dense, const Tensor& emb, Tensor& y) {
  const int64_t batch = dense.dim(0), d = dense.dim(1), f = emb.dim(1) / d;
  const float* dp = dense.data<float>();
  const float* ep = emb.data<float>();
  float* yp = y.data<float>();
  const double flops = 2.0 * batch * math::interaction_pairs(f + 1) * d;
  over_samples(batch, flops, [&](int64_t s0, int64_t s1) {
    // Per thread: Z^T with zero padding, and one accumulator row.
    std::vector<float> zt(static_cast<size_t>(d * padded(f + 1)), 0.f);
    std::vector<float> acc(static_cast<size_t>(padded(f + 1)));
    forward_range(dp, ep, yp, zt.data(), acc.data(), d, f, s0, s1);
  });
}

void HostBackend::dot_interaction_backward_impl(const Tensor& dense, const Tensor& emb,
                                                const Tensor& dy, Tensor& ddense, Tensor& demb) {
  const int64_t batch = dense.dim(0), d = dense.dim(1), f = emb.dim(1) / d;
  const float* dp = dense.data<float>();
  const float* ep = emb.data<float>();
  const float* gp = dy.data<float>();
  float* ddp = ddense.data<float>();
  float* dep = demb.data<float>();
  const double flops = 4.0 * batch * math::interaction_pairs(f + 1) * d;
  over_samples(batch, flops, [&](int64_t s0, int64_t s1) {
    std::vector<float> acc(static_cast<size_t>(d)), gi(static_cast<size_t>(f + 1));  // per thread
    backward_range(dp, ep, gp, ddp, dep, acc.data(), gi.data(), d, f, s0, s1);
  });
}

}  // namespace tessera
