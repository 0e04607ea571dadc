#include "host/backend/host_loops.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

// The range kernels below are compiled once per instruction set and chosen at load time. They
// hold no OpenMP pragmas: GCC outlines a parallel region's body into a function of its own, which
// target_clones would not cover; the splitting into ranges happens in for_ranges() instead.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define TESSERA_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TESSERA_CLONES
#endif

namespace tessera::host_loops {

namespace {

// Calls fn(begin, end) over [0, n): on the calling thread for small n, else split statically
// over the OpenMP threads. `grain` keeps range boundaries on multiples of it.
template <typename Fn>
void for_ranges(int64_t n, int64_t grain, Fn fn) {
  if (n <= kParallelElements) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t units = (n + grain - 1) / grain;
    const int64_t b = units * t / nt * grain, e = std::min(n, units * (t + 1) / nt * grain);
    if (b < e) fn(b, e);
  }
}

template <Activation A>
void forward_range(const float* x, const float* bias, float* y, int64_t cols, int64_t r0,
                   int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    if (bias) {
      for (int64_t j = 0; j < cols; ++j) yr[j] = math::activate_t<A>(xr[j] + bias[j]);
    } else {
      for (int64_t j = 0; j < cols; ++j) yr[j] = math::activate_t<A>(xr[j]);
    }
  }
}

TESSERA_CLONES
void forward_kernel(Activation act, const float* x, const float* bias, float* y, int64_t cols,
                    int64_t r0, int64_t r1) {
  switch (act) {
    case Activation::Relu: forward_range<Activation::Relu>(x, bias, y, cols, r0, r1); break;
    case Activation::Sigmoid: forward_range<Activation::Sigmoid>(x, bias, y, cols, r0, r1); break;
    case Activation::Tanh: forward_range<Activation::Tanh>(x, bias, y, cols, r0, r1); break;
    case Activation::None: forward_range<Activation::None>(x, bias, y, cols, r0, r1); break;
  }
}

template <Activation A>
void backward_range(const float* y, const float* dy, float* dx, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * math::activation_grad_from_output_t<A>(y[i]);
}

TESSERA_CLONES
void backward_kernel(Activation act, const float* y, const float* dy, float* dx, int64_t b,
                     int64_t e) {
  switch (act) {
    case Activation::Relu: backward_range<Activation::Relu>(y, dy, dx, b, e); break;
    case Activation::Sigmoid: backward_range<Activation::Sigmoid>(y, dy, dx, b, e); break;
    case Activation::Tanh: backward_range<Activation::Tanh>(y, dy, dx, b, e); break;
    case Activation::None:
      if (dx != dy) std::memcpy(dx + b, dy + b, static_cast<size_t>(e - b) * sizeof(float));
      break;
  }
}

TESSERA_CLONES
void column_sums(const float* dx, int64_t rows, int64_t cols, double* acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = dx + r * cols;
    for (int64_t j = 0; j < cols; ++j) acc[j] += static_cast<double>(row[j]);
  }
}

// [b, e) with b a multiple of 4. Hashes 16 groups (64 elements) at once into 64 16-bit lanes
// (lane k of group g is bits >> 16k, which is the k-th uint16 in little-endian memory), then
// masks the 64 elements: both loops vectorise.
TESSERA_CLONES
void dropout_kernel(uint64_t seed, float p, const float* x, float* y, int64_t b, int64_t e) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "lane layout assumes little endian");
  const float scale = 1.f / (1.f - p);
  const uint32_t threshold = math::dropout_threshold(p);
  constexpr int kGroups = 16, kBlock = 4 * kGroups;
  int64_t i = b;
  for (; i + kBlock <= e; i += kBlock) {
    uint64_t bits[kGroups];
    const uint64_t g0 = static_cast<uint64_t>(i / 4);
    for (int j = 0; j < kGroups; ++j) bits[j] = math::dropout_bits(seed, g0 + j);
    uint16_t lanes[kBlock];
    std::memcpy(lanes, bits, sizeof(lanes));
    for (int k = 0; k < kBlock; ++k)
      y[i + k] = lanes[k] >= threshold ? x[i + k] * scale : 0.f;
  }
  for (; i < e; ++i)
    y[i] = math::dropout_keep(seed, static_cast<uint64_t>(i), p) ? x[i] * scale : 0.f;
}

TESSERA_CLONES
void sgd_kernel(const math::SgdParams& p, float* w, const float* g, float* vel, int64_t b,
                int64_t e) {
  if (vel) {
    for (int64_t i = b; i < e; ++i) math::sgd_step(p, w[i], g[i], vel[i]);
  } else {
    for (int64_t i = b; i < e; ++i) {
      float unused = 0.f;
      math::sgd_step(p, w[i], g[i], unused);
    }
  }
}

TESSERA_CLONES
void adam_kernel(const math::AdamParams& p, float* w, const float* g, float* m, float* v,
                 int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) math::adam_step(p, w[i], g[i], m[i], v[i]);
}

}  // namespace

void bias_act_forward(Activation act, const float* x, const float* bias, float* y, int64_t rows,
                      int64_t cols) {
  if (rows * cols <= kParallelElements) return forward_kernel(act, x, bias, y, cols, 0, rows);
  for_ranges(rows, 1, [&](int64_t r0, int64_t r1) { forward_kernel(act, x, bias, y, cols, r0, r1); });
}

void bias_act_backward(Activation act, const float* y, const float* dy, float* dx, float* dbias,
                       int64_t rows, int64_t cols) {
  for_ranges(rows * cols, 1, [&](int64_t b, int64_t e) { backward_kernel(act, y, dy, dx, b, e); });
  if (!dbias) return;
  // Column sums in double, in a fixed row order: the same result for any thread count.
  std::vector<double> acc(static_cast<size_t>(cols), 0.0);
  column_sums(dx, rows, cols, acc.data());
  for (int64_t j = 0; j < cols; ++j) dbias[j] = static_cast<float>(acc[j]);
}

void dropout(uint64_t seed, float p, const float* x, float* y, int64_t n) {
  for_ranges(n, 4, [&](int64_t b, int64_t e) { dropout_kernel(seed, p, x, y, b, e); });
}

void sgd(const math::SgdParams& p, float* w, const float* g, float* velocity, int64_t n) {
  for_ranges(n, 1, [&](int64_t b, int64_t e) { sgd_kernel(p, w, g, velocity, b, e); });
}

void adam(const math::AdamParams& p, float* w, const float* g, float* m, float* v, int64_t n) {
  for_ranges(n, 1, [&](int64_t b, int64_t e) { adam_kernel(p, w, g, m, v, b, e); });
}

}  // namespace tessera::host_loops
