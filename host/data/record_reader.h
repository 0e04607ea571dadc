#pragma once
// RecordReader: streams the records of a delimited text file (CSV, TSV, Criteo) in bounded memory.
//
// Rules (one file, read once, front to back):
//   - `FileSpec::skip_lines` physical lines are dropped first (adult.test's "|1x3 Cross
//     validator"), then, when `TableSchema::header` is set, the first non-blank record is the
//     header (its names: header()).
//   - Fields are split on `TableSchema::delimiter`. A field that starts (after optional
//     whitespace) with '"' is quoted: it may contain the delimiter, newlines and "" (one quote).
//     A '"' anywhere else is an ordinary character. Text after a closing quote is kept (lenient).
//   - `trim`: spaces and tabs around unquoted fields, and around the quotes of quoted fields, are
//     dropped; whitespace inside quotes is kept.
//   - "\r\n" and "\n" both end a record. A UTF-8 byte-order mark at the start is ignored. The
//     file may be gzip-compressed.
//   - Blank lines (nothing but whitespace) are skipped, so the trailing empty line of adult.data
//     is not a record. A one-column file therefore cannot express an empty value by an empty line.
//   - A record longer than `BufferedFileOptions::max_window` bytes, or a quote left open at the
//     end of the file, is an error (ErrorKind::Data, "path:line: ...").
// Fields are unescaped in place in the read buffer: no allocation per record.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/data/buffered_file.h"
#include "host/data/schema.h"

namespace tessera {

struct Record {
  std::vector<std::string_view> fields;  // valid until the reader's next call to next()
  int64_t line = 0;                      // 1-based physical line on which the record starts
  std::string_view path;                 // the file it came from (owned by the reader)
};

class RecordReader {
 public:
  RecordReader(const FileSpec& file, const TableSchema& schema, BufferedFileOptions options = {});
  ~RecordReader();
  RecordReader(RecordReader&&) noexcept;
  RecordReader& operator=(RecordReader&&) noexcept;

  // The next non-blank data record; false at the end of the file.
  bool next(Record& out);
  // Column names from the header record (empty when the schema has no header).
  const std::vector<std::string>& header() const;
  int64_t header_line() const;  // 0 when there is no header
  const std::string& path() const;
  int64_t records_read() const;  // data records returned so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera
