// sort_segments for the emulation build: the keys are copied to the host, sorted stably there and
// the segments copied back (CUB/Thrust are not emulated; cuda/emu/README.md). The count is
// uploaded too and the capacity is the worst case, so the kernels read U from device memory and
// skip the spare rows of their grid as they do on a GPU.
#include <algorithm>
#include <numeric>
#include <vector>

#include "embeddings/device_segments.h"

namespace tessera::emb {

std::string sort_segments_path() {
  return "host fallback (CUB radix sort / run-length encode are not emulated)";
}

DeviceSegments sort_segments(Backend& backend, const Tensor& keys, int64_t key_limit, void*) {
  const Tensor host_keys = backend.to_host(keys);
  const int64_t n = host_keys.numel();
  const int64_t* k = host_keys.data<int64_t>();
  std::vector<int64_t> pos(static_cast<size_t>(n));
  std::iota(pos.begin(), pos.end(), int64_t{0});
  std::stable_sort(pos.begin(), pos.end(), [k](int64_t a, int64_t b) { return k[a] < k[b]; });
  std::vector<int64_t> ukeys;
  std::vector<int64_t> start;
  for (int64_t q = 0; q < n; ++q) {
    const int64_t key = k[pos[static_cast<size_t>(q)]];
    TESSERA_CHECK(key >= 0 && key < key_limit,
                  "key " << key << " outside [0, " << key_limit << ")");
    if (ukeys.empty() || ukeys.back() != key) {
      ukeys.push_back(key);
      start.push_back(q);
    }
  }
  start.push_back(n);
  DeviceSegments s;
  s.host_count = static_cast<int64_t>(ukeys.size());
  s.capacity = n;  // as on a GPU: the row kernels' grid covers every key, they stop at U
  s.ukeys = backend.to_device(Tensor::host_from<int64_t>({s.host_count}, ukeys));
  s.seg_start = backend.to_device(Tensor::host_from<int64_t>({s.host_count + 1}, start));
  s.sorted_pos = backend.to_device(Tensor::host_from<int64_t>({n}, pos));
  s.count = backend.to_device(Tensor::host_from<int64_t>({1}, {s.host_count}));
  return s;
}

}  // namespace tessera::emb
