#pragma once
// Per-index and per-element math of the embedding bags and sparse optimizers, shared by the host
// implementation (g++) and the CUDA kernels (nvcc, and the emulator), so both compute the same
// thing and the arithmetic is tested on the CPU.
#include <cmath>
#include <cstdint>

#include "embeddings/table_spec.h"
#include "host/core/hd.h"
#include "host/core/math.h"

namespace tessera::emb {

// The row an index refers to. `bad` is set when the id is outside [0, rows) for a Direct table
// (then the result is clamped; under IdPolicy::Error the caller never uses it). Hashed ids are
// never bad: math::mix64 of the id's bits, modulo rows.
TESSERA_HD int64_t resolve_row(int64_t id, int64_t rows, int64_t mapping, bool* bad) {
  if (mapping == static_cast<int64_t>(IdMapping::Hash)) {
    *bad = false;
    return static_cast<int64_t>(math::mix64(static_cast<uint64_t>(id)) %
                                static_cast<uint64_t>(rows));
  }
  if (id < 0) {
    *bad = true;
    return 0;
  }
  if (id >= rows) {
    *bad = true;
    return rows - 1;
  }
  *bad = false;
  return id;
}

// The bag b with offsets[b] <= j < offsets[b + 1] (offsets [n_bags + 1], non-decreasing); empty
// bags are skipped because the search finds the last b with offsets[b] <= j.
TESSERA_HD int64_t bag_of_position(const int64_t* offsets, int64_t n_bags, int64_t j) {
  int64_t lo = 0;
  int64_t hi = n_bags;  // invariant: offsets[lo] <= j < offsets[hi]
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (offsets[mid] <= j)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// The factor an index's row gets in its bag: its per-sample weight (1 without weights), divided
// by the bag's length under mean pooling.
TESSERA_HD float bag_scale(int64_t pooling, int64_t bag_length, float weight) {
  if (pooling == static_cast<int64_t>(Pooling::Mean) && bag_length > 0)
    return weight / static_cast<float>(bag_length);
  return weight;
}

// The gradient of a loss w.r.t. the per-sample weight of an index whose row is `row` (dim
// floats) in a bag of `bag_length` indices, given the loss's gradient `dout` w.r.t. the bag's
// pooled output (dim floats): d out / d weight = row (/ bag_length under mean pooling), so
// bag_scale(pooling, len, 1) * <row, dout>. One summation order (c ascending) on host and device.
TESSERA_HD float bag_weight_grad(int64_t pooling, int64_t bag_length, const float* row,
                                 const float* dout, int64_t dim) {
  float dot = 0.f;
  for (int64_t c = 0; c < dim; ++c) dot += row[c] * dout[c];
  return bag_scale(pooling, bag_length, 1.f) * dot;
}

// ---- sparse optimizers ----------------------------------------------------------------------
enum class SparseOptimizer : uint8_t { Sgd = 0, Adagrad = 1, RowwiseAdagrad = 2, LazyAdam = 3 };
const char* sparse_optimizer_name(SparseOptimizer o);

struct SparseOptimizerConfig {
  SparseOptimizer kind = SparseOptimizer::Sgd;
  float lr = 0.01f;
  float eps = 1e-8f;                // Adagrad, row-wise Adagrad, Adam
  float beta1 = 0.9f;               // Adam
  float beta2 = 0.999f;             // Adam
  float initial_accumulator = 0.f;  // Adagrad and row-wise Adagrad
};

// The per-step scalars the update kernels take (Adam's bias corrections for the step number).
struct SparseStepParams {
  float lr = 0.f;
  float eps = 0.f;
  float beta1 = 0.f;
  float beta2 = 0.f;
  float bc1 = 1.f;  // 1 - beta1^step
  float bc2 = 1.f;  // 1 - beta2^step
  // 16-bit tables with stochastic rounding: this step's stream of rounding_bits (table_dtype.h).
  uint64_t round_stream = 0;
};

// Adagrad: G += g^2; w -= lr * g / (sqrt(G) + eps).
TESSERA_HD void adagrad_step(const SparseStepParams& p, float& w, float g, float& acc) {
  acc += g * g;
  w -= p.lr * g / (sqrtf(acc) + p.eps);
}
// Row-wise Adagrad, given the row's updated accumulator (G_row += mean over the row of g^2).
TESSERA_HD void rowwise_adagrad_step(const SparseStepParams& p, float& w, float g, float acc_row) {
  w -= p.lr * g / (sqrtf(acc_row) + p.eps);
}
// Lazy Adam (moments of untouched rows are not decayed): w -= lr * mhat / (sqrt(vhat) + eps).
TESSERA_HD void lazy_adam_step(const SparseStepParams& p, float& w, float g, float& m, float& v) {
  m = p.beta1 * m + (1.f - p.beta1) * g;
  v = p.beta2 * v + (1.f - p.beta2) * g * g;
  const float mhat = m / p.bc1;
  const float vhat = v / p.bc2;
  w -= p.lr * mhat / (sqrtf(vhat) + p.eps);
}

}  // namespace tessera::emb

namespace tessera::emb {

// The table owning global row `key`, from the packed meta [T * kMetaFields] (binary search over
// the row offsets; T is small).
TESSERA_HD int64_t table_of_key_meta(const int64_t* meta, int64_t tables, int64_t key) {
  int64_t lo = 0;
  int64_t hi = tables;  // invariant: row_offset(lo) <= key < row_offset(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (meta[mid * kMetaFields + kMetaRowOffset] <= key)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace tessera::emb
