// The caching allocator's core (cuda/device_allocator.h) over a fake device: host memory with a
// capacity, counting every raw allocation, free and synchronisation, with fences that complete
// when the fake device is idle (or once finish() runs its queued work).
#include "cuda/device_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "host/backend/memory_stats.h"
#include "tests/support/error_of.h"

namespace tessera::cuda {
namespace {

struct Device {
  size_t capacity = size_t{64} << 20;
  size_t used = 0;
  int allocations = 0, frees = 0, syncs = 0, failures = 0;
  bool broken = false;           // allocate throws, as for an error other than out-of-memory
  std::map<void*, size_t> live;  // raw allocations not yet freed, and their sizes
  std::vector<size_t> sizes;     // every raw allocation's size, in order
  bool busy = false;             // fences recorded while busy complete only at finish()
  std::map<int, bool> fences;    // live fences and whether each completed
  int next_fence = 0, fences_recorded = 0;

  void finish() {
    for (auto& [id, done] : fences) done = true;
  }

  RawDeviceMemory raw() {
    RawDeviceMemory r;
    r.allocate = [this](size_t bytes) -> void* {
      if (broken) TESSERA_THROW(Backend, "the fake device is broken");
      if (used + bytes > capacity) {
        ++failures;
        return nullptr;
      }
      void* p = std::malloc(bytes);
      used += bytes;
      ++allocations;
      live[p] = bytes;
      sizes.push_back(bytes);
      return p;
    };
    r.free = [this](void* p) {
      auto it = live.find(p);
      if (it == live.end()) {
        ADD_FAILURE() << "raw free of a pointer the device did not hand out";
        return;
      }
      used -= it->second;
      live.erase(it);
      ++frees;
      std::free(p);
    };
    r.synchronize = [this] {
      ++syncs;
      finish();
    };
    r.record_fence = [this](const void*) -> void* {
      ++fences_recorded;
      fences[++next_fence] = !busy;
      return reinterpret_cast<void*>(static_cast<intptr_t>(next_fence));
    };
    r.fence_done = [this](void* f) {
      auto it = fences.find(static_cast<int>(reinterpret_cast<intptr_t>(f)));
      if (it == fences.end()) ADD_FAILURE() << "query of a fence that is not live";
      return it != fences.end() && it->second;
    };
    r.drop_fence = [this](void* f) {
      if (fences.erase(static_cast<int>(reinterpret_cast<intptr_t>(f))) != 1)
        ADD_FAILURE() << "drop of a fence that is not live";
    };
    return r;
  }
};

const CachingAllocator::StreamKey kStreamA = reinterpret_cast<const void*>(0x100);
const CachingAllocator::StreamKey kStreamB = reinterpret_cast<const void*>(0x200);

TEST(DeviceAllocator, SizeClassesAreFourPerPowerOfTwoAnd2MiBMultiplesAbove1MiB) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);  // zero-byte tensors get a valid pointer
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(512), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);  // steps of at least 512 B
  EXPECT_EQ(CachingAllocator::size_class(1025), 1536u);
  EXPECT_EQ(CachingAllocator::size_class(4097), 5120u);  // 4096 * 1.25
  EXPECT_EQ(CachingAllocator::size_class(5121), 6144u);  // * 1.5
  EXPECT_EQ(CachingAllocator::size_class(7000), 7168u);  // * 1.75
  EXPECT_EQ(CachingAllocator::size_class(8192), 8192u);
  EXPECT_EQ(CachingAllocator::size_class(1000000), 1048576u);  // 2^19 * 2
  EXPECT_EQ(CachingAllocator::size_class(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::size_class((size_t{1} << 20) + 1), size_t{2} << 20);
  EXPECT_EQ(CachingAllocator::size_class(size_t{5} << 20), size_t{6} << 20);
  EXPECT_EQ(CachingAllocator::size_class(size_t{6} << 20), size_t{6} << 20);
  EXPECT_EQ(CachingAllocator::size_class((size_t{20} << 20) + 1), size_t{24} << 20);  // 16 * 1.5
  // Every class wastes at most a quarter of the request (plus the 512 B / 2 MiB rounding), and
  // classes above 1 MiB are 2 MiB multiples.
  for (size_t bytes = 600; bytes < (size_t{1} << 32); bytes = bytes * 9 / 7 + 13) {
    const size_t c = CachingAllocator::size_class(bytes);
    ASSERT_GE(c, bytes);
    if (bytes > (size_t{1} << 20))
      EXPECT_EQ(c % (size_t{2} << 20), 0u) << bytes;
    else
      EXPECT_LE(c - bytes, std::max<size_t>(bytes / 4, 512)) << bytes;
    if (bytes > (size_t{8} << 20)) EXPECT_LE(c - bytes, bytes / 4) << bytes;
  }

  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto b = a.allocate(700, kStreamA);
  EXPECT_EQ(b.size, 1024u);
  EXPECT_EQ(dev.sizes, std::vector<size_t>{1024}) << "the raw allocation is the class size";
  a.free(b);
}

