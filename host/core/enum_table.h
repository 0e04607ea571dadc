#pragma once
// An enum's names (or any other per-enumerator value) in one table indexed by the enumerator's
// value, in place of a switch per enum:
//
//   const char* placement_name(Placement p) {
//     static constexpr const char* kNames[] = {"table-wise", "row-wise", "column-wise"};
//     return enum_entry<Placement::ColumnWise>(p, kNames, "?");
//   }
//
// The enum's values must run 0, 1, 2, ... in declaration order; the template argument names its
// last enumerator, so a table with an entry too few or too many for that one does not compile (an
// enumerator appended after it without updating the call is not caught: it gets the fallback, and
// the tests that pin every name fail). A value outside the
// enum (a cast integer, a corrupt byte) gets `fallback`, never a read past the table.
#include <cstddef>
#include <type_traits>

namespace tessera {

namespace detail {
// Keeps `fallback` out of template argument deduction, so a string literal of any length (a
// `const char[N]`) passes where the table's entries are `const char*`.
template <typename T>
struct NotDeduced {
  using type = T;
};
}  // namespace detail

template <auto Last, typename T, size_t N>
constexpr T enum_entry(decltype(Last) e, const T (&table)[N],
                       typename detail::NotDeduced<T>::type fallback) {
  static_assert(std::is_enum_v<decltype(Last)>,
                "enum_entry: the template argument is an enumerator");
  static_assert(N == static_cast<size_t>(Last) + 1,
                "enum_entry: the table needs one entry per enumerator, the first to `Last`");
  const auto i = static_cast<size_t>(e);  // a negative value wraps round to beyond the table
  return i < N ? table[i] : fallback;
}

}  // namespace tessera
