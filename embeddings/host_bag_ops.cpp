// The host implementation of the bag ops: the specification, and the CPU product path.
//   - resolve: a batch whose tables all index directly and whose ids are all in range (checked
//     in one read-only pass) is used as it is: its indices are the keys (table-local rows,
//     ResolvedBags::local_keys), so nothing is written. Otherwise one pass over bags (OpenMP)
//     maps, checks and writes global keys, policy findings reduced to the smallest position.
//     The bag of each position, which the device's backward needs, is recovered from the
//     offsets where the host's unfused backward needs it.
//   - forward: table-major blocks (one table x up to kForwardBlock samples per OpenMP task), so a
//     thread works on one table's rows at a time and the table's hot (Zipf) rows stay in its L2;
//     the ids of a table are contiguous, so rows are prefetched across bag boundaries.
//   - backward: de-duplication per table without sorting the batch: a per-table row -> slot map
//     (persistent scratch, reset after use) collects the touched rows and their positions in
//     position order; the touched rows are then sorted (U log U, U = distinct rows) so the
//     result is ordered as the device's sort-based path (keys ascending, positions ascending
//     within a row: the same summation order).
//   - backward_update: the fused path, one table per OpenMP task: the table's positions are
//     streamed in order (dout read sequentially) and each is added into its row's slot of a
//     per-thread accumulator (row -> slot map, slots in order of first use), then every touched
//     row is updated once. Per row the sum runs over positions ascending from 0, as in backward(),
//     so fused == unfused bit for bit; no sort, no position lists, no gradient tensor. The loop is
//     bound by memory latency, not arithmetic: it requests the row -> slot entries, the dout
//     slices and (in the update sweep) the touched rows ahead of use. With fewer
//     tables than 2 x threads it parallelises over touched rows instead (the segments path).
#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "embeddings/bag_ops.h"
#include "embeddings/table_rows.h"

