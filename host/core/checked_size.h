#pragma once
// Sizes taken from bytes tessera did not write (file headers, tensor shapes, message lengths)
// are multiplied in unsigned 64-bit arithmetic that reports overflow, so a hostile header is
// refused before anything is allocated instead of wrapping round to a small, plausible size.
//
//   checked_mul(a, b)        a * b, or nullopt when it does not fit in 64 bits
//   checked_product(dims)    the product of non-negative dims (an element count), or nullopt on
//                            a negative dim or an overflow; every partial product (left to
//                            right, as shape_numel() multiplies in int64_t) fits in int64_t too,
//                            so [2^62, 4, 0] is refused although its product is 0
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <type_traits>

namespace tessera {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

template <typename Dims>
std::optional<uint64_t> checked_product(const Dims& dims) {
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t n = 1;
  for (const auto d : dims) {
    if constexpr (std::is_signed_v<decltype(d)>) {
      if (d < 0) return std::nullopt;
    }
    const std::optional<uint64_t> next = checked_mul(n, static_cast<uint64_t>(d));
    if (!next || *next > kMax) return std::nullopt;
    n = *next;
  }
  return n;
}

inline std::optional<uint64_t> checked_product(std::initializer_list<int64_t> dims) {
  return checked_product<std::initializer_list<int64_t>>(dims);
}

}  // namespace tessera
