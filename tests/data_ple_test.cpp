// Piecewise-linear encoding of numeric columns: bin edges fitted on train (quantiles of the values
// or of their distinct values), the expanded dense layout, imputation, and the JSON round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/preprocessor.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

TableSchema schema2() {
  TableSchema s;
  s.columns = {{"x", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"c", ColumnType::Categorical, NumericTransform::None, {}, {}},
               {"y", ColumnType::Label, NumericTransform::None, {}, {}}};
  return s;
}

// x = 0 for 90 rows, then 1..10: a spiky column like capital gains.
std::string spiky_csv() {
  std::ostringstream o;
  for (int i = 0; i < 90; ++i) o << "0,a,0\n";
  for (int i = 1; i <= 10; ++i) o << i << ",b,1\n";
  return o.str();
}

Preprocessor fit(const std::string& path, int bins, BinEdges edges) {
  PreprocessOptions o;
  o.numeric.bins = bins;
  o.numeric.bin_edges = edges;
  FileSpec f;
  f.path = path;
  return fit_preprocessor(f, schema2(), o);
}

TEST(PiecewiseLinear, DistinctQuantilesKeepResolutionOnSpikyColumns) {
  testing::TempDir dir;
  const std::string p = testing::write_file(dir.file("spiky.csv"), spiky_csv());
  Preprocessor plain = fit(p, 5, BinEdges::Quantile);
  Preprocessor distinct = fit(p, 5, BinEdges::DistinctQuantile);
  // Quantiles of the values: 90% zeros collapse most edges onto 0.
  const auto& qe = plain.numeric_columns()[0].edges;
  ASSERT_GE(qe.size(), 2u);
  EXPECT_EQ(qe.front(), 0.f);
  EXPECT_LT(qe.size(), 6u);
  // Quantiles of the 11 distinct values 0..10: 0, 2, 4, 6, 8, 10.
  const auto& de = distinct.numeric_columns()[0].edges;
  ASSERT_EQ(de, (std::vector<float>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(distinct.n_dense(), 1 + 5);
  EXPECT_EQ(plain.n_dense(), static_cast<int64_t>(1 + qe.size() - 1));
}

TEST(PiecewiseLinear, EncodesZeroBelowOneAboveAndLinearInside) {
  testing::TempDir dir;
  const std::string p = testing::write_file(dir.file("spiky.csv"), spiky_csv());
  Preprocessor pre = fit(p, 5, BinEdges::DistinctQuantile);  // edges 0,2,4,6,8,10
  const NumericColumnModel& m = pre.numeric_columns()[0];
  std::vector<float> out(6);
  m.encode_into(5.0, out.data());
  EXPECT_FLOAT_EQ(out[0], m.encode(5.0));
  EXPECT_EQ((std::vector<float>(out.begin() + 1, out.end())),
            (std::vector<float>{1, 1, 0.5f, 0, 0}));
  m.encode_into(-3.0, out.data());
  EXPECT_EQ((std::vector<float>(out.begin() + 1, out.end())), (std::vector<float>{0, 0, 0, 0, 0}));
  m.encode_into(100.0, out.data());
  EXPECT_EQ((std::vector<float>(out.begin() + 1, out.end())), (std::vector<float>{1, 1, 1, 1, 1}));
  // Missing: imputed with the train mean (0.55) before binning, like the scalar feature.
  m.encode_into(std::numeric_limits<double>::quiet_NaN(), out.data());
  EXPECT_NEAR(out[1], 0.55f / 2, 1e-6);
  EXPECT_EQ(out[2], 0.f);
}

TEST(PiecewiseLinear, TablesCarryTheWidenedRowsAndTheJsonRoundTrips) {
  testing::TempDir dir;
  const std::string p = testing::write_file(dir.file("spiky.csv"), spiky_csv());
  Preprocessor pre = fit(p, 5, BinEdges::DistinctQuantile);
  FileSpec f;
  f.path = p;
  EncodedTable t = load_table(f, pre);
  EXPECT_EQ(t.n_dense, 6);
  ASSERT_EQ(t.dense.size(), 100u * 6);
  // Row 94 (0-based) has x = 5.
  EXPECT_EQ((std::vector<float>(t.dense.begin() + 94 * 6 + 1, t.dense.begin() + 95 * 6)),
            (std::vector<float>{1, 1, 0.5f, 0, 0}));
  Preprocessor back = Preprocessor::from_json_string(pre.to_json_string());
  EXPECT_EQ(back.numeric_columns()[0].edges, pre.numeric_columns()[0].edges);
  EXPECT_EQ(back.n_dense(), 6);
  EncodedTable t2 = load_table(f, back);
  EXPECT_EQ(t2.dense, t.dense);
}

TEST(PiecewiseLinear, ConstantColumnsEncodeNoBins) {
  testing::TempDir dir;
  const std::string p = testing::write_file(dir.file("const.csv"), "3,a,0\n3,b,1\n3,a,1\n");
  Preprocessor pre = fit(p, 8, BinEdges::DistinctQuantile);
  EXPECT_TRUE(pre.numeric_columns()[0].edges.empty());
  EXPECT_EQ(pre.n_dense(), 1);
}

TEST(PiecewiseLinear, BinsOutOfRangeAreAConfigError) {
  testing::TempDir dir;
  const std::string p = testing::write_file(dir.file("x.csv"), "1,a,0\n");
  EXPECT_THROW(fit(p, -1, BinEdges::Quantile), Error);
  EXPECT_THROW(fit(p, 5000, BinEdges::Quantile), Error);
}

}  // namespace
}  // namespace tessera
