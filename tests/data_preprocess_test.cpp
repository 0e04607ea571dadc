// The preprocessor: vocabularies, OOV, min_count, hashing, normalisation fitted on train only,
// the flat embedding-table layout, and the exact JSON round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "rapidjson/document.h"

#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/hash.h"
#include "host/data/preprocessor.h"
#include "host/data/token_index.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

TableSchema schema3() {
  TableSchema s;
  s.columns = {{"x", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"color", ColumnType::Categorical, NumericTransform::None, {}, {}},
               {"city", ColumnType::Categorical, NumericTransform::None, {}, {}},
               {"y", ColumnType::Label, NumericTransform::None, {}, {}}};
  return s;
}

const char* kTrain =
    "1,red,paris,1\n"
    "2,red,rome,0\n"
    "3,blue,paris,1\n"
    "?,red,?,0\n"
    "6,green,paris,1\n";

TEST(Hash, StableValues) {
  // FNV-1a 64 reference vectors.
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  // hash_token is part of saved models: pin its values.
  EXPECT_EQ(hash_token("a"), math::mix64(0xaf63dc4c8601ec8cull));
  EXPECT_NE(hash_token("a"), hash_token("b"));
  EXPECT_NE(hash_token("a", 1), hash_token("a", 2));
}

TEST(TokenIndex, InsertFindGrow) {
  TokenIndex idx;
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(idx.insert("tok" + std::to_string(i)), i);
  EXPECT_EQ(idx.insert("tok17"), 17);
  EXPECT_EQ(idx.size(), 1000);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(idx.find("tok" + std::to_string(i)), i);
  EXPECT_EQ(idx.find("nope"), -1);
  EXPECT_EQ(idx.token(999), "tok999");
  EXPECT_EQ(idx.insert(""), 1000);
  EXPECT_EQ(idx.find(""), 1000);
  // Slots hold a token's first 8 bytes and its length: same prefixes and zero padding must not
  // be confused.
  const std::string ab0("ab\0", 3);
  EXPECT_EQ(idx.insert("ab"), 1001);
  EXPECT_EQ(idx.insert(ab0), 1002);
  EXPECT_EQ(idx.insert("abcdefgh1"), 1003);
  EXPECT_EQ(idx.insert("abcdefgh2"), 1004);
  EXPECT_EQ(idx.insert("abcdefgh"), 1005);
  EXPECT_EQ(idx.find("ab"), 1001);
  EXPECT_EQ(idx.find(ab0), 1002);
  EXPECT_EQ(idx.find("abcdefgh2"), 1004);
  EXPECT_EQ(idx.find("abcdefgh3"), -1);
  EXPECT_EQ(idx.find(std::string(300, 'q')), -1);
  EXPECT_EQ(idx.insert(std::string(300, 'q')), 1006);
  EXPECT_EQ(idx.find(std::string(300, 'q')), 1006);
  EXPECT_EQ(idx.find(std::string(299, 'q')), -1);
}

