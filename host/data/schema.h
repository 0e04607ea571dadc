#pragma once
// The schema of a tabular dataset, as given in a config's "data" section. Filled by the config
// layer (host/config), consumed by the readers and the preprocessor (host/data).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/data/buffered_file.h"  // ByteRange

namespace tessera {

enum class ColumnType : uint8_t { Numeric, Categorical, Label, Ignore };
enum class NumericTransform : uint8_t { None, Log1p };  // applied before normalisation
enum class Normalization : uint8_t { None, Standard, MinMax };
// How piecewise-linear bin edges are placed (NumericSpec::bins): at quantiles of the train values,
// or at quantiles of their distinct values. The latter keeps resolution where a column is mostly
// one value (capital gains: 92% zeros) and is the default (uci-adult test AUC 0.913 -> 0.921).
enum class BinEdges : uint8_t { Quantile, DistinctQuantile };
enum class BadRowPolicy : uint8_t { Error, Skip };
enum class TableFormat : uint8_t { Csv, Criteo, LibSvm };
// Whether a data file must carry the label column (train, evaluate) or may omit it (batch
// scoring). Optional: a file whose records have one field fewer than the schema, where the
// schema's label is its last column, is read as having no label (decided once per file, from its
// first record, the header when there is one). Full-width records parse their label as Required.
enum class LabelMode : uint8_t { Required, Optional };

struct ColumnSpec {
  std::string name;
  ColumnType type = ColumnType::Numeric;
  NumericTransform transform = NumericTransform::None;  // numeric columns
  // Label columns: raw tokens that mean 1 and 0. Both empty: the label is parsed as a number
  // (0/1, or any value > 0.5 is positive).
  std::vector<std::string> positive;
  std::vector<std::string> negative;
};

struct FileSpec {
  FileSpec() = default;
  FileSpec(std::string file, int skip) : path(std::move(file)), skip_lines(skip) {}

  std::string path;    // as resolved (absolute or relative to the working directory)
  int skip_lines = 0;  // leading lines to drop before the header/data (adult.test has 1)
  // Not from a config: the part of the file whose records to read (distributed scoring). The
  // skipped lines and the header are still read from the file's start; a range that begins past
  // them is a line start in the data, its records numbered from range.first_line.
  ByteRange range;
};

struct TableSchema {
  TableFormat format = TableFormat::Csv;
  char delimiter = ',';
  bool header = false;  // first (non-skipped) line names the columns
  bool trim = true;     // trim spaces around fields
  std::vector<std::string> missing_tokens = {"", "?", "NA"};
  BadRowPolicy on_error = BadRowPolicy::Error;
  std::vector<ColumnSpec> columns;  // Csv: one per field, in order. Criteo/LibSvm: implied.
  int libsvm_features = 0;          // LibSvm: dense width (0 = max index seen on train + 1)
};

struct CategoricalSpec {
  int64_t min_count = 1;     // tokens seen fewer times on train go to the OOV row
  int64_t hash_buckets = 0;  // > 0: hash tokens into this many rows instead of a vocabulary
};

struct NumericSpec {
  Normalization normalization = Normalization::Standard;  // fitted on train only
  // > 0: besides the normalised value, a piecewise-linear encoding over this many quantile bins
  // of the (transformed) train values: feature j is 0 below bin j, 1 above it, linear inside.
  // Lets an MLP model sharp nonlinear effects (capital gains, age) with few layers.
  int bins = 0;
  BinEdges bin_edges = BinEdges::DistinctQuantile;
};

}  // namespace tessera
