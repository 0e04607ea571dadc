#pragma once
// Writing a prepared dataset (docs/prepared-format.md): the preprocessor is fitted on the train
// rows exactly as training fits it (fit_preprocessor on the train file, with the seeded
// train/validation RowSelection when validation is a fraction of it), then every split's rows are
// encoded record by record (RecordReader, RowParser, Preprocessor::encode: what StreamEncoder
// does, so the rows equal load_table's) into shards of `shard_rows` rows, in memory bounded by one
// shard being filled.
//
// Durability and reruns:
//   - the fitted preprocessor is written once (preprocessor.json, atomically) before the first
//     manifest names it with its size and CRC-32; the manifest never holds the vocabularies.
//   - each shard is written atomically (temporary file, fsync, rename), then the manifest is
//     rewritten atomically with the shard in it and "complete": false; the last write sets
//     "complete": true. A kill leaves shards complete or absent, and a manifest naming only
//     complete ones.
//   - a rerun whose inputs_key (schema, preprocessing options, seed, validation fraction, shard
//     size, source paths and selections) and source fingerprints match the manifest: nothing to do
//     when it is complete ("up to date"); otherwise it resumes, keeping the fitted preprocessor and
//     every listed shard, and reading each unfinished source from the record after its last shard.
//   - anything else starts over (shards no longer listed are removed at the end).
//   - append_source() adds a new file to a complete dataset's train split, encoded with the
//     dataset's fitted preprocessor: only that file is read.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "host/data/arrow_stream.h"
#include "host/data/encoded_table.h"
#include "host/data/preprocessor.h"
#include "host/data/schema.h"

namespace tessera {

struct PrepareInputs {
  TableSchema schema;  // csv or criteo (libSVM rows have no preprocessor to fit)
  PreprocessOptions options;
  FileSpec train;
  std::optional<FileSpec> validation;  // absent: validation_fraction of train, by seed
  double validation_fraction = 0.0;
  uint64_t seed = 0;
  std::optional<FileSpec> test;
};

struct PrepareOptions {
  int64_t shard_rows = int64_t{1} << 18;
  bool quiet = true;  // false: a line on stderr per shard
  // Threads parsing and encoding blocks of records (the record reader itself is one stream).
  int threads = 4;
  // Tests: after this many new shards, stop with an Error as if killed (-1: never).
  int64_t stop_after_shards = -1;
};

enum class PrepareStatus : uint8_t { Prepared, Resumed, UpToDate, Appended };
const char* prepare_status_name(PrepareStatus s);  // "prepared", "resumed", "up to date", ...

// The token count's memory in fit_preprocessor_threads (below).
struct FitMemoryStats {
  int64_t budget_bytes = 0;
  bool sketched = false;         // went over: sketch, then a second counting pass
  int64_t exact_records = 0;     // train records counted exactly before the switch (or all)
  int64_t sketch_bytes = 0;      // when sketched
  int64_t peak_bytes = 0;        // most counting heap measured at a block's end, all threads
  int64_t peak_bound_bytes = 0;  // most the exact counters were bounded by ahead of a block
  int64_t candidates = 0;        // when sketched: distinct tokens counted in the second pass
};

struct PrepareResult {
  PrepareStatus status = PrepareStatus::Prepared;
  int64_t shards_written = 0;
  int64_t records_read = 0;
  std::map<std::string, int64_t> rows;  // per split, after the call
  int64_t bad_rows = 0;
  double seconds = 0;
  FitMemoryStats fit;                                 // when the call fitted the preprocessor
  std::string summary(const std::string& dir) const;  // one line per split
};

PrepareResult prepare_dataset(const PrepareInputs& inputs, const std::string& dir,
                              const PrepareOptions& options = {});

// Pass 1 of prepare_dataset: the Preprocessor fit_preprocessor (host/data/encoded_table.h) fits
// on the same rows, bit for bit (tested), with the records parsed and their tokens counted on
// `threads` threads: one reader splits records into blocks; each thread counts its share of a
// block's tokens in counts of its own, merged at the end (counts add up; the vocabulary's order,
// most frequent first and ties by token bytes, is decided from the totals); the numeric values
// and bad rows are taken in record order (the moments and the quantile reservoir depend on it).
// Memory: the token counts (up to `threads` copies of each column's distinct tokens and their
// counts) are kept within options.fit_memory_bytes: over it, the count goes on in a count-min
// sketch and a second pass over the train rows counts exactly the tokens that may reach
// min_count, with the same result (docs/prepared-format.md, "Counting in bounded memory").
Preprocessor fit_preprocessor_threads(const FileSpec& train, const TableSchema& schema,
                                      const PreprocessOptions& options, const RowSelection& rows,
                                      int threads, BadRowReport* report = nullptr,
                                      FitMemoryStats* memory = nullptr);

// Adds `file` to the train split of the complete dataset at `dir`. A file already there with the
// same fingerprint: UpToDate; with another: a Data error (prepare again from the config).
PrepareResult append_source(const std::string& dir, const FileSpec& file,
                            const PrepareOptions& options = {});

// Arrow input (host/data/arrow_stream.h): each split's rows from an Arrow stream instead of a
// file, mapped onto `schema`'s columns by name. Fitting reads the train stream once, encoding
// reads each stream once more (a factory gives a fresh stream of the same rows each time), so
// memory stays bounded by one batch and one shard whatever the data's size. The same fitting,
// row selection (validation_fraction by seed, over the rows' order), parsing, encoding and
// bad-row policy as a file's rows: the shards equal those of the rows written as CSV, but for the
// "line" column, which holds a row's 1-based position in its stream (a CSV's header line shifts
// the file's line numbers by one). A stream has
// no fingerprint: the dataset is always written from the start (never "up to date" or resumed).
// Each source is listed in the manifest as "arrow:NAME"; names must differ.
struct ArrowPrepareInputs {
  TableSchema schema;
  PreprocessOptions options;
  ArrowStreamFactory train;
  std::string train_name = "data";
  ArrowStreamFactory validation;  // empty: validation_fraction of train, by seed
  std::string validation_name = "validation";
  double validation_fraction = 0.0;
  uint64_t seed = 0;
  ArrowStreamFactory test;  // empty: none
  std::string test_name = "test";
};

PrepareResult prepare_dataset_from_arrow(const ArrowPrepareInputs& inputs, const std::string& dir,
                                         const PrepareOptions& options = {});

}  // namespace tessera
