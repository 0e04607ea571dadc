// Metrics: hand-computed cases (every expected value below is worked out in the comment beside
// it), a brute-force pairwise AUC on random data with heavy ties, and the error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "host/metrics/metrics.h"

namespace tessera {
namespace {

// O(n^2) definition of AUC: over all (positive, negative) pairs, 1 if the positive scores
// higher, 1/2 if tied.
double brute_force_auc(const std::vector<float>& s, const std::vector<float>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (y[i] != 1.f) continue;
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[j] != 0.f) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : (s[i] == s[j] ? 0.5 : 0.0);
    }
  }
  return wins / pairs;
}

TEST(RocAuc, HandComputedCases) {
  // All scores tied: every pair counts 1/2.
  EXPECT_DOUBLE_EQ(roc_auc({0.3f, 0.3f, 0.3f, 0.3f}, {0, 1, 0, 1}), 0.5);
  // Perfect and inverted rankings.
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.2f, 0.8f, 0.9f}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}), 0.0);
  // Positives 0.35 (beats 0.1, loses to 0.4) and 0.8 (beats both): 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 0.75);
  // Tie across classes: positive 0.5 vs negatives {0.5 (tie), 0.2 (win)} = 1.5; positive 0.9
  // beats both = 2. (1.5 + 2) / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.5f, 0.5f, 0.2f, 0.9f}, {1, 0, 0, 1}), 0.875);
  // Positives {0.2, 0.6, 0.6}, negatives {0.6, 0.1}: 0.2 -> 1; each 0.6 -> 0.5 + 1. 4 / 6.
  EXPECT_DOUBLE_EQ(roc_auc({0.2f, 0.6f, 0.6f, 0.1f, 0.6f}, {1, 1, 0, 0, 1}), 4.0 / 6.0);
  // Scores may be logits (any finite reals) and the order of rows does not matter.
  EXPECT_DOUBLE_EQ(roc_auc({3.f, -2.f, 0.f, 0.f, -7.f}, {1, 0, 1, 0, 0}),
                   // positives {3, 0} vs negatives {-2, 0, -7}: 3 -> 3; 0 -> 1 + 0.5 + 1. 5.5/6
                   5.5 / 6.0);
}

TEST(RocAuc, OneClassAbsentIsNaN) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.7f}, {1, 1})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1f, 0.7f}, {0, 0})));
  EXPECT_TRUE(std::isnan(roc_auc(std::vector<float>{}, std::vector<float>{})));
}

TEST(RocAuc, MatchesBruteForceOnRandomDataWithManyTies) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 50 + 37 * trial;
    const int levels = 1 + trial % 7;  // as few as one distinct score: ties everywhere
    std::uniform_int_distribution<int> level(0, levels - 1);
    std::bernoulli_distribution coin(0.2 + 0.03 * trial);
    std::vector<float> s(n), y(n);
    for (int i = 0; i < n; ++i) {
      y[i] = coin(rng) ? 1.f : 0.f;
      // Scores correlated with the label, so the AUC is not always near 0.5.
      s[i] = static_cast<float>(level(rng) + (y[i] == 1.f && coin(rng) ? 1 : 0)) / 8.f;
    }
    y[0] = 1.f;  // both classes present
    y[1] = 0.f;
    EXPECT_NEAR(roc_auc(s, y), brute_force_auc(s, y), 1e-12) << "trial " << trial;
  }
}

TEST(RocAuc, RejectsBadInput) {
  EXPECT_THROW(roc_auc({0.1f, 0.2f}, {0.f, 0.3f}), Error);       // soft label
  EXPECT_THROW(roc_auc({0.1f, NAN}, {0.f, 1.f}), Error);         // NaN score
  EXPECT_THROW(roc_auc({0.1f, 0.2f, 0.3f}, {0.f, 1.f}), Error);  // size mismatch
  try {
    roc_auc({0.1f, 0.2f, 0.3f}, {0.f, 1.f, 2.f});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("label[2]"), std::string::npos) << e.what();
  }
}

