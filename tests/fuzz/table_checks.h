#pragma once
// The delimited-table path of the behaviour task as a data file takes it, shared by the CSV and
// Criteo fuzz targets: fit a Preprocessor on the train rows, round-trip it through its JSON (as
// the model artefact stores it), encode the whole file with load_table and again in chunks with
// a StreamEncoder (batch scoring), checking what the models rely on.
#include <cmath>
#include <cstdint>

#include "host/data/encoded_table.h"
#include "host/data/preprocessor.h"
#include "host/data/stream_encoder.h"
#include "tests/fuzz/fuzz_support.h"

namespace tessera::fuzz {

// Categorical ids inside the embedding table, finite dense features, consistent sizes.
inline void check_encoded(const EncodedTable& t, const Preprocessor& pre) {
  check(t.dense.size() == static_cast<size_t>(t.rows * t.n_dense), "dense size");
  check(t.cat.size() == static_cast<size_t>(t.rows * t.n_cat), "categorical size");
  check(t.lines.size() == static_cast<size_t>(t.rows), "one line number per row");
  check(!t.has_labels || t.labels.size() == static_cast<size_t>(t.rows), "labels size");
  for (float v : t.dense) check(std::isfinite(v), "an encoded dense feature is not finite");
  for (int64_t id : t.cat) {
    check(id >= 0 && id < pre.total_embedding_rows(), "a categorical id outside the table");
  }
}

inline void fit_and_encode(const FileSpec& file, const TableSchema& schema,
                           const PreprocessOptions& options, LabelMode label) {
  const RowSelection train{SplitPart::Train, 0.3, 7};
  BadRowReport bad;
  const Preprocessor fitted = fit_preprocessor(file, schema, options, train, &bad);
  const Preprocessor pre = Preprocessor::from_json_string(fitted.to_json_string());
  check(pre.n_dense() == fitted.n_dense() && pre.n_cat() == fitted.n_cat() &&
            pre.total_embedding_rows() == fitted.total_embedding_rows(),
        "the preprocessor's JSON round trip changed its widths");
  LoadReport report;
  const EncodedTable all = load_table(file, pre, LoadOptions{label, {}}, &report);
  check_encoded(all, pre);
  StreamOptions so;
  so.chunk_rows = 3;
  so.label = label;
  StreamEncoder stream(file, pre, so);
  EncodedTable chunk;
  int64_t rows = 0;
  while (stream.next(chunk)) {
    check(chunk.rows <= 3, "a chunk larger than chunk_rows");
    check_encoded(chunk, pre);
    rows += chunk.rows;
  }
  check(rows == all.rows, "the stream's chunks and load_table disagree on the rows");
}

}  // namespace tessera::fuzz
