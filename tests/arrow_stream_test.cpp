// Arrow C streams read as rows (host/data/arrow_stream.h): columns mapped by name and typed as
// the text path reads them, nulls, dictionaries, offsets, release callbacks, producer errors and
// checked lengths; and a prepared dataset from Arrow equal, shard for shard, to the same rows
// prepared from CSV.
#include "host/data/arrow_stream.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;

// A column owned by the test: its format and buffers.
struct TestColumn {
  std::string name, format;
  std::vector<uint8_t> validity;  // empty: no nulls
  int64_t null_count = 0;
  std::vector<char> values;  // fixed width values, bit-packed bools, or utf8 offsets
  std::string data;          // utf8 bytes
  std::unique_ptr<TestColumn> dictionary;
  int64_t length = 0;
  int64_t claimed_length = -1;  // >= 0: the length the arrays claim (a lying producer)
};

template <typename T>
TestColumn fixed(const std::string& name, const std::string& format, const std::vector<T>& v,
                 const std::vector<bool>& valid = {}) {
  TestColumn c;
  c.name = name;
  c.format = format;
  c.length = static_cast<int64_t>(v.size());
  c.values.resize(v.size() * sizeof(T));
  std::memcpy(c.values.data(), v.data(), c.values.size());
  if (!valid.empty()) {
    c.validity.assign((v.size() + 7) / 8, 0);
    for (size_t i = 0; i < valid.size(); ++i)
      if (valid[i])
        c.validity[i / 8] |= uint8_t(1u << (i % 8));
      else
        ++c.null_count;
  }
  return c;
}

TestColumn utf8(const std::string& name, const std::vector<std::string>& v) {
  std::vector<int32_t> offsets{0};
  std::string data;
  for (const std::string& s : v) {
    data += s;
    offsets.push_back(static_cast<int32_t>(data.size()));
  }
  TestColumn c = fixed<int32_t>(name, "u", offsets);
  c.length = static_cast<int64_t>(v.size());
  c.data = data;
  return c;
}

// The stream's state: the columns, cut into batches of `batch_rows` (as slices, offset > 0), and
// a count of every release call.
struct TestStream {
  std::vector<TestColumn> columns;
  int64_t rows = 0, batch_rows = 2, next_row = 0;
  int fail_at_batch = -1;  // get_next returns EIO at this batch
  int batches = 0;
  int* releases = nullptr;
  std::string error = "disk on fire";
};

struct ArrayHolder {
  std::vector<const void*> buffers;
  std::vector<ArrowArray*> children;
  std::vector<std::unique_ptr<ArrowArray>> owned;
  int* releases = nullptr;
};

void release_array(ArrowArray* a) {
  auto* h = static_cast<ArrayHolder*>(a->private_data);
  ++*h->releases;
  delete h;
  a->release = nullptr;
}

void noop_release(ArrowArray* a) {
  a->release = nullptr;
}

void fill_array(const TestColumn& c, int64_t offset, int64_t length, ArrowArray& a,
                ArrayHolder& h) {
  const size_t first = h.buffers.size();
  h.buffers.push_back(c.validity.empty() ? nullptr : c.validity.data());
  h.buffers.push_back(c.values.data());
  if (!c.data.empty() || c.format == "u") h.buffers.push_back(c.data.data());
  a = ArrowArray{};
  a.length = c.claimed_length >= 0 ? c.claimed_length : length;
  a.offset = offset;
  a.null_count = c.null_count > 0 ? -1 : 0;
  a.n_buffers = static_cast<int64_t>(h.buffers.size() - first);
  a.release = noop_release;
  if (c.dictionary) {
    h.owned.push_back(std::make_unique<ArrowArray>());
    ArrowArray* d = h.owned.back().get();
    fill_array(*c.dictionary, 0, c.dictionary->length, *d, h);
    a.dictionary = d;
  }
}