namespace tessera::emb {
namespace {

constexpr int64_t kPrefetchAhead = 4;
// Lines (64 bytes) the per-table forward and update loops keep requested ahead. Rows are random
// reads, so these loops are bound by memory latency: they need about bandwidth x latency / 64
// lines in flight per core, and 32 (8 rows of 256 bytes) was the f32 tuning at D = 64. Counted in
// lines, not rows, a 16-bit table's half-size rows get twice the rows ahead and the same bytes in
// flight (with 8 rows, bf16 had half the f32 bytes in flight and ran no faster than f32).
constexpr int64_t kLinesAhead = 32;
inline int64_t rows_ahead(int64_t row_bytes) {
  return std::clamp<int64_t>(kLinesAhead * 64 / std::max<int64_t>(row_bytes, 1), 4, 32);
}
// Samples of dout prefetched ahead by the fused backward.
constexpr int64_t kDyAhead = 4;
// Positions whose row -> slot entry the fused backward requests ahead.
constexpr int64_t kSlotAhead = 16;
// Samples per forward task: enough to amortise the scheduling, small enough that T x B / block
// tasks balance over the threads.
constexpr int64_t kForwardBlock = 512;
// Floats (or ids) of work below which an op stays on the calling thread: waking the OpenMP team
// for a small batch costs more than it saves, and on a busy machine a barrier with a
// descheduled thread costs milliseconds (DLRM on uci-adult, batch 256: 3k samples/s with every
// op parallel at load 11 on 2 cores, 235k with one thread). See HostBackend::gemm_impl.
constexpr int64_t kParallelWork = int64_t{1} << 16;
// Widest 16-bit row the update widens into a stack buffer (2 KiB).
constexpr int64_t kStackRow = 512;

// dst[0, n) += a * src[0, n): the inner loop of pooling, gradient aggregation and SGD. Cloned for
// AVX-512 and AVX2 (chosen at load time by the CPU; the build itself targets baseline x86-64).
// The arithmetic is the same in every clone: this file is built with -ffp-contract=off
// (embeddings/CMakeLists.txt), so no clone contracts a * b + c into an FMA.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void axpy(float* __restrict dst, const float* __restrict src, float a, int64_t n) {
  for (int64_t c = 0; c < n; ++c) dst[c] += a * src[c];
}

// The same loop, inlined into the cloned per-table kernels below (one call per row through the
// clone dispatcher costs as much as the row at D = 64). D = 64 gets a fixed trip count.
inline void axpy_inl(float* __restrict dst, const float* __restrict src, float a, int64_t n) {
  if (n == 64) {
    for (int64_t c = 0; c < 64; ++c) dst[c] += a * src[c];
  } else {
    for (int64_t c = 0; c < n; ++c) dst[c] += a * src[c];
  }
}

inline void prefetch_row(const float* row, int64_t dim) {
  for (int64_t c = 0; c < dim; c += 16) __builtin_prefetch(row + c, 0, 1);
}
inline void prefetch_row_rw(float* row, int64_t dim) {
  for (int64_t c = 0; c < dim; c += 16) __builtin_prefetch(row + c, 1, 1);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define TESSERA_EMB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TESSERA_EMB_CLONES
#endif

// Pooled rows of table t (meta m) for samples [s0, s1): out[s, out_offset + c] = sum over the
// bag's positions (ascending) of scale * row.
TESSERA_EMB_CLONES
void forward_block(const int64_t* m, int64_t t, int64_t s0, int64_t s1, int64_t B, int64_t out_dim,
                   const int64_t* off, const int64_t* keys, int64_t row0, const float* psw,
                   const float* w, float* o) {
  const int64_t dim = m[kMetaDim];
  const float* base = w + m[kMetaWeightOffset] - row0 * dim;
  const int64_t j_end = off[t * B + s1];
  const int64_t ahead = rows_ahead(dim * 4);
  for (int64_t j = off[t * B + s0]; j < j_end && j < off[t * B + s0] + ahead; ++j)
    prefetch_row(base + keys[j] * dim, dim);
  for (int64_t s = s0; s < s1; ++s) {
    float* dst = o + s * out_dim + m[kMetaOutOffset];
    const int64_t b = t * B + s;
    const int64_t len = off[b + 1] - off[b];
    if (dim == 64) {
      // The common width: the bag's sum in a local accumulator (registers in the vector clones)
      // with a fixed trip count, stored once; the same additions in the same order as below.
      float sum[64];
      for (int64_t c = 0; c < 64; ++c) sum[c] = 0.f;
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        if (j + ahead < j_end) prefetch_row(base + keys[j + ahead] * 64, 64);
        const float scale = bag_scale(m[kMetaPooling], len, psw ? psw[j] : 1.f);
        const float* row = base + keys[j] * 64;
        for (int64_t c = 0; c < 64; ++c) sum[c] += scale * row[c];
      }
      for (int64_t c = 0; c < 64; ++c) dst[c] = sum[c];
      continue;
    }
    std::fill(dst, dst + dim, 0.f);
    for (int64_t j = off[b]; j < off[b + 1]; ++j) {
      // Rows are random reads: ask for the row `ahead` positions on (across bags of the
      // block) so several misses overlap.
      if (j + ahead < j_end) prefetch_row(base + keys[j + ahead] * dim, dim);
      const float scale = bag_scale(m[kMetaPooling], len, psw ? psw[j] : 1.f);
      axpy_inl(dst, base + keys[j] * dim, scale, dim);
    }
  }
}

// forward_block over a 16-bit table: each row widened to f32 (exact) as it is read, then the same
// additions in the same order, so the result is forward_block's on the widened table bit for bit.
template <float (*Widen)(uint16_t)>
__attribute__((always_inline)) inline void forward_block16(const int64_t* m, int64_t t, int64_t s0,
                                                           int64_t s1, int64_t B, int64_t out_dim,
                                                           const int64_t* off, const int64_t* keys,
                                                           int64_t row0, const float* psw,
                                                           const uint16_t* w, float* o) {
  const int64_t dim = m[kMetaDim];
  const uint16_t* base = w + m[kMetaWeightOffset] - row0 * dim;
  const int64_t j_end = off[t * B + s1];
  const int64_t ahead = rows_ahead(dim * 2);
  auto prefetch16 = [&](int64_t j) {
    for (int64_t c = 0; c < dim; c += 32) __builtin_prefetch(base + keys[j] * dim + c, 0, 1);
  };
  for (int64_t j = off[t * B + s0]; j < j_end && j < off[t * B + s0] + ahead; ++j) prefetch16(j);
  for (int64_t s = s0; s < s1; ++s) {
    float* dst = o + s * out_dim + m[kMetaOutOffset];
    const int64_t b = t * B + s;
    const int64_t len = off[b + 1] - off[b];
    if (dim == 64) {
      float sum[64];
      for (int64_t c = 0; c < 64; ++c) sum[c] = 0.f;
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        if (j + ahead < j_end) {
          __builtin_prefetch(base + keys[j + ahead] * 64, 0, 1);
          __builtin_prefetch(base + keys[j + ahead] * 64 + 32, 0, 1);
        }
        const float scale = bag_scale(m[kMetaPooling], len, psw ? psw[j] : 1.f);
        const uint16_t* row = base + keys[j] * 64;
        for (int64_t c = 0; c < 64; ++c) sum[c] += scale * Widen(row[c]);
      }
      for (int64_t c = 0; c < 64; ++c) dst[c] = sum[c];
      continue;
    }
    std::fill(dst, dst + dim, 0.f);
    for (int64_t j = off[b]; j < off[b + 1]; ++j) {
      if (j + ahead < j_end) prefetch16(j + ahead);
      const float scale = bag_scale(m[kMetaPooling], len, psw ? psw[j] : 1.f);
      const uint16_t* row = base + keys[j] * dim;
      for (int64_t c = 0; c < dim; ++c) dst[c] += scale * Widen(row[c]);
    }
  }
}
TESSERA_EMB_CLONES
void forward_block_bf16(const int64_t* m, int64_t t, int64_t s0, int64_t s1, int64_t B,
                        int64_t out_dim, const int64_t* off, const int64_t* keys, int64_t row0,
                        const float* psw, const uint16_t* w, float* o) {
  forward_block16<bf16_to_f32>(m, t, s0, s1, B, out_dim, off, keys, row0, psw, w, o);
}
TESSERA_EMB_CLONES
void forward_block_f16(const int64_t* m, int64_t t, int64_t s0, int64_t s1, int64_t B,
                       int64_t out_dim, const int64_t* off, const int64_t* keys, int64_t row0,
                       const float* psw, const uint16_t* w, float* o) {
  forward_block16<f16_to_f32>(m, t, s0, s1, B, out_dim, off, keys, row0, psw, w, o);
}

