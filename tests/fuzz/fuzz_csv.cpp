// Fuzz target: the CSV/TSV-with-schema tabular reader of the behaviour task, as a data file
// reaches it: RecordReader (quoting, trimming, BOM, gzip, the window limit) -> RowParser (field
// counts, numbers, labels, missing tokens, the bad-row policy) -> PreprocessorFitter (fit on the
// train rows) -> its JSON round trip -> load_table / StreamEncoder (encode the validation rows).
//
// Input: 6 option bytes, then the file's bytes.
//   0  flags: 1 header, 2 trim, 4 on_error skip, 8 scoring (LabelMode::Optional), 16 a small
//      reader window (16-byte blocks, 512-byte limit), 32 skip one leading line
//   1  delimiter: one of , \t ; | space, or the byte itself when >= 0x80 is set (raw)
//   2  columns: low 3 bits + 1 columns; high bits pick the label's column (modulo)
//   3  column types, 2 bits each for columns 0-3 (numeric, categorical, ignore, numeric log1p);
//      columns 4-7 repeat the pattern; the label column is the one byte 2 picks
//   4  label tokens: 0 numeric, 1 ">50K"/"<=50K", 2 "yes"/"no"
//   5  preprocessing: 2 bits normalisation, bit 2 bins (4 bins), bit 3 hashing (7 buckets),
//      bit 4 min_count 2, bit 5 plain quantile edges
// Invariants checked: encoded categorical ids are inside the embedding table, dense features are
// finite, the JSON round trip keeps the widths, the stream's chunks add up to load_table's rows.
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/record_reader.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/table_checks.h"

namespace {

using namespace tessera;

struct Options {
  TableSchema schema;
  PreprocessOptions pre;
  LabelMode label = LabelMode::Required;
  bool small_window = false;
  int skip_lines = 0;
};

Options read_options(fuzz::ByteReader& in) {
  Options o;
  const uint8_t flags = in.byte();
  o.schema.header = (flags & 1) != 0;
  o.schema.trim = (flags & 2) != 0;
  o.schema.on_error = (flags & 4) != 0 ? BadRowPolicy::Skip : BadRowPolicy::Error;
  o.label = (flags & 8) != 0 ? LabelMode::Optional : LabelMode::Required;
  o.small_window = (flags & 16) != 0;
  o.skip_lines = (flags & 32) != 0 ? 1 : 0;
  const uint8_t d = in.byte();
  static const char kDelims[] = {',', '\t', ';', '|', ' '};
  o.schema.delimiter = (d & 0x80) != 0 ? static_cast<char>(d & 0x7f) : kDelims[d % 5];
  const uint8_t shape = in.byte();
  const int n_cols = (shape & 7) + 1;
  const int label_col = (shape >> 3) % n_cols;
  const uint8_t types = in.byte();
  const uint8_t label_kind = in.byte() % 3;
  for (int c = 0; c < n_cols; ++c) {
    ColumnSpec col;
    col.name = "c" + std::to_string(c);
    if (c == label_col) {
      col.type = ColumnType::Label;
      if (label_kind == 1) col.positive = {">50K"}, col.negative = {"<=50K"};
      if (label_kind == 2) col.positive = {"yes"}, col.negative = {"no"};
    } else {
      switch ((types >> (2 * (c % 4))) & 3) {
        case 0:
          col.type = ColumnType::Numeric;
          break;
        case 1:
          col.type = ColumnType::Categorical;
          break;
        case 2:
          col.type = ColumnType::Ignore;
          break;
        default:
          col.type = ColumnType::Numeric;
          col.transform = NumericTransform::Log1p;
      }
    }
    o.schema.columns.push_back(std::move(col));
  }
  const uint8_t p = in.byte();
  static const Normalization kNorm[] = {Normalization::Standard, Normalization::MinMax,
                                        Normalization::None, Normalization::Standard};
  o.pre.numeric.normalization = kNorm[p & 3];
  o.pre.numeric.bins = (p & 4) != 0 ? 4 : 0;
  o.pre.numeric.bin_edges = (p & 32) != 0 ? BinEdges::Quantile : BinEdges::DistinctQuantile;
  o.pre.categorical.hash_buckets = (p & 8) != 0 ? 7 : 0;
  o.pre.categorical.min_count = (p & 16) != 0 ? 2 : 1;
  return o;
}

// The raw records through a small window: block refills, window growth, the too-long record.
void read_records(const FileSpec& file, const TableSchema& schema) {
  RecordReader reader(file, schema, BufferedFileOptions{16, 512});
  Record rec;
  int64_t last_line = 0;
  while (reader.next(rec)) {
    fuzz::check(rec.line > last_line, "record line numbers increase");
    last_line = rec.line;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile tmp("csv");
  fuzz::ByteReader in(data, size);
  const Options o = read_options(in);
  const FileSpec file{tmp.write(in.rest()), o.skip_lines};
  if (o.small_window) {
    fuzz::expect_input_errors([&] { read_records(file, o.schema); });
    return 0;
  }
  fuzz::expect_input_errors([&] { fuzz::fit_and_encode(file, o.schema, o.pre, o.label); });
  return 0;
}