TEST(DeviceAllocator, AFreedBlockIsReusedByTheNextAllocationOfItsClassOnItsStream) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto first = a.allocate(4000, kStreamA);
  a.free(first);
  const auto again = a.allocate(3900, kStreamA);  // the same 4096-byte class
  EXPECT_EQ(again.ptr, first.ptr);
  EXPECT_EQ(dev.allocations, 1);
  EXPECT_EQ(dev.frees, 0) << "freeing must not give memory back to the device";
  const auto other = a.allocate(5000, kStreamA);  // another class: a new block
  EXPECT_NE(other.ptr, first.ptr);
  EXPECT_EQ(dev.allocations, 2);
  const DeviceMemoryStats s = a.stats();
  EXPECT_EQ(s.cache_hits, 1);
  EXPECT_EQ(s.cache_misses, 2);
  EXPECT_EQ(s.raw_allocations, 2);
  a.free(again);
  a.free(other);
}

TEST(DeviceAllocator, StreamsHaveSeparateCaches) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto on_a = a.allocate(1 << 16, kStreamA);
  a.free(on_a);
  // Work queued on B is not ordered after A's: B must not get A's block.
  const auto on_b = a.allocate(1 << 16, kStreamB);
  EXPECT_NE(on_b.ptr, on_a.ptr);
  EXPECT_EQ(a.stats().cache_misses, 2);
  a.free(on_b);
  // Each stream gets its own block back.
  const auto again_a = a.allocate(1 << 16, kStreamA);
  const auto again_b = a.allocate(1 << 16, kStreamB);
  EXPECT_EQ(again_a.ptr, on_a.ptr);
  EXPECT_EQ(again_b.ptr, on_b.ptr);
  EXPECT_EQ(a.stats().cache_hits, 2);
  EXPECT_EQ(dev.allocations, 2);
  a.free(again_a);
  a.free(again_b);
}

TEST(DeviceAllocator, CountsBytesInUsePeakAndReserved) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto x = a.allocate(1000, kStreamA);             // 1024
  const auto y = a.allocate(size_t{3} << 20, kStreamA);  // 4 MiB
  DeviceMemoryStats s = a.stats();
  EXPECT_EQ(s.bytes_in_use, 1024 + (4 << 20));
  EXPECT_EQ(s.peak_bytes_in_use, 1024 + (4 << 20));
  EXPECT_EQ(s.bytes_reserved, 1024 + (4 << 20));
  a.free(y);
  s = a.stats();
  EXPECT_EQ(s.bytes_in_use, 1024);
  EXPECT_EQ(s.peak_bytes_in_use, 1024 + (4 << 20));
  EXPECT_EQ(s.bytes_reserved, 1024 + (4 << 20)) << "a freed block stays reserved in the cache";
  EXPECT_EQ(a.cached_bytes(), size_t{4} << 20);
  EXPECT_EQ(static_cast<size_t>(s.bytes_reserved), dev.used);
  a.free(x);
  EXPECT_EQ(a.release_cache(), 1024 + (size_t{4} << 20));
  s = a.stats();
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_EQ(s.bytes_reserved, 0);
  EXPECT_EQ(s.raw_frees, 2);
  EXPECT_EQ(dev.used, 0u);
  EXPECT_EQ(dev.syncs, 1) << "a release waits for the device first";
}

