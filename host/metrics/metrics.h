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
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace tessera {

constexpr double kLoglossEps = 1e-7;
constexpr int kCalibrationBins = 10;
constexpr size_t kRocMaxPoints = 100;

// ---- binary ------------------------------------------------------------------------------------

// Exact ROC AUC = Mann-Whitney U / (P * N): the probability that a random positive scores above a
// random negative, ties counting one half. O(n log n). NaN when P == 0 or N == 0.
double roc_auc(const float* scores, const float* labels, size_t n);
double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels);

// Mean binary cross-entropy of probabilities, clipped to [eps, 1 - eps]. NaN when n == 0.
double logloss(const float* probs, const float* labels, size_t n, double eps = kLoglossEps);
double logloss(const std::vector<float>& probs, const std::vector<float>& labels,
               double eps = kLoglossEps);

// Fraction of rows where (p >= 0.5) == (label == 1). NaN when n == 0.
double binary_accuracy(const float* probs, const float* labels, size_t n);
double binary_accuracy(const std::vector<float>& probs, const std::vector<float>& labels);

// One point of a ROC curve: false and true positive rates after accepting every row scored at or
// above some threshold.
struct RocPoint {
  double fpr = 0, tpr = 0;
};

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
  double mean_predicted = 0;    // 0 for empty bins
  double observed_rate = 0;     // fraction of positives; 0 for empty bins
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
  double auc = 0;       // NaN when one class is absent
  double logloss = 0;
  double accuracy = 0;  // at threshold 0.5
  Calibration calibration;
  std::vector<RocPoint> roc;  // filled only by BinaryMetrics::compute_with_roc
};

// One JSON object: {"count":..,"positives":..,"auc":..,"logloss":..,"accuracy":..,
// "mean_predicted":..,"observed_rate":..,"ece":..}; NaN is written as null. Bins are left out
// (they belong in the human report, not the metrics log line).
std::string to_json(const BinaryReport& r);

// Accumulates probabilities and labels over evaluation batches, then computes every binary metric
// at once. Exact AUC needs all scores, so memory is 5 bytes per row.
class BinaryMetrics {
 public:
  // probs: probabilities in [0, 1]; labels: 0 or 1. Checked here (the public edge).
  void add(const float* probs, const float* labels, size_t n);
  // probs f32 [N] or [N,1] on the host; labels f32 [N] or [N,1].
  void add(const Tensor& probs, const Tensor& labels);
  size_t size() const { return probs_.size(); }
  void clear();
  BinaryReport compute() const;
  // compute() plus the (thinned) ROC curve: one more sort, so only for the final evaluation.
  BinaryReport compute_with_roc(size_t max_points = kRocMaxPoints) const;

 private:
  std::vector<float> probs_;
  std::vector<float> labels_;
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
  int64_t support(int true_class) const;      // row sum
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