// Gradient of every row table t's batch touched, into acc[slot * dim, +dim) (slots in order of
// first use, rows[slot] = the row); slot[row] maps rows to slots (-1: not yet). Per row the sum
// starts at 0 and runs over its positions ascending: backward()'s order.
TESSERA_EMB_CLONES
void accumulate_table(const int64_t* m, int64_t t, int64_t B, int64_t out_dim, const int64_t* off,
                      const int64_t* keys, int64_t row0, const float* psw, const float* dy,
                      int32_t* slot, std::vector<int64_t>& rows, float* acc) {
  const int64_t dim = m[kMetaDim];
  const int64_t j_end = off[(t + 1) * B];
  for (int64_t s = 0; s < B; ++s) {
    const int64_t b = t * B + s;
    const int64_t len = off[b + 1] - off[b];
    const float* src = dy + s * out_dim + m[kMetaOutOffset];
    // dout is read one table-wide slice per sample, a row of out_dim floats apart: a stride
    // the hardware prefetcher does not follow across pages, so ask for later samples' slices.
    if (s + kDyAhead < B) prefetch_row(src + kDyAhead * out_dim, dim);
    for (int64_t j = off[b]; j < off[b + 1]; ++j) {
      // The row -> slot map (4 bytes a row) left the cache since the last batch: its entries
      // are random reads, and the branch on them stalls the loop, so request them early.
      if (j + kSlotAhead < j_end) __builtin_prefetch(slot + (keys[j + kSlotAhead] - row0), 1, 3);
      const int64_t row = keys[j] - row0;
      int32_t u = slot[row];
      if (u < 0) {
        u = static_cast<int32_t>(rows.size());
        slot[row] = u;
        rows.push_back(row);
        float* a = acc + u * dim;
        if (dim == 64) {
          for (int64_t c = 0; c < 64; ++c) a[c] = 0.f;
        } else {
          std::fill(a, a + dim, 0.f);
        }
      }
      const float scale = bag_scale(m[kMetaPooling], len, psw ? psw[j] : 1.f);
      axpy_inl(acc + u * dim, src, scale, dim);
    }
  }
}

// The flat weights the update writes: f32, or a 16-bit table (widened into a per-thread row,
// updated in f32, rounded back under the format).
struct WeightsRef {
  float* f32 = nullptr;
  uint16_t* h16 = nullptr;
  StorageFormat format;
  uint64_t round_stream = 0;
  void prefetch_rw(int64_t e, int64_t dim) const {
    if (f32) {
      for (int64_t c = 0; c < dim; c += 16) __builtin_prefetch(f32 + e + c, 1, 1);
    } else {
      for (int64_t c = 0; c < dim; c += 32) __builtin_prefetch(h16 + e + c, 1, 1);
    }
  }
};

// One optimizer step of global row `key` whose weights are wr[0, dim) (element e0 of the flat
// buffer), element-wise states s0, s1 at the same element (row-wise Adagrad keeps one
// accumulator per key in s0).
inline void apply_row_math(SparseOptimizer kind, const SparseStepParams& p, int64_t key, int64_t e0,
                           int64_t dim, const float* grad, float* wr, float* s0, float* s1) {
  switch (kind) {
    case SparseOptimizer::Sgd:
      axpy_inl(wr, grad, -p.lr, dim);  // w - lr * g, exactly (negation is exact)
      break;
    case SparseOptimizer::Adagrad: {
      float* acc = s0 + e0;
      for (int64_t c = 0; c < dim; ++c) adagrad_step(p, wr[c], grad[c], acc[c]);
      break;
    }
    case SparseOptimizer::RowwiseAdagrad: {
      float& acc = s0[key];
      float sq = 0.f;
      for (int64_t c = 0; c < dim; ++c) sq += grad[c] * grad[c];
      acc += sq / static_cast<float>(dim);
      for (int64_t c = 0; c < dim; ++c) rowwise_adagrad_step(p, wr[c], grad[c], acc);
      break;
    }
    case SparseOptimizer::LazyAdam: {
      float* mo = s0 + e0;
      float* vo = s1 + e0;
      for (int64_t c = 0; c < dim; ++c) lazy_adam_step(p, wr[c], grad[c], mo[c], vo[c]);
      break;
    }
  }
}

// The step of the row at element e0 of w: in place for f32; a 16-bit row is widened, stepped in
// f32 and rounded to the storage type (nearest even, or stochastic with the step's stream).
inline void apply_row_at(SparseOptimizer kind, const SparseStepParams& p, int64_t key, int64_t e0,
                         int64_t dim, const float* grad, const WeightsRef& w, float* s0,
                         float* s1) {
  if (w.f32) {
    apply_row_math(kind, p, key, e0, dim, grad, w.f32 + e0, s0, s1);
    return;
  }
  const TableDType d = w.format.dtype;
  const bool sr = w.format.stochastic_rounding;
  // SGD (w - lr * g, as axpy_inl computes it) in one pass over the 16-bit row where the CPU can.
  if (kind == SparseOptimizer::Sgd &&
      axpy_half_row(d, w.h16 + e0, -p.lr, grad, dim, sr, w.round_stream, e0))
    return;
  // The widened row: on the stack up to kStackRow floats (it stays in L1 between the three
  // passes), a per-thread buffer beyond.
  float stack_row[kStackRow];
  float* row = stack_row;
  if (dim > kStackRow) {
    thread_local std::vector<float> wide;
    if (wide.size() < static_cast<size_t>(dim)) wide.resize(static_cast<size_t>(dim));
    row = wide.data();
  }
  widen_row(d, w.h16 + e0, row, dim);
  apply_row_math(kind, p, key, e0, dim, grad, row, s0, s1);
  if (sr)
    narrow_row_stochastic(d, row, w.h16 + e0, dim, w.round_stream, e0);
  else
    narrow_row(d, row, w.h16 + e0, dim);
}

