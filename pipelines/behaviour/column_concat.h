#pragma once
// Column ranges of several row-major matrices side by side, on any Backend: the concatenation
// x = [part_0[:, a_0:b_0) | part_1[:, a_1:b_1) | ...] of a table model's input (DCN-V2's x0 =
// [dense part | embeddings], Wide & Deep's deep input), and its backward.
//
// Backend ops see only contiguous tensors, so the parts live in one source buffer, part p as a
// [B, w_p] matrix after the previous parts', and the concatenation is a row gather: both sides cut
// into chunks of g floats (g the gcd of every width and column bound), x's chunks picked from the
// source's by a fixed index (Backend::embedding_forward); the backward scatters the other way
// (Backend::embedding_backward into a zeroed gradient; the index is one-to-one, so nothing sums).
#include <cstdint>
#include <map>
#include <vector>

#include "host/backend/backend.h"

namespace tessera {

struct ColumnPick {
  int64_t part = 0;
  int64_t begin = 0, end = 0;  // columns [begin, end) of the part
};

class ColumnConcat {
 public:
  ColumnConcat() = default;
  ColumnConcat(Backend& backend, std::vector<int64_t> part_widths, std::vector<ColumnPick> picks,
               int64_t max_batch);

  int64_t width() const { return width_; }  // the concatenation's columns
  // Part p of a batch of b rows, [b, w_p], in the source buffer (the caller writes it) or in the
  // source's gradient (after backward).
  Tensor part(int64_t b, int64_t p) { return view(source_, b, p); }
  Tensor dpart(int64_t b, int64_t p) { return view(dsource_, b, p); }
  // The concatenation of the parts of a batch of b rows, [b, width()] (valid until the next call).
  Tensor forward(int64_t b);
  // dx [b, width()]: every part's gradient (dpart) overwritten; columns no pick takes get 0.
  void backward(const Tensor& dx);

 private:
  Tensor view(Tensor& buffer, int64_t b, int64_t p);
  const Tensor& index(int64_t b);  // the chunk index for b rows, on the backend
  Backend* backend_ = nullptr;
  std::vector<int64_t> widths_, offsets_;  // offsets_: columns before part p (of all parts)
  std::vector<ColumnPick> picks_;
  int64_t total_ = 0, width_ = 0, chunk_ = 1;
  Tensor source_, dsource_, out_;    // flat [max_batch * total_], [max_batch * width_]
  std::map<int64_t, Tensor> index_;  // by batch size
};

}  // namespace tessera
