#include "host/data/encoded_table.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/gather_rows.h"
#include "host/data/record_reader.h"
#include "host/data/stream_encoder.h"

namespace tessera {

void EncodedTable::clear() {
  rows = 0;
  dense.clear();
  cat.clear();
  labels.clear();
  lines.clear();
}

bool RowSelection::selected(int64_t ordinal) const {
  if (part == SplitPart::All) return true;
  const uint64_t h = math::mix64(seed ^ math::mix64(static_cast<uint64_t>(ordinal)));
  const double u = static_cast<double>(h >> 11) * 0x1p-53;  // [0, 1)
  const bool validation = u < validation_fraction;
  return part == SplitPart::Validation ? validation : !validation;
}

Preprocessor fit_preprocessor(const FileSpec& train, const TableSchema& schema,
                              const PreprocessOptions& options, const RowSelection& rows,
                              BadRowReport* report) {
  RowParser parser(schema, LabelMode::Required);
  PreprocessorFitter fitter(parser.schema(), options);
  RecordReader reader(train, parser.schema());
  if (parser.schema().header)
    parser.check_header(reader.header(), reader.path(), reader.header_line());
  Record rec;
  ParsedRow row;
  int64_t ordinal = 0;
  while (reader.next(rec)) {
    if (!rows.selected(ordinal++)) continue;
    if (parser.parse(rec, row, report)) fitter.add(row);
  }
  return finish_fit(fitter, train, ordinal, report);
}

Preprocessor finish_fit(PreprocessorFitter& fitter, const FileSpec& train, int64_t records,
                        const BadRowReport* report) {
  Preprocessor p = fitter.finish();
  if (p.train_rows() == 0) {
    TESSERA_THROW(Data, train.path
                            << ": no usable training rows (" << records << " records read"
                            << (report != nullptr && report->skipped > 0 ? ", " + report->summary()
                                                                         : std::string())
                            << ")");
  }
  return p;
}

EncodedTable load_table(const FileSpec& file, const Preprocessor& pre, const LoadOptions& options,
                        LoadReport* report) {
  StreamOptions so;
  so.label = options.label;
  so.rows = options.rows;
  StreamEncoder enc(file, pre, so);
  EncodedTable t;
  t.n_dense = pre.n_dense();
  t.n_cat = pre.n_cat();
  enc.append_to(t, std::numeric_limits<int64_t>::max());
  t.has_labels = enc.has_labels();
  if (report != nullptr) {
    report->records += enc.records_read();
    report->bad_rows.merge(enc.bad_rows());
    report->encode.merge(enc.encode_stats());
  }
  return t;
}

TrainValidation load_train_validation(const FileSpec& file, const TableSchema& schema,
                                      const PreprocessOptions& options, double validation_fraction,
                                      uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    TESSERA_THROW(Config, "validation fraction must be in [0, 1), got " << validation_fraction);
  }
  TrainValidation out;
  RowSelection train_rows{SplitPart::Train, validation_fraction, seed};
  RowSelection val_rows{SplitPart::Validation, validation_fraction, seed};
  BadRowReport fit_report;
  out.preprocessor = fit_preprocessor(file, schema, options, train_rows, &fit_report);
  out.train = load_table(file, out.preprocessor, LoadOptions{LabelMode::Required, train_rows},
                         &out.train_report);
  out.validation = load_table(file, out.preprocessor, LoadOptions{LabelMode::Required, val_rows},
                              &out.validation_report);
  return out;
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

EncodedTable take_rows(const EncodedTable& t, const std::vector<int64_t>& rows) {
  for (const int64_t r : rows)
    TESSERA_CHECK(r >= 0 && r < t.rows, "take_rows: row " << r << " of " << t.rows);
  EncodedTable out;
  out.n_dense = t.n_dense;
  out.n_cat = t.n_cat;
  out.has_labels = t.has_labels;
  out.rows = static_cast<int64_t>(rows.size());
  out.dense = gather_rows(t.dense, t.n_dense, rows);
  out.cat = gather_rows(t.cat, t.n_cat, rows);
  if (t.has_labels) out.labels = gather_rows(t.labels, 1, rows);
  if (!t.lines.empty()) out.lines = gather_rows(t.lines, 1, rows);
  return out;
}

void shuffle_rows(EncodedTable& t, uint64_t seed) {
  t = take_rows(t, seeded_permutation(t.rows, seed));
}

TableSplit split_table(const EncodedTable& t, double validation_fraction, uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction <= 1.0)) {
    TESSERA_THROW(Config, "validation fraction must be in [0, 1], got " << validation_fraction);
  }
  const int64_t n_val = std::llround(static_cast<double>(t.rows) * validation_fraction);
  const std::vector<int64_t> perm = seeded_permutation(t.rows, seed);
  std::vector<uint8_t> is_val(static_cast<size_t>(t.rows), 0);
  for (int64_t i = 0; i < n_val; ++i) is_val[perm[i]] = 1;
  std::vector<int64_t> train_rows, val_rows;
  train_rows.reserve(t.rows - n_val);
  val_rows.reserve(n_val);
  for (int64_t r = 0; r < t.rows; ++r) (is_val[r] ? val_rows : train_rows).push_back(r);
  return TableSplit{take_rows(t, train_rows), take_rows(t, val_rows)};
}

EncodedTable table_from_sparse(const SparseTable& s, int64_t width,
                               OutOfRangeFeature out_of_range) {
  EncodedTable t;
  t.n_dense = width > 0 ? width : s.max_index + 1;
  t.n_cat = 0;
  t.rows = s.rows();
  t.has_labels = true;
  t.dense = densify(s, t.n_dense, out_of_range);
  t.labels = s.labels;
  t.lines = s.lines;
  return t;
}

}  // namespace tessera