// Applies the gradients accumulate_table collected (rows[u], acc[u * dim, +dim)) and resets
// their slot marks. When the batch touched many of the table's rows (dense), they are visited in
// ascending row order, so the weight reads sweep the table forwards (the hardware prefetcher
// follows) instead of jumping; otherwise in slot order with software prefetch. Each row is
// independent, so the order does not change any result.
TESSERA_EMB_CLONES
void apply_table(SparseOptimizer kind, const SparseStepParams& p, const int64_t* m,
                 const std::vector<int64_t>& rows, const float* acc, int32_t* slot,
                 const WeightsRef& w, float* s0, float* s1) {
  const int64_t dim = m[kMetaDim];
  const int64_t row0 = m[kMetaRowOffset];
  const int64_t e_base = m[kMetaWeightOffset];
  const int64_t U = static_cast<int64_t>(rows.size());
  const int64_t n_rows = m[kMetaRows];
  // Requests row r's weights (and its element-wise optimizer state) for writing.
  auto prefetch = [&](int64_t r) {
    const int64_t e = e_base + r * dim;
    w.prefetch_rw(e, dim);
    if (kind == SparseOptimizer::Adagrad || kind == SparseOptimizer::LazyAdam)
      prefetch_row_rw(s0 + e, dim);
    if (kind == SparseOptimizer::LazyAdam) prefetch_row_rw(s1 + e, dim);
  };
  // Rows ahead: f32 keeps its tuning (8 rows at D = 64, whatever the optimizer); a 16-bit row's
  // step touches its weights and its f32 element-wise state, counted in the lines in flight.
  const int64_t state_rows =
      (kind == SparseOptimizer::Adagrad) + 2 * (kind == SparseOptimizer::LazyAdam);
  const int64_t ahead = rows_ahead(w.f32 ? dim * 4 : dim * 2 + state_rows * dim * 4);
  if (U * 16 > n_rows) {
    // A cursor runs `ahead` touched rows ahead of the update and requests them: the sweep
    // skips rows, so the hardware prefetcher alone leaves every touched row a miss.
    int64_t ahead = 0;
    auto advance = [&]() {
      while (ahead < n_rows && slot[ahead] < 0) ++ahead;
      if (ahead < n_rows) prefetch(ahead++);
    };
    for (int64_t k = 0; k < ahead; ++k) advance();
    for (int64_t row = 0; row < n_rows; ++row) {
      const int32_t u = slot[row];
      if (u < 0) continue;
      advance();
      slot[row] = -1;
      apply_row_at(kind, p, row0 + row, e_base + row * dim, dim, acc + u * dim, w, s0, s1);
    }
    return;
  }
  for (int64_t u = 0; u < U; ++u) {
    if (u + ahead < U) prefetch(rows[static_cast<size_t>(u + ahead)]);
    const int64_t row = rows[static_cast<size_t>(u)];
    apply_row_at(kind, p, row0 + row, e_base + row * dim, dim, acc + u * dim, w, s0, s1);
    slot[row] = -1;
  }
}

// Touched rows of one batch, grouped: keys ascending; seg_start [U + 1] into pos (index positions).
struct Segments {
  std::vector<int64_t> keys;
  std::vector<int64_t> seg_start;
  std::vector<int64_t> pos;
  std::vector<int64_t> bag;    // [nnz]: the bag of pos[q]
  std::vector<int32_t> table;  // [U]
};

// What the loops over a resolved batch read, unpacked once (into plain locals: the OpenMP regions
// that use them cannot capture structured bindings under clang 14, the fuzz build's compiler).
struct BatchFields {
  int64_t tables, batch, out_dim;
  const int64_t* offsets;
  const int64_t* keys;
  const float* per_sample_weights;  // null when the batch has none
};
BatchFields batch_fields(const TableLayout& layout, const ResolvedBags& r) {
  return {layout.num_tables(),    r.batch,
          layout.out_dim(),       r.offsets.data<int64_t>(),
          r.keys.data<int64_t>(), r.weights.defined() ? r.weights.data<float>() : nullptr};
}

class HostBagOps final : public BagOps {
 public:
  std::string name() const override { return "host"; }

