// sort_segments on a GPU with CUB: stable radix sort of (key, position) pairs over the bits the
// keys need, run-length encoding of the sorted keys, and an exclusive scan of the run lengths.
// Everything is queued on the backend's stream; the run count is read back (the one sync).
#include <thrust/execution_policy.h>
#include <thrust/sequence.h>
#include <thrust/system/cuda/execution_policy.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>

#include "cuda/cuda_check.h"
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
  const int64_t n = keys.numel();
  DeviceSegments s;
  if (n == 0) {
    s.ukeys = backend.empty({0}, DType::I64);
    s.seg_start = backend.empty({1}, DType::I64);
    s.sorted_pos = backend.empty({0}, DType::I64);
    return s;
  }
  TESSERA_CHECK(n < (int64_t{1} << 31),
                "CUB sort of " << n << " keys: more than 2^31 - 1 per batch");
  const int num = static_cast<int>(n);
  Tensor pos_in = backend.empty({n}, DType::I64);
  Tensor sorted_keys = backend.empty({n}, DType::I64);
  s.sorted_pos = backend.empty({n}, DType::I64);
  Tensor ukeys = backend.empty({n}, DType::I64);
  Tensor counts = backend.empty({n + 1}, DType::I64);
  Tensor runs = backend.empty({1}, DType::I64);
  Tensor seg_start = backend.empty({n + 1}, DType::I64);
  int64_t* pin = pos_in.data<int64_t>();
  thrust::sequence(thrust::cuda::par.on(stream), pin, pin + n, int64_t{0});

  const int end_bit = bits_for(key_limit);
  size_t sort_bytes = 0, rle_bytes = 0, scan_bytes = 0;
  TESSERA_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, sort_bytes, keys.data<int64_t>(), sorted_keys.data<int64_t>(), pin,
      s.sorted_pos.data<int64_t>(), num, 0, end_bit, stream));
  TESSERA_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(
      nullptr, rle_bytes, sorted_keys.data<int64_t>(), ukeys.data<int64_t>(),
      counts.data<int64_t>(), runs.data<int64_t>(), num, stream));
  TESSERA_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, counts.data<int64_t>(),
                                                   seg_start.data<int64_t>(), num + 1, stream));
  const size_t temp_bytes = std::max(sort_bytes, std::max(rle_bytes, scan_bytes));
  Tensor temp = backend.empty({static_cast<int64_t>((temp_bytes + 7) / 8)}, DType::I64);
  void* tmp = temp.raw();
  size_t bytes = temp_bytes;
  TESSERA_CUDA_CHECK(
      cub::DeviceRadixSort::SortPairs(tmp, bytes, keys.data<int64_t>(), sorted_keys.data<int64_t>(),
                                      pin, s.sorted_pos.data<int64_t>(), num, 0, end_bit, stream));
  bytes = temp_bytes;
  TESSERA_CUDA_CHECK(cub::DeviceRunLengthEncode::Encode(
      tmp, bytes, sorted_keys.data<int64_t>(), ukeys.data<int64_t>(), counts.data<int64_t>(),
      runs.data<int64_t>(), num, stream));
  const Tensor runs_host = backend.to_host(runs);  // waits for the stream
  const int64_t U = runs_host.data<int64_t>()[0];
  // counts[U] is 0 (backend.empty zero-fills), so the scan's entry U is the total.
  bytes = temp_bytes;
  TESSERA_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(tmp, bytes, counts.data<int64_t>(),
                                                   seg_start.data<int64_t>(),
                                                   static_cast<int>(U + 1), stream));
  s.count = U;
  s.ukeys = ukeys.rows(0, U);
  s.seg_start = seg_start.rows(0, U + 1);
  backend.synchronize();  // temp storage is released when this function returns
  return s;
}

}  // namespace tessera::emb
