#pragma once
// Device memory through a stream-ordered cache (the design of PyTorch's CUDA caching allocator
// and HugeCTR's): cudaMalloc and cudaFree are slow and cudaFree waits for the whole device, so a
// training step that makes and drops temporaries must not call them.
//   - Sizes are rounded to geometric classes: four per power of two (2^k times 1.25, 1.5, 1.75
//     and 2), at least 512 B apart, and multiples of 2 MiB above 1 MiB (cudaMalloc maps large
//     allocations in 2 MiB pages anyway). A request wastes at most a quarter of its size below
//     1 MiB, and a step whose sizes vary (a batch's nnz changes every step) keeps landing in the
//     same few classes instead of making a new one per size. A block is one raw allocation of
//     exactly its class's size (reuse is by class).
//   - A freed block goes back to the cache of the stream it was allocated for, and only a later
//     allocation for that same stream takes it. Work queued on one stream runs in order, so the
//     new owner's work runs after every use by the old one, without any wait. (Memory used on a
//     second stream must not come from here unless that stream is ordered after this one.)
//   - The cache holds at most `max_cached_bytes` (Options). A free that takes it over the cap
//     trims it without waiting for queued work: it records a fence (an event) on each stream
//     whose cached blocks no fence covers yet, and gives back to the device only blocks whose
//     covering fence has completed (so no queued work can still use them), largest first, until
//     the cache is under the cap again; blocks whose fence is still pending go back at a later
//     free. Giving a block back is a cudaFree, which the device serialises: the cap bounds the
//     cache, it is not a working size (a step that keeps exceeding it pays that every time).
//   - When the device is out of memory, the whole cache is released (after a synchronisation) and
//     the allocation is retried once; after that it is an Error(Backend).
//   - close() (the backend going) releases the cache; blocks freed after it (tensors that outlive
//     their backend) go straight back to the device.
// CachingAllocator is plain C++ over a few raw operations, so tests/device_allocator_test.cpp
// runs it on the host in every build; make_device_allocator (device_allocator.cpp) binds it to
// cudaMalloc / cudaFree / cudaDeviceSynchronize and events. Thread-safe (a tensor may be dropped
// on another thread than its backend's).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "host/backend/backend.h"  // DeviceMemoryStats
#include "host/core/error.h"

namespace tessera::cuda {

// The raw device memory under the cache.
struct RawDeviceMemory {
  // `bytes` of device memory, or nullptr when the device is out of memory; any other failure
  // throws Error(Backend).
  std::function<void*(size_t bytes)> allocate;
  // Gives an allocation back; never throws (a failure is logged).
  std::function<void(void* ptr)> free;
  // Waits until no queued work on any stream can still use a cached block.
  std::function<void()> synchronize;
  // A fence recorded now on `stream` (an event): once it has completed, no work queued on the
  // stream before it can still use a block. May throw Error(Backend).
  std::function<void*(const void* stream)> record_fence;
  // Whether `fence` has completed; never waits. May throw Error(Backend).
  std::function<bool(void* fence)> fence_done;
  // Destroys `fence`; never throws.
  std::function<void(void* fence)> drop_fence;
};

// The default cap on cached bytes when the device's size is not known (make_device_allocator
// uses a quarter of the device's memory).
constexpr size_t kDefaultMaxCachedBytes = size_t{1} << 30;

struct CachingAllocatorOptions {
  size_t max_cached_bytes = kDefaultMaxCachedBytes;  // the cache's cap (see the header comment)
};

class CachingAllocator {
 public:
  using StreamKey = const void*;                          // a stream's identity (its cudaStream_t)
  static constexpr size_t kMinBlock = 512;                // the smallest class and finest step
  static constexpr size_t kLargeLimit = size_t{1} << 20;  // above: classes are 2 MiB multiples
  static constexpr size_t kLargeStep = size_t{2} << 20;
  static constexpr size_t kDefaultMaxCached = kDefaultMaxCachedBytes;
  using Options = CachingAllocatorOptions;

  struct Block {
    void* ptr = nullptr;
    size_t size = 0;  // the class size: what in-use and reserved bytes count
    StreamKey stream = nullptr;
  };

