#include "host/data/count_sketch.h"

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

CountMinSketch::CountMinSketch(int64_t bytes) {
  width_ = bytes / (kDepth * static_cast<int64_t>(sizeof(uint16_t)));
  if (width_ < kMinWidth) {
    TESSERA_THROW(Config, "count-min sketch: " << bytes << " bytes leave " << width_
                                               << " counters a row, fewer than the minimum "
                                               << kMinWidth << " (raise data.fit_memory_mb)");
  }
  // Value-initialised: every counter starts at 0.
  cells_.reset(new std::atomic<uint16_t>[static_cast<size_t>(width_ * kDepth)]());
}

uint64_t CountMinSketch::key_of(int64_t column, uint64_t token_hash) {
  return math::mix64(token_hash ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(column + 1)));
}

size_t CountMinSketch::cell(uint64_t key, int row) const {
  const uint64_t h2 = math::mix64(key) | 1;
  const uint64_t g = key + static_cast<uint64_t>(row) * h2;
  // g * width / 2^64: a counter in [0, width) without a division.
  const auto col = static_cast<uint64_t>((static_cast<unsigned __int128>(g) * width_) >> 64);
  return static_cast<size_t>(row) * static_cast<size_t>(width_) + static_cast<size_t>(col);
}

void CountMinSketch::prefetch(uint64_t key) const {
  for (int r = 0; r < kDepth; ++r) __builtin_prefetch(&cells_[cell(key, r)]);
}

void CountMinSketch::add(uint64_t key, uint64_t n) {
  for (int r = 0; r < kDepth; ++r) {
    std::atomic<uint16_t>& c = cells_[cell(key, r)];
    uint16_t v = c.load(std::memory_order_relaxed);
    while (v != kSaturated) {
      const uint64_t sum = v + n;
      const auto next = static_cast<uint16_t>(sum < kSaturated ? sum : kSaturated);
      if (c.compare_exchange_weak(v, next, std::memory_order_relaxed)) break;
    }
  }
}

uint32_t CountMinSketch::estimate(uint64_t key) const {
  uint32_t e = kSaturated;
  for (int r = 0; r < kDepth; ++r) {
    const uint32_t v = cells_[cell(key, r)].load(std::memory_order_relaxed);
    if (v < e) e = v;
  }
  return e;
}

}  // namespace tessera
