#pragma once
// Element-wise and per-row arithmetic shared by the host backend and the CUDA kernels. Everything
// here is TESSERA_HD, so the numbers the CUDA backend produces are computed by the same code that
// the host backend (the specification) runs and the tests check.
#include <cmath>
#include <cstdint>

#include "host/core/hd.h"

namespace tessera {

enum class Activation : uint8_t { None = 0, Relu = 1, Sigmoid = 2, Tanh = 3 };

namespace math {

TESSERA_HD float sigmoid(float x) {
  // Stable for large |x|.
  if (x >= 0.f) {
    float e = expf(-x);
    return 1.f / (1.f + e);
  }
  float e = expf(x);
  return e / (1.f + e);
}

// The activation fixed at compile time (branch-free loops), and by value.
template <Activation A>
TESSERA_HD float activate_t(float x) {
  if (A == Activation::Relu) return x > 0.f ? x : 0.f;
  if (A == Activation::Sigmoid) return sigmoid(x);
  if (A == Activation::Tanh) return tanhf(x);
  return x;
}
// Derivative of the activation expressed through its output y = act(x).
template <Activation A>
TESSERA_HD float activation_grad_from_output_t(float y) {
  if (A == Activation::Relu) return y > 0.f ? 1.f : 0.f;
  if (A == Activation::Sigmoid) return y * (1.f - y);
  if (A == Activation::Tanh) return 1.f - y * y;
  return 1.f;
}

TESSERA_HD float activate(Activation a, float x) {
  switch (a) {
    case Activation::Relu: return activate_t<Activation::Relu>(x);
    case Activation::Sigmoid: return activate_t<Activation::Sigmoid>(x);
    case Activation::Tanh: return activate_t<Activation::Tanh>(x);
    default: return x;
  }
}

TESSERA_HD float activation_grad_from_output(Activation a, float y) {
  switch (a) {
    case Activation::Relu: return activation_grad_from_output_t<Activation::Relu>(y);
    case Activation::Sigmoid: return activation_grad_from_output_t<Activation::Sigmoid>(y);
    case Activation::Tanh: return activation_grad_from_output_t<Activation::Tanh>(y);
    default: return 1.f;
  }
}

// Binary cross-entropy on a logit z with target y in [0, 1]:
//   loss = max(z, 0) - z*y + log(1 + exp(-|z|)),   dloss/dz = sigmoid(z) - y.
TESSERA_HD float bce_with_logits_loss(float z, float y) {
  float az = z >= 0.f ? z : -z;
  return (z > 0.f ? z : 0.f) - z * y + log1pf(expf(-az));
}
TESSERA_HD float bce_with_logits_grad(float z, float y) { return sigmoid(z) - y; }

// Counter-based random numbers (splitmix64 finaliser): the same (seed, index) gives the same value
// on every backend and thread layout, so dropout masks need no storage and are exactly testable.
TESSERA_HD uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
TESSERA_HD float hash_uniform(uint64_t seed, uint64_t index) {
  uint64_t h = mix64(seed ^ mix64(index));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1), 24 bits
}
// Dropout masks: one hash gives 64 random bits for a group of 4 consecutive elements, 16 bits
// each (p is resolved to 1/65536), so the host loop hashes once per 4 elements.
TESSERA_HD uint64_t dropout_bits(uint64_t seed, uint64_t group) {
  return mix64(seed ^ (group * 0xD1B54A32D192ED03ull));
}
TESSERA_HD uint32_t dropout_threshold(float p) { return static_cast<uint32_t>(p * 65536.f); }
TESSERA_HD bool dropout_keep_bits(uint64_t bits, uint64_t index, uint32_t threshold) {
  return ((bits >> (16 * (index & 3))) & 0xFFFFu) >= threshold;
}
TESSERA_HD bool dropout_keep(uint64_t seed, uint64_t index, float p) {
  return dropout_keep_bits(dropout_bits(seed, index >> 2), index, dropout_threshold(p));
}

// Optimizer updates, one element each.
struct SgdParams {
  float lr = 0.01f;
  float momentum = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
};
TESSERA_HD void sgd_step(const SgdParams& o, float& w, float g, float& vel) {
  g += o.weight_decay * w;
  if (o.momentum != 0.f) {
    vel = o.momentum * vel + g;
    g = o.nesterov ? g + o.momentum * vel : vel;
  }
  w -= o.lr * g;
}

struct AdamParams {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  bool decoupled = false;  // AdamW: decay the weight directly instead of adding it to the gradient
  // Bias corrections 1 - beta^t for the current step, computed once per step by the caller.
  float bc1 = 1.f;
  float bc2 = 1.f;
};
TESSERA_HD void adam_step(const AdamParams& o, float& w, float g, float& m, float& v) {
  if (o.decoupled) {
    w -= o.lr * o.weight_decay * w;
  } else {
    g += o.weight_decay * w;
  }
  m = o.beta1 * m + (1.f - o.beta1) * g;
  v = o.beta2 * v + (1.f - o.beta2) * g * g;
  float mhat = m / o.bc1;
  float vhat = v / o.bc2;
  w -= o.lr * mhat / (sqrtf(vhat) + o.eps);
}

}  // namespace math
}  // namespace tessera
