#pragma once
// The sparse step of replicated tables in data-parallel training (docs/distributed.md): each
// rank packs its batch's lookup (the bags) with the gradient of its pooled rows, scaled by its
// share n_r / sum_r n_r of the global batch; every rank receives every rank's pack (an
// all-gather, in rank order) and concatenates them into the global batch, which is the batch one
// process would have looked up (ranks hold contiguous parts of each global batch, in rank
// order). Applying it with the tables' own backward-and-update is then the one-process step, up
// to the rounding of the gradient's scale.
//
// A pack, in native byte order (every rank runs the same build on the same kind of machine):
//   header  u32 magic "TSX1", u32 flags (bit 0: per-id weights), i64 batch B, i64 tables T,
//           i64 out_dim D, i64 nnz
//   i32 [T * B]  bag lengths, table-major (bag t * B + s), as Bags::offsets' differences
//   i64 [nnz]    ids, in bag order
//   f32 [nnz]    per-id weights (flag bit 0 only)
//   f32 [B * D]  the pooled rows' gradient times the scale, row-major
// So a batch of one id per (table, sample) costs T (4 + 8 + 4 d) bytes per sample (d = D / T)
// plus 40 bytes per pack.
#include <cstdint>
#include <string>
#include <vector>

#include "embeddings/bag_ops.h"

namespace tessera::emb {

// host_bags: T * B bags (host tensors); host_dout: f32 [B, out_dim] on the host. Each gradient
// element is multiplied by `scale` (one rounding).
std::string pack_step(const Bags& host_bags, const Tensor& host_dout, float scale, int64_t tables,
                      int64_t out_dim);
// A pack of no rows (a rank with no part of the batch, or whose part was dropped).
std::string pack_empty_step(int64_t tables, int64_t out_dim);

struct GlobalStep {
  Bags bags;    // host: T * B bags of the concatenated batch (B = the packs' rows together)
  Tensor dout;  // host f32 [B, out_dim]
};
// The packs in rank order, concatenated: bag t * B + s of the result is the s-th row of table t
// over the ranks' rows in order. A pack that does not parse, or whose T / out_dim differ from
// the tables', is an Error(Internal) naming the rank and the field. B may be 0.
GlobalStep concat_steps(const std::vector<std::string>& packs, int64_t tables, int64_t out_dim);

}  // namespace tessera::emb
