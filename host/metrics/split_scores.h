#pragma once
// Exact ROC AUC and ROC curve in 4 bytes a row: the scores are kept split by label (the
// positives' scores, the negatives' scores), each set in fixed-size blocks, and both sets are
// sorted in place and merged. No row's label needs storing (the set it is in says it), and
// nothing the size of all rows is ever copied: at 31M evaluation rows this is 124 MB where
// (score, label) pairs plus the sort's copy of them were ~30 B a row (issue 18).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tessera {

// One point of a ROC curve: false and true positive rates after accepting every row scored at or
// above some threshold.
struct RocPoint {
  double fpr = 0, tpr = 0;
};

// Floats appended into blocks of kBlockFloats (256 KiB) that are never reallocated: growing costs
// one block at a time (no 2x spike of a doubling vector's copy) and capacity stays within
// size + one block. Sortable in place.
class ChunkedFloats {
 public:
  static constexpr size_t kBlockShift = 16;
  static constexpr size_t kBlockFloats = size_t{1} << kBlockShift;

  void append(const float* values, size_t n);
  void push_back(float v) {
    if (size_ == blocks_.size() * kBlockFloats) grow();
    (*this)[size_++] = v;
  }
  size_t size() const { return size_; }
  // Bytes of the blocks held (the small table of block pointers not counted).
  size_t capacity_bytes() const { return blocks_.size() * kBlockFloats * sizeof(float); }
  float operator[](size_t i) const { return blocks_[i >> kBlockShift][i & (kBlockFloats - 1)]; }
  float& operator[](size_t i) { return blocks_[i >> kBlockShift][i & (kBlockFloats - 1)]; }
  // Copies values [first, first + n) to out.
  void copy_out(size_t first, size_t n, float* out) const;
  void sort();   // ascending (std::sort over the blocks, in place)
  void clear();  // frees every block

 private:
  class Iterator;
  void grow();  // one more block
  std::vector<std::unique_ptr<float[]>> blocks_;
  size_t size_ = 0;
};

enum class Label : uint8_t { Negative, Positive };

// The scores of binary-labelled rows, by label. auc() and roc() sort both sets in place (once,
// until the next append): the order rows were added in is not kept, and no result depends on it.
class SplitScores {
 public:
  void append(Label label, const float* scores, size_t n);
  void add(float score, Label label);
  size_t positives() const { return pos_.size(); }
  size_t negatives() const { return neg_.size(); }
  const ChunkedFloats& scores(Label label) const { return label == Label::Positive ? pos_ : neg_; }
  size_t capacity_bytes() const { return pos_.capacity_bytes() + neg_.capacity_bytes(); }
  void clear();

  // Mann-Whitney U / (P * N), ties counting one half, accumulated per group of tied scores in
  // ascending order (exact in double while U < 2^53). NaN when a class is empty.
  double auc();
  // The ROC curve: (0,0), one point after each group of tied scores from the highest down, ending
  // at (1,1); thinned to max_points (>= 2) picked evenly by index, ends kept. Empty when a class
  // is. Two passes over the merge (count the groups, then take the picked ones): O(max_points)
  // memory, not one step per distinct score.
  std::vector<RocPoint> roc(size_t max_points);

 private:
  void sort();
  ChunkedFloats pos_, neg_;
  bool sorted_ = true;
};

}  // namespace tessera
