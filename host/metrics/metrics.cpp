#include "host/metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

namespace tessera {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Labels are exactly 0 or 1; reports name the first bad position.
void check_binary_labels(const float* labels, size_t n, const char* where) {
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] != 0.f && labels[i] != 1.f)
      TESSERA_THROW(Data, where << ": label[" << i << "] = " << labels[i]
                                << " is not a binary label (0 or 1)");
  }
}

void check_finite_scores(const float* scores, size_t n, const char* where) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i]))
      TESSERA_THROW(Data, where << ": score[" << i << "] = " << scores[i] << " is not finite");
  }
}

void check_probabilities(const float* probs, size_t n, const char* where) {
  for (size_t i = 0; i < n; ++i) {
    // Written so that NaN fails too.
    if (!(probs[i] >= 0.f && probs[i] <= 1.f))
      TESSERA_THROW(Data,
                    where << ": probability[" << i << "] = " << probs[i] << " is outside [0, 1]");
  }
}

void check_same_size(size_t a, size_t b, const char* where) {
  if (a != b)
    TESSERA_THROW(Shape, where << ": " << a << " scores/predictions but " << b << " labels");
}

// Vector of a host f32 tensor of shape [N] or [N, 1].
const float* column_f32(const Tensor& t, const char* what) {
  TESSERA_CHECK(t.defined(), what << " tensor is undefined");
  TESSERA_CHECK(t.is_host(), what << " must be a host tensor, got " << t.describe());
  TESSERA_CHECK(t.rank() == 1 || (t.rank() == 2 && t.dim(1) == 1),
                what << " must be [N] or [N,1], got " << t.describe());
  return t.data<float>();
}

void write_number(std::ostream& os, double v) {
  if (std::isfinite(v)) {
    os << v;
  } else {
    os << "null";
  }
}

}  // namespace

// ---- binary ------------------------------------------------------------------------------------

namespace {

// The rows' scores split by label (labels checked by the caller).
SplitScores split_scores(const float* scores, const float* labels, size_t n) {
  SplitScores split;
  for (size_t i = 0; i < n; ++i)
    split.add(scores[i], labels[i] == 1.f ? Label::Positive : Label::Negative);
  return split;
}

}  // namespace

double roc_auc(const float* scores, const float* labels, size_t n) {
  check_finite_scores(scores, n, "roc_auc");
  check_binary_labels(labels, n, "roc_auc");
  return split_scores(scores, labels, n).auc();
}

double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  check_same_size(scores.size(), labels.size(), "roc_auc");
  return roc_auc(scores.data(), labels.data(), scores.size());
}

std::vector<RocPoint> roc_curve(const float* scores, const float* labels, size_t n,
                                size_t max_points) {
  TESSERA_CHECK(max_points >= 2, "roc_curve: max_points = " << max_points);
  check_finite_scores(scores, n, "roc_curve");
  check_binary_labels(labels, n, "roc_curve");
  return split_scores(scores, labels, n).roc(max_points);
}

double trapezoid_area(const std::vector<RocPoint>& curve) {
  double area = 0;
  for (size_t i = 1; i < curve.size(); ++i)
    area += (curve[i].fpr - curve[i - 1].fpr) * (curve[i].tpr + curve[i - 1].tpr) / 2;
  return area;
}

double logloss(const float* probs, const float* labels, size_t n, double eps) {
  check_probabilities(probs, n, "logloss");
  check_binary_labels(labels, n, "logloss");
  if (n == 0) return kNaN;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = std::min(std::max(static_cast<double>(probs[i]), eps), 1.0 - eps);
    sum -= labels[i] == 1.f ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(n);
}

double logloss(const std::vector<float>& probs, const std::vector<float>& labels, double eps) {
  check_same_size(probs.size(), labels.size(), "logloss");
  return logloss(probs.data(), labels.data(), probs.size(), eps);
}

