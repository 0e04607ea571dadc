// libSVM / libFM sparse text into CSR, densify, and its errors.
#include <gtest/gtest.h>

#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(LibSvm, ParsesIntoCsr) {
  TempDir dir;
  const std::string p = write_file(dir.file("a.svm"),
                                   "+1 1:0.5 3:2\n"
                                   "-1 2:1e-3\t5:-4  # a comment\r\n"
                                   "\n"
                                   "# only a comment\n"
                                   "0\n"
                                   "1 0:7\n");
  SparseTable t = read_libsvm(FileSpec{p, 0});
  ASSERT_EQ(t.rows(), 4);
  EXPECT_EQ(t.labels, (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 2, 4, 4, 5}));
  EXPECT_EQ(t.indices, (std::vector<int64_t>{1, 3, 2, 5, 0}));
  EXPECT_EQ(t.values, (std::vector<float>{0.5f, 2.f, 1e-3f, -4.f, 7.f}));
  EXPECT_EQ(t.lines, (std::vector<int64_t>{1, 2, 5, 6}));
  EXPECT_EQ(t.max_index, 5);

  const std::vector<float> d = densify(t, 6);
  ASSERT_EQ(d.size(), 24u);
  EXPECT_EQ(std::vector<float>(d.begin(), d.begin() + 6),
            (std::vector<float>{0, 0.5f, 0, 2.f, 0, 0}));
  EXPECT_EQ(std::vector<float>(d.begin() + 6, d.begin() + 12),
            (std::vector<float>{0, 0, 1e-3f, 0, 0, -4.f}));
  EXPECT_EQ(std::vector<float>(d.begin() + 12, d.begin() + 18), std::vector<float>(6, 0.f));
  EXPECT_EQ(d[18], 7.f);

  EncodedTable e = table_from_sparse(t);
  EXPECT_EQ(e.n_dense, 6);
  EXPECT_EQ(e.n_cat, 0);
  EXPECT_EQ(e.dense, d);
  EXPECT_EQ(e.labels, t.labels);

  // Narrower than the data: an error naming the line, or dropped.
  try {
    densify(t, 4);
    FAIL();
  } catch (const Error& ex) {
    EXPECT_EQ(std::string(ex.what()),
              p + ":2: feature index 5 is outside the width 4 (fitted on the training file)");
  }
  const std::vector<float> dropped = densify(t, 4, OutOfRangeFeature::Drop);
  EXPECT_EQ(std::vector<float>(dropped.begin() + 4, dropped.begin() + 8),
            (std::vector<float>{0, 0, 1e-3f, 0}));
}

TEST(LibSvm, ErrorsNameFileLineAndToken) {
  TempDir dir;
  const std::string p = dir.file("bad.svm");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"2 1:1", ":2:token 1 '2': expected a label 0/1 or -1/+1"},
      {"yes 1:1", ":2:token 1 'yes': expected a label 0/1 or -1/+1"},
      {"1 1:1 7", ":2:token 3 '7': expected index:value"},
      {"1 x:1", ":2:token 2 'x:1': expected an integer feature index"},
      {"1 -3:1", ":2:token 2 '-3:1': negative feature index"},
      {"1 3:abc", ":2:token 2 '3:abc': expected a numeric value"},
      {"1 3:", ":2:token 2 '3:': expected index:value"},
      {"1 3:inf", ":2:token 2 '3:inf': expected a finite value"},
      // An index sizes every densified row: refused above the limit, before any allocation.
      {"1 65536:1",
       ":2:token 2 '65536:1': feature index above the limit 65535 (rows are densified: one "
       "float per feature)"},
      {"1 99999999999999999999:1",
       ":2:token 2 '99999999999999999999:1': feature index above the limit 65535 (rows are "
       "densified: one float per feature)"},
  };
  for (const auto& [bad, suffix] : cases) {
    write_file(p, "1 1:1\n" + bad + "\n0 2:2\n");
    try {
      read_libsvm(FileSpec{p, 0});
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data);
      EXPECT_EQ(std::string(e.what()), p + suffix);
    }
    BadRowReport report;
    SparseTable t = read_libsvm(FileSpec{p, 0}, BadRowPolicy::Skip, &report);
    EXPECT_EQ(t.rows(), 2);
    EXPECT_EQ(t.indices, (std::vector<int64_t>{1, 2}));  // nothing of the bad row leaks in
    EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(report.skipped, 1);
    ASSERT_EQ(report.first_reasons.size(), 1u);
    EXPECT_EQ(report.first_reasons[0], p + suffix);
  }
}

// The widest rows the limit allows read; a table too large to densify is refused by name, before
// rows x width floats are allocated (2^16 features x 1025 rows is one row over 2^26 values).
TEST(LibSvm, DenseTableSizeIsLimited) {
  TempDir dir;
  std::string rows;
  for (int i = 0; i < 1025; ++i) rows += "1 " + std::to_string(kLibSvmMaxFeatures - 1) + ":1\n";
  const std::string p = write_file(dir.file("wide.svm"), rows);
  const SparseTable t = read_libsvm(FileSpec{p, 0});
  EXPECT_EQ(t.max_index, kLibSvmMaxFeatures - 1);
  try {
    table_from_sparse(t);
    FAIL() << "densified 1025 rows of 2^16 features";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()),
              p + ": 1025 rows of 65536 features are too many to densify (limits: 65536 "
                  "features, 67108864 values in all)");
  }
  // A width beyond the feature limit (a config's libsvm_features) is refused even for one row,
  // and rows x width that overflows 64 bits does not wrap round to a small allocation.
  SparseTable one;
  one.path = "one.svm";
  one.labels.assign(1, 0.f);
  one.offsets.assign(2, 0);
  EXPECT_NO_THROW(densify(one, kLibSvmMaxFeatures));
  EXPECT_THROW(densify(one, kLibSvmMaxFeatures + 1), Error);
  SparseTable many;
  many.path = "many.svm";
  many.labels.assign(16, 0.f);
  many.offsets.assign(17, 0);
  EXPECT_THROW(densify(many, int64_t{1} << 60), Error);
  // 1024 rows of the widest width the limit allows (2^26 values exactly) still densify.
  std::string fit_rows = "1 3:2\n";
  for (int i = 1; i < 1024; ++i) fit_rows += "0 " + std::to_string(kLibSvmMaxFeatures - 1) + ":1\n";
  const std::string fits = write_file(dir.file("fits.svm"), fit_rows);
  const EncodedTable e = table_from_sparse(read_libsvm(FileSpec{fits, 0}));
  EXPECT_EQ(e.rows, 1024);
  EXPECT_EQ(e.n_dense, kLibSvmMaxFeatures);
  ASSERT_EQ(static_cast<int64_t>(e.dense.size()), kLibSvmMaxDenseValues);
  EXPECT_EQ(e.dense[3], 2.f);
  EXPECT_EQ(e.dense.back(), 1.f);
}

}  // namespace
}  // namespace tessera
