#pragma once
// Evaluation metrics for the model families: binary (behaviour prediction: AUC, logloss,
// accuracy, calibration) and multi-class (image / text / audio: accuracy, per-class accuracy,
// confusion matrix, macro-F1). Pure host code over plain arrays; the Tensor overloads accept host
// f32 / i32 tensors and copy nothing but what exact AUC needs.
//
// Conventions, fixed here once so every pipeline and the benchmarks agree:
//   - Binary labels are exactly 0 or 1 (f32, as the losses take them). Anything else (0.3, NaN)
//     is an Error of kind Data naming the position; so is a NaN score or a probability outside
//     [0, 1]. Scores for AUC may be any finite reals (logits or probabilities); logloss, accuracy
//     and calibration take probabilities.
//   - AUC with only one class present is undefined: roc_auc returns NaN (it does not throw), so
//     a tiny evaluation batch does not abort a run; reports print it as null.
//   - A probability p >= 0.5 predicts the positive class.
//   - Logloss clips p to [1e-7, 1 - 1e-7] before taking logs (kLoglossEps).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"
#include "host/metrics/split_scores.h"  // RocPoint, SplitScores

namespace tessera {

constexpr double kLoglossEps = 1e-7;
constexpr int kCalibrationBins = 10;
constexpr size_t kRocMaxPoints = 100;

// ---- binary ------------------------------------------------------------------------------------

// Exact ROC AUC = Mann-Whitney U / (P * N): the probability that a random positive scores above a
// random negative, ties counting one half. O(n log n), 4 bytes a row of scratch (SplitScores).
// NaN when P == 0 or N == 0.
double roc_auc(const float* scores, const float* labels, size_t n);
double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels);

// Mean binary cross-entropy of probabilities, clipped to [eps, 1 - eps]. NaN when n == 0.
double logloss(const float* probs, const float* labels, size_t n, double eps = kLoglossEps);
double logloss(const std::vector<float>& probs, const std::vector<float>& labels,
               double eps = kLoglossEps);

// Fraction of rows where (p >= 0.5) == (label == 1). NaN when n == 0.
double binary_accuracy(const float* probs, const float* labels, size_t n);
double binary_accuracy(const std::vector<float>& probs, const std::vector<float>& labels);

// The ROC curve, exact at each distinct score: (0,0), then one point after each group of tied
// scores from the highest down, ending at (1,1). Longer than max_points (>= 2), it is thinned to
// max_points points picked evenly by index, first and last kept. Empty when P == 0 or N == 0
// (like roc_auc's NaN). Unthinned, trapezoid_area(curve) equals roc_auc (ties are the diagonal
// steps that count one half).
std::vector<RocPoint> roc_curve(const float* scores, const float* labels, size_t n,
                                size_t max_points = kRocMaxPoints);
// Area under a polyline of ROC points by the trapezoid rule (0 for fewer than two points).
double trapezoid_area(const std::vector<RocPoint>& curve);

struct CalibrationBin {
  double lower = 0, upper = 0;  // bin b covers [b/B, (b+1)/B); the last bin includes 1.0
  int64_t count = 0;
  double mean_predicted = 0;  // 0 for empty bins
  double observed_rate = 0;   // fraction of positives; 0 for empty bins
};

struct Calibration {
  double mean_predicted = 0;  // mean of p over all rows
  double observed_rate = 0;   // fraction of positive labels
  // Expected calibration error: sum over bins of (count_b / n) * |mean_predicted_b - observed_b|.
  double ece = 0;
  std::vector<CalibrationBin> bins;  // kCalibrationBins equal-width bins over [0, 1]
};

// NaN fields when n == 0.
Calibration calibration(const float* probs, const float* labels, size_t n,
                        int num_bins = kCalibrationBins);

// A reliability plot's points: the non-empty bins, in order.
struct ReliabilityPoint {
  double mean_predicted = 0, observed_rate = 0;
  int64_t count = 0;
};
std::vector<ReliabilityPoint> reliability_points(const Calibration& c);

struct BinaryReport {
  int64_t count = 0;
  int64_t positives = 0;
  double auc = 0;  // NaN when one class is absent
  double logloss = 0;
  double accuracy = 0;  // at threshold 0.5
  Calibration calibration;
  std::vector<RocPoint> roc;  // filled only by BinaryMetrics::compute_with_roc
};

// One JSON object: {"count":..,"positives":..,"auc":..,"logloss":..,"accuracy":..,
// "mean_predicted":..,"observed_rate":..,"ece":..}; NaN is written as null. Bins are left out
// (they belong in the human report, not the metrics log line).
std::string to_json(const BinaryReport& r);

// What BinaryMetrics::add sums row by row, in the order rows are added. Counts are exact; loss
// and prob are double sums (the same additions, in the same order, as logloss() and
// calibration() make over the same rows, so a single stream's figures equal theirs to the bit).
struct BinarySums {
  int64_t count = 0, positives = 0;
  int64_t correct = 0;  // (p >= 0.5) == (label == 1)
  double loss = 0;      // sum of -log(p clipped) over positives, -log(1 - p clipped) over negatives
  double prob = 0;      // sum of p
  std::array<int64_t, kCalibrationBins> bin_count{}, bin_positives{};
  std::array<double, kCalibrationBins> bin_prob{};

