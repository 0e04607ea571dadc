#pragma once
// Preprocessor: the feature encoding fitted on the TRAINING rows only, and saved in the model
// artefact so that scoring encodes exactly as training did.
//
// Categorical column c (vocabulary mode, CategoricalSpec::hash_buckets == 0):
//   tokens seen >= min_count times on train get rows 1..V, most frequent first (ties by token
//   bytes); row 0 is the OOV row for tokens unseen on train or rarer than min_count. A missing
//   value is the token kMissingCategory and is counted like any other token.
// Categorical column c (hashing mode, hash_buckets = H > 0): row = hash_token(token) % H; no OOV.
// All categorical columns share ONE flat embedding table: column c owns global rows
//   [offset_c, offset_c + size_c), offsets in column order, total_embedding_rows() in all;
// encoded ids are these global rows (int64).
// Numeric column: t = transform(x) (Log1p: log1p(max(x, 0))); a missing x takes the train mean of
// t; then normalisation fitted on train t: Standard (t - mean) / std (std == 0 -> 1; so missing
// -> 0), MinMax (t - min) / (max - min) (range 0 -> 1), or None.
//
// JSON (to_json / from_json) round-trips exactly: statistics are stored as float32 values, which
// any JSON reader (full-precision or not) restores bit for bit; counts and tokens are exact.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rapidjson/fwd.h"

#include "host/data/count_sketch.h"
#include "host/data/row_parser.h"
#include "host/data/schema.h"
#include "host/data/token_index.h"

namespace tessera {

struct PreprocessOptions {
  CategoricalSpec categorical;                                   // for every categorical column ...
  NumericSpec numeric;                                           // ... and every numeric column,
  std::map<std::string, CategoricalSpec> categorical_overrides;  // unless overridden by name
  std::map<std::string, NumericSpec> numeric_overrides;
  // The most heap the token counts of a threaded fit (fit_preprocessor_threads) may hold, all
  // threads together (data.fit_memory_mb); 0: auto, a quarter of physical memory and at least
  // kMinAutoFitMemoryBytes. Within it the counts are exact in one pass; over it the fit takes a
  // count-min sketch and a second pass, with the same result (the vocabulary does not depend on
  // it, so it is not part of the prepared data's inputs key).
  int64_t fit_memory_bytes = 0;
  static constexpr int64_t kMinAutoFitMemoryBytes = int64_t{512} << 20;
};

struct NumericColumnModel {
  std::string name;
  int field = -1;  // index into the schema's columns
  NumericTransform transform = NumericTransform::None;
  Normalization normalization = Normalization::Standard;
  int64_t count = 0;    // non-missing train values
  int64_t missing = 0;  // missing train values
  // Of the transformed train values (float32: see the JSON note above).
  float mean = 0.f;
  float stddev = 1.f;  // population standard deviation; 1 when it would be 0
  float min = 0.f;
  float max = 0.f;

  // Piecewise-linear encoding: sorted distinct quantile edges of the transformed train values
  // (NumericSpec::bins); empty, or fewer than 2 edges, when off.
  std::vector<float> edges;

  double transformed(double raw) const;  // transform only; NaN stays NaN
  float encode(double raw) const;        // transform, impute, normalise
  // Dense features this column produces: the normalised value, then one per bin.
  int64_t width() const {
    return 1 + (edges.size() >= 2 ? static_cast<int64_t>(edges.size()) - 1 : 0);
  }
  // Writes width() features.
  void encode_into(double raw, float* out) const;
};

struct CategoricalColumnModel {
  std::string name;
  int field = -1;
  int64_t min_count = 1;
  int64_t hash_buckets = 0;
  int64_t offset = 0;           // first global row in the flat embedding table
  int64_t size = 0;             // rows: 1 + vocabulary, or hash_buckets
  TokenIndex vocabulary;        // token id i is local row i + 1 (vocabulary mode)
  std::vector<int64_t> counts;  // [vocabulary size] train occurrences

  bool hashed() const { return hash_buckets > 0; }
  // Local row in [0, size); 0 is OOV in vocabulary mode.
  int64_t local_row(std::string_view token) const;
};

// Values routed to the OOV row while encoding (vocabulary mode only), per categorical column.
struct EncodeStats {
  int64_t rows = 0;
  std::vector<int64_t> oov;  // [n_cat]
  int64_t total_oov() const;
  void merge(const EncodeStats& other);
};

class Preprocessor {
 public:
  Preprocessor() = default;

  const TableSchema& schema() const { return schema_; }  // resolved, as fitted
  // The bad-row policy is a run-time choice (e.g. `predict --on-error skip`), not a fitted
  // parameter: it may be changed after fitting or loading.
  void set_bad_row_policy(BadRowPolicy policy) { schema_.on_error = policy; }
  int64_t n_dense() const;  // dense features: the numeric columns' widths added up
  int64_t n_cat() const { return static_cast<int64_t>(categorical_.size()); }
  bool has_label_column() const { return label_field_ >= 0; }
  int64_t total_embedding_rows() const;
  const std::vector<NumericColumnModel>& numeric_columns() const { return numeric_; }
  const std::vector<CategoricalColumnModel>& categorical_columns() const { return categorical_; }
  int64_t train_rows() const { return train_rows_; }