// Six scores with ties, P = N = 3 (label in brackets): 0.9 [1], 0.8 [1], 0.8 [0], 0.5 [1],
// 0.3 [0], 0.3 [0]. From the top: 0.9 adds a positive -> (0, 1/3); the 0.8 tie adds one of each
// -> (1/3, 2/3), a diagonal step; 0.5 -> (1/3, 1); the 0.3 tie -> (1, 1). Trapezoids:
// 0 + 1/3 * (1/3 + 2/3) / 2 + 0 + 2/3 * (1 + 1) / 2 = 1/6 + 2/3 = 5/6, and Mann-Whitney agrees:
// (3 + 2.5 + 2) / 9 = 5/6.
TEST(RocCurve, HandComputedStepsWithTies) {
  const std::vector<float> s = {0.3f, 0.8f, 0.9f, 0.3f, 0.5f, 0.8f};
  const std::vector<float> y = {0.f, 0.f, 1.f, 0.f, 1.f, 1.f};
  const std::vector<RocPoint> c = roc_curve(s.data(), y.data(), s.size());
  const std::vector<std::pair<double, double>> want = {
      {0, 0}, {0, 1.0 / 3}, {1.0 / 3, 2.0 / 3}, {1.0 / 3, 1}, {1, 1}};
  ASSERT_EQ(c.size(), want.size());
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_DOUBLE_EQ(c[i].fpr, want[i].first) << i;
    EXPECT_DOUBLE_EQ(c[i].tpr, want[i].second) << i;
  }
  EXPECT_NEAR(trapezoid_area(c), 5.0 / 6, 1e-15);
  EXPECT_NEAR(roc_auc(s, y), 5.0 / 6, 1e-15);
  // One class absent: no curve, as AUC is NaN; a curve of one point has no area.
  const std::vector<float> ones = {1.f, 1.f};
  EXPECT_TRUE(roc_curve(s.data(), ones.data(), 2).empty());
  EXPECT_EQ(trapezoid_area({{0, 0}}), 0.0);
  EXPECT_THROW(roc_curve(s.data(), y.data(), s.size(), 1), Error);
}

// The exact curve's area is the AUC on random data with heavy ties (scores on a grid of 21
// values, so most thresholds hold both classes).
TEST(RocCurve, UnthinnedAreaEqualsAucOnRandomData) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> grid(0, 20);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<float> s(1500), y(1500);
    for (size_t i = 0; i < s.size(); ++i) {
      y[i] = u(rng) < 0.3f ? 1.f : 0.f;
      s[i] = static_cast<float>(grid(rng) + (y[i] == 1.f ? 4 : 0)) / 24.f;
    }
    const std::vector<RocPoint> c = roc_curve(s.data(), y.data(), s.size(), s.size() + 1);
    EXPECT_LE(c.size(), 26u);  // at most 25 distinct scores, plus (0, 0)
    EXPECT_NEAR(trapezoid_area(c), roc_auc(s, y), 1e-12);
    EXPECT_NEAR(trapezoid_area(c), brute_force_auc(s, y), 1e-12);
  }
}

// 3000 distinct scores give 3001 exact steps: thinned to 100 points taken from those steps,
// (0,0) first and (1,1) last, monotone, with an area within 0.002 of the AUC.
TEST(RocCurve, ThinnedToMaxPointsKeepsEndsAndArea) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> s(3000), y(3000);
  for (size_t i = 0; i < s.size(); ++i) {
    y[i] = i % 2 ? 1.f : 0.f;
    s[i] = g(rng) + (y[i] == 1.f ? 1.f : 0.f);
  }
  const std::vector<RocPoint> full = roc_curve(s.data(), y.data(), s.size(), s.size() + 1);
  ASSERT_EQ(full.size(), 3001u);
  const std::vector<RocPoint> c = roc_curve(s.data(), y.data(), s.size());
  ASSERT_EQ(c.size(), kRocMaxPoints);
  EXPECT_EQ(c.front().fpr, 0.0);
  EXPECT_EQ(c.front().tpr, 0.0);
  EXPECT_EQ(c.back().fpr, 1.0);
  EXPECT_EQ(c.back().tpr, 1.0);
  size_t at = 0;  // each thinned point is one of the exact steps, in order
  for (const RocPoint& p : c) {
    while (at < full.size() && (full[at].fpr != p.fpr || full[at].tpr != p.tpr)) ++at;
    EXPECT_LT(at, full.size()) << "(" << p.fpr << ", " << p.tpr << ") is not an exact step";
  }
  const double auc = roc_auc(s, y);
  EXPECT_NEAR(trapezoid_area(full), auc, 1e-12);
  EXPECT_NEAR(trapezoid_area(c), auc, 0.002);
  EXPECT_GT(auc, 0.7);
  // Through BinaryMetrics: the same curve for the same rows (scores as probabilities).
  std::vector<float> p(s.size());
  for (size_t i = 0; i < s.size(); ++i) p[i] = 1.f / (1.f + std::exp(-s[i]));
  BinaryMetrics m;
  m.add(p.data(), y.data(), p.size());
  const BinaryReport r = m.compute_with_roc();
  ASSERT_EQ(r.roc.size(), kRocMaxPoints);
  EXPECT_NEAR(trapezoid_area(r.roc), r.auc, 0.002);
  EXPECT_TRUE(m.compute().roc.empty());
}

