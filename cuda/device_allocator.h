#pragma once
// Device memory through a stream-ordered cache (the design of PyTorch's CUDA caching allocator
// and HugeCTR's): cudaMalloc and cudaFree are slow and cudaFree waits for the whole device, so a
// training step that makes and drops temporaries must not call them.
//   - Sizes are rounded to a class: a multiple of 512 B up to 1 MiB, of 2 MiB above. A block is
//     one raw allocation of exactly its class's size (no splitting: reuse is by class).
//   - A freed block goes back to the cache of the stream it was allocated for, and only a later
//     allocation for that same stream takes it. Work queued on one stream runs in order, so the
//     new owner's work runs after every use by the old one, without any wait. (Memory used on a
//     second stream must not come from here unless that stream is ordered after this one.)
//   - When the device is out of memory, the cache is released (after a synchronisation) and the
//     allocation is retried once; after that it is an Error(Backend).
//   - close() (the backend going) releases the cache; blocks freed after it (tensors that outlive
//     their backend) go straight back to the device.
// CachingAllocator is plain C++ over three raw operations, so tests/device_allocator_test.cpp
// runs it on the host in every build; make_device_allocator (device_allocator.cpp) binds it to
// cudaMalloc / cudaFree / cudaDeviceSynchronize. Thread-safe (a tensor may be dropped on another
// thread than its backend's).
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
};

class CachingAllocator {
 public:
  using StreamKey = const void*;  // a stream's identity (the cudaStream_t's value)
  static constexpr size_t kSmallLimit = size_t{1} << 20;  // classes up to here: 512 B steps
  static constexpr size_t kSmallStep = 512;
  static constexpr size_t kLargeStep = size_t{2} << 20;  // above: 2 MiB steps

  struct Block {
    void* ptr = nullptr;
    size_t size = 0;  // the class size: what in-use and reserved bytes count
    StreamKey stream = nullptr;
  };

  // `where` names the device in messages, e.g. "cuda:0".
  CachingAllocator(RawDeviceMemory raw, std::string where)
      : raw_(std::move(raw)), where_(std::move(where)) {}
  ~CachingAllocator() { close(); }
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // The class a request of `bytes` is served from (a zero-byte request gets the smallest, so
  // every tensor has a valid, aligned pointer).
  static size_t size_class(size_t bytes) {
    if (bytes == 0) return kSmallStep;
    const size_t step = bytes <= kSmallLimit ? kSmallStep : kLargeStep;
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
      b.ptr = cached->second.back();
      cached->second.pop_back();
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

  // Returns `block` to its stream's cache (after close(): to the device). A pointer this
  // allocator did not hand out, or one freed twice, is logged and left alone. Never throws.
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
      cache_[{b.stream, b.size}].push_back(b.ptr);
      cached_bytes_ += b.size;
    } catch (...) {  // no memory for the list: give the block back instead
      free_raw_locked(b.ptr, b.size);
    }
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

 private:
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

  size_t release_cache_locked() {
    if (cached_bytes_ == 0) return 0;
    raw_.synchronize();  // a cached block may still be read by work queued before its free
    return free_cached_locked();
  }

  size_t free_cached_locked() noexcept {
    const size_t released = cached_bytes_;
    for (auto& [key, blocks] : cache_)
      for (void* p : blocks) free_raw_locked(p, key.second);
    cache_.clear();
    cached_bytes_ = 0;
    return released;
  }

  RawDeviceMemory raw_;
  std::string where_;
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::map<std::pair<StreamKey, size_t>, std::vector<void*>> cache_;  // (stream, class) -> free
  std::unordered_map<void*, Block> live_;                             // handed out
  size_t cached_bytes_ = 0;
  DeviceMemoryStats stats_;
};

// The allocator of device `device_index`: cudaMalloc / cudaFree / cudaDeviceSynchronize with the
// device made current for each. Shared: every DeviceBuffer it hands out holds it.
std::shared_ptr<CachingAllocator> make_device_allocator(int device_index);

}  // namespace tessera::cuda