  // `where` names the device in messages, e.g. "cuda:0".
  CachingAllocator(RawDeviceMemory raw, std::string where, Options options = {})
      : raw_(std::move(raw)), where_(std::move(where)), options_(options) {}
  ~CachingAllocator() { close(); }
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The class a request of `bytes` is served from (a zero-byte request gets the smallest, so
  // every tensor has a valid, aligned pointer): bytes rounded up to a quarter of the power of two
  // below it (2^k < bytes <= 2^(k+1): a multiple of 2^k / 4), at least kMinBlock, and to
  // kLargeStep above kLargeLimit.
  static size_t size_class(size_t bytes) {
    if (bytes <= kMinBlock) return kMinBlock;
    size_t power = kMinBlock;  // power < bytes <= 2 * power
    while (power <= bytes / 2 && power * 2 < bytes) power *= 2;
    size_t step = power / 4 < kMinBlock ? kMinBlock : power / 4;
    if (bytes > kLargeLimit && step < kLargeStep) step = kLargeStep;
    return (bytes + step - 1) / step * step;
  }

  // A block of at least `bytes` for work queued on `stream`: a cached one of the class when the
  // stream has one, else a raw allocation (retried once after releasing the cache). Throws
  // Error(Backend) naming the size, the device and the statistics when the device has no room.
  Block allocate(size_t bytes, StreamKey stream) {
    const size_t size = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    Block b{nullptr, size, stream};
    auto cached = cache_.find({stream, size});
    if (cached != cache_.end() && !cached->second.empty()) {
      b.ptr = cached->second.back().ptr;  // the most recently freed: likeliest still in L2
      cached->second.pop_back();
      if (cached->second.empty()) cache_.erase(cached);
      cached_bytes_ -= size;
      ++stats_.cache_hits;
    } else {
      b.ptr = allocate_raw_locked(bytes, size);
      ++stats_.cache_misses;
    }
    live_.emplace(b.ptr, b);
    stats_.bytes_in_use += static_cast<int64_t>(size);
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use)
      stats_.peak_bytes_in_use = stats_.bytes_in_use;
    return b;
  }

  // Returns `block` to its stream's cache (after close(): to the device), then trims the cache
  // if it is over the cap. A pointer this allocator did not hand out, or one freed twice, is
  // logged and left alone. Never throws.
  void free(const Block& block) noexcept {
    if (!block.ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(block.ptr);
    if (it == live_.end()) {
      std::fprintf(stderr, "tessera: %s caching allocator: free of %p, which is not in use\n",
                   where_.c_str(), block.ptr);
      return;
    }
    const Block b = it->second;
    live_.erase(it);
    stats_.bytes_in_use -= static_cast<int64_t>(b.size);
    if (closed_) {
      free_raw_locked(b.ptr, b.size);
      return;
    }
    try {
      StreamState& s = streams_[b.stream];
      cache_[{b.stream, b.size}].push_back(Cached{b.ptr, s.fences_recorded});
      s.uncovered = true;
      cached_bytes_ += b.size;
    } catch (...) {  // no memory for the list: give the block back instead
      free_raw_locked(b.ptr, b.size);
      return;
    }
    if (cached_bytes_ > options_.max_cached_bytes) trim_locked();
  }

  // Synchronises, then gives every cached block back to the device. Returns the bytes released.
  size_t release_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    return release_cache_locked();
  }

  // Releases the cache; later frees go straight to the device. Never throws (a failing
  // synchronisation is logged and the blocks are freed anyway: a raw free waits for the device).
  void close() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    try {
      release_cache_locked();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tessera: %s caching allocator: %s\n", where_.c_str(), e.what());
      free_cached_locked();
    }
  }

  DeviceMemoryStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  // Bytes held in the cache (reserved, not in use): free for this allocator's next requests.
  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }
  size_t max_cached_bytes() const { return options_.max_cached_bytes; }

 private:
  struct Cached {
    void* ptr;
    uint64_t tag;  // the stream's fences_recorded when it was freed: fence tag + 1 covers it
  };
  struct StreamState {
    uint64_t fences_recorded = 0;
    uint64_t fences_done = 0;  // blocks with tag < this are safe to give back
    void* pending = nullptr;   // the fence recorded last, until it completes
    bool uncovered = false;    // blocks were cached after the last fence
  };

  void* allocate_raw_locked(size_t bytes, size_t size) {
    void* p = raw_.allocate(size);
    if (!p) {
      const size_t released = release_cache_locked();
      p = raw_.allocate(size);
      if (!p)
        TESSERA_THROW(Backend, "out of device memory on "
                                   << where_ << ": " << bytes << " bytes (a block of " << size
                                   << ") did not fit even after releasing " << released
                                   << " cached bytes; in use " << stats_.bytes_in_use
                                   << " bytes, peak " << stats_.peak_bytes_in_use);
    }
    ++stats_.raw_allocations;
    stats_.bytes_reserved += static_cast<int64_t>(size);
    return p;
  }

  void free_raw_locked(void* p, size_t size) noexcept {
    raw_.free(p);
    ++stats_.raw_frees;
    stats_.bytes_reserved -= static_cast<int64_t>(size);
  }

  // Over the cap: fence the streams with uncovered blocks, note the fences that completed, and
  // give back blocks they cover, largest class first, until under the cap. Never waits.
  void trim_locked() noexcept {
    try {
      for (auto& [stream, s] : streams_) {
        if (s.uncovered && !s.pending) {
          s.pending = raw_.record_fence(stream);
          ++s.fences_recorded;
          s.uncovered = false;
        }
        if (s.pending && raw_.fence_done(s.pending)) {
          raw_.drop_fence(s.pending);
          s.pending = nullptr;
          s.fences_done = s.fences_recorded;
        }
      }
    } catch (const std::exception& e) {  // the cache stays over the cap until a later free
      std::fprintf(stderr, "tessera: %s caching allocator: trimming the cache: %s\n",
                   where_.c_str(), e.what());
    }
    for (auto it = cache_.rbegin();
         it != cache_.rend() && cached_bytes_ > options_.max_cached_bytes;) {
      const auto [stream, size] = it->first;
      const uint64_t done = streams_[stream].fences_done;
      std::vector<Cached>& blocks = it->second;
      // Oldest first: the vector is in free order, so covered blocks are a prefix.
      size_t n = 0;
      while (n < blocks.size() && blocks[n].tag < done &&
             cached_bytes_ > options_.max_cached_bytes) {
        free_raw_locked(blocks[n].ptr, size);
        cached_bytes_ -= size;
        ++n;
      }
      blocks.erase(blocks.begin(), blocks.begin() + static_cast<std::ptrdiff_t>(n));
      if (blocks.empty())
        it = decltype(it)(cache_.erase(std::next(it).base()));
      else
        ++it;
    }
  }

  size_t release_cache_locked() {
    if (cached_bytes_ == 0) return free_cached_locked();  // nothing to wait for: drops fences
    raw_.synchronize();  // a cached block may still be read by work queued before its free
    return free_cached_locked();
  }

  size_t free_cached_locked() noexcept {
    const size_t released = cached_bytes_;
    for (auto& [key, blocks] : cache_)
      for (const Cached& c : blocks) free_raw_locked(c.ptr, key.second);
    cache_.clear();
    cached_bytes_ = 0;
    for (auto& [stream, s] : streams_)
      if (s.pending) raw_.drop_fence(s.pending);
    streams_.clear();
    return released;
  }

  RawDeviceMemory raw_;
  std::string where_;
  Options options_;
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::map<std::pair<StreamKey, size_t>, std::vector<Cached>> cache_;  // (stream, class) -> free
  std::map<StreamKey, StreamState> streams_;                           // streams with a cache
  std::unordered_map<void*, Block> live_;                              // handed out
  size_t cached_bytes_ = 0;
  DeviceMemoryStats stats_;
};

// The allocator of device `device_index`: cudaMalloc / cudaFree / cudaDeviceSynchronize and
// events, with the device made current for each. The cache is capped at `max_cached_bytes`, or
// when 0 at TESSERA_CUDA_CACHE_MAX_MB MiB if that is set, else at a quarter of the device's memory:
// the rest is left to tensors in use, cuDNN workspaces and plans (plain cudaMalloc, which does not
// release this cache when the device is full) and other processes. Shared: every DeviceBuffer it
// hands out holds it.
std::shared_ptr<CachingAllocator> make_device_allocator(int device_index,
                                                        size_t max_cached_bytes = 0);

}  // namespace tessera::cuda