TEST(DeviceAllocator, OutOfMemoryReleasesTheCacheAndRetriesOnce) {
  Device dev;
  dev.capacity = size_t{8} << 20;
  CachingAllocator a(dev.raw(), "fake:0");
  // 6 MiB cached on stream B (two 3 MiB classes of 4 MiB would not fit: use 2 + 4).
  const auto b1 = a.allocate(size_t{2} << 20, kStreamB);
  const auto b2 = a.allocate(size_t{4} << 20, kStreamB);
  a.free(b1);
  a.free(b2);
  ASSERT_EQ(dev.used, size_t{6} << 20);
  // 4 MiB on stream A does not fit beside the cache: released (after a sync), then retried.
  const auto big = a.allocate(size_t{4} << 20, kStreamA);
  EXPECT_NE(big.ptr, nullptr);
  EXPECT_EQ(dev.failures, 1);
  EXPECT_EQ(dev.syncs, 1);
  EXPECT_EQ(dev.used, size_t{4} << 20);
  EXPECT_EQ(a.cached_bytes(), 0u);
  const DeviceMemoryStats s = a.stats();
  EXPECT_EQ(s.raw_frees, 2);
  EXPECT_EQ(s.bytes_reserved, 4 << 20);
  // Still too big after the release: an Error(Backend) that names the request and the device.
  const std::string what =
      test::error_of_kind(ErrorKind::Backend, [&] { (void)a.allocate(size_t{6} << 20, kStreamA); });
  EXPECT_NE(what.find("out of device memory on fake:0"), std::string::npos) << what;
  EXPECT_NE(what.find("6291456 bytes"), std::string::npos) << what;
  EXPECT_EQ(dev.failures, 3) << "one try, one retry";
  EXPECT_EQ(a.stats().bytes_in_use, 4 << 20) << "a failed allocation changes nothing";
  a.free(big);
}

TEST(DeviceAllocator, AnotherRawFailureIsNotRetried) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  a.free(a.allocate(4096, kStreamA));
  dev.broken = true;
  const std::string what =
      test::error_of_kind(ErrorKind::Backend, [&] { (void)a.allocate(8192, kStreamA); });
  EXPECT_NE(what.find("the fake device is broken"), std::string::npos) << what;
  EXPECT_EQ(dev.syncs, 0) << "only out-of-memory releases the cache";
  EXPECT_EQ(a.cached_bytes(), 4096u);
}

TEST(DeviceAllocator, ASteadyWorkloadStopsAllocatingAfterItsFirstStep) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  // A "training step": temporaries of several sizes, some alive at once, freed in another order;
  // the last batch of an epoch is smaller.
  auto step = [&](size_t batch) {
    std::vector<CachingAllocator::Block> live;
    for (size_t bytes : {batch * 64, batch * 256, size_t{100}, batch * 64, batch * 4096}) {
      live.push_back(a.allocate(bytes, kStreamA));
      if (live.size() == 3) {
        a.free(live[1]);
        live.erase(live.begin() + 1);
      }
    }
    for (auto it = live.rbegin(); it != live.rend(); ++it) a.free(*it);
  };
  step(512);
  step(300);
  const DeviceMemoryStats warm = a.stats();
  for (int epoch = 0; epoch < 50; ++epoch) {
    for (int b = 0; b < 20; ++b) step(512);
    step(300);
  }
  const DeviceMemoryStats s = a.stats();
  EXPECT_EQ(s.raw_allocations, warm.raw_allocations) << "no new raw allocation once warm";
  EXPECT_EQ(s.bytes_reserved, warm.bytes_reserved) << "the cache does not grow";
  EXPECT_EQ(s.raw_frees, 0);
  EXPECT_EQ(s.cache_hits + s.cache_misses, 5 * (2 + 50 * 21));
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_EQ(static_cast<size_t>(s.bytes_reserved), dev.used);
}

