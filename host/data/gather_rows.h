#pragma once
// Row selection in the data sets' row-major arrays (EncodedTable, ImageSet): the rows an index
// names, in its order.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tessera {

// The rows `index` of `src`, a row-major [rows, width] array, in index order; the caller has
// checked every index is in [0, rows).
template <typename T>
std::vector<T> gather_rows(const std::vector<T>& src, int64_t width,
                           const std::vector<int64_t>& index) {
  std::vector<T> out(index.size() * static_cast<size_t>(width));
  for (size_t i = 0; i < index.size(); ++i)
    std::copy_n(src.begin() + index[i] * width, width,
                out.begin() + static_cast<int64_t>(i) * width);
  return out;
}

}  // namespace tessera
