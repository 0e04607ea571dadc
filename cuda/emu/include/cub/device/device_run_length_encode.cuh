#pragma once
// Stand-in for CUB's DeviceRunLengthEncode::Encode in the emulation build (what
// embeddings/device_segments_cub.cu calls), with raw device pointers. Rules checked
// (cuda/emu/standin.h): num_items >= 0; the temp-storage protocol; d_in (num_items) and
// d_num_runs_out (one) in device memory, d_unique_out and d_counts_out device pointers at the call,
// all of the current device; the stream belongs to the current device (else
// cudaErrorInvalidResourceHandle). When the queued work runs and the run count is known:
// d_unique_out and d_counts_out hold that many elements, and no two of the four ranges overlap
// (CUB: no in-place encode); a broken rule there throws tessera::Error, reported at the stream's
// next synchronisation.
#include <cstdint>
#include <vector>

#include "cuda/emu/runtime_api.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cub_standin.h"

namespace cub {

struct DeviceRunLengthEncode {
  // For each maximal run of equal consecutive items: its value to d_unique_out, its length to
  // d_counts_out; the number of runs to *d_num_runs_out.
  template <typename InT, typename UniqueT, typename LengthT, typename NumRunsT, typename NumItemsT>
  static cudaError_t Encode(void* d_temp_storage, size_t& temp_storage_bytes, const InT* d_in,
                            UniqueT* d_unique_out, LengthT* d_counts_out, NumRunsT* d_num_runs_out,
                            NumItemsT num_items, cudaStream_t stream = nullptr) {
    namespace cs = tessera::emu::cub_standin;
    const char* e = "cub::DeviceRunLengthEncode::Encode";
    tessera::emu::record_call("CUB", e);
    const long long n = static_cast<long long>(num_items);
    if (!cs::check_num_items(e, n)) return cudaErrorInvalidValue;
    const cs::TempStep step = cs::temp_storage_protocol(e, d_temp_storage, temp_storage_bytes,
                                                        cs::run_length_encode_temp_bytes(n));
    if (step == cs::TempStep::Query) return cudaSuccess;
    if (step == cs::TempStep::Fail) return cudaErrorInvalidValue;
    const size_t first = n > 0 ? 1 : 0;  // at least one run when there are items
    if (!(cs::check_device_range(e, "d_in", d_in, static_cast<size_t>(n) * sizeof(InT)) &&
          cs::check_device_range(e, "d_num_runs_out", d_num_runs_out, sizeof(NumRunsT)) &&
          cs::check_device_range(e, "d_unique_out", d_unique_out, first * sizeof(UniqueT)) &&
          cs::check_device_range(e, "d_counts_out", d_counts_out, first * sizeof(LengthT))))
      return cudaErrorInvalidValue;
    if (!cs::check_stream("CUB", e, stream)) return cudaErrorInvalidResourceHandle;
    const size_t temp_bytes = temp_storage_bytes;
    tessera::emu::enqueue(stream, e, [=] {
      cs::use_temp_storage(e, d_temp_storage, temp_bytes);
      cs::require_allocated(e, "d_in", d_in, static_cast<size_t>(n) * sizeof(InT));
      cs::require_allocated(e, "d_num_runs_out", d_num_runs_out, sizeof(NumRunsT));
      std::vector<InT> unique;
      std::vector<long long> counts;
      for (long long i = 0; i < n; ++i) {
        if (i == 0 || !(d_in[i] == unique.back())) {
          unique.push_back(d_in[i]);
          counts.push_back(0);
        }
        ++counts.back();
      }
      const size_t runs = unique.size();
      const void* ranges[4] = {d_in, d_unique_out, d_counts_out, d_num_runs_out};
      const size_t sizes[4] = {static_cast<size_t>(n) * sizeof(InT), runs * sizeof(UniqueT),
                               runs * sizeof(LengthT), sizeof(NumRunsT)};
      for (int i = 1; i < 3; ++i)
        if (!tessera::emu::is_device_range(ranges[i], sizes[i]))
          cs::fail_in_work(e, "d_unique_out and d_counts_out hold one element per run",
                           std::to_string(runs) + " runs");
      const char* disjoint = "d_in, d_unique_out, d_counts_out, d_num_runs_out do not overlap";
      for (int i = 0; i < 4; ++i)
        for (int j = i + 1; j < 4; ++j)
          if (!cs::check_disjoint(e, disjoint, ranges[i], sizes[i], ranges[j], sizes[j]))
            cs::fail_in_work(e, disjoint, std::to_string(runs) + " runs");
      for (size_t r = 0; r < runs; ++r) {
        d_unique_out[r] = static_cast<UniqueT>(unique[r]);
        d_counts_out[r] = static_cast<LengthT>(counts[r]);
      }
      *d_num_runs_out = static_cast<NumRunsT>(runs);
    });
    return cudaSuccess;
  }
};

}  // namespace cub
