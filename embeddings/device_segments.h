#pragma once
// Sorting and de-duplicating a batch's keys on the device, for the bag backward:
//   sorted by key, stably (positions ascending within a key), then run-length encoded.
// On a GPU: CUB radix sort + run-length encode + scan (device_segments_cub.cu, vendor-library code
// kept apart from the kernel files). In the emulation build CUB is not emulated, so the same
// contract is met on the host (device_segments_host.cpp) and the report says so.
#include <cstdint>
#include <string>

#include "host/backend/backend.h"

namespace tessera::emb {

struct DeviceSegments {
  Tensor ukeys;       // i64 [U]: distinct keys, ascending
  Tensor seg_start;   // i64 [U + 1]
  Tensor sorted_pos;  // i64 [nnz]: index positions sorted by key, ascending within a key
  int64_t count = 0;  // U
};

// keys i64 [nnz] on backend's device, all in [0, key_limit). `stream` is the backend's stream
// (a cudaStream_t; void* keeps this header free of CUDA types).
DeviceSegments sort_segments(Backend& backend, const Tensor& keys, int64_t key_limit, void* stream);

// "cub" or "host fallback (...)": how sort_segments runs in this build.
std::string sort_segments_path();

}  // namespace tessera::emb