  // One parsed row -> dense [n_dense] floats and cat [n_cat] global embedding rows.
  // `stats` (optional) counts OOV values; it is resized to n_cat on first use. Returns "" or, when
  // a numeric value has no finite float32 encoding (far outside the training range: 1e300 against
  // train values near 0, once normalised), the reason "column N (name): ..." (the row is then
  // bad, and `stats` is left as it was).
  std::string encode(const ParsedRow& row, float* dense, int64_t* cat, EncodeStats* stats) const;
  EncodeStats make_stats() const;
  // "workclass: 3 of 16281 values unseen on train; ..." (columns with any OOV value).
  std::string oov_summary(const EncodeStats& stats) const;

  // JSON object {"format": "tessera.preprocessor", "version": 1, "schema": {...},
  // "numeric": [...], "categorical": [...], "train_rows": N}.
  void to_json(rapidjson::Value& out,
               rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>& alloc) const;
  // The same JSON, byte for byte as to_json's document serialised by rapidjson's Writer, written
  // straight onto the end of `out` without building the document (the model save's metadata).
  void append_json(std::string& out) const;
  std::string to_json_string() const;  // append_json onto an empty string
  // Throws ErrorKind::Data naming the missing or malformed member.
  static Preprocessor from_json(const rapidjson::Value& in);
  static Preprocessor from_json_string(const std::string& text);

 private:
  friend class PreprocessorFitter;
  void assign_offsets();
  void encode_categorical(const std::vector<std::string_view>& tokens, int64_t* cat,
                          EncodeStats* stats) const;
  TableSchema schema_;
  std::vector<NumericColumnModel> numeric_;
  std::vector<CategoricalColumnModel> categorical_;
  int label_field_ = -1;
  int64_t train_rows_ = 0;
};

// Token counts of the categorical columns in vocabulary mode (hashed columns count nothing). A
// fit on several threads gives each thread its own and merges them (counts add up, and the
// vocabulary is decided from the totals: the same for any split of the rows).
// A fit over its memory budget (PreprocessOptions::fit_memory_bytes) moves to a CountMinSketch
// shared by the threads (Mode::Sketch: tokens go to the sketch only), then counts a second pass
// exactly but only for the candidates, the tokens whose estimate may reach their column's
// min_count (Mode::Candidates): docs/prepared-format.md, "Counting in bounded memory".
class CategoryCounts {
 public:
  enum class Mode : uint8_t { Exact, Sketch, Candidates };
  CategoryCounts() = default;
  // counted[k]: whether categorical column k has a vocabulary; min_counts[k] its min_count.
  CategoryCounts(std::vector<uint8_t> counted, std::vector<int64_t> min_counts);
  // tokens: [n_cat], a parsed row's categorical values.
  void add(const std::vector<std::string_view>& tokens);
  void merge(const CategoryCounts& other);
  bool empty() const;  // no token counted
  const std::vector<TokenCounter>& columns() const { return columns_; }
  // Merges `parts` into parts[0], columns spread over `threads` threads.
  static void merge_all(std::vector<CategoryCounts>& parts, int threads);
  Mode mode() const { return mode_; }

  // Sketch and Candidates need `sketch` (shared, outliving this); Exact ignores it.
  void set_mode(Mode mode, CountMinSketch* sketch);
  // Adds every token counted so far, with its count, to `sketch`, releasing each column's counter
  // once poured.
  void pour_into(CountMinSketch& sketch);
  int64_t bytes() const;  // the counters' heap bytes now
  // An upper bound on bytes() while at most `more_tokens` tokens a column, of at most
  // `more_bytes` bytes in all, are added.
  int64_t bytes_bound(int64_t more_tokens, int64_t more_bytes) const;

 private:
  void add_sketched(const std::vector<std::string_view>& tokens);
  std::vector<uint8_t> counted_;
  std::vector<int64_t> min_counts_;    // [n_cat]
  std::vector<TokenCounter> columns_;  // [n_cat]
  std::vector<uint64_t> hashes_;       // [n_cat] scratch for one row
  std::vector<uint64_t> keys_;         // [n_cat] scratch: sketch keys of one row
  Mode mode_ = Mode::Exact;
  CountMinSketch* sketch_ = nullptr;
};

// Accumulates train rows (one pass, constant memory per column apart from the token counts) and
// finishes into a Preprocessor. add(row) takes a whole row; a fit on several threads instead
// counts each thread's tokens in its own CategoryCounts (make_counts) and feeds the numeric
// values here in row order (add_numeric: the running moments and the quantile reservoir depend on
// the order), then add_counts() each thread's counts before finish().
class PreprocessorFitter {
 public:
  PreprocessorFitter(const TableSchema& schema, const PreprocessOptions& options);
  void add(const ParsedRow& row);
  // One train row's numeric values (raw, [n_numeric], NaN = missing); counts the row.
  void add_numeric(const double* raw);
  CategoryCounts make_counts() const;
  void add_counts(CategoryCounts counts);
  Preprocessor finish();

 private:
  struct NumericAcc {
    int64_t n = 0;
    double mean = 0, m2 = 0, min = 0, max = 0;  // Welford
    int bins = 0;
    BinEdges bin_edges = BinEdges::DistinctQuantile;
    std::vector<double> sample;  // bins > 0: reservoir of transformed values for the quantiles
    uint64_t rng = 0;            // reservoir sampling state (deterministic)
  };
  Preprocessor p_;
  std::vector<int> bins_;  // per numeric column
  std::vector<BinEdges> bin_edges_;
  std::vector<NumericAcc> num_;
  CategoryCounts counts_;  // vocabulary mode: every token seen
};

}  // namespace tessera
