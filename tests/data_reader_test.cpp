// The delimited record reader and the per-schema row parser.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "host/core/error.h"
#include "host/data/criteo.h"
#include "host/data/record_reader.h"
#include "host/data/row_parser.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

struct Rec {
  std::vector<std::string> fields;
  int64_t line;
};

std::vector<Rec> read_all(const std::string& path, const TableSchema& schema, int skip = 0,
                          BufferedFileOptions opts = {}) {
  RecordReader r(FileSpec{path, skip}, schema, opts);
  std::vector<Rec> out;
  Record rec;
  while (r.next(rec)) {
    Rec x;
    for (auto f : rec.fields) x.fields.emplace_back(f);
    x.line = rec.line;
    EXPECT_EQ(rec.path, path);
    out.push_back(x);
  }
  return out;
}

TEST(RecordReader, QuotingTrimAndEscapes) {
  TempDir dir;
  const std::string p = write_file(dir.file("q.csv"),
                                   "a, b ,c\n"
                                   "\"x, y\", \"he said \"\"hi\"\"\" ,  \" padded \"\n"
                                   "\"\",,\"\"\"\"\n"
                                   "5'11\",ok,\"a\"tail\n");
  TableSchema s;
  auto recs = read_all(p, s);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"x, y", "he said \"hi\"", " padded "}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"", "", "\""}));
  // A quote inside an unquoted field is literal; text after a closing quote is kept.
  EXPECT_EQ(recs[3].fields, (std::vector<std::string>{"5'11\"", "ok", "atail"}));
  EXPECT_EQ(recs[3].line, 4);

  s.trim = false;
  recs = read_all(p, s);
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", " b ", "c"}));
}

TEST(RecordReader, CrlfBlankLinesBomAndMultilineQuotes) {
  TempDir dir;
  const std::string p = write_file(dir.file("c.csv"),
                                   "\xEF\xBB\xBFh1,h2\r\n"
                                   "1,2\r\n"
                                   "\r\n"
                                   "   \n"
                                   "\"multi\r\nline\",3\r\n"
                                   "4,\"5\"\r\n"
                                   "6,7");  // no final newline
  TableSchema s;
  s.header = true;
  RecordReader r(FileSpec{p, 0}, s);
  EXPECT_EQ(r.header(), (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(r.header_line(), 1);
  Record rec;
  std::vector<std::pair<std::vector<std::string>, int64_t>> got;
  while (r.next(rec))
    got.push_back({{std::string(rec.fields[0]), std::string(rec.fields[1])}, rec.line});
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].first, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(got[0].second, 2);
  EXPECT_EQ(got[1].first, (std::vector<std::string>{"multi\r\nline", "3"}));  // inside quotes: kept
  EXPECT_EQ(got[1].second, 5);
  EXPECT_EQ(got[2].first, (std::vector<std::string>{"4", "5"}));
  EXPECT_EQ(got[2].second, 7);
  EXPECT_EQ(got[3].first, (std::vector<std::string>{"6", "7"}));
  EXPECT_EQ(got[3].second, 8);
  EXPECT_EQ(r.records_read(), 4);
}

TEST(RecordReader, SkipLinesTabsAndTinyBuffers) {
  TempDir dir;
  std::ostringstream body;
  body << "|junk line, with \"quote\n";
  for (int i = 0; i < 500; ++i)
    body << i << "\t\"v\"\"" << i << "\"\tlong-field-" << std::string(i % 37, 'x') << "\n";
  const std::string p = write_file(dir.file("t.tsv"), body.str());
  TableSchema s;
  s.delimiter = '\t';
  // An 8-byte block forces a refill (and a window move) inside nearly every record.
  BufferedFileOptions tiny;
  tiny.block_bytes = 8;
  tiny.max_window = 1 << 16;
  for (BufferedFileOptions o : {BufferedFileOptions{}, tiny}) {
    auto recs = read_all(p, s, 1, o);
    ASSERT_EQ(recs.size(), 500u);
    for (int i = 0; i < 500; ++i) {
      ASSERT_EQ(recs[i].fields.size(), 3u);
      EXPECT_EQ(recs[i].fields[0], std::to_string(i));
      EXPECT_EQ(recs[i].fields[1], "v\"" + std::to_string(i));
      EXPECT_EQ(recs[i].fields[2], "long-field-" + std::string(i % 37, 'x'));
      EXPECT_EQ(recs[i].line, i + 2);
    }
  }
}

TEST(RecordReader, GzipIsReadTransparently) {
  TempDir dir;
  const std::string p = dir.file("z.csv.gz");
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "1,a\n2,b\n";
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  auto recs = read_all(p, TableSchema{});
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"2", "b"}));
}