int stream_schema(ArrowArrayStream* s, ArrowSchema* out) {
  auto* t = static_cast<TestStream*>(s->private_data);
  struct Names {
    std::vector<ArrowSchema> kids, dicts;
    std::vector<ArrowSchema*> ptrs;
  };
  auto* n = new Names;
  n->kids.resize(t->columns.size());
  n->dicts.resize(t->columns.size());
  for (size_t i = 0; i < t->columns.size(); ++i) {
    ArrowSchema& k = n->kids[i];
    k = ArrowSchema{};
    k.format = t->columns[i].format.c_str();
    k.name = t->columns[i].name.c_str();
    if (t->columns[i].dictionary) {
      n->dicts[i] = ArrowSchema{};
      n->dicts[i].format = t->columns[i].dictionary->format.c_str();
      k.dictionary = &n->dicts[i];
    }
    n->ptrs.push_back(&k);
  }
  *out = ArrowSchema{};
  out->format = "+s";
  out->n_children = static_cast<int64_t>(t->columns.size());
  out->children = n->ptrs.data();
  out->private_data = n;
  out->release = [](ArrowSchema* sc) {
    delete static_cast<Names*>(sc->private_data);
    sc->release = nullptr;
  };
  return 0;
}

int stream_next(ArrowArrayStream* s, ArrowArray* out) {
  auto* t = static_cast<TestStream*>(s->private_data);
  if (t->batches++ == t->fail_at_batch) return EIO;
  *out = ArrowArray{};
  if (t->next_row >= t->rows) return 0;  // released: the end
  const int64_t n = std::min(t->batch_rows, t->rows - t->next_row);
  auto* h = new ArrayHolder;
  h->releases = t->releases;
  h->buffers.reserve(64);
  h->buffers.push_back(nullptr);
  for (const TestColumn& c : t->columns) {
    h->owned.push_back(std::make_unique<ArrowArray>());
    ArrowArray* child = h->owned.back().get();  // (a dictionary goes after it in `owned`)
    fill_array(c, t->next_row, n, *child, *h);
    h->children.push_back(child);
  }
  out->length = n;
  out->n_buffers = 1;
  out->buffers = h->buffers.data();
  out->n_children = static_cast<int64_t>(h->children.size());
  out->children = h->children.data();
  out->private_data = h;
  out->release = release_array;
  t->next_row += n;
  return 0;
}

// Buffers of children point into h->buffers: set after it stops growing (reserve above).
void fix_buffers(ArrowArray* out) {
  auto* h = static_cast<ArrayHolder*>(out->private_data);
  size_t at = 1;
  for (auto& a : h->owned) {
    a->buffers = &h->buffers[at];
    at += static_cast<size_t>(a->n_buffers);
  }
}

int stream_next_fixed(ArrowArrayStream* s, ArrowArray* out) {
  const int rc = stream_next(s, out);
  if (rc == 0 && out->release != nullptr) fix_buffers(out);
  return rc;
}

ArrowArrayStream make_stream(TestStream* t) {
  ArrowArrayStream s{};
  s.get_schema = stream_schema;
  s.get_next = stream_next_fixed;
  s.get_last_error = [](ArrowArrayStream* st) {
    return static_cast<TestStream*>(st->private_data)->error.c_str();
  };
  s.release = [](ArrowArrayStream* st) {
    ++*static_cast<TestStream*>(st->private_data)->releases;
    st->release = nullptr;
  };
  s.private_data = t;
  return s;
}

TableSchema adult_like_schema() {
  TableSchema sc;
  sc.columns = {{"age", ColumnType::Numeric},
                {"city", ColumnType::Categorical},
                {"note", ColumnType::Ignore},
                {"score", ColumnType::Numeric},
                {"label", ColumnType::Label}};
  return sc;
}