TEST(Preprocessor, VocabularyOovAndFlatOffsets) {
  TempDir dir;
  const std::string train = write_file(dir.file("train.csv"), kTrain);
  const std::string test =
      write_file(dir.file("test.csv"), "4,red,paris,1\n5,purple,oslo,0\n7,blue,?,1\n");
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, schema3(), PreprocessOptions{});
  ASSERT_EQ(p.n_dense(), 1);
  ASSERT_EQ(p.n_cat(), 2);
  const CategoricalColumnModel& color = p.categorical_columns()[0];
  const CategoricalColumnModel& city = p.categorical_columns()[1];
  // color: red x3, blue x1, green x1 -> rows 1 (red), 2 (blue), 3 (green); row 0 OOV.
  EXPECT_EQ(color.size, 4);
  EXPECT_EQ(color.offset, 0);
  EXPECT_EQ(color.local_row("red"), 1);
  EXPECT_EQ(color.local_row("blue"), 2);
  EXPECT_EQ(color.local_row("green"), 3);
  EXPECT_EQ(color.local_row("purple"), 0);
  EXPECT_EQ(color.counts, (std::vector<int64_t>{3, 1, 1}));
  // city: paris x3, rome x1, missing x1 (its own token).
  EXPECT_EQ(city.size, 4);
  EXPECT_EQ(city.offset, 4);
  EXPECT_EQ(city.local_row("paris"), 1);
  EXPECT_GT(city.local_row(kMissingCategory), 0);
  EXPECT_EQ(p.total_embedding_rows(), 8);

  LoadReport report;
  EncodedTable t = load_table(FileSpec{test, 0}, p, LoadOptions{}, &report);
  ASSERT_EQ(t.rows, 3);
  EXPECT_EQ(t.cat,
            (std::vector<int64_t>{1, 4 + 1, 0, 4 + 0, 2, 4 + city.local_row(kMissingCategory)}));
  EXPECT_EQ(report.encode.oov, (std::vector<int64_t>{1, 1}));  // purple, oslo
  EXPECT_EQ(report.encode.rows, 3);
  EXPECT_NE(p.oov_summary(report.encode).find("color: 1 of 3 values unseen"), std::string::npos);
  for (int64_t id : t.cat) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, p.total_embedding_rows());
  }
  EXPECT_EQ(t.labels, (std::vector<float>{1, 0, 1}));
  EXPECT_EQ(t.lines, (std::vector<int64_t>{1, 2, 3}));
}

TEST(Preprocessor, MinCountSendsRareTokensToOov) {
  TempDir dir;
  const std::string train = write_file(dir.file("train.csv"), kTrain);
  PreprocessOptions o;
  o.categorical.min_count = 2;
  o.categorical_overrides["city"] = CategoricalSpec{3, 0};
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, schema3(), o);
  const CategoricalColumnModel& color = p.categorical_columns()[0];
  const CategoricalColumnModel& city = p.categorical_columns()[1];
  EXPECT_EQ(color.size, 2);  // OOV + red
  EXPECT_EQ(color.local_row("red"), 1);
  EXPECT_EQ(color.local_row("blue"), 0);
  EXPECT_EQ(city.size, 2);  // OOV + paris (3 times)
  EXPECT_EQ(city.local_row("rome"), 0);
  EXPECT_EQ(city.offset, 2);
  // An override for a column that is not categorical is a config error.
  o.categorical_overrides["x"] = CategoricalSpec{};
  EXPECT_THROW(fit_preprocessor(FileSpec{train, 0}, schema3(), o), Error);
}

TEST(Preprocessor, HashBuckets) {
  TempDir dir;
  const std::string train = write_file(dir.file("train.csv"), kTrain);
  PreprocessOptions o;
  o.categorical.hash_buckets = 7;
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, schema3(), o);
  const CategoricalColumnModel& color = p.categorical_columns()[0];
  EXPECT_EQ(color.size, 7);
  EXPECT_EQ(p.categorical_columns()[1].offset, 7);
  EXPECT_EQ(p.total_embedding_rows(), 14);
  EXPECT_EQ(color.local_row("never-seen"), static_cast<int64_t>(hash_token("never-seen") % 7));
  EXPECT_EQ(color.local_row("red"), static_cast<int64_t>(hash_token("red") % 7));
  // Hashing spreads tokens over buckets.
  std::set<int64_t> used;
  for (int i = 0; i < 200; ++i) used.insert(color.local_row("t" + std::to_string(i)));
  EXPECT_EQ(used.size(), 7u);
}

