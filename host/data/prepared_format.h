#pragma once
// The prepared data format (docs/prepared-format.md): a directory holding manifest.json and
// column shards "<split>-<NNNNN>.tshard", written by `tessera prep` (prepared_writer.h) and read by
// PreparedDataset (prepared.h). This file is the format itself: the shard header, the manifest and
// the source fingerprints, with readers that trust nothing in the bytes they are given.
//
// Shard file (little-endian):
//   "TSHARD01"                   8-byte magic
//   u32 version                  kShardVersion
//   u32 n_columns                [1, kMaxShardColumns]
//   u64 rows                     [0, kMaxShardRows]
//   n_columns x 24 bytes         u8 dtype, 3 zero bytes, u32 width, u64 offset, u64 bytes
//   u32 header_crc               zlib CRC-32 of every byte before it
//   column data                  each column's rows * width values, row-major, at a 64-byte
//                                aligned offset, columns in header order without overlap
// The manifest's per-shard crc32 covers the whole file.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessera {

inline constexpr char kShardMagic[9] = "TSHARD01";
inline constexpr uint32_t kShardVersion = 1;
inline constexpr uint32_t kMaxShardColumns = 4096;
inline constexpr uint64_t kMaxShardRows = uint64_t{1} << 40;
inline constexpr uint32_t kMaxColumnWidth = uint32_t{1} << 20;
// Manifest versions: 1 holds the fitted preprocessor inline; 2 names its own file. Both are read.
inline constexpr int kManifestVersion = 2;
inline constexpr int kOldestManifestVersion = 1;
inline constexpr const char* kManifestFile = "manifest.json";
// The fitted preprocessor's own file (written once per prep, named in the manifest with its size
// and CRC-32, so the manifest rewritten after every shard stays small). Manifests written before
// it hold the preprocessor inline as "preprocessor"; both are read.
inline constexpr const char* kPreprocessorFile = "preprocessor.json";

// Stored value types. Ids of a categorical table are its LOCAL rows [0, size) in the narrowest
// type that holds size - 1; the reader adds the table's offset to give EncodedTable's global rows.
enum class PreparedType : uint8_t { F32 = 0, I32 = 1, I16 = 2, U8 = 3, I64 = 4 };
size_t prepared_type_size(PreparedType t);
const char* prepared_type_name(PreparedType t);  // "f32", "i32", "i16", "u8", "i64"
bool prepared_type_from_name(const std::string& name, PreparedType* out);
// The narrowest id type for a table of `rows` rows.
PreparedType narrowest_id_type(int64_t rows);

struct ShardColumn {
  PreparedType type = PreparedType::F32;
  uint32_t width = 1;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct ShardHeader {
  uint64_t rows = 0;
  std::vector<ShardColumn> columns;
};

// Serialises the header and lays the columns out (offsets filled in from rows and widths).
std::string shard_header_bytes(ShardHeader& header);
// Parses and checks a header against the `size` bytes of the file `name` (for messages): magic,
// version, counts, the header CRC, every column inside the file, aligned, non-overlapping and of
// rows * width * type size bytes. Io error "NAME: shard header: ..." otherwise.
ShardHeader parse_shard_header(const uint8_t* data, size_t size, const std::string& name);

// A source file's identity: size, modification time and SHA-256 of its first and last MiB.
struct SourceFingerprint {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string head_sha256, tail_sha256;
  bool operator==(const SourceFingerprint& o) const {
    return size == o.size && mtime_ns == o.mtime_ns && head_sha256 == o.head_sha256 &&
           tail_sha256 == o.tail_sha256;
  }
  bool operator!=(const SourceFingerprint& o) const { return !(*this == o); }
};
SourceFingerprint fingerprint_source(const std::string& path);  // Io error naming it

struct ShardInfo {
  std::string file;  // relative to the dataset directory
  int64_t rows = 0;
  int64_t bytes = 0;
  uint32_t crc32 = 0;
  // Source records [first_record, end_record) (0-based data records, bad ones included).
  int64_t first_record = 0, end_record = 0;
};

// How a split takes a source's records: all of them, or one side of the seeded hash split
// (RowSelection) of training and validation rows.
enum class SourceSelection : uint8_t { All, Train, Validation };

struct SourceInfo {
  std::string path;
  int skip_lines = 0;
  SourceFingerprint fingerprint;
  SourceSelection selection = SourceSelection::All;
  bool appended = false;  // added by `tessera prep --append`, not named by the config
  bool complete = false;  // every record has been read into shards
  int64_t records = 0;    // records read (complete sources: all of them)
  int64_t bad_rows = 0;   // skipped under on_error "skip"
  std::vector<ShardInfo> shards;
  int64_t rows() const;
};

struct PreparedColumnInfo {
  std::string name;  // "label", "dense", "cat:<column name>", "line"
  PreparedType type = PreparedType::F32;
  int64_t width = 1;
  int64_t offset = 0;  // categorical: the table's first global row
};

struct PreparedManifest {
  int version = kManifestVersion;
  bool complete = false;   // false while `tessera prep` runs (or after it was stopped)
  std::string inputs_key;  // hash of what determines the shards' content (prepared_writer.h)
  int64_t shard_rows = 0;
  uint64_t seed = 0;
  double validation_fraction = 0;
  std::string preprocessor_json;  // Preprocessor::to_json_string(), as the model artefact holds
  // Where preprocessor_json is stored: empty = inline in the manifest (the first layout);
  // otherwise a file in the dataset directory of preprocessor_bytes bytes and CRC-32
  // preprocessor_crc32, which parse() reads and checks.
  std::string preprocessor_file;
  int64_t preprocessor_bytes = 0;
  uint32_t preprocessor_crc32 = 0;
  int64_t n_dense = 0, n_cat = 0;
  std::vector<PreparedColumnInfo> columns;                // label, dense, one per table, line
  std::map<std::string, std::vector<SourceInfo>> splits;  // "train", "validation", "test"

  int64_t rows(const std::string& split) const;  // 0 for a split that is absent
  std::string to_json() const;
  // Io error "PATH: FIELD: why" for anything missing, mistyped or inconsistent. A manifest naming
  // a preprocessor file: that file, in the directory of `path`, is read and checked (size,
  // CRC-32: Io error naming it) into preprocessor_json.
  static PreparedManifest parse(const std::string& text, const std::string& path);
  // parse() without reading the preprocessor file (preprocessor_json stays empty when the
  // manifest names one): no file is touched.
  static PreparedManifest parse_text(const std::string& text, const std::string& path);
  // Points the manifest at its preprocessor file `file`, which holds preprocessor_json: records
  // that text's size and CRC-32 (the caller writes the file).
  void store_preprocessor_in(const std::string& file);
};

// "train-00003.tshard"
std::string shard_file_name(const std::string& split, int64_t index);

}  // namespace tessera
