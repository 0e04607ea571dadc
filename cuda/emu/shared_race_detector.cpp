#include "cuda/emu/shared_race_detector.h"

#include <cstring>

namespace tessera::emu {

void SharedRaceDetector::begin_block(const unsigned char* base, size_t bytes, int warps) {
  base_ = base;
  bytes_ = bytes;
  shadow_.assign(base, base + bytes);
  owners_.assign(bytes, ByteOwner{});
  warp_epoch_.assign(static_cast<size_t>(warps), 0);
  epoch_ = 0;
  atomic_ranges_.clear();
  in_segment_ = false;
  pending_barriers_ = 0;
  pending_warp_syncs_.clear();
}

void SharedRaceDetector::on_barrier() {
  if (in_segment_) ++pending_barriers_;
  else ++epoch_;
}

void SharedRaceDetector::on_warp_sync(int warp) {
  if (in_segment_) pending_warp_syncs_.push_back(warp);
  else ++warp_epoch_[static_cast<size_t>(warp)];
}

void SharedRaceDetector::note_atomic(const void* address, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(address);
  if (!active() || p < base_ || p >= base_ + bytes_) return;
  const size_t off = static_cast<size_t>(p - base_);
  atomic_ranges_.emplace_back(off, off + bytes);
}

bool SharedRaceDetector::in_atomic_range(size_t offset) const {
  for (const auto& r : atomic_ranges_)
    if (offset >= r.first && offset < r.second) return true;
  return false;
}

std::optional<SharedRace> SharedRaceDetector::after_segment(int thread, int warp) {
  if (!active()) {
    in_segment_ = false;
    return std::nullopt;
  }
  std::optional<SharedRace> report;
  size_t i = 0;
  // Chunked scan (memcmp is vectorised); only changed chunks are examined byte by byte.
  constexpr size_t kChunk = 64;
  for (; i < bytes_; i += kChunk) {
    const size_t n = bytes_ - i < kChunk ? bytes_ - i : kChunk;
    if (std::memcmp(base_ + i, shadow_.data() + i, n) == 0) continue;
    for (size_t j = i; j < i + n; ++j) {
      if (base_[j] == shadow_[j]) continue;
      ByteOwner& o = owners_[j];
      const bool atomic = in_atomic_range(j);
      if (!report && o.thread >= 0 && o.thread != thread && o.epoch == epoch_) {
        const bool warp_synced = o.warp == warp && warp_epoch_[warp] != o.warp_epoch;
        const bool both_atomic = atomic && o.atomic;
        if (!warp_synced && !both_atomic)
          report = SharedRace{o.thread, thread, j, epoch_, o.atomic != atomic};
      }
      o.thread = thread;
      o.warp = warp;
      o.epoch = epoch_;
      o.warp_epoch = warp_epoch_[warp];
      o.atomic = atomic;
      shadow_[j] = base_[j];
    }
  }
  atomic_ranges_.clear();
  in_segment_ = false;
  epoch_ += pending_barriers_;
  pending_barriers_ = 0;
  for (int w : pending_warp_syncs_) ++warp_epoch_[static_cast<size_t>(w)];
  pending_warp_syncs_.clear();
  return report;
}

}  // namespace tessera::emu