  ResolvedBags resolve(const TableLayout& layout, const Bags& bags, IdWarnState& warn) override {
    check_bags_shape(layout, bags, Device{});
    const int64_t T = layout.num_tables();
    const int64_t B = bags.batch;
    const int64_t n_bags = T * B;
    const int64_t nnz = bags.indices.numel();
    const int64_t* off = bags.offsets.data<int64_t>();
    const int64_t* ids = bags.indices.data<int64_t>();
    {
      int64_t bad = -1;
      if (off[0] != 0) bad = 0;
      for (int64_t b = 1; bad < 0 && b <= n_bags; ++b)
        if (off[b] < off[b - 1]) bad = b;
      if (bad < 0 && off[n_bags] != nnz) bad = n_bags;
      if (bad >= 0)
        report_bad_offsets(layout, B, bad, std::vector<int64_t>(off, off + n_bags + 1), nnz);
    }
    ResolvedBags r;
    r.offsets = bags.offsets;
    r.weights = bags.weights;
    r.batch = B;
    r.nnz = nnz;
    const std::vector<int64_t>& meta = layout.meta();
    if (all_in_range(layout, B, off, ids, nnz)) {
      // The common case: the ids are the rows, so the batch's indices serve as the keys.
      r.keys = bags.indices;
      r.local_keys = true;
      return r;
    }
    r.keys = scratch_i64(keys_cache_, nnz);
    int64_t* keys = r.keys.data<int64_t>();
    BadIdFindings found;
    found.first_warn.assign(static_cast<size_t>(T), -1);
    int64_t first_error = INT64_MAX;
    unsigned long long clamped = 0;
#pragma omp parallel if (nnz > kParallelWork)
    {
      int64_t my_error = INT64_MAX;
      std::vector<int64_t> my_warn(static_cast<size_t>(T), INT64_MAX);
      unsigned long long my_clamped = 0;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < n_bags; ++b) {
        const int64_t t = b / (B > 0 ? B : 1);
        const int64_t* m = meta.data() + t * kMetaFields;
        for (int64_t j = off[b]; j < off[b + 1]; ++j) {
          bool bad = false;
          const int64_t row = resolve_row(ids[j], m[kMetaRows], m[kMetaMapping], &bad);
          keys[j] = m[kMetaRowOffset] + row;
          if (bad) {
            if (m[kMetaPolicy] == static_cast<int64_t>(IdPolicy::Error)) {
              my_error = std::min(my_error, j);
            } else {
              my_warn[static_cast<size_t>(t)] = std::min(my_warn[static_cast<size_t>(t)], j);
              ++my_clamped;
            }
          }
        }
      }
#pragma omp critical(tessera_emb_resolve)
      {
        first_error = std::min(first_error, my_error);
        for (size_t t = 0; t < my_warn.size(); ++t)
          if (my_warn[t] != INT64_MAX &&
              (found.first_warn[t] < 0 || my_warn[t] < found.first_warn[t]))
            found.first_warn[t] = my_warn[t];
        clamped += my_clamped;
      }
    }
    found.first_error = first_error == INT64_MAX ? -1 : first_error;
    found.clamped = clamped;
    r.clamped = clamped;
    if (found.any())
      apply_id_policy(layout, B, found, std::vector<int64_t>(ids, ids + nnz),
                      std::vector<int64_t>(off, off + n_bags + 1), warn);
    return r;
  }

  void forward(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
               Tensor& out) override {
    check_forward(layout, weights, r, out);
    const BatchFields f = batch_fields(layout, r);
    const int64_t T = f.tables, B = f.batch, out_dim = f.out_dim;
    const int64_t *off = f.offsets, *keys = f.keys;
    const float* psw = f.per_sample_weights;
    const TableDType dtype = format_.dtype;
    const float* w = dtype == TableDType::F32 ? weights.data<float>() : nullptr;
    const uint16_t* w16 = dtype == TableDType::F32 ? nullptr : half_data(weights);
    float* o = out.data<float>();
    const std::vector<int64_t>& meta = layout.meta();
    // Blocks of at most kForwardBlock samples, and at least 4 blocks per thread in all (few
    // tables or a small batch still use every thread).
    const int64_t want = (4 * omp_get_max_threads() + T - 1) / std::max<int64_t>(T, 1);
    const int64_t per_table =
        std::min(std::max((B + kForwardBlock - 1) / kForwardBlock, want), std::max<int64_t>(B, 1));
    const int64_t block = (B + per_table - 1) / per_table;
    const int64_t blocks = T * per_table;
#pragma omp parallel for schedule(dynamic, 1) if (r.nnz * layout.max_dim() > kParallelWork)
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t t = k / per_table;
      const int64_t s0 = std::min(B, (k % per_table) * block);
      const int64_t* m = meta.data() + t * kMetaFields;
      const int64_t s1 = std::min(B, s0 + block), row0 = r.key_origin(m[kMetaRowOffset]);
      if (dtype == TableDType::BF16)
        forward_block_bf16(m, t, s0, s1, B, out_dim, off, keys, row0, psw, w16, o);
      else if (dtype == TableDType::F16)
        forward_block_f16(m, t, s0, s1, B, out_dim, off, keys, row0, psw, w16, o);
      else
        forward_block(m, t, s0, s1, B, out_dim, off, keys, row0, psw, w, o);
    }
  }

  SparseGrad backward(const TableLayout& layout, const ResolvedBags& r,
                      const Tensor& dout) override {
    check_dout(layout, r, dout);
    const Segments& seg = segments(layout, r);
    const int64_t U = static_cast<int64_t>(seg.keys.size());
    const int64_t D = layout.max_dim();
    SparseGrad g;
    g.count = U;
    g.keys = Tensor::host_from<int64_t>({U}, seg.keys);
    g.grads = Tensor::host({U, D});
    float* grads = g.grads.data<float>();
#pragma omp parallel for schedule(dynamic, 64) if (r.nnz * D > kParallelWork)
    for (int64_t u = 0; u < U; ++u) row_grad(layout, r, dout, seg, u, grads + u * D);
    return g;
  }

  Tensor weight_grad(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
                     const Tensor& dout) override {
    check_weights(layout, weights);
    check_dout(layout, r, dout);
    const int64_t T = layout.num_tables();
    const int64_t B = r.batch;
    const int64_t out_dim = layout.out_dim();
    const int64_t* off = r.offsets.data<int64_t>();
    const int64_t* keys = r.keys.data<int64_t>();
    const TableDType dtype = format_.dtype;
    const float* w = dtype == TableDType::F32 ? weights.data<float>() : nullptr;
    const uint16_t* w16 = dtype == TableDType::F32 ? nullptr : half_data(weights);
    const float* dy = dout.data<float>();
    Tensor g = Tensor::host({r.nnz});
    float* gp = g.data<float>();
    const std::vector<int64_t>& meta = layout.meta();
#pragma omp parallel for schedule(static) if (r.nnz * layout.max_dim() > kParallelWork)
    for (int64_t b = 0; b < T * B; ++b) {
      const int64_t t = b / B;
      const int64_t* m = meta.data() + t * kMetaFields;
      const int64_t dim = m[kMetaDim];
      const int64_t e_base = m[kMetaWeightOffset] - r.key_origin(m[kMetaRowOffset]) * dim;
      const float* d = dy + (b - t * B) * out_dim + m[kMetaOutOffset];
      thread_local std::vector<float> row;  // a 16-bit row, widened
      if (w16 && row.size() < static_cast<size_t>(dim)) row.resize(static_cast<size_t>(dim));
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        const float* rw = w ? w + e_base + keys[j] * dim : row.data();
        if (w16) widen_row(dtype, w16 + e_base + keys[j] * dim, row.data(), dim);
        gp[j] = bag_weight_grad(m[kMetaPooling], off[b + 1] - off[b], rw, d, dim);
      }
    }
    return g;
  }

  void update(const TableLayout& layout, SparseOptimizer kind, const SparseStepParams& p,
              const SparseGrad& g, EmbeddingStorage& storage) override {
    check_update(layout, kind, g, storage);
    const int64_t U = g.count;
    const int64_t D = layout.max_dim();
    const int64_t* keys = g.keys.data<int64_t>();
    const float* grads = g.grads.data<float>();
#pragma omp parallel for schedule(static) if (U * D > kParallelWork)
    for (int64_t u = 0; u < U; ++u) {
      const int64_t t = layout.table_of_key(keys[u]);
      apply_row(layout, kind, p, t, keys[u], grads + u * D, storage);
    }
  }

  void backward_update(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout,
                       SparseOptimizer kind, const SparseStepParams& p,
                       EmbeddingStorage& storage) override {
    check_dout(layout, r, dout);
    const int64_t T = layout.num_tables();
    const int64_t D = layout.max_dim();
    const bool parallel = r.nnz * D > kParallelWork;
    if (!parallel || T >= 2 * omp_get_max_threads()) {
      fused_per_table(layout, r, dout, kind, p, storage, parallel);
      return;
    }
    const Segments& seg = segments(layout, r);
    const int64_t U = static_cast<int64_t>(seg.keys.size());
#pragma omp parallel if (parallel)
    {
      std::vector<float> buf(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 64)
      for (int64_t u = 0; u < U; ++u) {
        if (u + 1 < U) {
          const int64_t kn = seg.keys[static_cast<size_t>(u) + 1];
          const int64_t tn = seg.table[static_cast<size_t>(u) + 1];
          weights_ref(storage, p)
              .prefetch_rw(
                  layout.weight_offset(tn) + (kn - layout.row_offset(tn)) * layout.spec(tn).dim,
                  layout.spec(tn).dim);
        }
        row_grad(layout, r, dout, seg, u, buf.data());
        apply_row(layout, kind, p, seg.table[static_cast<size_t>(u)],
                  seg.keys[static_cast<size_t>(u)], buf.data(), storage);
      }
    }
  }

 private:
  // True when no table hashes and every id lies in [0, rows of its table): a read-only pass, so a
  // clean batch costs resolve no writes. Otherwise resolve's full pass maps, checks and reports.
  static bool all_in_range(const TableLayout& layout, int64_t B, const int64_t* off,
                           const int64_t* ids, int64_t nnz) {
    const int64_t T = layout.num_tables();
    const std::vector<int64_t>& meta = layout.meta();
    for (int64_t t = 0; t < T; ++t)
      if (meta[static_cast<size_t>(t * kMetaFields + kMetaMapping)] !=
          static_cast<int64_t>(IdMapping::Direct))
        return false;
    bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (nnz > kParallelWork)
    for (int64_t b = 0; b < T * B; ++b) {
      const uint64_t rows =
          static_cast<uint64_t>(meta[static_cast<size_t>((b / B) * kMetaFields + kMetaRows)]);
      bool in = true;
      for (int64_t j = off[b]; j < off[b + 1]; ++j) in &= static_cast<uint64_t>(ids[j]) < rows;
      ok = ok && in;
    }
    return ok;
  }

  // backward_update one table per task (see the file comment).
  void fused_per_table(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout,
                       SparseOptimizer kind, const SparseStepParams& p, EmbeddingStorage& storage,
                       bool parallel) {
    const BatchFields f = batch_fields(layout, r);
    const int64_t T = f.tables, B = f.batch, out_dim = f.out_dim;
    const int64_t *off = f.offsets, *keys = f.keys;
    const float* psw = f.per_sample_weights;
    const float* dy = dout.data<float>();
    const WeightsRef w = weights_ref(storage, p);
    const StatePtrs st = state_ptrs(storage);
    const std::vector<int64_t>& meta = layout.meta();
    if (slot_.size() != static_cast<size_t>(T)) slot_.assign(static_cast<size_t>(T), {});
#pragma omp parallel if (parallel)
    {
#pragma omp single
      if (fused_.size() < static_cast<size_t>(omp_get_num_threads()))
        fused_.resize(static_cast<size_t>(omp_get_num_threads()));
      FusedScratch& fs = fused_[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t* m = meta.data() + t * kMetaFields;
        const int64_t rows = m[kMetaRows];
        const int64_t dim = m[kMetaDim];
        std::vector<int32_t>& slot = slot_[static_cast<size_t>(t)];
        if (slot.size() != static_cast<size_t>(rows)) slot.assign(static_cast<size_t>(rows), -1);
        const int64_t n = off[(t + 1) * B] - off[t * B];
        const size_t need = static_cast<size_t>(std::min(rows, n) * dim);
        if (fs.acc.size() < need) fs.acc.resize(need);
        fs.rows.clear();
        accumulate_table(m, t, B, out_dim, off, keys, r.key_origin(m[kMetaRowOffset]), psw, dy,
                         slot.data(), fs.rows, fs.acc.data());
        apply_table(kind, p, m, fs.rows, fs.acc.data(), slot.data(), w, st.s0, st.s1);
      }
    }
  }

  void check_weights(const TableLayout& layout, const Tensor& weights) const {
    if (format_.dtype != TableDType::F32) {
      const int64_t words = packed_words(layout.total_elements());
      TESSERA_CHECK(weights.is_host() && weights.dtype() == DType::I32 && weights.numel() == words,
                    table_dtype_name(format_.dtype)
                        << " embedding weights must be host i32 [" << words << "] (packed "
                        << layout.total_elements() << " values), got " << weights.describe());
      return;
    }
    TESSERA_CHECK(weights.is_host() && weights.dtype() == DType::F32 &&
                      weights.numel() == layout.total_elements(),
                  "embedding weights must be host f32 [" << layout.total_elements() << "], got "
                                                         << weights.describe());
  }
  void check_forward(const TableLayout& layout, const Tensor& weights, const ResolvedBags& r,
                     const Tensor& out) const {
    check_weights(layout, weights);
    TESSERA_CHECK(out.is_host() && out.dtype() == DType::F32 && out.rank() == 2 &&
                      out.dim(0) == r.batch && out.dim(1) == layout.out_dim(),
                  "pooled output must be host f32 [" << r.batch << ", " << layout.out_dim()
                                                     << "], got " << out.describe());
  }
  void check_dout(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout) const {
    TESSERA_CHECK(dout.is_host() && dout.dtype() == DType::F32 && dout.rank() == 2 &&
                      dout.dim(0) == r.batch && dout.dim(1) == layout.out_dim(),
                  "dout must be host f32 [" << r.batch << ", " << layout.out_dim() << "], got "
                                            << dout.describe());
  }
  void check_update(const TableLayout& layout, SparseOptimizer kind, const SparseGrad& g,
                    EmbeddingStorage& storage) const {
    TESSERA_CHECK(storage.num_states() == state_slots(kind),
                  "storage holds " << storage.num_states() << " optimizer state tensors, "
                                   << sparse_optimizer_name(kind) << " needs "
                                   << state_slots(kind));
    TESSERA_CHECK(
        g.grads.numel() == g.count * layout.max_dim(),
        "sparse grad of " << g.count << " rows must be [U, max_dim], got " << g.grads.describe());
    // Each row is updated by one thread: keys must be distinct (ascending, as backward makes them)
    // and in range; checked here, outside the parallel loop, so a bad gradient is an Error.
    const int64_t* keys = g.keys.data<int64_t>();
    for (int64_t u = 0; u < g.count; ++u)
      TESSERA_CHECK(
          keys[u] >= 0 && keys[u] < layout.total_rows() && (u == 0 || keys[u - 1] < keys[u]),
          "sparse grad key " << keys[u] << " at " << u << " is out of range [0, "
                             << layout.total_rows() << ") or not ascending");
  }

  // grad[0, dim) of touched row u (positions in ascending order: the device's order too).
  static void row_grad(const TableLayout& layout, const ResolvedBags& r, const Tensor& dout,
                       const Segments& seg, int64_t u, float* grad) {
    const int64_t t = seg.table[static_cast<size_t>(u)];
    const int64_t* m = layout.meta().data() + t * kMetaFields;
    const int64_t dim = m[kMetaDim];
    const int64_t D = layout.max_dim();
    const int64_t B = r.batch;
    const int64_t out_dim = layout.out_dim();
    const int64_t* off = r.offsets.data<int64_t>();
    const float* psw = r.weights.defined() ? r.weights.data<float>() : nullptr;
    const float* dy = dout.data<float>();
    std::fill(grad, grad + D, 0.f);
    for (int64_t q = seg.seg_start[static_cast<size_t>(u)];
         q < seg.seg_start[static_cast<size_t>(u) + 1]; ++q) {
      const int64_t j = seg.pos[static_cast<size_t>(q)];
      if (q + kPrefetchAhead < seg.seg_start[static_cast<size_t>(u) + 1]) {
        const int64_t bn = seg.bag[static_cast<size_t>(q + kPrefetchAhead)];
        prefetch_row(dy + (bn - t * B) * out_dim + m[kMetaOutOffset], dim);
      }
      const int64_t b = seg.bag[static_cast<size_t>(q)];
      const int64_t s = b - t * B;
      const float scale = bag_scale(m[kMetaPooling], off[b + 1] - off[b], psw ? psw[j] : 1.f);
      const float* src = dy + s * out_dim + m[kMetaOutOffset];
      axpy(grad, src, scale, dim);
    }
  }

  void apply_row(const TableLayout& layout, SparseOptimizer kind, const SparseStepParams& p,
                 int64_t t, int64_t key, const float* grad, EmbeddingStorage& storage) const {
    const int64_t* m = layout.meta().data() + t * kMetaFields;
    const StatePtrs st = state_ptrs(storage);
    apply_row_at(kind, p, key, m[kMetaWeightOffset] + (key - m[kMetaRowOffset]) * m[kMetaDim],
                 m[kMetaDim], grad, weights_ref(storage, p), st.s0, st.s1);
  }
  // The storage's weights under the ops' format (checked against the storage's own dtype).
  WeightsRef weights_ref(EmbeddingStorage& storage, const SparseStepParams& p) const {
    TESSERA_CHECK(storage.dtype() == format_.dtype, "embedding storage holds "
                                                        << table_dtype_name(storage.dtype())
                                                        << " tables, the ops were set up for "
                                                        << table_dtype_name(format_.dtype));
    WeightsRef w;
    w.format = format_;
    w.round_stream = p.round_stream;
    if (format_.dtype == TableDType::F32)
      w.f32 = storage.weights().data<float>();
    else
      w.h16 = half_data(storage.weights());
    return w;
  }
  struct StatePtrs {
    float* s0 = nullptr;
    float* s1 = nullptr;
  };
  static StatePtrs state_ptrs(EmbeddingStorage& storage) {
    StatePtrs st;
    if (storage.num_states() > 0) st.s0 = storage.state(0).data<float>();
    if (storage.num_states() > 1) st.s1 = storage.state(1).data<float>();
    return st;
  }

  // De-duplication per table (see the file comment). Tables run in parallel; each table's
  // positions are the contiguous range [offsets[t*B], offsets[(t+1)*B]).
  // Fills seg_ (valid until the next call); scratch vectors keep their capacity between batches.
  const Segments& segments(const TableLayout& layout, const ResolvedBags& r) {
    const int64_t T = layout.num_tables();
    const int64_t B = r.batch;
    const int64_t* off = r.offsets.data<int64_t>();
    const int64_t* keys = r.keys.data<int64_t>();
    if (slot_.size() != static_cast<size_t>(T)) {
      slot_.assign(static_cast<size_t>(T), {});
    }
    std::vector<PerTable>& per = per_;
    per.resize(static_cast<size_t>(T));
#pragma omp parallel for schedule(dynamic, 1) if (r.nnz > kParallelWork)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t rows = layout.spec(t).rows;
      std::vector<int32_t>& slot = slot_[static_cast<size_t>(t)];
      if (slot.size() != static_cast<size_t>(rows)) slot.assign(static_cast<size_t>(rows), -1);
      const int64_t row0 = r.key_origin(layout.row_offset(t));
      const int64_t p0 = off[t * B];
      const int64_t p1 = off[(t + 1) * B];
      PerTable& pt = per[static_cast<size_t>(t)];
      pt.rows.clear();
      for (int64_t j = p0; j < p1; ++j) {
        const int64_t row = keys[j] - row0;
        if (slot[static_cast<size_t>(row)] < 0) {
          slot[static_cast<size_t>(row)] = 0;
          pt.rows.push_back(row);
        }
      }
      // Ascending order: sort the touched rows, or scan the marks when that is cheaper.
      if (static_cast<double>(pt.rows.size()) * 16.0 > static_cast<double>(rows)) {
        pt.rows.clear();
        for (int64_t row = 0; row < rows; ++row)
          if (slot[static_cast<size_t>(row)] == 0) pt.rows.push_back(row);
      } else {
        std::sort(pt.rows.begin(), pt.rows.end());
      }
      const int64_t U = static_cast<int64_t>(pt.rows.size());
      for (int64_t u = 0; u < U; ++u)
        slot[static_cast<size_t>(pt.rows[static_cast<size_t>(u)])] = static_cast<int32_t>(u);
      pt.start.assign(static_cast<size_t>(U) + 1, 0);
      for (int64_t j = p0; j < p1; ++j)
        ++pt.start[static_cast<size_t>(slot[static_cast<size_t>(keys[j] - row0)]) + 1];
      for (int64_t u = 0; u < U; ++u)
        pt.start[static_cast<size_t>(u) + 1] += pt.start[static_cast<size_t>(u)];
      pt.pos.resize(static_cast<size_t>(p1 - p0));
      pt.bag.resize(static_cast<size_t>(p1 - p0));
      pt.fill.assign(pt.start.begin(), pt.start.end() - 1);
      std::vector<int64_t>& fill = pt.fill;
      for (int64_t b = t * B; b < (t + 1) * B; ++b)
        for (int64_t j = off[b]; j < off[b + 1]; ++j) {
          const size_t q = static_cast<size_t>(
              fill[static_cast<size_t>(slot[static_cast<size_t>(keys[j] - row0)])]++);
          pt.pos[q] = j;
          pt.bag[q] = b;
        }
      for (int64_t row : pt.rows) slot[static_cast<size_t>(row)] = -1;
    }
    Segments& seg = seg_;
    seg.keys.clear();
    seg.table.clear();
    seg.pos.clear();
    seg.bag.clear();
    seg.seg_start.assign(1, 0);
    for (int64_t t = 0; t < T; ++t) {
      const PerTable& pt = per[static_cast<size_t>(t)];
      const int64_t base = static_cast<int64_t>(seg.pos.size());
      for (size_t u = 0; u < pt.rows.size(); ++u) {
        seg.keys.push_back(layout.row_offset(t) + pt.rows[u]);
        seg.table.push_back(static_cast<int32_t>(t));
        seg.seg_start.push_back(base + pt.start[u + 1]);
      }
      seg.pos.insert(seg.pos.end(), pt.pos.begin(), pt.pos.end());
      seg.bag.insert(seg.bag.end(), pt.bag.begin(), pt.bag.end());
    }
    return seg;
  }

  // An i64 [n] tensor over a cached buffer when no earlier result still uses it (use_count 1:
  // only the cache), so a training loop does not fault in fresh pages every batch; every element
  // is overwritten by the caller, so the buffer is not cleared.
  static Tensor scratch_i64(std::shared_ptr<Buffer>& cache, int64_t n) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(int64_t);
    if (!cache || cache.use_count() != 1 || cache->bytes() < bytes)
      cache = std::make_shared<HostBuffer>(bytes + bytes / 4);
    return Tensor(cache, Shape{n}, DType::I64);
  }

  // Per table: row -> slot of the current batch, -1 when untouched (reset after every use).
  std::vector<std::vector<int32_t>> slot_;
  struct PerTable {
    std::vector<int64_t> rows, start, pos, bag, fill;
  };
  std::vector<PerTable> per_;
  // Per thread, for the fused path: touched rows of the current table, their gradients [U, dim].
  struct FusedScratch {
    std::vector<int64_t> rows;
    std::vector<float> acc;
  };
  std::vector<FusedScratch> fused_;
  Segments seg_;
  std::shared_ptr<Buffer> keys_cache_;
};

}  // namespace

std::unique_ptr<BagOps> make_host_bag_ops() {
  return std::make_unique<HostBagOps>();
}

}  // namespace tessera::emb