// The reliability plot of the BinsAndEce case below: bins 0, 1 and 9 hold rows.
TEST(Calibration, ReliabilityPointsAreTheNonEmptyBins) {
  const std::vector<float> p = {0.05f, 0.15f, 0.15f, 0.95f}, y = {0.f, 1.f, 0.f, 1.f};
  const std::vector<ReliabilityPoint> r =
      reliability_points(calibration(p.data(), y.data(), p.size()));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_NEAR(r[0].mean_predicted, 0.05, 1e-7);
  EXPECT_EQ(r[0].observed_rate, 0.0);
  EXPECT_EQ(r[0].count, 1);
  EXPECT_NEAR(r[1].mean_predicted, 0.15, 1e-7);
  EXPECT_EQ(r[1].observed_rate, 0.5);
  EXPECT_EQ(r[1].count, 2);
  EXPECT_NEAR(r[2].mean_predicted, 0.95, 1e-7);
  EXPECT_EQ(r[2].observed_rate, 1.0);
  EXPECT_EQ(r[2].count, 1);
  EXPECT_TRUE(reliability_points(calibration(p.data(), y.data(), 0)).empty());
}

TEST(Logloss, KnownValues) {
  EXPECT_NEAR(logloss({0.5f}, {1.f}), std::log(2.0), 1e-12);
  EXPECT_NEAR(logloss({0.5f, 0.5f}, {1.f, 0.f}), std::log(2.0), 1e-12);
  // -(ln 0.9 + ln 0.8) / 2 (the 0.2 prediction on a negative costs -ln(1 - 0.2)).
  EXPECT_NEAR(logloss({0.9f, 0.2f}, {1.f, 0.f}), -(std::log(0.9) + std::log(0.8)) / 2, 1e-7);
  // Clipping: a confident wrong answer costs -ln(1e-7), not infinity.
  EXPECT_NEAR(logloss({0.f}, {1.f}), -std::log(1e-7), 1e-9);
  EXPECT_NEAR(logloss({1.f}, {0.f}), -std::log(1e-7), 1e-6);
  // A confident right answer costs about eps.
  EXPECT_NEAR(logloss({1.f}, {1.f}), 1e-7, 1e-12);
  EXPECT_TRUE(std::isnan(logloss(std::vector<float>{}, std::vector<float>{})));
  EXPECT_THROW(logloss({1.2f}, {1.f}), Error);  // not a probability
}

TEST(BinaryAccuracy, ThresholdIsInclusive) {
  // 0.5 predicts positive (right), 0.49 negative (wrong), 0.7 positive (wrong), 0.1 negative.
  EXPECT_DOUBLE_EQ(binary_accuracy({0.5f, 0.49f, 0.7f, 0.1f}, {1.f, 1.f, 0.f, 0.f}), 0.5);
}