TEST(RecordReader, UnterminatedQuoteAndOverlongRecordAreErrors) {
  TempDir dir;
  const std::string p = write_file(dir.file("u.csv"), "1,2\n3,\"open\n4,5\n");
  try {
    read_all(p, TableSchema{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()), p + ":2: quoted field not closed before the end of the file");
  }
  const std::string big = write_file(dir.file("big.csv"), "1,2\n" + std::string(5000, 'x') + "\n");
  BufferedFileOptions o;
  o.block_bytes = 64;
  o.max_window = 1024;
  try {
    read_all(big, TableSchema{}, 0, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(big + ":2: record longer than 1024 bytes"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(read_all(dir.file("missing.csv"), TableSchema{}), Error);
}

// ---- row parsing ------------------------------------------------------------------------------

TableSchema small_schema(BadRowPolicy policy) {
  TableSchema s;
  s.on_error = policy;
  ColumnSpec age{"age", ColumnType::Numeric, NumericTransform::None, {}, {}};
  ColumnSpec job{"job", ColumnType::Categorical, NumericTransform::None, {}, {}};
  ColumnSpec note{"note", ColumnType::Ignore, NumericTransform::None, {}, {}};
  ColumnSpec label{
      "income", ColumnType::Label, NumericTransform::None, {">50K", ">50K."}, {"<=50K", "<=50K."}};
  s.columns = {age, job, note, label};
  return s;
}

TEST(RowParser, ValuesMissingTokensAndLabels) {
  TempDir dir;
  const std::string p = write_file(dir.file("r.csv"),
                                   "39, Private, x, <=50K\n"
                                   "?, ?, x, >50K.\n"
                                   "NA, , x, >50K\n"
                                   "+1.5e2, Self, , <=50K.\n"
                                   "nan, Self, , <=50K.\n");
  RowParser parser(small_schema(BadRowPolicy::Error));
  RecordReader reader(FileSpec{p, 0}, parser.schema());
  Record rec;
  ParsedRow row;
  std::vector<double> ages;
  std::vector<std::string> jobs;
  std::vector<float> labels;
  while (reader.next(rec)) {
    ASSERT_TRUE(parser.parse(rec, row, nullptr));
    ASSERT_TRUE(row.has_label);
    ages.push_back(row.numeric[0]);
    jobs.emplace_back(row.categorical[0]);
    labels.push_back(row.label);
  }
  ASSERT_EQ(ages.size(), 5u);
  EXPECT_EQ(ages[0], 39.0);
  EXPECT_TRUE(std::isnan(ages[1]));
  EXPECT_TRUE(std::isnan(ages[2]));
  EXPECT_EQ(ages[3], 150.0);
  EXPECT_TRUE(std::isnan(ages[4]));
  EXPECT_EQ(jobs, (std::vector<std::string>{"Private", std::string(kMissingCategory),
                                            std::string(kMissingCategory), "Self", "Self"}));
  EXPECT_EQ(labels, (std::vector<float>{0, 1, 1, 0, 0}));
}

const char* kBadRows =
    "39, Private, x, <=50K\n"
    "abc, Private, x, <=50K\n"
    "40, Private, <=50K\n"
    "41, Private, x, maybe\n"
    "inf, Private, x, >50K\n"
    "42, Private, x, ?\n"
    "43, Private, x, >50K\n";

TEST(RowParser, MalformedRowsUnderErrorPolicyThrowWithPlace) {
  TempDir dir;
  const std::string p = dir.file("bad.csv");
  const std::string kLabels =
      "expected one of '>50K', '>50K.' (label 1) or '<=50K', '<=50K.' (label 0), got ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc, Private, x, <=50K", ":2:column 1 (age): expected a number, got 'abc'"},
      {"40, Private, <=50K", ":2: expected 4 fields, got 3"},
      {"40, Private, x, <=50K, extra", ":2: expected 4 fields, got 5"},
      {"41, Private, x, maybe", ":2:column 4 (income): " + kLabels + "'maybe'"},
      {"inf, Private, x, >50K", ":2:column 1 (age): expected a finite number, got 'inf'"},
      {"42, Private, x, ?", ":2:column 4 (income): " + kLabels + "a missing value '?'"},
  };
  for (const auto& [bad, suffix] : cases) {
    write_file(p, "39, Private, x, <=50K\n" + bad + "\n43, Private, x, >50K\n");
    RowParser parser(small_schema(BadRowPolicy::Error));
    RecordReader reader(FileSpec{p, 0}, parser.schema());
    Record rec;
    ParsedRow row;
    try {
      while (reader.next(rec)) parser.parse(rec, row, nullptr);
      FAIL() << "no error for " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data);
      EXPECT_EQ(std::string(e.what()), p + suffix);
    }
  }
}