double binary_accuracy(const float* probs, const float* labels, size_t n) {
  check_probabilities(probs, n, "binary_accuracy");
  check_binary_labels(labels, n, "binary_accuracy");
  if (n == 0) return kNaN;
  size_t correct = 0;
  for (size_t i = 0; i < n; ++i) correct += (probs[i] >= 0.5f) == (labels[i] == 1.f);
  return static_cast<double>(correct) / static_cast<double>(n);
}

double binary_accuracy(const std::vector<float>& probs, const std::vector<float>& labels) {
  check_same_size(probs.size(), labels.size(), "binary_accuracy");
  return binary_accuracy(probs.data(), labels.data(), probs.size());
}

namespace {

// A Calibration from per-bin sums: count_b rows, sum_p_b of their p, pos_b positives; total_p the
// sum of p over all n rows.
Calibration calibration_of(const int64_t* count, const double* sum_p, const int64_t* pos,
                           int num_bins, double total_p, int64_t positives, int64_t n) {
  Calibration c;
  c.bins.resize(num_bins);
  if (n == 0) {
    c.mean_predicted = c.observed_rate = c.ece = kNaN;
  } else {
    c.mean_predicted = total_p / static_cast<double>(n);
    c.observed_rate = static_cast<double>(positives) / static_cast<double>(n);
  }
  double ece = 0;
  for (int b = 0; b < num_bins; ++b) {
    CalibrationBin& bin = c.bins[b];
    bin.lower = static_cast<double>(b) / num_bins;
    bin.upper = static_cast<double>(b + 1) / num_bins;
    bin.count = count[b];
    if (bin.count == 0) continue;
    bin.mean_predicted = sum_p[b] / static_cast<double>(bin.count);
    bin.observed_rate = static_cast<double>(pos[b]) / static_cast<double>(bin.count);
    ece += static_cast<double>(bin.count) * std::fabs(bin.mean_predicted - bin.observed_rate);
  }
  if (n != 0) c.ece = ece / static_cast<double>(n);
  return c;
}

// Bin of a probability among num_bins equal-width bins; p == 1 falls into the last bin rather
// than a bin of its own.
int bin_of(float p, int num_bins) {
  return std::min(static_cast<int>(static_cast<double>(p) * num_bins), num_bins - 1);
}

}  // namespace

Calibration calibration(const float* probs, const float* labels, size_t n, int num_bins) {
  TESSERA_CHECK(num_bins > 0, "calibration: num_bins = " << num_bins);
  check_probabilities(probs, n, "calibration");
  check_binary_labels(labels, n, "calibration");
  std::vector<int64_t> count(num_bins, 0), pos(num_bins, 0);
  std::vector<double> sum_p(num_bins, 0);
  double total_p = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n; ++i) {
    const int b = bin_of(probs[i], num_bins);
    const bool y = labels[i] == 1.f;
    count[b] += 1;
    sum_p[b] += probs[i];
    pos[b] += y;
    total_p += probs[i];
    positives += y;
  }
  return calibration_of(count.data(), sum_p.data(), pos.data(), num_bins, total_p, positives,
                        static_cast<int64_t>(n));
}

std::vector<ReliabilityPoint> reliability_points(const Calibration& c) {
  std::vector<ReliabilityPoint> points;
  for (const CalibrationBin& b : c.bins)
    if (b.count > 0) points.push_back({b.mean_predicted, b.observed_rate, b.count});
  return points;
}

std::string to_json(const BinaryReport& r) {
  std::ostringstream os;
  os.precision(10);
  os << "{\"count\":" << r.count << ",\"positives\":" << r.positives << ",\"auc\":";
  write_number(os, r.auc);
  os << ",\"logloss\":";
  write_number(os, r.logloss);
  os << ",\"accuracy\":";
  write_number(os, r.accuracy);
  os << ",\"mean_predicted\":";
  write_number(os, r.calibration.mean_predicted);
  os << ",\"observed_rate\":";
  write_number(os, r.calibration.observed_rate);
  os << ",\"ece\":";
  write_number(os, r.calibration.ece);
  os << "}";
  return os.str();
}

