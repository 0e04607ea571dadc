#pragma once
// Stand-in for CUB's DeviceScan::ExclusiveSum in the emulation build (what
// embeddings/device_segments_cub.cu calls), with raw device pointers. Rules checked
// (cuda/emu/standin.h): num_items >= 0; the temp-storage protocol; d_in and d_out in device memory
// (num_items each); d_in == d_out (in place) or the ranges do not overlap (CUB's rule); memory and
// stream of the current device (else cudaErrorInvalidResourceHandle for the stream). The sum starts
// at 0 of the input's type; integers wrap as on the device.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/emu/runtime_api.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cub_standin.h"

namespace cub {

namespace standin_detail {
// What the scan adds in: integers in their unsigned form, so a sum wraps as on the device instead
// of being undefined behaviour; other types as they are.
template <typename T, bool = std::is_integral_v<T> && !std::is_same_v<T, bool>>
struct ScanAccumulator {
  using type = T;
};
template <typename T>
struct ScanAccumulator<T, true> {
  using type = std::make_unsigned_t<T>;
};
}  // namespace standin_detail

struct DeviceScan {
  // d_out[i] = d_in[0] + ... + d_in[i - 1], d_out[0] = 0.
  template <typename InT, typename OutT, typename NumItemsT>
  static cudaError_t ExclusiveSum(void* d_temp_storage, size_t& temp_storage_bytes, const InT* d_in,
                                  OutT* d_out, NumItemsT num_items, cudaStream_t stream = nullptr) {
    namespace cs = tessera::emu::cub_standin;
    const char* e = "cub::DeviceScan::ExclusiveSum";
    tessera::emu::record_call("CUB", e);
    const long long n = static_cast<long long>(num_items);
    if (!cs::check_num_items(e, n)) return cudaErrorInvalidValue;
    const cs::TempStep step =
        cs::temp_storage_protocol(e, d_temp_storage, temp_storage_bytes, cs::scan_temp_bytes(n));
    if (step == cs::TempStep::Query) return cudaSuccess;
    if (step == cs::TempStep::Fail) return cudaErrorInvalidValue;
    const size_t in_bytes = static_cast<size_t>(n) * sizeof(InT);
    const size_t out_bytes = static_cast<size_t>(n) * sizeof(OutT);
    if (n > 0 && !(cs::check_device_range(e, "d_in", d_in, in_bytes) &&
                   cs::check_device_range(e, "d_out", d_out, out_bytes) &&
                   cs::check_in_place_or_disjoint(e, d_in, d_out, std::max(in_bytes, out_bytes))))
      return cudaErrorInvalidValue;
    if (!cs::check_stream("CUB", e, stream)) return cudaErrorInvalidResourceHandle;
    const size_t temp_bytes = temp_storage_bytes;
    tessera::emu::enqueue(stream, e, [=] {
      cs::use_temp_storage(e, d_temp_storage, temp_bytes);
      cs::require_allocated(e, "d_in", d_in, in_bytes);
      cs::require_allocated(e, "d_out", d_out, out_bytes);
      using Acc = typename standin_detail::ScanAccumulator<InT>::type;
      Acc running = Acc(0);
      for (long long i = 0; i < n; ++i) {
        const Acc item = static_cast<Acc>(d_in[i]);  // read before d_out[i] (in place)
        d_out[i] = static_cast<OutT>(static_cast<InT>(running));
        running = static_cast<Acc>(running + item);
      }
    });
    return cudaSuccess;
  }
};

}  // namespace cub