TEST(Calibration, BinsAndEce) {
  // Bin 0: {0.05 | y 0} gap 0.05; bin 1: {0.15, 0.15 | y 1, 0} mean 0.15 vs 0.5 gap 0.35 (x2);
  // bin 9: {0.95 | y 1} gap 0.05. ECE = (0.05 + 0.7 + 0.05) / 4 = 0.2.
  const std::vector<float> p = {0.05f, 0.15f, 0.15f, 0.95f}, y = {0.f, 1.f, 0.f, 1.f};
  Calibration c = calibration(p.data(), y.data(), p.size());
  EXPECT_NEAR(c.ece, 0.2, 1e-7);
  EXPECT_NEAR(c.mean_predicted, 0.325, 1e-7);
  EXPECT_DOUBLE_EQ(c.observed_rate, 0.5);
  ASSERT_EQ(c.bins.size(), 10u);
  EXPECT_EQ(c.bins[1].count, 2);
  EXPECT_DOUBLE_EQ(c.bins[1].observed_rate, 0.5);
  EXPECT_EQ(c.bins[5].count, 0);
  // p = 1 belongs to the last bin.
  const std::vector<float> one = {1.f};
  const std::vector<float> pos = {1.f};
  EXPECT_EQ(calibration(one.data(), pos.data(), 1).bins[9].count, 1);
  // Perfectly calibrated constant predictor: ECE 0.
  const std::vector<float> q = {0.25f, 0.25f, 0.25f, 0.25f}, z = {1.f, 0.f, 0.f, 0.f};
  EXPECT_NEAR(calibration(q.data(), z.data(), 4).ece, 0.0, 1e-12);
}

TEST(BinaryMetrics, StreamingEqualsOneShot) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> p(1000), y(1000);
  for (size_t i = 0; i < p.size(); ++i) {
    y[i] = u(rng) < 0.3f ? 1.f : 0.f;
    p[i] = std::round(std::min(1.f, u(rng) * 0.7f + 0.3f * y[i]) * 20.f) / 20.f;  // ties
  }
  BinaryMetrics m;
  for (size_t b = 0; b < p.size(); b += 256) {
    const size_t n = std::min<size_t>(256, p.size() - b);
    Tensor pt = Tensor::host_from<float>({static_cast<int64_t>(n), 1},
                                         std::vector<float>(p.begin() + b, p.begin() + b + n));
    Tensor yt = Tensor::host_from<float>({static_cast<int64_t>(n)},
                                         std::vector<float>(y.begin() + b, y.begin() + b + n));
    m.add(pt, yt);
  }
  BinaryReport r = m.compute();
  EXPECT_EQ(r.count, 1000);
  int64_t positives = 0;
  for (float v : y) positives += v == 1.f;
  EXPECT_EQ(r.positives, positives);
  EXPECT_DOUBLE_EQ(r.auc, roc_auc(p, y));
  EXPECT_NEAR(r.auc, brute_force_auc(p, y), 1e-12);
  EXPECT_DOUBLE_EQ(r.logloss, logloss(p, y));
  EXPECT_DOUBLE_EQ(r.accuracy, binary_accuracy(p, y));
  EXPECT_GT(r.auc, 0.6);  // the scores carry signal
  const std::string json = to_json(r);
  EXPECT_NE(json.find("\"auc\":"), std::string::npos) << json;
  EXPECT_NE(json.find("\"count\":1000"), std::string::npos) << json;
}

TEST(BinaryMetrics, BadBatchLeavesStateUntouchedAndNaNIsNull) {
  BinaryMetrics m;
  const std::vector<float> p = {0.2f, 0.9f}, y = {1.f, 1.f};
  m.add(p.data(), y.data(), 2);
  const std::vector<float> bad = {0.5f, 1.5f};
  EXPECT_THROW(m.add(bad.data(), y.data(), 2), Error);
  EXPECT_EQ(m.size(), 2u);
  BinaryReport r = m.compute();  // only positives: AUC undefined
  EXPECT_TRUE(std::isnan(r.auc));
  EXPECT_NE(to_json(r).find("\"auc\":null"), std::string::npos) << to_json(r);
  Tensor wide = Tensor::host({2, 3});
  Tensor lab = Tensor::host({2});
  EXPECT_THROW(m.add(wide, lab), Error);  // [N, 3] is not a column of scores
}