// Five rows: the label first in the stream (mapping is by name), nulls, a dictionary column, a
// float column, an unread extra column.
TestStream five_rows(int* releases) {
  TestStream t;
  t.releases = releases;
  t.rows = 5;
  t.columns.push_back(fixed<int64_t>("label", "l", {1, 0, 0, 1, 1}));
  t.columns.push_back(fixed<int32_t>("age", "i", {30, 41, 0, 25, 77}, {1, 1, 0, 1, 1}));
  t.columns.push_back(fixed<double>("extra", "g", {9, 9, 9, 9, 9}));
  TestColumn city = fixed<int8_t>("city", "c", {1, 0, 1, 2, 0}, {1, 1, 1, 1, 0});
  city.dictionary = std::make_unique<TestColumn>(utf8("", {" Paris", "Oslo ", "Lima"}));
  t.columns.push_back(std::move(city));
  t.columns.push_back(fixed<double>("score", "g", {0.1, 2.5, NAN, -1e-7, 1e20}));
  return t;
}

std::vector<std::vector<std::string>> read_all(ArrowRecordReader& r) {
  std::vector<std::vector<std::string>> rows;
  Record rec;
  while (r.next(rec)) {
    std::vector<std::string> row(rec.fields.begin(), rec.fields.end());
    row.push_back(std::to_string(rec.line));
    rows.push_back(row);
  }
  return rows;
}

TEST(ArrowStream, ColumnsAreMappedByNameAndWrittenAsTheTextPathReadsThem) {
  int releases = 0;
  {
    TestStream t = five_rows(&releases);
    ArrowArrayStream s = make_stream(&t);
    ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Required, "frame");
    EXPECT_EQ(s.release, nullptr);  // taken over
    const auto rows = read_all(r);
    const std::vector<std::vector<std::string>> want = {{"30", "Oslo", "", "0.1", "1", "1"},
                                                        {"41", "Paris", "", "2.5", "0", "2"},
                                                        {"", "Oslo", "", "", "0", "3"},
                                                        {"25", "Lima", "", "-1e-07", "1", "4"},
                                                        {"77", "", "", "1e+20", "1", "5"}};
    EXPECT_EQ(rows, want);
    EXPECT_EQ(r.records_read(), 5);
    EXPECT_EQ(r.batches_read(), 3);  // batches of 2, 2, 1
    EXPECT_TRUE(r.has_label());
  }
  EXPECT_EQ(releases, 3 + 1);  // each batch, then the stream
}

TEST(ArrowStream, RowsParseAndEncodeAsTheirCsvDoes) {
  int releases = 0;
  TestStream t = five_rows(&releases);
  ArrowArrayStream s = make_stream(&t);
  ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Required, "frame");
  RowParser parser(adult_like_schema(), LabelMode::Required);
  Record rec;
  ParsedRow row;
  ASSERT_TRUE(r.next(rec));
  ASSERT_TRUE(parser.parse(rec, row, nullptr));
  EXPECT_EQ(row.numeric, (std::vector<double>{30, 0.1}));
  EXPECT_EQ(row.categorical.at(0), "Oslo");
  EXPECT_EQ(row.label, 1.f);
  ASSERT_TRUE(r.next(rec) && r.next(rec));
  ASSERT_TRUE(parser.parse(rec, row, nullptr));
  EXPECT_TRUE(std::isnan(row.numeric[0]) && std::isnan(row.numeric[1]));  // nulls are missing
}