  void add(float p, bool positive);
  // Another stream's sums added in: counts stay exact; the double sums are then summed in another
  // order than one stream's, so logloss and calibration may differ in the last bits.
  void merge(const BinarySums& other);
  // Flattened for sending between processes: every field as a double (counts exact below 2^53).
  std::vector<double> to_doubles() const;
  static BinarySums from_doubles(const std::vector<double>& v);
};

// Accumulates probabilities and labels over evaluation batches, then computes every binary metric
// at once. logloss, accuracy, counts and calibration are summed as rows arrive (BinarySums); for
// exact AUC and the ROC curve only the scores are kept, split by label in fixed-size blocks
// (SplitScores): 4 bytes a row, growing one 256 KiB block at a time (no reallocation spike).
class BinaryMetrics {
 public:
  // probs: probabilities in [0, 1]; labels: 0 or 1. Checked here (the public edge).
  void add(const float* probs, const float* labels, size_t n);
  // probs f32 [N] or [N,1] on the host; labels f32 [N] or [N,1].
  void add(const Tensor& probs, const Tensor& labels);
  size_t size() const { return static_cast<size_t>(sums_.count); }
  void clear();
  // compute() and compute_with_roc() sort the stored scores in place (hence not const): the
  // order the rows came in is not kept, and no result depends on it; add() may follow.
  BinaryReport compute();
  // compute() plus the (thinned) ROC curve, from the same sorted scores; for the final evaluation.
  BinaryReport compute_with_roc(size_t max_points = kRocMaxPoints);

  // ---- merging rows scored elsewhere (another process: distributed scoring) -------------------
  const BinarySums& sums() const { return sums_; }
  const ChunkedFloats& scores(Label label) const { return scores_.scores(label); }
  // The other stream's sums, then all of its scores of each label (in pieces, any order). Their
  // counts must agree with the sums by the time compute() runs, which checks it.
  void merge_sums(const BinarySums& other) { sums_.merge(other); }
  void merge_scores(Label label, const float* scores, size_t n) {
    scores_.append(label, scores, n);
  }
  // Bytes held for the scores: at most 4 a row plus one partly filled block per label.
  size_t score_bytes() const { return scores_.capacity_bytes(); }

 private:
  BinarySums sums_;
  SplitScores scores_;
};

// ---- multi-class -------------------------------------------------------------------------------

// Row-wise argmax of logits/probabilities [rows, cols] (first maximum wins).
std::vector<int32_t> argmax_rows(const float* values, int64_t rows, int64_t cols);
std::vector<int32_t> argmax_rows(const Tensor& values);  // host f32 [N, C]

// counts[t * num_classes + p]: rows whose true class is t and predicted class is p.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);
  // predictions and labels in [0, num_classes); anything else is an Error of kind Data naming the
  // position and value.
  void add(const int32_t* predictions, const int32_t* labels, size_t n);
  void add(const std::vector<int32_t>& predictions, const std::vector<int32_t>& labels);
  // logits f32 [N, C] (C == num_classes) and labels i32 [N], both on the host.
  void add_logits(const Tensor& logits, const Tensor& labels);

  int num_classes() const { return num_classes_; }
  int64_t at(int true_class, int predicted_class) const;
  int64_t total() const { return total_; }
  int64_t support(int true_class) const;         // row sum
  int64_t predicted(int predicted_class) const;  // column sum
  const std::vector<int64_t>& counts() const { return counts_; }

  double accuracy() const;  // trace / total; NaN when empty
  // Recall of each class (correct / support); NaN for a class with no true rows.
  std::vector<double> per_class_accuracy() const;
  // F1 of each class = 2 tp / (2 tp + fp + fn); NaN for a class that neither occurs nor is
  // predicted.
  std::vector<double> per_class_f1() const;
  // Mean F1 over the classes that occur in the labels or the predictions (sklearn's macro average
  // with its default label set); NaN when empty.
  double macro_f1() const;

  // {"accuracy":..,"macro_f1":..,"per_class_accuracy":[..],"matrix":[[..],..]}; NaN as null.
  std::string to_json() const;

 private:
  int num_classes_;
  int64_t total_ = 0;
  std::vector<int64_t> counts_;  // [num_classes, num_classes], row = true class
};

// One-shot helpers over int predictions/labels.
double multiclass_accuracy(const std::vector<int32_t>& predictions,
                           const std::vector<int32_t>& labels);
ConfusionMatrix confusion_matrix(const std::vector<int32_t>& predictions,
                                 const std::vector<int32_t>& labels, int num_classes);
double macro_f1(const std::vector<int32_t>& predictions, const std::vector<int32_t>& labels,
                int num_classes);

}  // namespace tessera