TEST(Multiclass, ConfusionAccuracyAndF1) {
  // true: 0 1 1 2 2 0; pred: 0 1 2 2 1 0.
  //   rows (true) x cols (pred): [[2,0,0],[0,1,1],[0,1,1]]
  //   accuracy 4/6; per-class recall 1, 1/2, 1/2;
  //   F1: class 0 2*2/(4+0+0) = 1; class 1 2/(2+1+1) = 1/2; class 2 likewise 1/2; macro 2/3.
  const std::vector<int32_t> pred = {0, 1, 2, 2, 1, 0}, lab = {0, 1, 1, 2, 2, 0};
  ConfusionMatrix cm = confusion_matrix(pred, lab, 3);
  EXPECT_EQ(cm.total(), 6);
  EXPECT_EQ(cm.at(0, 0), 2);
  EXPECT_EQ(cm.at(1, 2), 1);
  EXPECT_EQ(cm.at(2, 1), 1);
  EXPECT_EQ(cm.at(0, 1), 0);
  EXPECT_DOUBLE_EQ(cm.accuracy(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(multiclass_accuracy(pred, lab), 4.0 / 6.0);
  const std::vector<double> recall = cm.per_class_accuracy();
  EXPECT_DOUBLE_EQ(recall[0], 1.0);
  EXPECT_DOUBLE_EQ(recall[1], 0.5);
  EXPECT_DOUBLE_EQ(recall[2], 0.5);
  EXPECT_DOUBLE_EQ(cm.macro_f1(), 2.0 / 3.0);
  EXPECT_EQ(cm.to_json(),
            "{\"accuracy\":0.6666666667,\"macro_f1\":0.6666666667,"
            "\"per_class_accuracy\":[1,0.5,0.5],\"matrix\":[[2,0,0],[0,1,1],[0,1,1]]}");

  // A fourth class that never occurs and is never predicted is left out of the macro average
  // and has NaN recall / F1.
  ConfusionMatrix cm4 = confusion_matrix(pred, lab, 4);
  EXPECT_DOUBLE_EQ(cm4.macro_f1(), 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(cm4.per_class_accuracy()[3]));
  EXPECT_TRUE(std::isnan(cm4.per_class_f1()[3]));
}

TEST(Multiclass, PredictedButAbsentClassCountsAsZeroF1) {
  // true 0 0; pred 0 1. Class 0: tp 1, fn 1 -> F1 2/3. Class 1: fp 1, tp 0 -> F1 0.
  // Macro = 1/3 (sklearn's f1_score(average='macro') gives the same).
  EXPECT_DOUBLE_EQ(macro_f1({0, 1}, {0, 0}, 2), 1.0 / 3.0);
  // Binary case as a check on the formula: true 1 1 0 0 1, pred 1 0 0 1 1:
  //   class 1: tp 2, fp 1, fn 1 -> 4/6; class 0: tp 1, fp 1, fn 1 -> 2/4. Macro 7/12.
  EXPECT_DOUBLE_EQ(macro_f1({1, 0, 0, 1, 1}, {1, 1, 0, 0, 1}, 2), 7.0 / 12.0);
}

TEST(Multiclass, ArgmaxLogitsAndBadLabels) {
  // Rows: argmax 2, 0 (first max wins on the tie), 1.
  Tensor logits =
      Tensor::host_from<float>({3, 3}, {0.1f, 0.2f, 0.9f, 5.f, 5.f, -1.f, 0.f, 1.f, 0.f});
  EXPECT_EQ(argmax_rows(logits), (std::vector<int32_t>{2, 0, 1}));
  ConfusionMatrix cm(3);
  cm.add_logits(logits, Tensor::host_from<int32_t>({3}, {2, 1, 1}));
  EXPECT_EQ(cm.at(2, 2), 1);
  EXPECT_EQ(cm.at(1, 0), 1);
  EXPECT_EQ(cm.at(1, 1), 1);
  EXPECT_DOUBLE_EQ(cm.accuracy(), 2.0 / 3.0);
  // Out-of-range label: Data error naming the position, and nothing is counted.
  try {
    cm.add({0, 1}, {0, 3});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("label[1] = 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cm.total(), 3);
  EXPECT_THROW(cm.add({-1}, {0}), Error);
  EXPECT_TRUE(std::isnan(ConfusionMatrix(2).accuracy()));
}

}  // namespace
}  // namespace tessera

// ---- BinaryMetrics in 4 bytes a row (issue 18) ------------------------------------------------
namespace tessera {
namespace {

// O(#distinct * n) definition of the exact ROC curve: for each distinct score t from the highest
// down, the fractions of negatives and positives scored >= t; (0, 0) first.
std::vector<RocPoint> brute_force_roc(const std::vector<float>& s, const std::vector<float>& y) {
  std::vector<float> thresholds(s);
  std::sort(thresholds.begin(), thresholds.end(), std::greater<float>());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  double P = 0, N = 0;
  for (float v : y) (v == 1.f ? P : N) += 1;
  std::vector<RocPoint> curve = {{0, 0}};
  for (float t : thresholds) {
    double tp = 0, fp = 0;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] >= t) (y[i] == 1.f ? tp : fp) += 1;
    curve.push_back({fp / N, tp / P});
  }
  return curve;
}

// Rows with few distinct probabilities (many ties, within and across classes).
void tied_rows(std::mt19937& rng, size_t n, int levels, std::vector<float>& p,
               std::vector<float>& y) {
  std::uniform_int_distribution<int> level(0, levels);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  p.resize(n);
  y.resize(n);
  for (size_t i = 0; i < n; ++i) {
    y[i] = u(rng) < 0.35f ? 1.f : 0.f;
    // Positives lean high so the AUC is far from 0.5 and from 1.
    const int l = std::min(levels, level(rng) + (y[i] == 1.f ? levels / 4 : 0));
    p[i] = static_cast<float>(l) / static_cast<float>(levels);
  }
}

TEST(BinaryMetricsSplit, AucAndRocEqualBruteForceMannWhitneyWithManyTies) {
  std::mt19937 rng(99);
  for (int levels : {1, 3, 10, 1000}) {
    std::vector<float> p, y;
    tied_rows(rng, 2500, levels, p, y);
    BinaryMetrics m;
    for (size_t b = 0; b < p.size(); b += 300)  // uneven batches
      m.add(p.data() + b, y.data() + b, std::min<size_t>(300, p.size() - b));
    const BinaryReport r = m.compute_with_roc(/*max_points=*/100000);
    EXPECT_NEAR(r.auc, brute_force_auc(p, y), 1e-12 * brute_force_auc(p, y)) << levels;
    const std::vector<RocPoint> want = brute_force_roc(p, y);
    ASSERT_EQ(r.roc.size(), want.size()) << levels;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(r.roc[i].fpr, want[i].fpr) << levels << " point " << i;
      EXPECT_EQ(r.roc[i].tpr, want[i].tpr) << levels << " point " << i;
    }
    EXPECT_NEAR(trapezoid_area(r.roc), r.auc, 1e-12);
  }
}

// Logloss, accuracy, counts and calibration are summed as rows arrive, in the same order and with
// the same expressions as the one-shot functions: equal to the bit, not merely close.
TEST(BinaryMetricsSplit, StreamedSumsEqualOneShotToTheBit) {
  std::mt19937 rng(5);
  std::vector<float> p, y;
  tied_rows(rng, 20000, 997, p, y);
  p[3] = 0.f;
  p[4] = 1.f;  // the clipping and the last bin's edge
  BinaryMetrics m;
  for (size_t b = 0; b < p.size(); b += 4096)
    m.add(p.data() + b, y.data() + b, std::min<size_t>(4096, p.size() - b));
  const BinaryReport r = m.compute();
  EXPECT_EQ(r.logloss, logloss(p, y));
  EXPECT_EQ(r.accuracy, binary_accuracy(p, y));
  EXPECT_EQ(r.auc, roc_auc(p, y));
  const Calibration c = calibration(p.data(), y.data(), p.size());
  EXPECT_EQ(r.calibration.mean_predicted, c.mean_predicted);
  EXPECT_EQ(r.calibration.observed_rate, c.observed_rate);
  EXPECT_EQ(r.calibration.ece, c.ece);
  ASSERT_EQ(r.calibration.bins.size(), c.bins.size());
  for (size_t b = 0; b < c.bins.size(); ++b) {
    EXPECT_EQ(r.calibration.bins[b].count, c.bins[b].count);
    EXPECT_EQ(r.calibration.bins[b].mean_predicted, c.bins[b].mean_predicted);
    EXPECT_EQ(r.calibration.bins[b].observed_rate, c.bins[b].observed_rate);
  }
  // compute() again, after the sort and after more rows: still the multiset's figures.
  EXPECT_EQ(m.compute().auc, r.auc);
  m.add(p.data(), y.data(), 10);
  std::vector<float> p2(p), y2(y);
  p2.insert(p2.end(), p.begin(), p.begin() + 10);
  y2.insert(y2.end(), y.begin(), y.begin() + 10);
  EXPECT_EQ(m.compute().auc, roc_auc(p2, y2));
}

// The per-row byte figure: the scores' blocks never exceed 4 bytes a row plus one partly filled
// block per label, at every size (no doubling growth).
TEST(BinaryMetricsSplit, ScoresTakeFourBytesARowPlusOneBlockPerLabel) {
  const size_t block_bytes = ChunkedFloats::kBlockFloats * sizeof(float);
  std::mt19937 rng(11);
  std::vector<float> p, y;
  tied_rows(rng, 3 * ChunkedFloats::kBlockFloats + 123, 50, p, y);
  BinaryMetrics m;
  for (size_t b = 0; b < p.size(); b += 7777) {
    m.add(p.data() + b, y.data() + b, std::min<size_t>(7777, p.size() - b));
    for (Label l : {Label::Positive, Label::Negative})
      EXPECT_LE(m.scores(l).capacity_bytes(), m.scores(l).size() * 4 + block_bytes);
    EXPECT_LE(m.score_bytes(), m.size() * 4 + 2 * block_bytes);
  }
  EXPECT_EQ(m.size(), p.size());
  // Across several blocks: the in-place sort over blocks gives brute force's pair count.
  EXPECT_EQ(m.compute().auc, roc_auc(p, y));
  m.clear();
  EXPECT_EQ(m.score_bytes(), 0u);
}

TEST(BinaryMetricsSplit, ChunkedSortMatchesStdSortAcrossBlocks) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-5.f, 5.f);
  std::vector<float> v(2 * ChunkedFloats::kBlockFloats + 1000);
  for (float& x : v) x = std::round(u(rng) * 100.f) / 100.f;
  ChunkedFloats c;
  c.append(v.data(), 5);
  c.append(v.data() + 5, v.size() - 5);
  c.sort();
  std::sort(v.begin(), v.end());
  std::vector<float> back(v.size());
  c.copy_out(0, back.size(), back.data());
  EXPECT_EQ(back, v);
  EXPECT_THROW(c.copy_out(v.size() - 1, 2, back.data()), Error);
}

