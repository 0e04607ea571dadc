// sort_segments on a GPU with CUB: stable radix sort of (key, position) pairs over the bits the
// keys need, run-length encoding of the sorted keys, and an exclusive scan of the run lengths.
// Everything is queued on the backend's stream and nothing is read back: the outputs are sized for
// every key distinct, the run count stays in device memory and the scan covers all nnz + 1
// entries (only the first U + 1 are meaningful), so the host never waits inside a step.
#include <limits>

#include <thrust/execution_policy.h>
#include <thrust/sequence.h>
#include <thrust/system/cuda/execution_policy.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>

#include "cuda/cuda_check.h"
#include "cuda/device_guard.h"
#include "embeddings/device_segments.h"

namespace tessera::emb {

std::string sort_segments_path() {
  return "cub (radix sort, run-length encode, exclusive scan)";
}

namespace {
int bits_for(int64_t limit) {
  int bits = 1;
  while (bits < 63 && (int64_t{1} << bits) < limit) ++bits;
  return bits;
}
}  // namespace

DeviceSegments sort_segments(Backend& backend, const Tensor& keys, int64_t key_limit,
                             void* stream_ptr) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const cuda::DeviceGuard guard(backend.device().index);
  const int64_t n = keys.numel();
  DeviceSegments s;
  s.capacity = n;
  s.count = backend.empty({1}, DType::I64);
  if (n == 0) {  // nothing to sort; no kernel reads count (capacity 0)
    s.host_count = 0;
    s.ukeys = backend.empty({0}, DType::I64);
    s.seg_start = backend.empty({1}, DType::I64);
    s.sorted_pos = backend.empty({0}, DType::I64);
    return s;
  }
  // CUB takes int item counts, and the scan below runs over n + 1 of them.
  TESSERA_CHECK(n < std::numeric_limits<int>::max(),
                "CUB sort of " << n << " keys: more than 2^31 - 2 per batch");
  const int num = static_cast<int>(n);
  s.sorted_pos = backend.empty({n}, DType::I64);
  s.ukeys = backend.empty({n}, DType::I64);
  s.seg_start = backend.empty({n + 1}, DType::I64);
  const int end_bit = bits_for(key_limit);
  int64_t* spos = s.sorted_pos.data<int64_t>();
  int64_t* ukeys = s.ukeys.data<int64_t>();
  int64_t* start = s.seg_start.data<int64_t>();
  int64_t* runs = s.count.data<int64_t>();
  size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
  TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys.data<int64_t>(),
                                                     ukeys, spos, spos, num, 0, end_bit, stream));
  TESSERA_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(nullptr, rle_bytes, ukeys, ukeys, start,
                                                        runs, num, stream));
  TESSERA_CUDA_CHECK(
      cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, start, start, num + 1, stream));
  // One scratch allocation: CUB's temp storage (256-byte aligned), then the input positions, the
  // sorted keys and the run lengths (n, n and n + 1 entries).
  const size_t temp_bytes = std::max(sort_bytes, std::max(rle_bytes, scan_bytes));
  const int64_t temp_words = static_cast<int64_t>((temp_bytes + 255) / 256 * 32);
  s.scratch = backend.empty({temp_words + 3 * n + 1}, DType::I64);
  void* tmp = s.scratch.raw();
  int64_t* pin = s.scratch.data<int64_t>() + temp_words;
  int64_t* skeys = pin + n;
  int64_t* cnt = skeys + n;
  // par_nosync: thrust::cuda::par would wait for the stream before returning (a host stall in every
  // backward step).
  thrust::sequence(thrust::cuda::par_nosync.on(stream), pin, pin + n, int64_t{0});
  // The encode writes counts[0, U); the rest is zeroed so the scan over all n + 1 entries adds
  // only defined values (scratch comes from a pool that need not clear it).
  TESSERA_CUDA_CHECK(cudaMemsetAsync(cnt, 0, static_cast<size_t>(n + 1) * sizeof(int64_t), stream));
  size_t bytes = temp_bytes;
  TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp, bytes, keys.data<int64_t>(), skeys, pin,
                                                     spos, num, 0, end_bit, stream));
  bytes = temp_bytes;
  TESSERA_CUDA_CHECK(
      cub::DeviceRunLengthEncode::Encode(tmp, bytes, skeys, ukeys, cnt, runs, num, stream));
  // seg_start[u] for u <= U is the offset of run u (seg_start[U] = n); the kernels read no further.
  bytes = temp_bytes;
  TESSERA_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(tmp, bytes, cnt, start, num + 1, stream));
  // Nothing is freed here: scratch travels with s until the step's kernels are queued.
  return s;
}

}  // namespace tessera::emb
