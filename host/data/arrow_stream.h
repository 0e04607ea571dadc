#pragma once
// Tabular rows from an Arrow C stream (the Arrow C Data Interface's ArrowArrayStream: what
// pyarrow, pandas and polars hand over through `__arrow_c_stream__`), read batch by batch with no
// Arrow library: the three structs below are the interface's published ABI, declared here in our
// own words.
//
// ArrowRecordReader maps the stream's columns by name onto a behaviour schema's columns and gives
// each row as a Record (record_reader.h) in the schema's column order, so the same RowParser,
// Preprocessor and bad-row policy as the text path apply to it:
//   numeric      int8..int64, uint8..uint64, float32, float64, bool (1/0); written as the
//                shortest text that reads back to the same value; null or NaN -> the schema's
//                first missing token. A text column (pandas reads "?" into an object column) is
//                read as the text path reads the field: a missing token, or a number.
//   categorical  utf8, large_utf8, a dictionary of either (or of integers), integers and bools:
//                the token itself, trimmed as a text field would be when the schema trims; a
//                float value is written as Python writes it ("3.0"), so tokens equal those of
//                the DataFrame written as CSV. null -> the first missing token.
//   label        any of the above; the parser reads it as the text path does.
//   ignore       not read (the stream need not have it).
// Columns of the stream the schema does not name are not read. A row's `line` is its 1-based
// position in the stream and its `path` the reader's name ("DataFrame", a Parquet file's path),
// so a bad row reads "NAME:ROW:column N (age): expected a number, got 'x'".
//
// Trust: lengths, offsets and dictionary indices come from the producer and are checked before
// use (a child shorter than its batch, a negative or decreasing string offset, an index outside
// its dictionary, a missing buffer: a Data error naming the column and row). The sizes of the
// buffers themselves are not part of the interface; as every consumer must, the reader relies
// on a producer's buffers holding what its lengths and offsets say.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/data/record_reader.h"
#include "host/data/schema.h"

extern "C" {
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4
// A column's type: `format` is the interface's format string ("l" int64, "u" utf8, "+s" struct).
struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};
// A column's values: `length` rows from `offset`, `buffers` as the format lays them out.
struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};
#endif
#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE
// Batches, pulled one at a time: get_next's `out` released (release == NULL) at the end.
struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};
#endif
}

namespace tessera {

class ArrowRecordReader {
 public:
  // Takes over `stream` (its struct is moved out and the caller's marked released), reads its
  // schema and maps the columns: a column the schema needs and the stream lacks, or has in a
  // type above, is a Data error naming it. With LabelMode::Optional a stream without the label
  // column gives rows without it (the label must be the schema's last column, as for text).
  ArrowRecordReader(ArrowArrayStream* stream, const TableSchema& schema, LabelMode label,
                    std::string name);
  ~ArrowRecordReader();
  ArrowRecordReader(const ArrowRecordReader&) = delete;
  ArrowRecordReader& operator=(const ArrowRecordReader&) = delete;

  // The next row; false after the last batch. Fields are valid until the next call.
  bool next(Record& out);
  bool has_label() const;  // whether the stream has the label column
  const std::string& name() const;
  int64_t records_read() const;  // rows returned so far
  int64_t batches_read() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A fresh stream of the same rows at each call (fitting and encoding read them once each).
using ArrowStreamFactory = std::function<void(ArrowArrayStream* out)>;

// Python's repr of a double: the shortest text that reads back to it, with ".0" on an integral
// value ("3.0", "1e+16", "nan", "inf"). Returns the length written to `out` (32 bytes suffice).
int format_double_like_python(double v, char* out);

}  // namespace tessera