TEST(ArrowStream, DoublesAreWrittenAsPythonsRepr) {
  char buf[40];
  auto f = [&](double v) { return std::string(buf, format_double_like_python(v, buf)); };
  EXPECT_EQ(f(3.0), "3.0");
  EXPECT_EQ(f(0.1), "0.1");
  EXPECT_EQ(f(-2.5), "-2.5");
  EXPECT_EQ(f(1e16), "1e+16");
  EXPECT_EQ(f(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(f(1.5e-5), "1.5e-05");
  EXPECT_EQ(f(0.0001), "0.0001");
  EXPECT_EQ(f(120.0), "120.0");
  EXPECT_EQ(f(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(f(NAN), "nan");
}

TEST(ArrowStream, AMissingColumnIsADataErrorListingTheColumns) {
  int releases = 0;
  TestStream t = five_rows(&releases);
  t.columns.erase(t.columns.begin() + 4);  // score
  ArrowArrayStream s = make_stream(&t);
  try {
    ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Required, "frame");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("column 'score' is not in the data (columns: label, age"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(releases, 1);  // the stream, released by the failed reader
}

TEST(ArrowStream, WithoutItsLabelTheRowsAreShorterInOptionalMode) {
  int releases = 0;
  TestStream t = five_rows(&releases);
  t.columns.erase(t.columns.begin());  // label
  ArrowArrayStream s = make_stream(&t);
  ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Optional, "frame");
  EXPECT_FALSE(r.has_label());
  Record rec;
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec.fields.size(), 4u);
}

TEST(ArrowStream, AProducerErrorIsADataErrorWithItsMessage) {
  int releases = 0;
  TestStream t = five_rows(&releases);
  t.fail_at_batch = 1;
  ArrowArrayStream s = make_stream(&t);
  ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Required, "frame");
  Record rec;
  ASSERT_TRUE(r.next(rec) && r.next(rec));
  try {
    r.next(rec);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("frame: the Arrow stream's get_next failed (error " +
                                         std::to_string(EIO) + "): disk on fire"),
              std::string::npos)
        << e.what();
  }
}

TEST(ArrowStream, LengthsOffsetsAndIndicesFromTheProducerAreChecked) {
  auto expect_error = [](TestStream& t, const std::string& what) {
    ArrowArrayStream s = make_stream(&t);
    ArrowRecordReader r(&s, adult_like_schema(), LabelMode::Required, "frame");
    try {
      Record rec;
      while (r.next(rec)) {
      }
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  int releases = 0;
  {
    TestStream t = five_rows(&releases);
    t.columns[3].dictionary = std::make_unique<TestColumn>(utf8("", {"a", "b"}));  // index 2
    expect_error(t, "frame:4: column 'city': dictionary index 2 outside its 2 values");
  }
  {
    TestStream t = five_rows(&releases);
    t.columns[3].dictionary = std::make_unique<TestColumn>(utf8("", {"a", "b", "c"}));
    int32_t bad[4] = {0, 1, 0, 3};  // decreasing offsets
    std::memcpy(t.columns[3].dictionary->values.data(), bad, sizeof(bad));
    expect_error(t, "column 'city': string offsets out of order");
  }
  {
    TestStream t = five_rows(&releases);
    t.columns[1].claimed_length = 1;  // shorter than the first batch
    expect_error(t, "frame: column 'age': the array has 1 rows, the batch needs 2");
  }
}

// A larger table: numbers with nulls, text tokens with spaces, a label; and its CSV.
TestStream many_rows(int* releases, int rows, std::string* csv) {
  TestStream t;
  t.releases = releases;
  t.rows = rows;
  t.batch_rows = 37;
  std::vector<int64_t> label;
  std::vector<int32_t> age;
  std::vector<bool> age_valid;
  std::vector<std::string> city;
  std::vector<double> score;
  std::ostringstream text;
  uint64_t x = 7;
  auto next = [&] { return (x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  for (int i = 0; i < rows; ++i) {
    age.push_back(18 + static_cast<int32_t>(next() % 60));
    age_valid.push_back(next() % 9 != 0);
    city.push_back(" c" + std::to_string(next() % 13));
    score.push_back(static_cast<double>(next() % 100000) / 7.0);
    label.push_back((age.back() > 40) != (next() % 5 == 0));
    char buf[40];
    text << (age_valid.back() ? std::to_string(age.back()) : "") << "," << city.back() << ",x,"
         << std::string(buf, format_double_like_python(score.back(), buf)) << "," << label.back()
         << "\n";
  }
  t.columns.push_back(fixed<double>("score", "g", score));
  t.columns.push_back(utf8("city", city));
  t.columns.push_back(fixed<int64_t>("label", "l", label));
  t.columns.push_back(fixed<int32_t>("age", "i", age, age_valid));
  *csv = text.str();
  return t;
}

TEST(ArrowStream, APreparedDatasetFromArrowEqualsTheSameRowsPreparedFromCsv) {
  TempDir tmp;
  int releases = 0;
  std::string csv;
  std::vector<std::unique_ptr<TestStream>> streams;
  many_rows(&releases, 500, &csv);
  testing::write_file(tmp.file("rows.csv"), csv);
  PrepareOptions po;
  po.shard_rows = 64;
  PrepareInputs text;
  text.schema = adult_like_schema();
  text.train.path = tmp.file("rows.csv");
  text.validation_fraction = 0.2;
  text.seed = 11;
  const PrepareResult from_text = prepare_dataset(text, tmp.file("text"), po);

  ArrowPrepareInputs arrow;
  arrow.schema = text.schema;
  arrow.train = [&](ArrowArrayStream* out) {
    std::string unused;
    streams.push_back(std::make_unique<TestStream>(many_rows(&releases, 500, &unused)));
    *out = make_stream(streams.back().get());
  };
  arrow.train_name = "frame";
  arrow.validation_fraction = 0.2;
  arrow.seed = 11;
  const PrepareResult from_arrow = prepare_dataset_from_arrow(arrow, tmp.file("arrow"), po);
  EXPECT_EQ(streams.size(), 3u);  // fit, train split, validation split
  EXPECT_EQ(from_arrow.rows, from_text.rows);
  EXPECT_EQ(from_arrow.shards_written, from_text.shards_written);
  const PreparedDataset a = PreparedDataset::open(tmp.file("arrow"));
  const PreparedDataset b = PreparedDataset::open(tmp.file("text"));
  EXPECT_EQ(a.manifest().preprocessor_json, b.manifest().preprocessor_json);
  for (const char* split : {"train", "validation"}) {
    const EncodedTable ta = read_prepared_table(a, split), tb = read_prepared_table(b, split);
    EXPECT_EQ(ta.rows, tb.rows) << split;
    EXPECT_EQ(ta.dense, tb.dense) << split;
    EXPECT_EQ(ta.cat, tb.cat) << split;
    EXPECT_EQ(ta.labels, tb.labels) << split;
    EXPECT_EQ(ta.lines, tb.lines) << split;
  }
  EXPECT_GT(a.manifest().rows("validation"), 50);
}

TEST(ArrowStream, ABadRowInArrowInputNamesTheSourceRowAndColumn) {
  TempDir tmp;
  int releases = 0;
  std::string csv;
  TestStream t = many_rows(&releases, 50, &csv);
  t.columns[2] = fixed<int64_t>("label", "l", std::vector<int64_t>(50, 1), {});
  ArrowPrepareInputs arrow;
  arrow.schema = adult_like_schema();
  arrow.schema.columns[1].type = ColumnType::Numeric;  // city's text is not a number
  arrow.train = [&](ArrowArrayStream* out) { *out = make_stream(&t); };
  try {
    prepare_dataset_from_arrow(arrow, tmp.file("arrow"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()).rfind("data:1:column 2 (city): expected a number, got 'c", 0),
              0u)
        << e.what();
  }
  arrow.schema = adult_like_schema();
  arrow.schema.columns[4].positive = {"yes"};  // label 1 is not a label token now
  arrow.schema.columns[4].negative = {"no"};
  t.next_row = 0;
  try {
    prepare_dataset_from_arrow(arrow, tmp.file("arrow"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()).rfind("data:1:column 5 (label): ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace tessera
