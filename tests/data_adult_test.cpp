// The real UCI Adult files, found through the dataset registry: parse, fit on adult.data, encode
// adult.test (first line skipped, labels ending in '.'), and the load-time budget.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/registry.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

TableSchema adult_schema() {
  TableSchema s;
  s.delimiter = ',';
  s.trim = true;
  s.missing_tokens = {"?", ""};
  auto num = [](const char* n, NumericTransform t = NumericTransform::None) {
    return ColumnSpec{n, ColumnType::Numeric, t, {}, {}};
  };
  auto cat = [](const char* n) {
    return ColumnSpec{n, ColumnType::Categorical, NumericTransform::None, {}, {}};
  };
  s.columns = {num("age"),
               cat("workclass"),
               num("fnlwgt"),
               cat("education"),
               num("education-num"),
               cat("marital-status"),
               cat("occupation"),
               cat("relationship"),
               cat("race"),
               cat("sex"),
               num("capital-gain", NumericTransform::Log1p),
               num("capital-loss", NumericTransform::Log1p),
               num("hours-per-week"),
               cat("native-country"),
               ColumnSpec{"income",
                          ColumnType::Label,
                          NumericTransform::None,
                          {">50K", ">50K."},
                          {"<=50K", "<=50K."}}};
  return s;
}

class Adult : public ::testing::Test {
 protected:
  void SetUp() override {
    // The registry also looks relative to the source tree; ctest sets this, a direct run may not.
    ::setenv("TESSERA_SOURCE_DIR", TESSERA_SOURCE_DIR, 0);
    ResolveOptions o;
    o.download = DownloadPolicy::Never;
    train_ = resolve_dataset_file("uci-adult", "adult.data", o);
    test_ = resolve_dataset_file("uci-adult", "adult.test", o);
  }
  std::string train_, test_;
};

TEST_F(Adult, FitOnTrainEncodeTest) {
  const auto t0 = std::chrono::steady_clock::now();
  Preprocessor p = fit_preprocessor(FileSpec{train_, 0}, adult_schema(), PreprocessOptions{});
  LoadReport train_report, test_report;
  EncodedTable train = load_table(FileSpec{train_, 0}, p, LoadOptions{}, &train_report);
  EncodedTable test = load_table(FileSpec{test_, 1}, p, LoadOptions{}, &test_report);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  EXPECT_EQ(p.train_rows(), 32561);
  ASSERT_EQ(train.rows, 32561);
  ASSERT_EQ(test.rows, 16281);
  EXPECT_EQ(train.n_dense, 6);
  EXPECT_EQ(train.n_cat, 8);
  EXPECT_EQ(train.dense.size(), 32561u * 6);
  EXPECT_EQ(train.cat.size(), 32561u * 8);
  EXPECT_EQ(test.lines.front(), 2);  // after "|1x3 Cross validator"
  EXPECT_EQ(test.lines.back(), 16282);
  double pos_train = 0, pos_test = 0;
  for (float y : train.labels) pos_train += y;
  for (float y : test.labels) pos_test += y;
  EXPECT_EQ(pos_train, 7841);  // ">50K"
  EXPECT_EQ(pos_test, 3846);   // ">50K."

  // '?' is the missing token: workclass 1836, occupation 1843, native-country 583 on train.
  const auto& cats = p.categorical_columns();
  EXPECT_EQ(cats[0].name, "workclass");
  EXPECT_EQ(cats[0].counts[cats[0].local_row(kMissingCategory) - 1], 1836);
  EXPECT_EQ(cats[3].counts[cats[3].local_row(kMissingCategory) - 1], 1843);
  EXPECT_EQ(cats[7].counts[cats[7].local_row(kMissingCategory) - 1], 583);
  EXPECT_EQ(cats[6].name, "sex");
  EXPECT_EQ(cats[6].local_row("Male"), 1);  // most frequent first
  EXPECT_EQ(cats[6].local_row("Female"), 2);
  // Standardised on train: mean 0, variance 1 per dense column.
  for (int64_t c = 0; c < train.n_dense; ++c) {
    double s = 0, s2 = 0;
    for (int64_t r = 0; r < train.rows; ++r) {
      const double v = train.dense[r * train.n_dense + c];
      s += v;
      s2 += v * v;
    }
    EXPECT_NEAR(s / train.rows, 0.0, 1e-4) << c;
    EXPECT_NEAR(s2 / train.rows, 1.0, 1e-3) << c;
  }
  // Every encoded id lies in the flat table; categories unseen on train would go to OOV rows.
  EXPECT_EQ(test_report.encode.rows, 16281);
  EXPECT_EQ(test_report.bad_rows.skipped, 0);
  for (int64_t id : test.cat) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, p.total_embedding_rows());
  }
  EXPECT_LT(seconds, 1.0) << "fit + load of uci-adult took " << seconds << " s";
  std::printf("uci-adult fit+load train+test: %.3f s; embedding rows %lld; test OOV: %s\n", seconds,
              static_cast<long long>(p.total_embedding_rows()),
              p.oov_summary(test_report.encode).c_str());
}

TEST_F(Adult, TestFileWithoutSkipLinesIsABadRow) {
  Preprocessor p = fit_preprocessor(FileSpec{train_, 0}, adult_schema(), PreprocessOptions{});
  try {
    load_table(FileSpec{test_, 0}, p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), test_ + ":1: expected 15 fields, got 1");
  }
}

TEST_F(Adult, TrainValidationSplitFitsOnTrainPartOnly) {
  TrainValidation tv =
      load_train_validation(FileSpec{train_, 0}, adult_schema(), PreprocessOptions{}, 0.2, 7);
  EXPECT_EQ(tv.train.rows + tv.validation.rows, 32561);
  EXPECT_NEAR(tv.validation.rows, 0.2 * 32561, 4 * std::sqrt(32561 * 0.2 * 0.8));
  EXPECT_EQ(tv.preprocessor.train_rows(), tv.train.rows);
  // Train rows and validation rows are disjoint lines of the file.
  std::vector<char> seen(32563, 0);
  for (int64_t l : tv.train.lines) seen[l] += 1;
  for (int64_t l : tv.validation.lines) seen[l] += 1;
  int64_t once = 0;
  for (char c : seen) {
    ASSERT_LE(c, 1);
    once += c;
  }
  EXPECT_EQ(once, 32561);
  // The dense columns are standardised on the train part: mean ~0 there, not exactly 0 on val.
  double s = 0;
  for (int64_t r = 0; r < tv.train.rows; ++r) s += tv.train.dense[r * tv.train.n_dense];
  EXPECT_NEAR(s / tv.train.rows, 0.0, 1e-4);
  // Deterministic in the seed.
  TrainValidation again =
      load_train_validation(FileSpec{train_, 0}, adult_schema(), PreprocessOptions{}, 0.2, 7);
  EXPECT_EQ(again.validation.lines, tv.validation.lines);
  EXPECT_EQ(again.preprocessor.to_json_string(), tv.preprocessor.to_json_string());
}

}  // namespace
}  // namespace tessera
