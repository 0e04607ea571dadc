#pragma once
// How the row ops (bias_act) see a tensor: dim(0) rows of numel / dim(0) columns; a scalar is one
// row of one element. Shared by the Backend's edge checks and the device backends' launchers, so
// they agree on the row width.
#include <cstdint>

#include "host/core/tensor.h"

namespace tessera {

struct RowsCols {
  int64_t rows;
  int64_t cols;
};

inline RowsCols rows_cols(const Tensor& t) {
  if (t.rank() == 0) return {1, 1};
  const int64_t rows = t.dim(0);
  return {rows, rows ? t.numel() / rows : 0};
}

}  // namespace tessera
