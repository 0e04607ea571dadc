#pragma once
// Index arithmetic of DLRM's pairwise dot interaction, shared by the host backend and the CUDA
// kernels (cuda/kernels/dot_interaction.cu).
//
// Per sample the op sees V = F + 1 vectors of dim d: Z_0 = the dense (bottom-MLP) vector and
// Z_1..Z_F the pooled embeddings. Its output row is
//   [ Z_0 (d values) | <Z_i, Z_j> for i = 1..F, j = 0..i-1 ]     (d + F (F + 1) / 2 values)
// i.e. the strictly lower triangle of Z Z^T, row by row (DLRM's "tril" order without the
// diagonal). Pair p of row i starts at i (i - 1) / 2.
#include <cmath>
#include <cstdint>

#include "host/core/hd.h"

namespace tessera::math {

// Pairs of the strictly lower triangle of a V x V Gram matrix, V = num_vectors.
TESSERA_HD int64_t interaction_pairs(int64_t num_vectors) {
  return num_vectors * (num_vectors - 1) / 2;
}
// Index of pair (i, j), i > j, in the output's pair block.
TESSERA_HD int64_t interaction_pair_index(int64_t i, int64_t j) {
  return i * (i - 1) / 2 + j;
}
// Inverse of interaction_pair_index: the row i > j of pair p (p >= 0). Solves i (i - 1) / 2 <= p
// from a float estimate and corrects it, so rounding never picks the wrong row.
TESSERA_HD void interaction_pair_of(int64_t p, int64_t& i, int64_t& j) {
  int64_t r = static_cast<int64_t>((1.0 + sqrt(1.0 + 8.0 * static_cast<double>(p))) * 0.5);
  while (r * (r - 1) / 2 > p) --r;
  while ((r + 1) * r / 2 <= p) ++r;
  i = r;
  j = p - r * (r - 1) / 2;
}

}  // namespace tessera::math