// A batch's nnz changes every step, so its temporaries have a new size every step: geometric
// classes make them land in a few classes, so the cache stops growing and serves nearly every
// request once warm (with 512-byte classes each new size was a new block, kept forever).
TEST(DeviceAllocator, VaryingSizesKeepTheCacheBoundedWithASteadyHitRate) {
  Device dev;
  dev.capacity = size_t{1} << 30;
  CachingAllocator a(dev.raw(), "fake:0");
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> nnz(1000, 16000);
  auto step = [&] {
    const size_t n = nnz(rng);
    std::vector<CachingAllocator::Block> live;
    for (size_t bytes : {n * 8, n * 64, n * 4 + 100, n * 128})
      live.push_back(a.allocate(bytes, kStreamA));
    for (const auto& b : live) a.free(b);
  };
  for (int i = 0; i < 100; ++i) step();
  const DeviceMemoryStats warm = a.stats();
  for (int i = 0; i < 1000; ++i) step();
  const DeviceMemoryStats s = a.stats();
  const int64_t requests = (s.cache_hits + s.cache_misses) - (warm.cache_hits + warm.cache_misses);
  const int64_t misses = s.cache_misses - warm.cache_misses;
  EXPECT_EQ(requests, 4000);
  EXPECT_LE(misses, requests / 100) << "steady-state hit rate below 99%";
  // What stays reserved is a few blocks per class the step uses, not one per size seen.
  EXPECT_LE(s.bytes_reserved, 4 * s.peak_bytes_in_use)
      << "reserved " << s.bytes_reserved << ", peak in use " << s.peak_bytes_in_use;
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_EQ(static_cast<size_t>(s.bytes_reserved), dev.used);
}

// Over the cap, a free fences the stream (an event, no wait) and gives back only blocks whose
// fence has completed: while the device is busy the cache stays over the cap, and a later free
// trims it once the fence is done. Statistics follow every raw free.
TEST(DeviceAllocator, TheCapTrimsOnlyBlocksWhoseFenceHasCompleted) {
  Device dev;
  CachingAllocator::Options options;
  options.max_cached_bytes = size_t{1} << 20;
  CachingAllocator a(dev.raw(), "fake:0", options);
  EXPECT_EQ(a.max_cached_bytes(), size_t{1} << 20);
  dev.busy = true;  // the blocks' last uses are still queued
  std::vector<CachingAllocator::Block> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(a.allocate(size_t{512} << 10, kStreamA));
  for (const auto& b : blocks) a.free(b);
  EXPECT_EQ(a.cached_bytes(), size_t{2} << 20) << "nothing is given back while a fence is pending";
  EXPECT_EQ(dev.fences_recorded, 1) << "one pending fence per stream";
  EXPECT_EQ(dev.frees, 0);
  EXPECT_EQ(dev.syncs, 0) << "trimming never waits";

  dev.finish();  // the queued work ran: the fence (recorded at the third free) completed
  dev.busy = false;
  a.free(a.allocate(100, kStreamA));
  // The three blocks the fence covers may go, oldest first, until the cache is under the cap; the
  // fourth was freed after the fence was recorded, so it stays.
  EXPECT_EQ(dev.frees, 3);
  EXPECT_EQ(a.cached_bytes(), (size_t{512} << 10) + 512);
  EXPECT_LE(a.cached_bytes(), a.max_cached_bytes());
  EXPECT_EQ(dev.syncs, 0);
  const DeviceMemoryStats s = a.stats();
  EXPECT_EQ(s.raw_frees, 3);
  EXPECT_EQ(s.bytes_in_use, 0);
  EXPECT_EQ(static_cast<size_t>(s.bytes_reserved), a.cached_bytes());
  EXPECT_EQ(static_cast<size_t>(s.bytes_reserved), dev.used);
  EXPECT_EQ(s.cache_hits, 0);
  EXPECT_EQ(s.cache_misses, 5);
  // The remaining block is still served from the cache.
  const auto again = a.allocate(size_t{500} << 10, kStreamA);
  EXPECT_EQ(again.ptr, blocks[3].ptr);
  a.free(again);
}

