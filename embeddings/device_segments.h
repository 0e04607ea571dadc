#pragma once
// Sorting and de-duplicating a batch's keys on the device, for the bag backward:
//   sorted by key, stably (positions ascending within a key), then run-length encoded.
// On a GPU: CUB radix sort + run-length encode + scan (device_segments_cub.cu, vendor-library code
// kept apart from the kernel files); in the emulation build the same file runs on the CUB and
// Thrust stand-ins (cuda/emu/include/cub, thrust), which check CUB's argument rules.
#include <cstdint>
#include <string>

#include "host/backend/backend.h"

namespace tessera::emb {

// The outputs are sized for the worst case (every key distinct), and U stays in device memory
// (`count`), so a step can queue the backward and the update without waiting for the sort: the
// kernels read U themselves (embeddings/kernels/bag_kernels.h, BagRowInputs::touched).
struct DeviceSegments {
  Tensor ukeys;             // i64 [>= U]: the first U entries are the distinct keys, ascending
  Tensor seg_start;         // i64 [>= U + 1]: run u is sorted_pos[seg_start[u] .. seg_start[u + 1])
  Tensor sorted_pos;        // i64 [nnz]: index positions sorted by key, ascending within a key
  Tensor count;             // i64 [1] on the device: U
  int64_t capacity = 0;     // rows the outputs have room for (>= U): the grid of the row kernels
  int64_t host_count = -1;  // U where the host knows it without waiting (host fallback), else -1
  Tensor scratch;           // sort temp storage, kept until the step's kernels are queued
};

// keys i64 [nnz] on backend's device, all in [0, key_limit). `stream` is the backend's stream
// (a cudaStream_t; void* keeps this header free of CUDA types). Makes the backend's device
// current while it queues work.
DeviceSegments sort_segments(Backend& backend, const Tensor& keys, int64_t key_limit, void* stream);

// U on the host: host_count when known, else read from `count` (waits for the stream).
inline int64_t segment_count(Backend& backend, const DeviceSegments& s) {
  if (s.host_count >= 0) return s.host_count;
  return backend.to_host(s.count).data<int64_t>()[0];
}

// "cub" or "host fallback (...)": how sort_segments runs in this build.
std::string sort_segments_path();

}  // namespace tessera::emb
