#pragma once
// The host backend's element-wise loops, compiled for several instruction sets (AVX-512, AVX2,
// baseline x86-64) and picked at load time by the CPU (GCC target_clones), so one binary runs
// everywhere and still vectorises the hashing, activations and optimizer updates. The arithmetic
// is the shared TESSERA_HD math of host/core/math.h.
#include <cstdint>

#include "host/core/math.h"

namespace tessera::host_loops {

// Elements below which a loop stays on the calling thread (see HostBackend::gemm_impl).
constexpr int64_t kParallelElements = 1 << 18;

// y[r, :] = act(x[r, :] + bias) for rows x cols; bias may be null; y may alias x.
void bias_act_forward(Activation act, const float* x, const float* bias, float* y, int64_t rows,
                      int64_t cols);
// dx = dy * act'(y); dbias (if non-null) = column sums of dx in double, fixed row order.
void bias_act_backward(Activation act, const float* y, const float* dy, float* dx, float* dbias,
                       int64_t rows, int64_t cols);
// y[i] = dropout_keep(seed, i, p) ? x[i] / (1 - p) : 0.
void dropout(uint64_t seed, float p, const float* x, float* y, int64_t n);
void sgd(const math::SgdParams& p, float* w, const float* g, float* velocity, int64_t n);
void adam(const math::AdamParams& p, float* w, const float* g, float* m, float* v, int64_t n);

}  // namespace tessera::host_loops
