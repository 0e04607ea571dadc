#include "host/metrics/split_scores.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "host/core/error.h"

namespace tessera {

// A random-access iterator over a ChunkedFloats' values, so std::sort runs over the blocks in
// place: position i is element i & (kBlockFloats - 1) of block i >> kBlockShift.
class ChunkedFloats::Iterator {
 public:
  using iterator_category = std::random_access_iterator_tag;
  using value_type = float;
  using difference_type = std::ptrdiff_t;
  using pointer = float*;
  using reference = float&;

  Iterator() = default;
  Iterator(ChunkedFloats* c, difference_type i) : c_(c), i_(i) {}
  reference operator*() const { return (*c_)[static_cast<size_t>(i_)]; }
  reference operator[](difference_type d) const { return (*c_)[static_cast<size_t>(i_ + d)]; }
  Iterator& operator++() { return ++i_, *this; }
  Iterator& operator--() { return --i_, *this; }
  Iterator operator++(int) { return Iterator(c_, i_++); }
  Iterator operator--(int) { return Iterator(c_, i_--); }
  Iterator& operator+=(difference_type d) { return i_ += d, *this; }
  Iterator& operator-=(difference_type d) { return i_ -= d, *this; }
  Iterator operator+(difference_type d) const { return Iterator(c_, i_ + d); }
  Iterator operator-(difference_type d) const { return Iterator(c_, i_ - d); }
  friend Iterator operator+(difference_type d, const Iterator& it) { return it + d; }
  difference_type operator-(const Iterator& o) const { return i_ - o.i_; }
  bool operator==(const Iterator& o) const { return i_ == o.i_; }
  bool operator!=(const Iterator& o) const { return i_ != o.i_; }
  bool operator<(const Iterator& o) const { return i_ < o.i_; }
  bool operator>(const Iterator& o) const { return i_ > o.i_; }
  bool operator<=(const Iterator& o) const { return i_ <= o.i_; }
  bool operator>=(const Iterator& o) const { return i_ >= o.i_; }

 private:
  ChunkedFloats* c_ = nullptr;
  difference_type i_ = 0;
};

void ChunkedFloats::grow() {
  blocks_.emplace_back(new float[kBlockFloats]);
}

void ChunkedFloats::append(const float* values, size_t n) {
  while (n > 0) {
    if (size_ == blocks_.size() * kBlockFloats) grow();
    const size_t at = size_ & (kBlockFloats - 1);
    const size_t take = std::min(n, kBlockFloats - at);
    std::copy(values, values + take, blocks_[size_ >> kBlockShift].get() + at);
    size_ += take;
    values += take;
    n -= take;
  }
}

void ChunkedFloats::copy_out(size_t first, size_t n, float* out) const {
  TESSERA_CHECK(first + n <= size_, "ChunkedFloats::copy_out: [" << first << ", " << first + n
                                                                 << ") of " << size_ << " values");
  while (n > 0) {
    const size_t at = first & (kBlockFloats - 1);
    const size_t take = std::min(n, kBlockFloats - at);
    const float* block = blocks_[first >> kBlockShift].get();
    std::copy(block + at, block + at + take, out);
    first += take;
    out += take;
    n -= take;
  }
}

void ChunkedFloats::sort() {
  std::sort(Iterator(this, 0), Iterator(this, static_cast<std::ptrdiff_t>(size_)));
}

void ChunkedFloats::clear() {
  blocks_.clear();
  blocks_.shrink_to_fit();
  size_ = 0;
}

void SplitScores::append(Label label, const float* scores, size_t n) {
  if (n == 0) return;
  (label == Label::Positive ? pos_ : neg_).append(scores, n);
  sorted_ = false;
}

void SplitScores::add(float score, Label label) {
  (label == Label::Positive ? pos_ : neg_).push_back(score);
  sorted_ = false;
}

void SplitScores::clear() {
  pos_.clear();
  neg_.clear();
  sorted_ = true;
}

void SplitScores::sort() {
  if (sorted_) return;
  pos_.sort();
  neg_.sort();
  sorted_ = true;
}

double SplitScores::auc() {
  sort();
  const size_t np = pos_.size(), nn = neg_.size();
  // U = sum over positives of (#negatives strictly below + half the negatives tied with it),
  // accumulated per tie group as products of counts: exact in double far beyond the point where
  // summing ranks (~n^2) would lose integer precision.
  double u = 0, neg_below = 0;
  size_t i = 0, j = 0;
  while (i < np || j < nn) {
    const float v = i == np ? neg_[j] : j == nn ? pos_[i] : std::min(pos_[i], neg_[j]);
    double p = 0, n = 0;
    for (; i < np && pos_[i] == v; ++i) p += 1;
    for (; j < nn && neg_[j] == v; ++j) n += 1;
    u += p * (neg_below + 0.5 * n);
    neg_below += n;
  }
  if (np == 0 || nn == 0) return std::numeric_limits<double>::quiet_NaN();
  return u / (static_cast<double>(np) * neg_below);
}

namespace {

// Walks two ascending-sorted sets from the highest score down, one group of tied scores at a
// time; step(false_positives, true_positives) after each group, counts cumulative.
template <class Step>
void walk_groups_down(const ChunkedFloats& pos, const ChunkedFloats& neg, Step step) {
  size_t i = pos.size(), j = neg.size();
  double tp = 0, fp = 0;
  while (i > 0 || j > 0) {
    const float v = i == 0 ? neg[j - 1] : j == 0 ? pos[i - 1] : std::max(pos[i - 1], neg[j - 1]);
    for (; i > 0 && pos[i - 1] == v; --i) tp += 1;
    for (; j > 0 && neg[j - 1] == v; --j) fp += 1;
    step(fp, tp);
  }
}

}  // namespace

std::vector<RocPoint> SplitScores::roc(size_t max_points) {
  TESSERA_CHECK(max_points >= 2, "roc_curve: max_points = " << max_points);
  if (positives() == 0 || negatives() == 0) return {};
  sort();
  // Steps: 0 is (0, 0), step g the counts after the g-th group; m steps in all.
  size_t m = 1;
  walk_groups_down(pos_, neg_, [&](double, double) { ++m; });
  const size_t k = std::min(m, max_points);
  const double negatives = static_cast<double>(neg_.size());
  const double positives = static_cast<double>(pos_.size());
  // Evenly spaced step indices, 0 and m - 1 included; strictly increasing since k <= m.
  auto picked = [&](size_t c) {
    return k == m ? c
                  : static_cast<size_t>(std::llround(static_cast<double>(c) * (m - 1) / (k - 1)));
  };
  std::vector<RocPoint> curve;
  curve.reserve(k);
  curve.push_back({0, 0});  // step 0 is always picked
  size_t s = 0;
  walk_groups_down(pos_, neg_, [&](double fp, double tp) {
    ++s;
    if (curve.size() < k && picked(curve.size()) == s)
      curve.push_back({fp / negatives, tp / positives});
  });
  return curve;
}

}  // namespace tessera