TEST(Preprocessor, NormalisationFittedOnTrainOnly) {
  TempDir dir;
  const std::string train = write_file(dir.file("train.csv"), kTrain);
  // Test values far outside the train range must not move the statistics.
  const std::string test = write_file(dir.file("test.csv"), "1000,red,paris,1\n?,red,paris,0\n");
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, schema3(), PreprocessOptions{});
  const NumericColumnModel& x = p.numeric_columns()[0];
  // Train x: 1, 2, 3, (missing), 6 -> mean 3, population std sqrt(3.5).
  EXPECT_EQ(x.count, 4);
  EXPECT_EQ(x.missing, 1);
  EXPECT_FLOAT_EQ(x.mean, 3.f);
  EXPECT_FLOAT_EQ(x.stddev, static_cast<float>(std::sqrt(3.5)));
  EXPECT_EQ(x.min, 1.f);
  EXPECT_EQ(x.max, 6.f);
  EncodedTable t = load_table(FileSpec{test, 0}, p);
  EXPECT_NEAR(t.dense[0], (1000.0 - 3.0) / std::sqrt(3.5), 1e-3);
  EXPECT_EQ(t.dense[1], 0.f);  // missing -> the train mean -> 0

  PreprocessOptions mm;
  mm.numeric.normalization = Normalization::MinMax;
  Preprocessor q = fit_preprocessor(FileSpec{train, 0}, schema3(), mm);
  EncodedTable u = load_table(FileSpec{train, 0}, q);
  EXPECT_EQ(u.dense, (std::vector<float>{0.f, 0.2f, 0.4f, 0.4f, 1.f}));  // missing -> mean 3 -> 0.4

  PreprocessOptions none;
  none.numeric.normalization = Normalization::None;
  Preprocessor r = fit_preprocessor(FileSpec{train, 0}, schema3(), none);
  EXPECT_EQ(load_table(FileSpec{train, 0}, r).dense, (std::vector<float>{1, 2, 3, 3, 6}));
}

// A value far outside the training range can have no float32 encoding once normalised (-2e83
// against train values near -2000 with stddev 1 was -inf, fed to the model): it is a bad row
// naming file, line and column, which the bad-row policy stops at or skips (found by fuzz_csv).
TEST(Preprocessor, ValueWithoutAFloatEncodingIsABadRow) {
  TempDir dir;
  const std::string train = write_file(dir.file("train.csv"), "1,red,paris,1\n2,red,rome,0\n");
  const std::string test = write_file(dir.file("test.csv"),
                                      "1.5,red,rome,1\n-2e83,red,rome,0\n"
                                      "1e300,blue,x,1\n3,blue,paris,0\n");
  for (Normalization norm : {Normalization::Standard, Normalization::MinMax, Normalization::None}) {
    PreprocessOptions opt;
    opt.numeric.normalization = norm;
    Preprocessor p = fit_preprocessor(FileSpec{train, 0}, schema3(), opt);
    try {
      load_table(FileSpec{test, 0}, p);
      FAIL() << "encoded -2e83 to a non-finite feature";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data);
      EXPECT_EQ(std::string(e.what()),
                test +
                    ":2:column 1 (x): value -2e+83 is too far outside the training range to "
                    "encode as a float32 feature (train range [1, 2])");
    }
    p.set_bad_row_policy(BadRowPolicy::Skip);
    LoadReport report;
    const EncodedTable t = load_table(FileSpec{test, 0}, p, LoadOptions{}, &report);
    ASSERT_EQ(t.rows, 2) << static_cast<int>(norm);
    EXPECT_EQ(t.lines, (std::vector<int64_t>{1, 4}));
    EXPECT_EQ(t.dense.size(), 2u);
    EXPECT_EQ(t.cat.size(), 4u);
    EXPECT_EQ(t.labels, (std::vector<float>{1, 0}));
    EXPECT_EQ(report.bad_rows.skipped, 2);
    EXPECT_EQ(report.encode.rows, 2);
    for (float v : t.dense) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(Preprocessor, Log1pAndConstantColumns) {
  TempDir dir;
  TableSchema s;
  s.columns = {{"count", ColumnType::Numeric, NumericTransform::Log1p, {}, {}},
               {"const", ColumnType::Numeric, NumericTransform::None, {}, {}}};
  const std::string train =
      write_file(dir.file("t.csv"), "-5,7\n0,7\n" + std::to_string(std::exp(1.0) - 1) + ",7\n");
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, s, PreprocessOptions{});
  const NumericColumnModel& c = p.numeric_columns()[0];
  EXPECT_EQ(c.min, 0.f);  // log1p(max(-5, 0)) = 0
  EXPECT_FLOAT_EQ(c.max, 1.f);
  EXPECT_FLOAT_EQ(c.mean, 1.f / 3.f);
  EXPECT_EQ(p.numeric_columns()[1].stddev, 1.f);  // std 0 -> 1
  EncodedTable t = load_table(FileSpec{train, 0}, p, LoadOptions{LabelMode::Required, {}});
  EXPECT_FALSE(t.has_labels);
  EXPECT_EQ(t.dense[1], 0.f);
}