void BinarySums::add(float p, bool positive) {
  count += 1;
  positives += positive;
  correct += (p >= 0.5f) == positive;
  // The same expressions as logloss(), so one stream's sum is the same to the bit.
  const double pc = std::min(std::max(static_cast<double>(p), kLoglossEps), 1.0 - kLoglossEps);
  loss -= positive ? std::log(pc) : std::log1p(-pc);
  prob += p;
  const int b = bin_of(p, kCalibrationBins);
  bin_count[b] += 1;
  bin_positives[b] += positive;
  bin_prob[b] += p;
}

void BinarySums::merge(const BinarySums& o) {
  count += o.count;
  positives += o.positives;
  correct += o.correct;
  loss += o.loss;
  prob += o.prob;
  for (int b = 0; b < kCalibrationBins; ++b) {
    bin_count[b] += o.bin_count[b];
    bin_positives[b] += o.bin_positives[b];
    bin_prob[b] += o.bin_prob[b];
  }
}

// Layout: count, positives, correct, loss, prob, then per bin: count, positives, prob.
std::vector<double> BinarySums::to_doubles() const {
  std::vector<double> v{static_cast<double>(count), static_cast<double>(positives),
                        static_cast<double>(correct), loss, prob};
  for (int b = 0; b < kCalibrationBins; ++b) {
    v.push_back(static_cast<double>(bin_count[b]));
    v.push_back(static_cast<double>(bin_positives[b]));
    v.push_back(bin_prob[b]);
  }
  return v;
}

BinarySums BinarySums::from_doubles(const std::vector<double>& v) {
  TESSERA_CHECK(v.size() == 5 + 3 * static_cast<size_t>(kCalibrationBins),
                "BinarySums::from_doubles: " << v.size() << " values");
  BinarySums s;
  s.count = static_cast<int64_t>(v[0]);
  s.positives = static_cast<int64_t>(v[1]);
  s.correct = static_cast<int64_t>(v[2]);
  s.loss = v[3];
  s.prob = v[4];
  for (int b = 0; b < kCalibrationBins; ++b) {
    s.bin_count[b] = static_cast<int64_t>(v[5 + 3 * b]);
    s.bin_positives[b] = static_cast<int64_t>(v[6 + 3 * b]);
    s.bin_prob[b] = v[7 + 3 * b];
  }
  return s;
}

void BinaryMetrics::add(const float* probs, const float* labels, size_t n) {
  // Checked per batch so the error names the batch position, before anything is added.
  check_probabilities(probs, n, "BinaryMetrics::add");
  check_binary_labels(labels, n, "BinaryMetrics::add");
  for (size_t i = 0; i < n; ++i) {
    const bool positive = labels[i] == 1.f;
    sums_.add(probs[i], positive);
    scores_.add(probs[i], positive ? Label::Positive : Label::Negative);
  }
}

void BinaryMetrics::add(const Tensor& probs, const Tensor& labels) {
  const float* p = column_f32(probs, "BinaryMetrics::add probs");
  const float* y = column_f32(labels, "BinaryMetrics::add labels");
  TESSERA_CHECK(probs.dim(0) == labels.dim(0), "BinaryMetrics::add: probs "
                                                   << probs.describe() << " and labels "
                                                   << labels.describe() << " differ in rows");
  add(p, y, static_cast<size_t>(probs.dim(0)));
}

void BinaryMetrics::clear() {
  sums_ = BinarySums{};
  scores_.clear();
}

