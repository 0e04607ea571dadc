#pragma once
// EncodedTable: a whole data file encoded by a fitted Preprocessor, in the layout the models
// consume; and the file-level entry points: fit a Preprocessor on a train file, load a file,
// shuffle, split.
//
// Train/validation from ONE file, with the preprocessor fitted on the train part only: a
// RowSelection assigns each data record (by its ordinal in the file, bad records included) to
// train or validation with a seeded hash, so both passes (fit, then load) agree without holding
// the file in memory. The validation share is `validation_fraction` up to sampling noise
// (binomial). load_train_validation() does both passes. split_table() instead splits an already
// encoded table exactly (round(rows * fraction) validation rows) with std::mt19937_64.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "host/data/libsvm.h"
#include "host/data/preprocessor.h"
#include "host/data/row_parser.h"
#include "host/data/schema.h"

namespace tessera {

struct EncodedTable {
  int64_t rows = 0;
  int64_t n_dense = 0;
  int64_t n_cat = 0;
  bool has_labels = false;
  std::vector<float> dense;    // [rows, n_dense] normalised numeric features
  std::vector<int64_t> cat;    // [rows, n_cat] global rows of the flat embedding table
  std::vector<float> labels;   // [rows] 0/1; empty when !has_labels
  std::vector<int64_t> lines;  // [rows] 1-based line of each row in its source file

  void clear();  // drops the rows, keeps the widths
};

enum class SplitPart : uint8_t { All, Train, Validation };

struct RowSelection {
  SplitPart part = SplitPart::All;
  double validation_fraction = 0.0;
  uint64_t seed = 0;
  // `record_ordinal`: 0-based index of the data record in its file.
  bool selected(int64_t record_ordinal) const;
};

struct LoadOptions {
  LabelMode label = LabelMode::Required;
  RowSelection rows;
};

struct LoadReport {
  int64_t records = 0;    // data records read (selected or not, good or bad)
  BadRowReport bad_rows;  // under BadRowPolicy::Skip
  EncodeStats encode;     // rows encoded and OOV counts per categorical column
};

// Pass 1: streams `train` once and fits the preprocessor on the selected rows.
Preprocessor fit_preprocessor(const FileSpec& train, const TableSchema& schema,
                              const PreprocessOptions& options, const RowSelection& rows = {},
                              BadRowReport* report = nullptr);

// The fitted preprocessor of `fitter`, which read `records` records of `train`; a Data error
// naming the file (and the bad rows skipped) when no row was usable. Both fits end with it.
Preprocessor finish_fit(PreprocessorFitter& fitter, const FileSpec& train, int64_t records,
                        const BadRowReport* report);

// Pass 2: encodes the selected rows of `file` with the preprocessor's schema.
EncodedTable load_table(const FileSpec& file, const Preprocessor& preprocessor,
                        const LoadOptions& options = {}, LoadReport* report = nullptr);

struct TrainValidation {
  Preprocessor preprocessor;  // fitted on `train` rows only
  EncodedTable train;
  EncodedTable validation;
  LoadReport train_report;
  LoadReport validation_report;
};
TrainValidation load_train_validation(const FileSpec& file, const TableSchema& schema,
                                      const PreprocessOptions& options, double validation_fraction,
                                      uint64_t seed);

// A permutation of [0, n) from std::mt19937_64(seed) by Fisher-Yates with rejection sampling
// (no std::*_distribution, whose output differs between standard libraries): the same seed gives
// the same permutation on every platform.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);
EncodedTable take_rows(const EncodedTable& table, const std::vector<int64_t>& rows);
void shuffle_rows(EncodedTable& table, uint64_t seed);

struct TableSplit {
  EncodedTable train;
  EncodedTable validation;  // round(rows * fraction) rows chosen by seeded_permutation
};
// Both parts keep the rows' original order.
TableSplit split_table(const EncodedTable& table, double validation_fraction, uint64_t seed);

// A libSVM table as dense features (n_cat = 0); width 0 = max index + 1.
EncodedTable table_from_sparse(const SparseTable& sparse, int64_t width = 0,
                               OutOfRangeFeature out_of_range = OutOfRangeFeature::Error);

// Uniform in [0, n) from the engine, by rejection (unbiased, and defined by mt19937_64 alone): the
// shuffles of the tables and of the prepared reader's buffer.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

}  // namespace tessera