TEST(Preprocessor, JsonRoundTripIsExact) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 300; ++i) {
    text += std::to_string(0.1 * i + 1.0 / 3.0) + "," +
            (i % 3 ? "tok\"" + std::to_string(i % 17) : std::string("\xc3\xa9t\xc3\xa9")) + "," +
            (i % 5 ? std::string("?") : "c" + std::to_string(i)) + "," + std::to_string(i % 2) +
            "\n";
  }
  const std::string train = write_file(dir.file("t.csv"), text);
  PreprocessOptions o;
  o.categorical_overrides["city"] = CategoricalSpec{1, 13};
  TableSchema s = schema3();
  s.columns[0].transform = NumericTransform::Log1p;
  s.missing_tokens = {"?", ""};
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, s, o);
  const std::string json = p.to_json_string();
  Preprocessor q = Preprocessor::from_json_string(json);
  EXPECT_EQ(q.to_json_string(), json);

  // Through a rapidjson Value parsed with default (not full-precision) flags, as an artefact
  // loader might: the float32 statistics still come back bit for bit.
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError());
  Preprocessor r = Preprocessor::from_json(doc);
  ASSERT_EQ(r.numeric_columns().size(), 1u);
  EXPECT_EQ(r.numeric_columns()[0].mean, p.numeric_columns()[0].mean);
  EXPECT_EQ(r.numeric_columns()[0].stddev, p.numeric_columns()[0].stddev);
  EXPECT_EQ(r.to_json_string(), json);

  // Both encode the file identically.
  EncodedTable a = load_table(FileSpec{train, 0}, p);
  EncodedTable b = load_table(FileSpec{train, 0}, r);
  EXPECT_EQ(a.dense, b.dense);
  EXPECT_EQ(a.cat, b.cat);
  EXPECT_EQ(r.total_embedding_rows(), p.total_embedding_rows());
  EXPECT_EQ(r.schema().missing_tokens, s.missing_tokens);
  EXPECT_EQ(r.categorical_columns()[1].hash_buckets, 13);

  // Damaged documents fail with the member named.
  std::string broken = json;
  broken.replace(broken.find("\"stddev\""), 8, "\"stdev_\"");
  try {
    Preprocessor::from_json_string(broken);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("numeric[0]: missing member 'stddev'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Preprocessor::from_json_string("{"), Error);
  EXPECT_THROW(Preprocessor::from_json_string("{\"format\":\"other\"}"), Error);
}

TEST(Preprocessor, NoUsableTrainRowsIsAnError) {
  TempDir dir;
  TableSchema s = schema3();
  s.on_error = BadRowPolicy::Skip;
  const std::string train = write_file(dir.file("t.csv"), "a,b\nc,d\n");
  BadRowReport report;
  try {
    fit_preprocessor(FileSpec{train, 0}, s, PreprocessOptions{}, RowSelection{}, &report);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no usable training rows"), std::string::npos);
  }
  EXPECT_EQ(report.skipped, 2);
}

}  // namespace
}  // namespace tessera