TEST(RowParser, MalformedRowsUnderSkipPolicyAreCounted) {
  TempDir dir;
  const std::string p = write_file(dir.file("bad.csv"), std::string(kBadRows) + "x, y, z, w\n");
  RowParser parser(small_schema(BadRowPolicy::Skip));
  RecordReader reader(FileSpec{p, 0}, parser.schema());
  Record rec;
  ParsedRow row;
  BadRowReport report;
  std::vector<int64_t> good_lines;
  while (reader.next(rec)) {
    if (parser.parse(rec, row, &report)) good_lines.push_back(row.line);
  }
  EXPECT_EQ(good_lines, (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(report.skipped, 6);
  ASSERT_EQ(report.first_reasons.size(), BadRowReport::kMaxReasons);
  EXPECT_EQ(report.first_reasons[0], p + ":2:column 1 (age): expected a number, got 'abc'");
  EXPECT_EQ(report.first_reasons[1], p + ":3: expected 4 fields, got 3");
  EXPECT_NE(report.summary().find("skipped 6 bad rows"), std::string::npos);
}

TEST(RowParser, NumericLabelAndOptionalLabelColumn) {
  TempDir dir;
  TableSchema s;
  s.columns = {{"x", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"y", ColumnType::Label, NumericTransform::None, {}, {}}};
  const std::string p = write_file(dir.file("n.csv"), "1,0\n2,1\n3,-1\n4,+1\n5,yes\n");
  {
    RowParser parser(s);
    RecordReader reader(FileSpec{p, 0}, parser.schema());
    Record rec;
    ParsedRow row;
    std::vector<float> labels;
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(reader.next(rec));
      ASSERT_TRUE(parser.parse(rec, row, nullptr));
      labels.push_back(row.label);
    }
    EXPECT_EQ(labels, (std::vector<float>{0, 1, 0, 1}));
    ASSERT_TRUE(reader.next(rec));
    EXPECT_THROW(parser.parse(rec, row, nullptr), Error);
  }
  // Scoring input without the (last) label column.
  const std::string q = write_file(dir.file("nolabel.csv"), "1\n2\n3,1\n");
  RowParser parser(s, LabelMode::Optional);
  RecordReader reader(FileSpec{q, 0}, parser.schema());
  Record rec;
  ParsedRow row;
  ASSERT_TRUE(reader.next(rec));
  ASSERT_TRUE(parser.parse(rec, row, nullptr));
  EXPECT_FALSE(row.has_label);
  EXPECT_FALSE(parser.file_has_labels());
  EXPECT_EQ(row.numeric[0], 1.0);
  ASSERT_TRUE(reader.next(rec));
  ASSERT_TRUE(parser.parse(rec, row, nullptr));
  ASSERT_TRUE(reader.next(rec));
  try {
    parser.parse(rec, row, nullptr);  // the file's width was decided by its first record
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), q + ":3: expected 1 fields, got 2");
  }
  // Required mode: the short record is an error.
  RowParser strict(s, LabelMode::Required);
  RecordReader reader2(FileSpec{q, 0}, strict.schema());
  ASSERT_TRUE(reader2.next(rec));
  EXPECT_THROW(strict.parse(rec, row, nullptr), Error);
}

