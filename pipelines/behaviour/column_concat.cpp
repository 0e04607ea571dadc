#include "pipelines/behaviour/column_concat.h"

#include <numeric>

#include "host/core/error.h"

namespace tessera {

ColumnConcat::ColumnConcat(Backend& backend, std::vector<int64_t> part_widths,
                           std::vector<ColumnPick> picks, int64_t max_batch)
    : backend_(&backend), widths_(std::move(part_widths)), picks_(std::move(picks)) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  int64_t g = 0;
  for (const int64_t w : widths_) {
    TESSERA_CHECK(w > 0, "a concatenated part of width " << w);
    offsets_.push_back(total_);
    total_ += w;
    g = std::gcd(g, w);
  }
  for (const ColumnPick& p : picks_) {
    TESSERA_CHECK(p.part >= 0 && p.part < static_cast<int64_t>(widths_.size()) && p.begin >= 0 &&
                      p.begin < p.end && p.end <= widths_[static_cast<size_t>(p.part)],
                  "column pick of part " << p.part << " [" << p.begin << ", " << p.end << ")");
    width_ += p.end - p.begin;
    g = std::gcd(std::gcd(g, p.begin), p.end);
  }
  TESSERA_CHECK(width_ > 0, "a concatenation of no columns");
  chunk_ = g;
  source_ = backend.empty({max_batch * total_});
  dsource_ = backend.empty({max_batch * total_});
  out_ = backend.empty({max_batch * width_});
}

Tensor ColumnConcat::view(Tensor& buffer, int64_t b, int64_t p) {
  const int64_t w = widths_[static_cast<size_t>(p)];
  const int64_t begin = b * offsets_[static_cast<size_t>(p)];
  return buffer.rows(begin, begin + b * w).reshape({b, w});
}

const Tensor& ColumnConcat::index(int64_t b) {
  auto it = index_.find(b);
  if (it != index_.end()) return it->second;
  if (index_.size() >= 4) index_.clear();  // a few batch sizes recur (train, last, eval)
  const int64_t per_row = width_ / chunk_;
  Tensor ids = Tensor::host({b * per_row}, DType::I64);
  int64_t* out = ids.data<int64_t>();
  for (int64_t s = 0; s < b; ++s) {
    for (const ColumnPick& p : picks_) {
      const size_t q = static_cast<size_t>(p.part);
      const int64_t first = b * offsets_[q] + s * widths_[q];  // element of (s, column 0)
      for (int64_t c = p.begin; c < p.end; c += chunk_) *out++ = (first + c) / chunk_;
    }
  }
  return index_.emplace(b, backend_->to_device(ids)).first->second;
}

Tensor ColumnConcat::forward(int64_t b) {
  TESSERA_CHECK(
      b >= 1 && b * width_ <= out_.numel(),
      "a batch of " << b << " rows for a concatenation of at most " << out_.numel() / width_);
  const Tensor& ids = index(b);
  const Tensor src = source_.rows(0, b * total_).reshape({b * total_ / chunk_, chunk_});
  Tensor out = out_.rows(0, b * width_).reshape({b * width_ / chunk_, chunk_});
  backend_->embedding_forward(src, ids, out);
  return out.reshape({b, width_});
}

void ColumnConcat::backward(const Tensor& dx) {
  TESSERA_CHECK(dx.rank() == 2 && dx.dim(1) == width_,
                "concatenation gradient " << dx.describe() << ", expected [B, " << width_ << "]");
  const int64_t b = dx.dim(0);
  Tensor dsrc = dsource_.rows(0, b * total_).reshape({b * total_ / chunk_, chunk_});
  backend_->fill(dsrc, 0.f);
  backend_->embedding_backward(index(b), dx.reshape({b * width_ / chunk_, chunk_}), dsrc);
}

}  // namespace tessera