// Under a small cap, a workload bigger than the cap stays within it when every fence completes
// at once (an idle device): each free over the cap fences the stream and trims at once.
TEST(DeviceAllocator, ACappedCacheStaysWithinItsCapOnAnIdleDevice) {
  Device dev;
  CachingAllocator::Options options;
  options.max_cached_bytes = size_t{4} << 20;
  CachingAllocator a(dev.raw(), "fake:0", options);
  std::mt19937 rng(11);
  std::uniform_int_distribution<size_t> kib(64, 2048);
  size_t most = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<CachingAllocator::Block> live;
    for (int k = 0; k < 6; ++k) live.push_back(a.allocate(kib(rng) << 10, kStreamA));
    for (const auto& b : live) a.free(b);
    most = std::max(most, a.cached_bytes());
  }
  EXPECT_LE(most, a.max_cached_bytes());
  EXPECT_GT(dev.frees, 0) << "the workload needed trimming";
  EXPECT_EQ(dev.syncs, 0);
  EXPECT_EQ(static_cast<size_t>(a.stats().bytes_reserved), dev.used);
}

TEST(DeviceAllocator, CloseReleasesTheCacheAndLaterFreesGoToTheDevice) {
  Device dev;
  {
    CachingAllocator a(dev.raw(), "fake:0");
    const auto kept = a.allocate(1 << 20, kStreamA);  // a tensor that outlives its backend
    a.free(a.allocate(1 << 12, kStreamA));
    a.close();
    EXPECT_EQ(dev.frees, 1) << "the cached block went back";
    EXPECT_EQ(a.cached_bytes(), 0u);
    a.free(kept);
    EXPECT_EQ(dev.frees, 2) << "after close a free goes straight to the device";
    EXPECT_EQ(a.stats().bytes_reserved, 0);
    a.free(a.allocate(1 << 12, kStreamA));  // still usable, without a cache
    EXPECT_EQ(a.cached_bytes(), 0u);
  }
  EXPECT_TRUE(dev.live.empty());
  EXPECT_EQ(dev.used, 0u);
}

TEST(DeviceAllocator, TheDestructorGivesTheCacheBack) {
  Device dev;
  {
    CachingAllocator a(dev.raw(), "fake:0");
    for (size_t bytes : {size_t{512}, size_t{1} << 20, size_t{3} << 20})
      a.free(a.allocate(bytes, kStreamA));
    EXPECT_EQ(dev.live.size(), 3u);
  }
  EXPECT_TRUE(dev.live.empty());
  EXPECT_EQ(dev.frees, 3);
}

TEST(DeviceAllocator, AForeignOrRepeatedFreeIsIgnored) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto b = a.allocate(2048, kStreamA);
  a.free(b);
  a.free(b);  // twice: logged, the cache holds the block once
  int stranger = 0;
  a.free(CachingAllocator::Block{&stranger, 512, kStreamA});
  EXPECT_EQ(a.cached_bytes(), 2048u);
  EXPECT_EQ(a.stats().bytes_in_use, 0);
  const auto first = a.allocate(2048, kStreamA);
  const auto second = a.allocate(2048, kStreamA);
  EXPECT_EQ(first.ptr, b.ptr);
  EXPECT_NE(second.ptr, b.ptr) << "the block was cached only once";
  a.free(first);
  a.free(second);
}

// What the Trainer and the benchmarks print: every counter, under the names the docs give.
TEST(DeviceAllocator, StatisticsPrintAsJsonAndAsALine) {
  Device dev;
  CachingAllocator a(dev.raw(), "fake:0");
  const auto x = a.allocate(size_t{3} << 20, kStreamA);  // 4 MiB
  a.free(x);
  a.free(a.allocate(size_t{3} << 20, kStreamA));  // a hit
  const DeviceMemoryStats s = a.stats();
  EXPECT_EQ(memory_stats_json(s),
            "{\"bytes_in_use\":0,\"peak_bytes_in_use\":4194304,\"bytes_reserved\":4194304,"
            "\"raw_allocations\":1,\"raw_frees\":0,\"cache_hits\":1,\"cache_misses\":1}");
  EXPECT_EQ(memory_stats_line(s),
            "device memory: peak 4.0 MiB in use, 4.0 MiB reserved; 2 allocations, 50.0% from the "
            "cache, 1 cudaMalloc, 0 cudaFree\n");
}

}  // namespace
}  // namespace tessera::cuda