BinaryReport BinaryMetrics::compute() {
  const BinarySums& s = sums_;
  // Only a merge (merge_sums / merge_scores) can make these disagree.
  TESSERA_CHECK(scores_.positives() == static_cast<size_t>(s.positives) &&
                    scores_.negatives() == static_cast<size_t>(s.count - s.positives),
                "BinaryMetrics: " << s.count << " rows (" << s.positives << " positive) summed but "
                                  << scores_.positives() << " positive and " << scores_.negatives()
                                  << " negative scores stored");
  BinaryReport r;
  r.count = s.count;
  r.positives = s.positives;
  r.auc = scores_.auc();
  const auto n = static_cast<double>(s.count);
  r.logloss = s.count == 0 ? kNaN : s.loss / n;
  r.accuracy = s.count == 0 ? kNaN : static_cast<double>(s.correct) / n;
  r.calibration = calibration_of(s.bin_count.data(), s.bin_prob.data(), s.bin_positives.data(),
                                 kCalibrationBins, s.prob, s.positives, s.count);
  return r;
}

BinaryReport BinaryMetrics::compute_with_roc(size_t max_points) {
  BinaryReport r = compute();
  r.roc = scores_.roc(max_points);
  return r;
}

// ---- multi-class -------------------------------------------------------------------------------

std::vector<int32_t> argmax_rows(const float* values, int64_t rows, int64_t cols) {
  TESSERA_CHECK(rows >= 0 && cols > 0, "argmax_rows: shape [" << rows << "," << cols << "]");
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = values + r * cols;
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j)
      if (row[j] > row[best]) best = j;
    out[r] = static_cast<int32_t>(best);
  }
  return out;
}

std::vector<int32_t> argmax_rows(const Tensor& values) {
  TESSERA_CHECK(values.defined() && values.is_host() && values.rank() == 2,
                "argmax_rows: need a host [N, C] tensor, got " << values.describe());
  return argmax_rows(values.data<float>(), values.dim(0), values.dim(1));
}

ConfusionMatrix::ConfusionMatrix(int num_classes) : num_classes_(num_classes) {
  TESSERA_CHECK(num_classes > 0, "ConfusionMatrix: num_classes = " << num_classes);
  counts_.assign(static_cast<size_t>(num_classes) * num_classes, 0);
}

void ConfusionMatrix::add(const int32_t* predictions, const int32_t* labels, size_t n) {
  // Validate the whole batch first so a bad row leaves the matrix untouched.
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes_)
      TESSERA_THROW(Data, "ConfusionMatrix::add: label[" << i << "] = " << labels[i]
                                                         << " is outside [0, " << num_classes_
                                                         << ")");
    if (predictions[i] < 0 || predictions[i] >= num_classes_)
      TESSERA_THROW(Data, "ConfusionMatrix::add: prediction[" << i << "] = " << predictions[i]
                                                              << " is outside [0, " << num_classes_
                                                              << ")");
  }
  for (size_t i = 0; i < n; ++i)
    counts_[static_cast<size_t>(labels[i]) * num_classes_ + predictions[i]] += 1;
  total_ += static_cast<int64_t>(n);
}

void ConfusionMatrix::add(const std::vector<int32_t>& predictions,
                          const std::vector<int32_t>& labels) {
  check_same_size(predictions.size(), labels.size(), "ConfusionMatrix::add");
  add(predictions.data(), labels.data(), predictions.size());
}

void ConfusionMatrix::add_logits(const Tensor& logits, const Tensor& labels) {
  TESSERA_CHECK(
      logits.defined() && logits.is_host() && logits.rank() == 2 && logits.dim(1) == num_classes_,
      "ConfusionMatrix::add_logits: need host logits [N, " << num_classes_ << "], got "
                                                           << logits.describe());
  TESSERA_CHECK(
      labels.defined() && labels.is_host() && labels.rank() == 1 && labels.dim(0) == logits.dim(0),
      "ConfusionMatrix::add_logits: need host labels [" << logits.dim(0) << "], got "
                                                        << labels.describe());
  std::vector<int32_t> pred = argmax_rows(logits);
  add(pred.data(), labels.data<int32_t>(), pred.size());
}

int64_t ConfusionMatrix::at(int true_class, int predicted_class) const {
  TESSERA_CHECK(true_class >= 0 && true_class < num_classes_ && predicted_class >= 0 &&
                    predicted_class < num_classes_,
                "ConfusionMatrix::at(" << true_class << ", " << predicted_class << ") with "
                                       << num_classes_ << " classes");
  return counts_[static_cast<size_t>(true_class) * num_classes_ + predicted_class];
}