TEST(RowParser, SchemaValidation) {
  TableSchema s;
  EXPECT_THROW(resolve_schema(s), Error);  // no columns
  s.columns = {{"a", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"a", ColumnType::Numeric, NumericTransform::None, {}, {}}};
  EXPECT_THROW(resolve_schema(s), Error);  // duplicate
  s.columns[1].name = "b";
  s.delimiter = '"';
  EXPECT_THROW(resolve_schema(s), Error);
  s.delimiter = ',';
  EXPECT_NO_THROW(resolve_schema(s));
  s.columns[1].type = ColumnType::Label;
  s.columns[1].positive = {"y"};
  EXPECT_THROW(resolve_schema(s), Error);  // positive without negative
}

TEST(RowParser, HeaderMustMatchTheSchema) {
  TempDir dir;
  TableSchema s = criteo_schema(',', true);
  const std::string p = write_file(dir.file("h.csv"), "label,I1,I2\n");
  RowParser parser(s);
  RecordReader reader(FileSpec{p, 0}, parser.schema());
  try {
    parser.check_header(reader.header(), reader.path(), reader.header_line());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), p + ":1: header has 3 columns, the schema expects 40");
  }
}

// ---- Criteo -----------------------------------------------------------------------------------

TEST(Criteo, SchemaLayout) {
  TableSchema s = criteo_schema('\t', false);
  ASSERT_EQ(s.columns.size(), 40u);
  EXPECT_EQ(s.columns[0].type, ColumnType::Label);
  EXPECT_EQ(s.columns[1].name, "I1");
  EXPECT_EQ(s.columns[13].name, "I13");
  EXPECT_EQ(s.columns[13].transform, NumericTransform::Log1p);
  EXPECT_EQ(s.columns[14].name, "C1");
  EXPECT_EQ(s.columns[39].name, "C26");
  EXPECT_EQ(s.columns[39].type, ColumnType::Categorical);
  // A Criteo table given without columns gets them implied.
  TableSchema bare;
  bare.format = TableFormat::Criteo;
  EXPECT_EQ(resolve_schema(bare).columns.size(), 40u);
}

TEST(Criteo, SampleParsesWithMissingCounts) {
  const std::string path = testing::shared_datasets_dir() + "/ctr-format-samples/criteo_sample.txt";
  // Reference counts by a plain split of the text (no quotes in this file).
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::string line;
  std::getline(in, line);  // header
  std::vector<int64_t> empty(40, 0);
  int64_t positives = 0, lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (!line.empty() && line.back() == ',') f.push_back("");
    ASSERT_EQ(f.size(), 40u);
    for (int i = 0; i < 40; ++i) empty[i] += f[i].empty();
    positives += f[0] == "1";
  }
  ASSERT_EQ(lines, 200);

  RowParser parser(criteo_schema(',', true));
  RecordReader reader(FileSpec{path, 0}, parser.schema());
  parser.check_header(reader.header(), reader.path(), reader.header_line());
  Record rec;
  ParsedRow row;
  std::vector<int64_t> missing(40, 0);
  int64_t rows = 0, pos = 0;
  while (reader.next(rec)) {
    ASSERT_TRUE(parser.parse(rec, row, nullptr));
    ASSERT_EQ(row.numeric.size(), 13u);
    ASSERT_EQ(row.categorical.size(), 26u);
    for (int i = 0; i < 13; ++i) missing[1 + i] += std::isnan(row.numeric[i]);
    for (int i = 0; i < 26; ++i) missing[14 + i] += row.categorical[i] == kMissingCategory;
    pos += row.label == 1.f;
    ++rows;
  }
  EXPECT_EQ(rows, 200);
  EXPECT_EQ(pos, positives);
  int64_t total_missing = 0;
  for (int i = 1; i < 40; ++i) {
    EXPECT_EQ(missing[i], empty[i]) << "column " << i;
    total_missing += missing[i];
  }
  EXPECT_GT(total_missing, 200);  // the sample really has many empty fields
  EXPECT_GT(missing[1], 0);       // I1 is often empty
}

}  // namespace
}  // namespace tessera
