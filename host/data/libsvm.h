#pragma once
// libSVM / libFM sparse text: one row per line, "label index:value index:value ...", separated by
// spaces or tabs; a '#' starts a comment; blank lines are skipped. The label is 0/1 or -1/+1 and
// reads as 0/1. Indices are kept as written (libSVM files are usually 1-based, libFM 0-based), so
// the dense width is max index + 1. Bad rows name "path:line:token N 'text'" and follow the
// BadRowPolicy like the delimited reader.
//
// Limits, checked before anything is allocated, since the rows are densified (one float per
// feature per row, and the model's first layer has one input per feature):
//   - a feature index must be below kLibSvmMaxFeatures, 65,536 (a bad row naming file, line and
//     token): a first layer of 256 units on that many inputs already holds 16.7M weights, and
//     one row of a small file costs 256 KiB densified (at 2^20 it was 4 MiB a row, so a few
//     bytes of input asked for megabytes); wider sparse data wants hashing or a CSV schema;
//   - a densified table holds at most kLibSvmMaxDenseValues floats, rows x width (256 MiB; the
//     behaviour task holds about three such tables at once: all rows, then the train and
//     validation parts, and the test file): an error naming the file, its rows and the width.
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/row_parser.h"
#include "host/data/schema.h"

namespace tessera {

inline constexpr int64_t kLibSvmMaxFeatures = int64_t{1} << 16;
inline constexpr int64_t kLibSvmMaxDenseValues = int64_t{1} << 26;

// Compressed sparse rows.
struct SparseTable {
  std::vector<float> labels;     // [rows] 0 or 1
  std::vector<int64_t> offsets;  // [rows + 1] row r's entries are [offsets[r], offsets[r+1])
  std::vector<int64_t> indices;  // [nnz] feature index as written in the file
  std::vector<float> values;     // [nnz]
  std::vector<int64_t> lines;    // [rows] 1-based source line of each row
  int64_t max_index = -1;        // largest index seen; -1 when there are no entries
  std::string path;              // the file read, for messages

  int64_t rows() const { return static_cast<int64_t>(labels.size()); }
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
};

SparseTable read_libsvm(const FileSpec& file, BadRowPolicy on_error = BadRowPolicy::Error,
                        BadRowReport* report = nullptr);

enum class OutOfRangeFeature : uint8_t { Error, Drop };

// Row-major [rows, width] floats, zero where a row has no entry; a repeated index in a row keeps
// the last value. An index >= width (a test file wider than its train file) is an error naming
// the row's line, or is dropped. A width above kLibSvmMaxFeatures, or rows x width above
// kLibSvmMaxDenseValues, is an error (Data) naming the file.
std::vector<float> densify(const SparseTable& table, int64_t width,
                           OutOfRangeFeature out_of_range = OutOfRangeFeature::Error);

}  // namespace tessera