int64_t ConfusionMatrix::support(int true_class) const {
  TESSERA_CHECK(true_class >= 0 && true_class < num_classes_, "ConfusionMatrix::support("
                                                                  << true_class << ") with "
                                                                  << num_classes_ << " classes");
  int64_t s = 0;
  const int64_t* row = counts_.data() + static_cast<size_t>(true_class) * num_classes_;
  for (int p = 0; p < num_classes_; ++p) s += row[p];
  return s;
}

int64_t ConfusionMatrix::predicted(int predicted_class) const {
  TESSERA_CHECK(
      predicted_class >= 0 && predicted_class < num_classes_,
      "ConfusionMatrix::predicted(" << predicted_class << ") with " << num_classes_ << " classes");
  int64_t s = 0;
  for (int t = 0; t < num_classes_; ++t)
    s += counts_[static_cast<size_t>(t) * num_classes_ + predicted_class];
  return s;
}

double ConfusionMatrix::accuracy() const {
  if (total_ == 0) return kNaN;
  int64_t correct = 0;
  for (int c = 0; c < num_classes_; ++c) correct += at(c, c);
  return static_cast<double>(correct) / static_cast<double>(total_);
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
  std::vector<double> out(num_classes_);
  for (int c = 0; c < num_classes_; ++c) {
    const int64_t s = support(c);
    out[c] = s == 0 ? kNaN : static_cast<double>(at(c, c)) / static_cast<double>(s);
  }
  return out;
}

std::vector<double> ConfusionMatrix::per_class_f1() const {
  std::vector<double> out(num_classes_);
  for (int c = 0; c < num_classes_; ++c) {
    const double tp = static_cast<double>(at(c, c));
    const double fn = static_cast<double>(support(c)) - tp;
    const double fp = static_cast<double>(predicted(c)) - tp;
    const double denom = 2 * tp + fp + fn;
    out[c] = denom == 0 ? kNaN : 2 * tp / denom;
  }
  return out;
}

double ConfusionMatrix::macro_f1() const {
  double sum = 0;
  int present = 0;
  for (double f : per_class_f1()) {
    if (std::isnan(f)) continue;  // class neither occurs nor is predicted
    sum += f;
    ++present;
  }
  return present == 0 ? kNaN : sum / present;
}

std::string ConfusionMatrix::to_json() const {
  std::ostringstream os;
  os.precision(10);
  os << "{\"accuracy\":";
  write_number(os, accuracy());
  os << ",\"macro_f1\":";
  write_number(os, macro_f1());
  os << ",\"per_class_accuracy\":[";
  const std::vector<double> pca = per_class_accuracy();
  for (int c = 0; c < num_classes_; ++c) {
    if (c) os << ",";
    write_number(os, pca[c]);
  }
  os << "],\"matrix\":[";
  for (int t = 0; t < num_classes_; ++t) {
    os << (t ? ",[" : "[");
    for (int p = 0; p < num_classes_; ++p) os << (p ? "," : "") << at(t, p);
    os << "]";
  }
  os << "]}";
  return os.str();
}

double multiclass_accuracy(const std::vector<int32_t>& predictions,
                           const std::vector<int32_t>& labels) {
  check_same_size(predictions.size(), labels.size(), "multiclass_accuracy");
  if (labels.empty()) return kNaN;
  size_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += predictions[i] == labels[i];
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

ConfusionMatrix confusion_matrix(const std::vector<int32_t>& predictions,
                                 const std::vector<int32_t>& labels, int num_classes) {
  ConfusionMatrix cm(num_classes);
  cm.add(predictions, labels);
  return cm;
}

double macro_f1(const std::vector<int32_t>& predictions, const std::vector<int32_t>& labels,
                int num_classes) {
  return confusion_matrix(predictions, labels, num_classes).macro_f1();
}

}  // namespace tessera
