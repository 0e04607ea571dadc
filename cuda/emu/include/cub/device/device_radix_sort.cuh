#pragma once
// Stand-in for CUB's DeviceRadixSort in the emulation build: the key-value sort tessera calls
// (embeddings/device_segments_cub.cu), for any integral or floating key and any value type, with
// raw device pointers (CUB's iterator-free overload). Rules checked (cuda/emu/standin.h):
// num_items >= 0; 0 <= begin_bit <= end_bit <= 8 * sizeof(KeyT) (CUB copies the keys unchanged
// for an empty range); the temp-storage protocol; the four ranges in device memory and pairwise
// disjoint (CUB: no in-place sort), memory of the current device; the stream belongs to the current
// device (else cudaErrorInvalidResourceHandle, as a launch there fails). The sort is stable and
// orders by the bits [begin_bit, end_bit) of CUB's radix form of the key (signed: sign bit flipped;
// floating: negative keys inverted, others sign-flipped, -0 == +0), so keys with bits outside the
// range sort as on CUB.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cuda/emu/runtime_api.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cub_standin.h"

namespace cub {

namespace standin_detail {

// CUB's radix form of a key as an unsigned integer of the key's width.
template <typename KeyT>
uint64_t radix_form(KeyT key) {
  static_assert(!std::is_same_v<KeyT, bool>, "CUB stand-in: bool keys are not supported");
  if constexpr (std::is_integral_v<KeyT>) {
    using U = std::make_unsigned_t<KeyT>;
    U u = static_cast<U>(key);
    if constexpr (std::is_signed_v<KeyT>) u ^= static_cast<U>(U{1} << (8 * sizeof(U) - 1));
    return u;
  } else {
    static_assert(std::is_floating_point_v<KeyT> && (sizeof(KeyT) == 4 || sizeof(KeyT) == 8),
                  "CUB stand-in: keys are integers, float or double");
    using U = std::conditional_t<sizeof(KeyT) == 4, uint32_t, uint64_t>;
    if (key == KeyT(0)) key = KeyT(0);  // -0 sorts as +0
    U u;
    std::memcpy(&u, &key, sizeof(U));
    const U sign = static_cast<U>(U{1} << (8 * sizeof(U) - 1));
    u = (u & sign) ? static_cast<U>(~u) : static_cast<U>(u ^ sign);
    return u;
  }
}

}  // namespace standin_detail

struct DeviceRadixSort {
  // Sorts num_items (key, value) pairs by key, ascending and stable, into the output arrays.
  template <typename KeyT, typename ValueT, typename NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes,
                               const KeyT* d_keys_in, KeyT* d_keys_out, const ValueT* d_values_in,
                               ValueT* d_values_out, NumItemsT num_items, int begin_bit = 0,
                               int end_bit = sizeof(KeyT) * 8, cudaStream_t stream = nullptr) {
    namespace cs = tessera::emu::cub_standin;
    const char* e = "cub::DeviceRadixSort::SortPairs";
    tessera::emu::record_call("CUB", e);
    const long long n = static_cast<long long>(num_items);
    if (!cs::check_num_items(e, n) || !cs::check_bit_range(e, begin_bit, end_bit, 8 * sizeof(KeyT)))
      return cudaErrorInvalidValue;
    const size_t required =
        cs::radix_sort_temp_bytes(n, sizeof(KeyT), sizeof(ValueT), end_bit - begin_bit);
    const cs::TempStep step =
        cs::temp_storage_protocol(e, d_temp_storage, temp_storage_bytes, required);
    if (step == cs::TempStep::Query) return cudaSuccess;
    if (step == cs::TempStep::Fail) return cudaErrorInvalidValue;
    const size_t kb = static_cast<size_t>(n) * sizeof(KeyT),
                 vb = static_cast<size_t>(n) * sizeof(ValueT);
    if (n > 0 && !(cs::check_device_range(e, "d_keys_in", d_keys_in, kb) &&
                   cs::check_device_range(e, "d_keys_out", d_keys_out, kb) &&
                   cs::check_device_range(e, "d_values_in", d_values_in, vb) &&
                   cs::check_device_range(e, "d_values_out", d_values_out, vb)))
      return cudaErrorInvalidValue;
    const char* disjoint =
        "the key and value input and output ranges do not overlap (not in place)";
    const void* ranges[4] = {d_keys_in, d_keys_out, d_values_in, d_values_out};
    const size_t sizes[4] = {kb, kb, vb, vb};
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j)
        if (!cs::check_disjoint(e, disjoint, ranges[i], sizes[i], ranges[j], sizes[j]))
          return cudaErrorInvalidValue;
    if (!cs::check_stream("CUB", e, stream)) return cudaErrorInvalidResourceHandle;
    const size_t temp_bytes = temp_storage_bytes;
    tessera::emu::enqueue(stream, e, [=] {
      cs::use_temp_storage(e, d_temp_storage, temp_bytes);
      cs::require_allocated(e, "d_keys_in", d_keys_in, kb);
      cs::require_allocated(e, "d_keys_out", d_keys_out, kb);
      cs::require_allocated(e, "d_values_in", d_values_in, vb);
      cs::require_allocated(e, "d_values_out", d_values_out, vb);
      const int width = end_bit - begin_bit;
      const uint64_t mask = width >= 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
      std::vector<uint64_t> digits(static_cast<size_t>(n));
      for (long long i = 0; i < n; ++i)
        digits[i] = width == 0 ? 0 : (standin_detail::radix_form(d_keys_in[i]) >> begin_bit) & mask;
      std::vector<long long> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0LL);
      std::stable_sort(order.begin(), order.end(),
                       [&](long long a, long long b) { return digits[a] < digits[b]; });
      for (long long i = 0; i < n; ++i) {
        d_keys_out[i] = d_keys_in[order[i]];
        d_values_out[i] = d_values_in[order[i]];
      }
    });
    return cudaSuccess;
  }
};

}  // namespace cub
