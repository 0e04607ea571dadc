// The preprocessor's streamed JSON (append_json / to_json_string, what a model save writes) is
// byte for byte rapidjson's own serialisation of the to_json document it replaced, so model files
// do not change; it round-trips through from_json. And a prepared dataset hands its preprocessor
// over (release_preprocessor) instead of a run holding a second copy of the vocabulary.
#include <gtest/gtest.h>

#include <string>

#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "host/data/preprocessor.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// The reference: the document to_json builds, serialised by rapidjson's Writer (what
// to_json_string returned before it streamed).
std::string document_text(const Preprocessor& p) {
  rapidjson::Document doc;
  p.to_json(doc, doc.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  EXPECT_TRUE(doc.Accept(w));
  return std::string(buf.GetString(), buf.GetSize());
}

void expect_streamed_equals_document(const Preprocessor& p, bool reads_back = true) {
  const std::string want = document_text(p);
  EXPECT_EQ(p.to_json_string(), want);
  std::string prefixed = "{\"preprocessor\":";  // as the model save appends it to its metadata
  p.append_json(prefixed);
  EXPECT_EQ(prefixed, "{\"preprocessor\":" + want);
  // And it reads back to the same preprocessor.
  if (reads_back) EXPECT_EQ(Preprocessor::from_json_string(want).to_json_string(), want);
}

ColumnSpec column(const char* name, ColumnType type, NumericTransform t = NumericTransform::None) {
  ColumnSpec c;
  c.name = name;
  c.type = type;
  c.transform = t;
  return c;
}

// Numeric columns of every transform and normalisation (one with bins), a vocabulary of tokens
// that need JSON escapes, a hashed column, a column whose vocabulary is empty (min_count above
// every count), a label with positive / negative tokens, tab-delimited with a header.
TableSchema rich_schema() {
  TableSchema s;
  s.delimiter = '\t';
  s.header = true;
  s.missing_tokens = {"?", "N\"A", ""};
  s.columns = {column("plain", ColumnType::Numeric),
               column("logged", ColumnType::Numeric, NumericTransform::Log1p),
               column("minmax", ColumnType::Numeric),
               column("raw \"x\"", ColumnType::Numeric),
               column("binned", ColumnType::Numeric, NumericTransform::Log1p),
               column("tok\\ens", ColumnType::Categorical),
               column("hashed", ColumnType::Categorical),
               column("rare", ColumnType::Categorical),
               column("label", ColumnType::Label)};
  s.columns.back().positive = {"yes", "y\u00e9s"};
  s.columns.back().negative = {"no"};
  return s;
}

PreprocessOptions rich_options() {
  PreprocessOptions o;
  o.numeric_overrides["minmax"] = NumericSpec{Normalization::MinMax, 0, BinEdges::DistinctQuantile};
  o.numeric_overrides["raw \"x\""] =
      NumericSpec{Normalization::None, 0, BinEdges::DistinctQuantile};
  o.numeric_overrides["binned"] =
      NumericSpec{Normalization::Standard, 4, BinEdges::DistinctQuantile};
  o.categorical_overrides["hashed"] = CategoricalSpec{1, 97};
  o.categorical_overrides["rare"] = CategoricalSpec{1000, 0};
  return o;
}

// Tokens with a quote, a backslash, a slash, control characters (\u0001, \u001f, DEL), UTF-8
// of two, three and four bytes, and spaces.
const char* const kTokens[] = {
    "a\"b",         "back\\slash",      "s/l",       "ctl\x01x", "us\x1f", "del\x7f", "caf\xc3\xa9",
    "\xe2\x82\xac", "\xf0\x9f\x99\x82", "two words", "plain"};

std::string rich_csv() {
  std::string text = "plain\tlogged\tminmax\traw \"x\"\tbinned\ttok\\ens\thashed\trare\tlabel\n";
  const int n_tokens = static_cast<int>(sizeof(kTokens) / sizeof(kTokens[0]));
  for (int i = 0; i < 240; ++i) {
    const std::string x = i % 7 == 0 ? "?" : std::to_string(0.37 * i - 20.0 / 3.0);
    text += x + "\t" + std::to_string(i * 1.5) + "\t" + std::to_string(i % 13) + "\t" +
            std::to_string(1e-3 * i) + "\t" + std::to_string(i % 50 + 0.25) + "\t" +
            kTokens[(i * 7) % n_tokens] + "\th" + std::to_string(i % 31) + "\tr" +
            std::to_string(i) + "\t" + (i % 3 == 0 ? "yes" : "no") + "\n";
  }
  return text;
}

TEST(PreprocessorJsonStream, EqualsTheDocumentsSerialisation) {
  TempDir dir;
  const std::string train = write_file(dir.file("t.tsv"), rich_csv());
  const Preprocessor p = fit_preprocessor(FileSpec{train, 0}, rich_schema(), rich_options());
  // The fit has what the test means to cover.
  ASSERT_EQ(p.numeric_columns().size(), 5u);
  EXPECT_GE(p.numeric_columns()[4].edges.size(), 2u);
  ASSERT_EQ(p.categorical_columns().size(), 3u);
  EXPECT_EQ(p.categorical_columns()[0].vocabulary.size(),
            static_cast<int64_t>(sizeof(kTokens) / sizeof(kTokens[0])));
  EXPECT_TRUE(p.categorical_columns()[1].hashed());
  EXPECT_EQ(p.categorical_columns()[2].vocabulary.size(), 0);
  expect_streamed_equals_document(p);
  // The escapes are JSON's (a reader we did not write decodes them to the tokens).
  rapidjson::Document doc;
  const std::string text = p.to_json_string();
  doc.Parse(text.c_str(), text.size());
  ASSERT_FALSE(doc.HasParseError());
  const rapidjson::Value& tokens = doc["categorical"][0]["tokens"];
  for (const char* t : kTokens) {
    bool found = false;
    for (const rapidjson::Value& v : tokens.GetArray())
      found = found || std::string(v.GetString(), v.GetStringLength()) == t;
    EXPECT_TRUE(found) << t;
  }
}

TEST(PreprocessorJsonStream, EmptyAndDefaultPreprocessors) {
  // Never fitted: no columns, which from_json rejects, but written the same.
  expect_streamed_equals_document(Preprocessor(), false);
  EXPECT_THROW(Preprocessor::from_json_string(Preprocessor().to_json_string()), Error);
  TempDir dir;
  TableSchema s;
  s.columns = {column("c", ColumnType::Categorical), column("y", ColumnType::Label)};
  const std::string train = write_file(dir.file("t.csv"), "a,1\nb,0\n");
  PreprocessOptions o;
  o.categorical.min_count = 5;  // every token rarer: an empty vocabulary, the OOV row only
  const Preprocessor p = fit_preprocessor(FileSpec{train, 0}, s, o);
  ASSERT_EQ(p.categorical_columns()[0].vocabulary.size(), 0);
  expect_streamed_equals_document(p);
}

TEST(PreparedDataset, ReleasesItsPreprocessorToOneOwner) {
  TempDir tmp;
  PrepareInputs in;
  in.schema.columns = {column("x", ColumnType::Numeric), column("c", ColumnType::Categorical),
                       column("y", ColumnType::Label)};
  std::string csv;
  for (int i = 0; i < 200; ++i)
    csv += std::to_string(i) + ",t" + std::to_string(i % 9) + "," + std::to_string(i % 2) + "\n";
  in.train.path = write_file(tmp.file("train.csv"), csv);
  in.validation_fraction = 0.2;
  const std::string dir = tmp.file("prepared");
  prepare_dataset(in, dir, PrepareOptions());
  PreparedDataset data = PreparedDataset::open(dir);
  const std::string want = data.preprocessor().to_json_string();
  const PreparedDataset copy = data;  // copies share one preprocessor (and the shards)
  const Preprocessor mine = data.release_preprocessor();
  EXPECT_EQ(mine.to_json_string(), want);
  EXPECT_EQ(mine.categorical_columns()[0].vocabulary.size(), 9);
  // Released: asking for it again is an error, not an empty preprocessor.
  EXPECT_THROW(copy.preprocessor(), Error);
  EXPECT_THROW(data.release_preprocessor(), Error);
  // The shards still read, encoded as the released preprocessor says.
  const EncodedTable t = read_prepared_table(copy, "train");
  EXPECT_EQ(t.rows, copy.rows("train"));
  EXPECT_EQ(t.n_cat, mine.n_cat());
}

}  // namespace
}  // namespace tessera
