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
      TESSERA_THROW(Data, where << ": probability[" << i << "] = " << probs[i]
                                << " is outside [0, 1]");
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

double roc_auc(const float* scores, const float* labels, size_t n) {
  check_finite_scores(scores, n, "roc_auc");
  check_binary_labels(labels, n, "roc_auc");
  // (score, is_positive) sorted by score; ties are walked as one group below.
  std::vector<std::pair<float, uint8_t>> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = {scores[i], labels[i] == 1.f ? 1 : 0};
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  // U = sum over positives of (#negatives strictly below + half the negatives tied with it).
  // Accumulated per tie group as products of counts, so it stays exact in double far beyond the
  // point where summing ranks (~n^2) would lose integer precision.
  double u = 0, neg_below = 0, pos_total = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    double pos = 0, neg = 0;
    while (j < n && rows[j].first == rows[i].first) {
      (rows[j].second ? pos : neg) += 1;
      ++j;
    }
    u += pos * (neg_below + 0.5 * neg);
    neg_below += neg;
    pos_total += pos;
    i = j;
  }
  if (pos_total == 0 || neg_below == 0) return kNaN;
  return u / (pos_total * neg_below);
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
  std::vector<std::pair<float, uint8_t>> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = {scores[i], labels[i] == 1.f ? 1 : 0};
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  // Cumulative (false, true) positive counts after each tie group, highest scores first.
  std::vector<std::pair<double, double>> steps = {{0, 0}};
  for (size_t i = 0; i < n;) {
    auto [fp, tp] = steps.back();
    size_t j = i;
    for (; j < n && rows[j].first == rows[i].first; ++j) (rows[j].second ? tp : fp) += 1;
    steps.emplace_back(fp, tp);
    i = j;
  }
  const double negatives = steps.back().first, positives = steps.back().second;
  if (positives == 0 || negatives == 0) return {};
  const size_t m = steps.size(), k = std::min(m, max_points);
  std::vector<RocPoint> curve(k);
  for (size_t c = 0; c < k; ++c) {
    // Evenly spaced indices into the exact steps, 0 and m - 1 included.
    const size_t s =
        k == m ? c : static_cast<size_t>(std::llround(static_cast<double>(c) * (m - 1) / (k - 1)));
    curve[c] = {steps[s].first / negatives, steps[s].second / positives};
  }
  return curve;
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

Calibration calibration(const float* probs, const float* labels, size_t n, int num_bins) {
  TESSERA_CHECK(num_bins > 0, "calibration: num_bins = " << num_bins);
  check_probabilities(probs, n, "calibration");
  check_binary_labels(labels, n, "calibration");
  Calibration c;
  c.bins.resize(num_bins);
  std::vector<double> sum_p(num_bins, 0), sum_y(num_bins, 0);
  double total_p = 0, total_y = 0;
  for (size_t i = 0; i < n; ++i) {
    // p == 1 falls into the last bin rather than a bin of its own.
    const int b = std::min(static_cast<int>(static_cast<double>(probs[i]) * num_bins), num_bins - 1);
    c.bins[b].count += 1;
    sum_p[b] += probs[i];
    sum_y[b] += labels[i];
    total_p += probs[i];
    total_y += labels[i];
  }
  if (n == 0) {
    c.mean_predicted = c.observed_rate = c.ece = kNaN;
  } else {
    c.mean_predicted = total_p / static_cast<double>(n);
    c.observed_rate = total_y / static_cast<double>(n);
  }
  double ece = 0;
  for (int b = 0; b < num_bins; ++b) {
    CalibrationBin& bin = c.bins[b];
    bin.lower = static_cast<double>(b) / num_bins;
    bin.upper = static_cast<double>(b + 1) / num_bins;
    if (bin.count == 0) continue;
    bin.mean_predicted = sum_p[b] / static_cast<double>(bin.count);
    bin.observed_rate = sum_y[b] / static_cast<double>(bin.count);
    ece += static_cast<double>(bin.count) * std::fabs(bin.mean_predicted - bin.observed_rate);
  }
  if (n != 0) c.ece = ece / static_cast<double>(n);
  return c;
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

void BinaryMetrics::add(const float* probs, const float* labels, size_t n) {
  // Checked per batch so the error names the batch position, before anything is appended.
  check_probabilities(probs, n, "BinaryMetrics::add");
  check_binary_labels(labels, n, "BinaryMetrics::add");
  probs_.insert(probs_.end(), probs, probs + n);
  labels_.insert(labels_.end(), labels, labels + n);
}

void BinaryMetrics::add(const Tensor& probs, const Tensor& labels) {
  const float* p = column_f32(probs, "BinaryMetrics::add probs");
  const float* y = column_f32(labels, "BinaryMetrics::add labels");
  TESSERA_CHECK(probs.dim(0) == labels.dim(0), "BinaryMetrics::add: probs " << probs.describe()
                                                   << " and labels " << labels.describe()
                                                   << " differ in rows");
  add(p, y, static_cast<size_t>(probs.dim(0)));
}

void BinaryMetrics::clear() {
  probs_.clear();
  labels_.clear();
}

BinaryReport BinaryMetrics::compute() const {
  const size_t n = probs_.size();
  BinaryReport r;
  r.count = static_cast<int64_t>(n);
  for (float y : labels_) r.positives += y == 1.f;
  r.auc = roc_auc(probs_.data(), labels_.data(), n);
  r.logloss = logloss(probs_.data(), labels_.data(), n);
  r.accuracy = binary_accuracy(probs_.data(), labels_.data(), n);
  r.calibration = calibration(probs_.data(), labels_.data(), n);
  return r;
}

BinaryReport BinaryMetrics::compute_with_roc(size_t max_points) const {
  BinaryReport r = compute();
  r.roc = roc_curve(probs_.data(), labels_.data(), probs_.size(), max_points);
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
                                                              << " is outside [0, "
                                                              << num_classes_ << ")");
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
  TESSERA_CHECK(logits.defined() && logits.is_host() && logits.rank() == 2 &&
                    logits.dim(1) == num_classes_,
                "ConfusionMatrix::add_logits: need host logits [N, " << num_classes_ << "], got "
                                                                     << logits.describe());
  TESSERA_CHECK(labels.defined() && labels.is_host() && labels.rank() == 1 &&
                    labels.dim(0) == logits.dim(0),
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
  TESSERA_CHECK(true_class >= 0 && true_class < num_classes_,
                "ConfusionMatrix::support(" << true_class << ") with " << num_classes_ << " classes");
  int64_t s = 0;
  const int64_t* row = counts_.data() + static_cast<size_t>(true_class) * num_classes_;
  for (int p = 0; p < num_classes_; ++p) s += row[p];
  return s;
}

int64_t ConfusionMatrix::predicted(int predicted_class) const {
  TESSERA_CHECK(predicted_class >= 0 && predicted_class < num_classes_,
                "ConfusionMatrix::predicted(" << predicted_class << ") with " << num_classes_
                                              << " classes");
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
