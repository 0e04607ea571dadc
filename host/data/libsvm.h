#pragma once
// libSVM / libFM sparse text: one row per line, "label entry entry ...", separated by spaces or
// tabs; a '#' starts a comment; blank lines are skipped. The label is 0/1 or -1/+1 and reads as
// 0/1. An entry is "feature:value" (libSVM) or "field:feature:value" (libFM with fields, as
// libFFM writes it); the first row with an entry fixes which for the whole file, and a row
// written the other way is a bad row. Indices are kept as written (libSVM files are usually
// 1-based, libFM 0-based). Bad rows name "path:line:token N 'text'" and follow the BadRowPolicy
// like the delimited reader.
//
// The rows are read as compressed sparse rows (SparseTable), a block at a time (LibSvmReader) or
// all at once (read_libsvm); memory grows with the entries, never with the feature width.
//
// Limits on what a row may name, checked as it is read (a bad row naming file, line and token):
//   - LibSvmReadOptions::max_index, the largest feature index. Its default, kLibSvmMaxFeatures - 1
//     (65,535), is the limit of the dense route (densify below: one float per feature per row,
//     so a few bytes of input must not ask for megabytes); the sparse route (the behaviour task's
//     models, pipelines/behaviour/sparse_input.h) reads up to kLibSvmMaxSparseIndex;
//   - a field index must be below kLibFmMaxFields (each field is an embedding table).
// densify() refuses a table of more than kLibSvmMaxDenseValues floats, rows x width (256 MiB):
// an error naming the file, its rows and the width.
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/buffered_file.h"
#include "host/data/row_parser.h"
#include "host/data/schema.h"

namespace tessera {

inline constexpr int64_t kLibSvmMaxFeatures = int64_t{1} << 16;
inline constexpr int64_t kLibSvmMaxDenseValues = int64_t{1} << 26;
inline constexpr int64_t kLibSvmMaxSparseIndex = (int64_t{1} << 31) - 1;
inline constexpr int64_t kLibFmMaxFields = 4096;

// Compressed sparse rows.
struct SparseTable {
  std::vector<float> labels;     // [rows] 0 or 1
  std::vector<int64_t> offsets;  // [rows + 1] row r's entries are [offsets[r], offsets[r+1])
  std::vector<int64_t> indices;  // [nnz] feature index as written in the file
  std::vector<float> values;     // [nnz]
  std::vector<int32_t> fields;   // [nnz] libFM: the field of each entry; empty without fields
  std::vector<int64_t> lines;    // [rows] 1-based source line of each row
  int64_t max_index = -1;        // largest index seen; -1 when there are no entries
  int64_t max_field = -1;        // largest field seen; -1 without fields
  bool has_fields = false;       // the entries are field:feature:value
  std::string path;              // the file read, for messages

  int64_t rows() const { return static_cast<int64_t>(labels.size()); }
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
  void clear();  // no rows (keeps path and has_fields)
};

struct LibSvmReadOptions {
  BadRowPolicy on_error = BadRowPolicy::Error;
  int64_t max_index = kLibSvmMaxFeatures - 1;
  // Why an index above max_index is refused, after "feature index above the limit N".
  std::string limit_reason = "rows are densified: one float per feature";
};

// Reads a file a block of rows at a time, in bounded memory (the block and one line).
class LibSvmReader {
 public:
  LibSvmReader(const FileSpec& file, LibSvmReadOptions options = {},
               BadRowReport* report = nullptr);
  // Replaces `block`'s rows with the next up to max_rows good rows; false when the file had none
  // left. `block.has_fields` says whether the file's entries carry fields (once known).
  bool next_block(SparseTable& block, int64_t max_rows);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  LibSvmReadOptions options_;
  BadRowReport* report_;
  LineReader lines_;
  int fields_mode_ = -1;  // -1: not known yet, 0: feature:value, 1: field:feature:value
};

SparseTable read_libsvm(const FileSpec& file, BadRowPolicy on_error = BadRowPolicy::Error,
                        BadRowReport* report = nullptr);
SparseTable read_libsvm(const FileSpec& file, const LibSvmReadOptions& options,
                        BadRowReport* report = nullptr);

enum class OutOfRangeFeature : uint8_t { Error, Drop };

// Row-major [rows, width] floats, zero where a row has no entry; a repeated index in a row keeps
// the last value. An index >= width (a test file wider than its train file) is an error naming
// the row's line, or is dropped. A width above kLibSvmMaxFeatures, or rows x width above
// kLibSvmMaxDenseValues, is an error (Data) naming the file. Fields, if any, are ignored.
std::vector<float> densify(const SparseTable& table, int64_t width,
                           OutOfRangeFeature out_of_range = OutOfRangeFeature::Error);

}  // namespace tessera
