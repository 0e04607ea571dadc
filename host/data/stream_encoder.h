#pragma once
// StreamEncoder: reads a delimited file chunk by chunk and encodes it with a fitted Preprocessor,
// in memory bounded by the chunk size (and the longest record), whatever the file's size. Batch
// scoring uses it directly; load_table() drains one into a single table.
//
// The label column may be absent from scoring input (LabelMode::Optional, the default here): see
// LabelMode in schema.h for the rule. Chunks carry each row's source line, so scores can be
// written next to the raw input line.
#include <cstdint>

#include "host/data/encoded_table.h"
#include "host/data/preprocessor.h"
#include "host/data/record_reader.h"
#include "host/data/row_parser.h"

namespace tessera {

struct StreamOptions {
  int64_t chunk_rows = 4096;
  LabelMode label = LabelMode::Optional;
  RowSelection rows;
};

class StreamEncoder {
 public:
  // Reads `file` with the preprocessor's schema; `preprocessor` must outlive the encoder.
  StreamEncoder(const FileSpec& file, const Preprocessor& preprocessor,
                const StreamOptions& options = {});
  StreamEncoder(const StreamEncoder&) = delete;
  StreamEncoder& operator=(const StreamEncoder&) = delete;

  // Replaces `chunk` with the next up-to-chunk_rows rows; false (and an empty chunk) at the end.
  bool next(EncodedTable& chunk);
  // Appends up to `max_rows` rows to `table` (widths must match); returns how many.
  int64_t append_to(EncodedTable& table, int64_t max_rows);

  // Whether the file carries labels (known once a record or the header has been read).
  bool has_labels() const;
  int64_t records_read() const { return records_; }
  const BadRowReport& bad_rows() const { return bad_rows_; }
  const EncodeStats& encode_stats() const { return stats_; }
  const Preprocessor& preprocessor() const { return pre_; }

 private:
  const Preprocessor& pre_;
  StreamOptions options_;
  RecordReader reader_;
  RowParser parser_;
  Record record_;
  ParsedRow row_;
  BadRowReport bad_rows_;
  EncodeStats stats_;
  int64_t records_ = 0;
  bool done_ = false;
};

}  // namespace tessera
