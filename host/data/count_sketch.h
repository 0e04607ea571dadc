#pragma once
// CountMinSketch: the count-min sketch (Cormode and Muthukrishnan, 2005) that prep's fit falls
// back on when exact token counts would exceed data.fit_memory_mb (docs/prepared-format.md,
// "Counting in bounded memory"). It only ever answers "may this token reach min_count?": a
// token's estimate is never below its true count, so no token that reaches min_count is missed.
//
// Layout: kDepth rows of width() saturating uint16 counters ([kDepth, width] row-major). A key
// (a 64-bit hash of column and token) selects one counter per row by double hashing
// (g_i = h1 + i * h2, Kirsch and Mitzenmacher); add() adds to all kDepth, estimate() is their
// minimum. Counters stop at kSaturated: a saturated estimate means "at least 65535", which is
// treated as reaching any min_count (so saturation can only add candidates, never lose one).
//
// Plain (not conservative) update on purpose: it is linear, so a sketch is the same whatever the
// order and the split of the adds, and threads share one sketch through atomic adds (the result
// is deterministic: saturating addition commutes). Conservative update would leave fewer false
// candidates but depend on the order of the adds, i.e. on the thread count.
// Nothing here is stored: a sketch lives only in memory for one fit.
#include <atomic>
#include <cstdint>
#include <memory>

namespace tessera {

class CountMinSketch {
 public:
  static constexpr int kDepth = 4;
  static constexpr uint32_t kSaturated = 65535;
  // A sketch of at most `bytes` bytes (width = bytes / (kDepth * 2)); throws Config when that
  // leaves fewer than kMinWidth counters a row.
  explicit CountMinSketch(int64_t bytes);
  static constexpr int64_t kMinWidth = 4096;

  // The key of `token_hash` (table_hash of a token) in categorical column `column`.
  static uint64_t key_of(int64_t column, uint64_t token_hash);
  void prefetch(uint64_t key) const;
  // Adds n to the key's counters (saturating). Safe from several threads at once.
  void add(uint64_t key, uint64_t n = 1);
  // >= the key's total count (or kSaturated).
  uint32_t estimate(uint64_t key) const;
  bool may_reach(uint64_t key, int64_t min_count) const {
    const uint32_t e = estimate(key);
    return e == kSaturated || static_cast<int64_t>(e) >= min_count;
  }
  int64_t width() const { return width_; }
  int64_t bytes() const { return width_ * kDepth * static_cast<int64_t>(sizeof(uint16_t)); }

 private:
  size_t cell(uint64_t key, int row) const;
  int64_t width_ = 0;
  std::unique_ptr<std::atomic<uint16_t>[]> cells_;  // [kDepth, width_]
};

}  // namespace tessera
