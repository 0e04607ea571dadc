// Byte-range parts of a text file (host/data/text_split.h) read through the readers' ranges
// (FileSpec::range, LineReader): for many random files and part counts, the parts' lines and
// records, put together in part order, are exactly the whole file's, with the same line numbers.
#include <gtest/gtest.h>
#include <zlib.h>

#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/data/buffered_file.h"
#include "host/data/record_reader.h"
#include "host/data/text_split.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

struct Line {
  int64_t number;
  std::string text;
  bool operator==(const Line& o) const { return number == o.number && text == o.text; }
};

std::vector<Line> read_lines(const std::string& path, int skip, const ByteRange& range = {}) {
  LineReader r(path, skip, {}, range);
  std::vector<Line> out;
  std::string_view line;
  int64_t n = 0;
  while (r.next(line, n)) out.push_back({n, std::string(line)});
  return out;
}

// Every part of `world`, its first line found from the parts' newline counts as distributed
// scoring finds it (each part counts its own, the counts are summed in part order).
std::vector<ByteRange> parts(const std::string& path, int skip, bool header, int world) {
  std::vector<ByteRange> ps;
  int64_t lines_before = 0;
  for (int r = 0; r < world; ++r) {
    ByteRange p = text_part(path, skip, header, r, world);
    p.first_line = 1 + lines_before;
    lines_before += count_newlines(path, p.begin, p.end);
    ps.push_back(p);
  }
  return ps;
}

// A random file: lines of 0-40 characters (some blank, some only spaces), "\n" or "\r\n"
// endings, with or without a final newline, sometimes a byte-order mark.
std::string random_text(std::mt19937& rng, int lines, bool crlf) {
  std::string s = rng() % 4 == 0 ? "\xEF\xBB\xBF" : "";
  for (int i = 0; i < lines; ++i) {
    const int len = static_cast<int>(rng() % 41);
    const bool spaces = rng() % 10 == 0;
    for (int k = 0; k < len; ++k) s += spaces ? ' ' : static_cast<char>('a' + rng() % 26);
    if (i + 1 < lines || rng() % 2) s += crlf && rng() % 2 ? "\r\n" : "\n";
  }
  return s;
}

TEST(TextSplit, EveryLineExactlyOnceForRandomFilesAndPartCounts) {
  TempDir dir;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int n_lines = static_cast<int>(rng() % 60);
    const std::string p = write_file(dir.file("t.txt"), random_text(rng, n_lines, trial % 2));
    const int skip = static_cast<int>(rng() % 3);
    const std::vector<Line> whole = read_lines(p, skip);
    for (int world : {1, 2, 3, 4, 7, 16, 70}) {
      std::vector<Line> joined;
      int64_t previous_end = 0;
      for (const ByteRange& r : parts(p, skip, /*header=*/false, world)) {
        EXPECT_EQ(r.begin, previous_end) << "parts must tile the file";
        previous_end = r.end;
        const std::vector<Line> mine = read_lines(p, skip, r);
        joined.insert(joined.end(), mine.begin(), mine.end());
      }
      ASSERT_EQ(joined.size(), whole.size()) << "trial " << trial << ", " << world << " parts";
      for (size_t i = 0; i < whole.size(); ++i)
        EXPECT_EQ(joined[i], whole[i]) << "trial " << trial << ", line " << i;
    }
  }
}

struct Rec {
  std::vector<std::string> fields;
  int64_t line;
  bool operator==(const Rec& o) const { return fields == o.fields && line == o.line; }
};

std::vector<Rec> read_records(const std::string& path, const TableSchema& schema, int skip,
                              const ByteRange& range, std::vector<std::string>* header) {
  FileSpec f{path, skip};
  f.range = range;
  RecordReader r(f, schema);
  *header = r.header();
  std::vector<Rec> out;
  Record rec;
  while (r.next(rec)) out.push_back({{rec.fields.begin(), rec.fields.end()}, rec.line});
  return out;
}

// A CSV with skipped lines, blank lines before a header, quoted fields and CRLF: every part reads
// the header from the file's start, and the data records once each, with their line numbers.
TEST(TextSplit, CsvRecordsWithHeaderAndSkippedLinesExactlyOnce) {
  TempDir dir;
  std::mt19937 rng(11);
  TableSchema schema;
  schema.header = true;
  for (int trial = 0; trial < 40; ++trial) {
    std::string text = "|a note\r\n\n  \nx,\"y, z\",w\r\n";
    const int rows = static_cast<int>(rng() % 30);
    for (int i = 0; i < rows; ++i) {
      text += std::to_string(i) + ",\"q" + std::to_string(rng() % 1000) + ", r\"," +
              (rng() % 5 == 0 ? "" : "v") + (i % 3 ? "\r\n" : "\n");
      if (rng() % 6 == 0) text += "\n";  // a blank line, not a record
    }
    const std::string p = write_file(dir.file("t.csv"), text);
    std::vector<std::string> header;
    const std::vector<Rec> whole = read_records(p, schema, 1, {}, &header);
    ASSERT_EQ(header, (std::vector<std::string>{"x", "y, z", "w"}));
    ASSERT_EQ(whole.size(), static_cast<size_t>(rows));
    for (int world : {2, 3, 5, 40}) {
      std::vector<Rec> joined;
      for (const ByteRange& r : parts(p, 1, /*header=*/true, world)) {
        std::vector<std::string> h;
        const std::vector<Rec> mine = read_records(p, schema, 1, r, &h);
        EXPECT_EQ(h, header) << "every part reads the header";
        joined.insert(joined.end(), mine.begin(), mine.end());
      }
      EXPECT_EQ(joined, whole) << "trial " << trial << ", " << world << " parts";
    }
  }
}

TEST(TextSplit, DataStartSkipsBomLinesAndHeader) {
  TempDir dir;
  const std::string p = write_file(dir.file("d.csv"), "\xEF\xBB\xBFskip\n\n \r\nh1,h2\r\n1,2\n");
  EXPECT_EQ(data_start(p, 0, false), 0);  // the byte-order mark is part of line 1
  EXPECT_EQ(data_start(p, 0, true), 8);   // "skip" is the header then
  EXPECT_EQ(data_start(p, 1, false), 8);
  EXPECT_EQ(data_start(p, 1, true), 19);  // past the blank lines and "h1,h2\r\n"
  EXPECT_EQ(data_start(p, 9, true), 23);  // more lines skipped than there are: the end
}

TEST(TextSplit, GzipFilesAreRecognisedAndNotCut) {
  TempDir dir;
  const std::string p = dir.file("z.csv.gz");
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "1,2\n3,4\n5,6\n";
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  EXPECT_TRUE(is_gzip_file(p));
  EXPECT_FALSE(is_gzip_file(write_file(dir.file("plain.csv"), text)));
  // A range that starts inside a gzip stream has no meaning: refused, not misread.
  EXPECT_THROW(read_lines(p, 0, ByteRange{4, -1, 2}), Error);
}

TEST(TextSplit, MissingFileIsAnIoErrorNamingIt) {
  try {
    text_part("/nonexistent/x.csv", 0, false, 0, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace tessera