// Distributed scoring's merge: rows scored in three parts, each part's sums and scores merged
// into the first (as gather_scores does between ranks): AUC exactly that of one stream, counts
// equal, logloss within 1e-12 relative (partial sums are added in another order).
TEST(BinaryMetricsSplit, MergedPartsGiveOneStreamsFigures) {
  std::mt19937 rng(17);
  std::vector<float> p, y;
  tied_rows(rng, 9000, 200, p, y);
  BinaryMetrics one, parts[3];
  one.add(p.data(), y.data(), p.size());
  for (int k = 0; k < 3; ++k) parts[k].add(p.data() + 3000 * k, y.data() + 3000 * k, 3000);
  for (int k = 1; k < 3; ++k) {
    parts[0].merge_sums(BinarySums::from_doubles(parts[k].sums().to_doubles()));
    for (Label l : {Label::Positive, Label::Negative}) {
      std::vector<float> s(parts[k].scores(l).size());
      parts[k].scores(l).copy_out(0, s.size(), s.data());
      parts[0].merge_scores(l, s.data(), s.size());
    }
  }
  const BinaryReport a = one.compute_with_roc(), b = parts[0].compute_with_roc();
  EXPECT_EQ(b.count, a.count);
  EXPECT_EQ(b.positives, a.positives);
  EXPECT_EQ(b.auc, a.auc);
  EXPECT_EQ(b.accuracy, a.accuracy);
  EXPECT_NEAR(b.logloss, a.logloss, 1e-12 * a.logloss);
  EXPECT_NEAR(b.calibration.ece, a.calibration.ece, 1e-12);
  ASSERT_EQ(b.roc.size(), a.roc.size());
  for (size_t i = 0; i < a.roc.size(); ++i) EXPECT_EQ(b.roc[i].tpr, a.roc[i].tpr);
  // Sums merged without their scores: compute() refuses rather than report a wrong AUC.
  BinaryMetrics half;
  half.merge_sums(one.sums());
  EXPECT_THROW(half.compute(), Error);
}

}  // namespace
}  // namespace tessera
