#include "host/data/prepared_writer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <type_traits>

#include <unistd.h>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/arrow_stream.h"
#include "host/data/count_sketch.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared_format.h"
#include "host/data/record_reader.h"
#include "host/data/row_parser.h"
#include "host/data/sha256.h"

namespace tessera {

namespace fs = std::filesystem;

const char* prepare_status_name(PrepareStatus s) {
  switch (s) {
    case PrepareStatus::Prepared:
      return "prepared";
    case PrepareStatus::Resumed:
      return "resumed";
    case PrepareStatus::UpToDate:
      return "up to date";
    case PrepareStatus::Appended:
      return "appended";
  }
  return "?";
}

std::string PrepareResult::summary(const std::string& dir) const {
  std::ostringstream s;
  s << dir << ": " << prepare_status_name(status);
  if (status != PrepareStatus::UpToDate)
    s << " (" << shards_written << " shards written, " << records_read << " records read, "
      << bad_rows << " bad rows skipped, " << seconds << " s)";
  s << "\n";
  for (const auto& [split, n] : rows) s << "  " << split << ": " << n << " rows\n";
  return s.str();
}

namespace {

using Clock = std::chrono::steady_clock;

// Part of inputs_key: what the shards hold. The manifest's layout (kManifestVersion) is not, so
// directories prepared before the preprocessor had its own file stay up to date.
constexpr int kShardContentVersion = 1;

// What determines the shards' content, apart from the sources' bytes (their fingerprints).
std::string inputs_key(const TableSchema& sc, const PreprocessOptions& o, uint64_t seed,
                       double fraction, int64_t shard_rows,
                       const std::map<std::string, std::vector<SourceInfo>>& splits) {
  std::ostringstream k;
  k << "v" << kShardContentVersion << "|fmt" << int(sc.format) << "|d" << int(sc.delimiter) << "|h"
    << sc.header << "|t" << sc.trim << "|e" << int(sc.on_error) << "|l" << sc.libsvm_features;
  for (const std::string& m : sc.missing_tokens) k << "|m" << m.size() << ":" << m;
  for (const ColumnSpec& c : sc.columns) {
    k << "|c" << c.name.size() << ":" << c.name << "," << int(c.type) << "," << int(c.transform);
    for (const std::string& p : c.positive) k << ",+" << p.size() << ":" << p;
    for (const std::string& n : c.negative) k << ",-" << n.size() << ":" << n;
  }
  auto cat = [&](const CategoricalSpec& c) { k << c.min_count << "," << c.hash_buckets << ";"; };
  auto num = [&](const NumericSpec& n) {
    k << int(n.normalization) << "," << n.bins << "," << int(n.bin_edges) << ";";
  };
  k << "|cat";
  cat(o.categorical);
  for (const auto& [name, c] : o.categorical_overrides) k << name << "=", cat(c);
  k << "|num";
  num(o.numeric);
  for (const auto& [name, n] : o.numeric_overrides) k << name << "=", num(n);
  k << "|seed" << seed << "|frac" << fraction << "|rows" << shard_rows;
  for (const auto& [split, sources] : splits)
    for (const SourceInfo& s : sources)
      k << "|src" << split << ":" << s.path << "," << s.skip_lines << "," << int(s.selection);
  return sha256_hex(k.str());
}

std::string manifest_path(const std::string& dir) {
  return dir + "/" + kManifestFile;
}

void write_manifest(const std::string& dir, const PreparedManifest& m) {
  write_file_atomic(manifest_path(dir), m.to_json());
}

// The fitted preprocessor (megabytes of vocabularies) is written once, to its own file, before the
// first manifest names it: the manifest rewritten after every shard then holds only the sources.
void write_preprocessor(const std::string& dir, PreparedManifest& m) {
  write_file_atomic(dir + "/" + kPreprocessorFile, m.preprocessor_json);
  m.store_preprocessor_in(kPreprocessorFile);
}

// The columns a preprocessor's rows are stored in.
std::vector<PreparedColumnInfo> columns_for(const Preprocessor& pre) {
  std::vector<PreparedColumnInfo> cols;
  cols.push_back({"label", PreparedType::F32, 1, 0});
  cols.push_back({"dense", PreparedType::F32, pre.n_dense(), 0});
  for (const CategoricalColumnModel& t : pre.categorical_columns())
    cols.push_back({"cat:" + t.name, narrowest_id_type(t.size), 1, t.offset});
  cols.push_back({"line", PreparedType::I64, 1, 0});
  return cols;
}

// Rows of one shard being filled, column by column.
class ShardBuilder {
 public:
  explicit ShardBuilder(const PreparedManifest& m) : m_(m), cat_(static_cast<size_t>(m.n_cat)) {}

  int64_t rows() const { return rows_; }

  void add(float label, const float* dense, const int64_t* global, int64_t line) {
    labels_.push_back(label);
    dense_.insert(dense_.end(), dense, dense + m_.n_dense);
    for (size_t c = 0; c < cat_.size(); ++c) {
      const PreparedColumnInfo& col = m_.columns[2 + c];
      const int64_t local = global[c] - col.offset;
      const size_t w = prepared_type_size(col.type);
      const size_t at = cat_[c].size();
      cat_[c].resize(at + w);
      // Little-endian: the low `w` bytes of the local row are its narrow encoding.
      std::memcpy(&cat_[c][at], &local, w);
    }
    lines_.push_back(line);
    ++rows_;
  }

  // The whole shard file; clears the builder.
  std::string bytes() {
    ShardHeader h;
    h.rows = static_cast<uint64_t>(rows_);
    for (const PreparedColumnInfo& c : m_.columns)
      h.columns.push_back({c.type, static_cast<uint32_t>(c.width), 0, 0});
    std::string out = shard_header_bytes(h);
    auto put = [&](size_t i, const void* data) {
      out.resize(h.columns[i].offset, '\0');
      out.append(static_cast<const char*>(data), h.columns[i].bytes);
    };
    put(0, labels_.data());
    put(1, dense_.data());
    for (size_t c = 0; c < cat_.size(); ++c) put(2 + c, cat_[c].data());
    put(h.columns.size() - 1, lines_.data());
    labels_.clear();
    dense_.clear();
    for (auto& c : cat_) c.clear();
    lines_.clear();
    rows_ = 0;
    return out;
  }

 private:
  const PreparedManifest& m_;
  int64_t rows_ = 0;
  std::vector<float> labels_, dense_;
  std::vector<std::vector<char>> cat_;
  std::vector<int64_t> lines_;
};

struct Session {
  std::string dir;
  PreparedManifest manifest;
  Preprocessor pre;
  PrepareOptions options;
  PrepareResult result;
  // Arrow input: the stream of each source, by its path ("arrow:NAME").
  std::map<std::string, const ArrowStreamFactory*> arrow;
};

constexpr const char* kArrowPrefix = "arrow:";

std::string arrow_name(const std::string& source_path) {
  return source_path.substr(std::strlen(kArrowPrefix));
}

void write_shard(Session& s, const std::string& split, SourceInfo& src, ShardBuilder& b,
                 int64_t first_record, int64_t end_record) {
  if (s.options.stop_after_shards >= 0 && s.result.shards_written >= s.options.stop_after_shards)
    TESSERA_THROW(Io, "prepare: stopped after " << s.result.shards_written
                                                << " shards (the test hook stop_after_shards)");
  int64_t index = 0;
  for (const SourceInfo& o : s.manifest.splits[split])
    index += static_cast<int64_t>(o.shards.size());
  ShardInfo info;
  info.file = shard_file_name(split, index);
  info.rows = b.rows();
  const std::string bytes = b.bytes();
  info.bytes = static_cast<int64_t>(bytes.size());
  info.crc32 = crc32_of(bytes.data(), bytes.size());
  info.first_record = first_record;
  info.end_record = end_record;
  write_file_atomic(s.dir + "/" + info.file, bytes);
  src.shards.push_back(info);
  write_manifest(s.dir, s.manifest);
  ++s.result.shards_written;
  if (!s.options.quiet)
    std::fprintf(stderr, "tessera prep: %s (%lld rows)\n", info.file.c_str(),
                 static_cast<long long>(info.rows));
}

// Whether a record's fields lie in order in one buffer with little between them (RecordReader
// unescapes a record in place: only delimiters and quotes separate its fields), so that the
// record can be copied in one piece. Views from elsewhere (Arrow columns) are copied field by
// field.
bool contiguous(const std::vector<std::string_view>& fields) {
  if (fields.empty()) return false;
  size_t bytes = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0 && fields[i].data() < fields[i - 1].data() + fields[i - 1].size()) return false;
    bytes += fields[i].size();
  }
  const char* end = fields.back().data() + fields.back().size();
  return static_cast<size_t>(end - fields.front().data()) <= bytes + 4 * fields.size();
}

// Records copied out of the reader (whose views last only until its next record), so that
// several threads can parse and encode them; then each record's outcome, in record order.
struct RecordBlock {
  std::string arena;                              // every field's bytes
  std::vector<std::pair<size_t, size_t>> fields;  // [fields] begin, end in arena
  std::vector<size_t> first_field;                // [records + 1] into fields
  std::vector<int64_t> lines, ordinals;
  std::string path;
  // Outcomes, filled by encode(): rows [records] of dense, cat, label; a reason for a bad row.
  std::vector<float> dense, labels;
  std::vector<int64_t> cat;
  std::vector<std::string> bad;
  std::vector<double> raw;  // pass 1 (count()): [records, n_numeric] raw numeric values

  size_t records() const { return lines.size(); }
  void clear() {
    arena.clear();
    fields.clear();
    first_field.assign(1, 0);
    lines.clear();
    ordinals.clear();
  }
  void add(const Record& r, int64_t ordinal) {
    if (contiguous(r.fields)) {  // the record's bytes in one copy (RecordReader's records)
      const char* base = r.fields.front().data();
      const size_t at = arena.size();
      arena.append(base, r.fields.back().data() + r.fields.back().size() - base);
      for (const std::string_view f : r.fields)
        fields.emplace_back(at + (f.data() - base), at + (f.data() - base) + f.size());
    } else {
      for (const std::string_view f : r.fields) {
        fields.emplace_back(arena.size(), arena.size() + f.size());
        arena.append(f.data(), f.size());
      }
    }
    first_field.push_back(fields.size());
    lines.push_back(r.line);
    ordinals.push_back(ordinal);
    if (path.empty()) path = std::string(r.path);
  }
  // Record i as the reader gave it (views into the arena; `rec.path` is set by the caller).
  void record(size_t i, Record& rec) const {
    rec.fields.clear();
    for (size_t f = first_field[i]; f < first_field[i + 1]; ++f)
      rec.fields.emplace_back(arena.data() + fields[f].first, fields[f].second - fields[f].first);
    rec.line = lines[i];
  }
  // Calls use(i, row) for each record i in [begin, end) that parses; a record that does not gets
  // its first reason in bad[i].
  template <typename Use>
  void for_each_parsed(RowParser& parser, size_t begin, size_t end, Use&& use) {
    Record rec;
    rec.path = path;
    ParsedRow row;
    for (size_t i = begin; i < end; ++i) {
      record(i, rec);
      BadRowReport report;
      if (!parser.parse(rec, row, &report)) {
        bad[i] = report.first_reasons.at(0);
        continue;
      }
      use(i, row);
    }
  }
  // Parses and encodes records [begin, end) (one thread's share).
  void encode(const Preprocessor& pre, RowParser& parser, size_t begin, size_t end) {
    const size_t nd = static_cast<size_t>(pre.n_dense()), nc = static_cast<size_t>(pre.n_cat());
    for_each_parsed(parser, begin, end, [&](size_t i, const ParsedRow& row) {
      const std::string why = pre.encode(row, &dense[i * nd], &cat[i * nc], nullptr);
      if (!why.empty()) bad[i] = path + ":" + std::to_string(row.line) + ":" + why;
      labels[i] = row.label;
    });
  }
  // Pass 1's share of records [begin, end): numeric values into `raw`, categorical tokens counted
  // into `counts` (the thread's own).
  void count(RowParser& parser, CategoryCounts& counts, size_t begin, size_t end) {
    const size_t nn = static_cast<size_t>(parser.n_numeric());
    for_each_parsed(parser, begin, end, [&](size_t i, const ParsedRow& row) {
      std::copy(row.numeric.begin(), row.numeric.end(), raw.begin() + i * nn);
      counts.add(row.categorical);
    });
  }
};

// Runs work(k, begin, end) for k < t on t threads (the caller's thread is the last), the n items
// split evenly; rethrows the first exception. t is at most `threads` and 1 per 256 items.
template <typename Work>
void split_on_threads(size_t n, int threads, Work work) {
  const size_t t = std::max<size_t>(1, std::min<size_t>(threads, n / 256 + 1));
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(t);
  for (size_t k = 0; k < t; ++k) {
    auto run = [&, k] {
      try {
        work(k, n * k / t, n * (k + 1) / t);
      } catch (...) {
        errors[k] = std::current_exception();
      }
    };
    if (k + 1 < t)
      pool.emplace_back(run);
    else
      run();
  }
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

// The schema parsed leniently (bad rows reported, never thrown, on worker threads: the caller
// applies the policy in record order).
TableSchema lenient(TableSchema schema) {
  schema.on_error = BadRowPolicy::Skip;
  return schema;
}

// Parses and encodes a block on `threads` threads, each with its own parser.
void encode_block(RecordBlock& b, const Preprocessor& pre, int threads) {
  const size_t n = b.records();
  b.dense.resize(n * static_cast<size_t>(pre.n_dense()));
  b.cat.resize(n * static_cast<size_t>(pre.n_cat()));
  b.labels.resize(n);
  b.bad.assign(n, std::string());
  const TableSchema schema = lenient(pre.schema());
  split_on_threads(n, threads, [&](size_t, size_t begin, size_t end) {
    RowParser parser(schema, LabelMode::Required);
    b.encode(pre, parser, begin, end);
  });
}

constexpr size_t kBlockRecords = 16384;

// Runs process(block) on blocks that fill(block) reads (fill returns false once its reader is
// exhausted; that last block may still hold records). With `overlap`, block k + 1 is read on a
// thread of its own while block k is processed, two blocks in turn: the reader is serial (a quoted
// field may span lines), and this takes it off the parsing threads' critical path. Blocks are
// processed in order, and an error of process(block k) is raised before any error the read of
// block k + 1 met: the same first error as reading and processing one after the other.
template <typename Fill, typename Process>
void pipeline_blocks(bool overlap, Fill fill, Process process) {
  RecordBlock blocks[2];
  blocks[0].clear();
  bool more = fill(blocks[0]);
  for (int cur = 0;; cur ^= 1) {
    RecordBlock& next = blocks[cur ^ 1];
    bool next_more = false;
    std::exception_ptr read_error;
    std::thread reader;
    auto read_next = [&] {
      try {
        next.clear();
        next_more = fill(next);
      } catch (...) {
        read_error = std::current_exception();
      }
    };
    if (more && overlap) reader = std::thread(read_next);
    try {
      process(blocks[cur]);
    } catch (...) {
      if (reader.joinable()) reader.join();
      throw;
    }
    if (!more) return;
    if (reader.joinable())
      reader.join();
    else
      read_next();
    if (read_error) std::rethrow_exception(read_error);
    more = next_more;
  }
}

// Parses a block's records and counts their tokens on `threads` threads (thread k into
// counts[k]).
void count_block(RecordBlock& b, const TableSchema& schema, size_t n_numeric,
                 std::vector<CategoryCounts>& counts, int threads) {
  const size_t n = b.records();
  b.bad.assign(n, std::string());
  b.raw.resize(n * n_numeric);
  split_on_threads(n, threads, [&](size_t k, size_t begin, size_t end) {
    RowParser parser(schema, LabelMode::Required);
    b.count(parser, counts[k], begin, end);
  });
}

// Bytes as MB (2^20) with one decimal, for messages.
std::string mb(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// The categorical columns that keep every token (vocabulary mode, min_count 1): a sketch
// cannot prune them.
std::string every_token_columns(const TableSchema& schema, const PreprocessOptions& o) {
  std::string names;
  for (const ColumnSpec& c : schema.columns) {
    if (c.type != ColumnType::Categorical) continue;
    auto it = o.categorical_overrides.find(c.name);
    const CategoricalSpec& spec = it != o.categorical_overrides.end() ? it->second : o.categorical;
    if (spec.hash_buckets == 0 && spec.min_count == 1)
      names += (names.empty() ? "" : ", ") + c.name;
  }
  return names;
}

// Keeps the fit's token counts, all threads together, within the budget
// (docs/prepared-format.md, "Counting in bounded memory"). Pass 1 counts exactly while no block
// can take the counters over budget - sketch share (an upper bound taken ahead of each block);
// then every count so far is poured into one shared CountMinSketch and pass 1's remaining rows go
// to it alone. Pass 2 then counts exactly only the tokens the sketch says may reach min_count.
class FitBudget {
 public:
  FitBudget(const PreprocessOptions& o, const TableSchema& schema,
            std::vector<CategoryCounts>& counts, FitMemoryStats& stats)
      : counts_(counts), stats_(stats), budget_(o.fit_memory_bytes) {
    if (budget_ == 0) {  // auto: a quarter of physical memory, as data.read "auto" reckons
      const int64_t physical =
          static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
      budget_ = std::max(PreprocessOptions::kMinAutoFitMemoryBytes, physical / 4);
    }
    if (budget_ < kMinBudget)
      TESSERA_THROW(Config, "data.fit_memory_mb: the fit's budget of "
                                << budget_ << " bytes is below the minimum " << kMinBudget
                                << " bytes (its count-min sketch alone needs a quarter of it)");
    stats_ = FitMemoryStats();
    stats_.budget_bytes = budget_;
    every_token_ = every_token_columns(schema, o);
  }
  static constexpr int64_t kMinBudget =
      4 * CountMinSketch::kMinWidth * CountMinSketch::kDepth * int64_t{sizeof(uint16_t)};
  int64_t exact_limit() const { return budget_ - budget_ / 4; }
  bool sketched() const { return sketch_ != nullptr; }

  // Pass 1, before `b` is counted on `threads` threads.
  void before_block(const RecordBlock& b, int threads) {
    if (sketched()) return;
    int64_t bound = block_bound(b, threads);
    if (bound > exact_limit() && counts_.size() > 1) {
      // The threads' counters hold the common tokens once each: merged, they may still fit.
      CategoryCounts::merge_all(counts_, threads);
      bound = block_bound(b, threads);
    }
    if (bound <= exact_limit()) {
      stats_.peak_bound_bytes = std::max(stats_.peak_bound_bytes, bound);
      return;
    }
    sketch_ = std::make_unique<CountMinSketch>(budget_ / 4);
    stats_.sketched = true;
    stats_.sketch_bytes = sketch_->bytes();
    for (CategoryCounts& c : counts_) {
      c.pour_into(*sketch_);
      c.set_mode(CategoryCounts::Mode::Sketch, sketch_.get());
    }
  }
  // Pass 1, after `b`: its records were counted (exactly or in the sketch).
  void after_block(const RecordBlock& b) {
    if (!sketched()) stats_.exact_records += static_cast<int64_t>(b.records());
    measure();
  }
  void start_candidates() {
    for (CategoryCounts& c : counts_) c.set_mode(CategoryCounts::Mode::Candidates, sketch_.get());
  }
  // Pass 2, after a block: throws when the candidates' counters, all threads together, are over
  // their share; else merges them (a common token is held once a thread: merged after every
  // block, those copies are one block's at most).
  void after_candidates_block(int threads) {
    const int64_t counters = measure() - sketch_->bytes();
    if (counters <= exact_limit()) {
      CategoryCounts::merge_all(counts_, threads);
      return;
    }
    TESSERA_THROW(
        Config,
        "prep: counting the vocabulary's candidates (tokens whose count may reach "
        "min_count) needs more than the "
            << mb(exact_limit()) << " MB that data.fit_memory_mb (" << mb(budget_)
            << " MB) leaves beside its sketch; raise data.fit_memory_mb or min_count, "
               "or hash the largest columns (hash_buckets)"
            << (every_token_.empty() ? std::string()
                                     : "; min_count 1 keeps every token of: " + every_token_));
  }
  // After pass 2's merge.
  void finish(const CategoryCounts& merged) {
    for (const TokenCounter& c : merged.columns()) stats_.candidates += c.size();
  }

 private:
  // An upper bound on the counters' bytes while `b` is counted: thread k counts records
  // [n k / t, n (k + 1) / t) (split_on_threads), each adding at most one token a field, of at
  // most the field's bytes (or kMissingCategory's, for a missing value).
  int64_t block_bound(const RecordBlock& b, int threads) const {
    const size_t n = b.records();
    const size_t t = std::max<size_t>(1, std::min<size_t>(threads, n / 256 + 1));
    int64_t bound = 0;
    for (size_t k = 0; k < counts_.size(); ++k) {
      if (k >= t) {
        bound += counts_[k].bytes();
        continue;
      }
      const size_t begin = n * k / t, end = n * (k + 1) / t;
      int64_t bytes = 0;
      for (size_t f = b.first_field[begin]; f < b.first_field[end]; ++f)
        bytes +=
            static_cast<int64_t>(b.fields[f].second - b.fields[f].first + kMissingCategory.size());
      bound += counts_[k].bytes_bound(static_cast<int64_t>(end - begin), bytes);
    }
    return bound;
  }
  int64_t measure() {
    int64_t bytes = sketched() ? sketch_->bytes() : 0;
    for (const CategoryCounts& c : counts_) bytes += c.bytes();
    stats_.peak_bytes = std::max(stats_.peak_bytes, bytes);
    return bytes;
  }
  std::vector<CategoryCounts>& counts_;
  FitMemoryStats& stats_;
  int64_t budget_;
  std::string every_token_;
  std::unique_ptr<CountMinSketch> sketch_;
};

// Runs count(block) over the selected records of `train`, read in blocks; returns the records
// read.
template <typename Count>
int64_t for_each_train_block(const FileSpec& train, RowParser& parser, const RowSelection& rows,
                             int threads, Count count) {
  RecordReader reader(train, parser.schema());
  if (parser.schema().header)
    parser.check_header(reader.header(), reader.path(), reader.header_line());
  Record rec;
  int64_t ordinal = 0;
  auto fill = [&](RecordBlock& block) {
    bool more = true;
    while (block.records() < kBlockRecords && (more = reader.next(rec))) {
      const int64_t ord = ordinal++;
      if (rows.selected(ord)) block.add(rec, ord);
    }
    return more;
  };
  pipeline_blocks(threads > 1, fill, count);
  return ordinal;
}

// Pass 2 of a sketched fit: the train rows counted again, only the candidates, into `counts`.
// Bad rows were dealt with in pass 1 (reported or raised); here they are only skipped.
void count_candidates(const FileSpec& train, RowParser& parser, const RowSelection& rows,
                      int threads, std::vector<CategoryCounts>& counts, FitBudget& budget) {
  const TableSchema loose = lenient(parser.schema());
  const size_t nn = static_cast<size_t>(parser.n_numeric());
  budget.start_candidates();
  for_each_train_block(train, parser, rows, threads, [&](RecordBlock& block) {
    count_block(block, loose, nn, counts, threads);
    budget.after_candidates_block(threads);
  });
}

}  // namespace

Preprocessor fit_preprocessor_threads(const FileSpec& train, const TableSchema& schema,
                                      const PreprocessOptions& options, const RowSelection& rows,
                                      int threads, BadRowReport* report, FitMemoryStats* memory) {
  threads = std::max(1, threads);
  RowParser parser(schema, LabelMode::Required);
  PreprocessorFitter fitter(parser.schema(), options);
  const TableSchema loose = lenient(parser.schema());
  const size_t nn = static_cast<size_t>(parser.n_numeric());
  std::vector<CategoryCounts> counts(static_cast<size_t>(threads), fitter.make_counts());
  FitMemoryStats local_stats;
  FitBudget budget(options, parser.schema(), counts, memory != nullptr ? *memory : local_stats);
  const int64_t records =
      for_each_train_block(train, parser, rows, threads, [&](RecordBlock& block) {
        budget.before_block(block, threads);
        count_block(block, loose, nn, counts, threads);
        budget.after_block(block);
        for (size_t i = 0; i < block.records(); ++i) {  // in record order, as one thread would
          if (block.bad[i].empty()) {
            fitter.add_numeric(&block.raw[i * nn]);
          } else if (parser.schema().on_error == BadRowPolicy::Error) {
            throw Error(ErrorKind::Data, block.bad[i],
                        ErrorLocation{block.path, block.lines[i], 0, ""});
          } else if (report != nullptr) {
            report->add(block.bad[i]);
          }
        }
      });
  if (budget.sketched()) count_candidates(train, parser, rows, threads, counts, budget);
  CategoryCounts::merge_all(counts, threads);
  if (budget.sketched()) budget.finish(counts[0]);
  counts[0].set_mode(CategoryCounts::Mode::Exact, nullptr);  // the sketch goes with `budget`
  fitter.add_counts(std::move(counts[0]));
  return finish_fit(fitter, train, records, report);
}

namespace {

// Encodes the records of `src` (read by `reader`, a RecordReader or an ArrowRecordReader) from
// the one after its last shard: the rows, bad rows and shard boundaries are what one thread
// reading with a StreamEncoder would give.
template <typename Reader>
void encode_records(Session& s, const std::string& split, SourceInfo& src, Reader& reader) {
  const Preprocessor& pre = s.pre;
  const SplitPart part = src.selection == SourceSelection::All     ? SplitPart::All
                         : src.selection == SourceSelection::Train ? SplitPart::Train
                                                                   : SplitPart::Validation;
  const RowSelection selection{part, s.manifest.validation_fraction, s.manifest.seed};
  const int64_t start = src.shards.empty() ? 0 : src.shards.back().end_record;
  const int64_t bad_before = src.bad_rows;
  const size_t nd = static_cast<size_t>(pre.n_dense()), nc = static_cast<size_t>(pre.n_cat());
  ShardBuilder builder(s.manifest);
  BadRowReport bad;
  Record rec;
  int64_t ordinal = 0, shard_first = start;
  auto fill = [&](RecordBlock& block) {
    bool more = true;
    while (block.records() < kBlockRecords && (more = reader.next(rec))) {
      const int64_t ord = ordinal++;
      if (ord >= start && selection.selected(ord)) block.add(rec, ord);
    }
    return more;
  };
  // An Arrow stream is read on the caller's thread only (its producer may need the GIL).
  const bool overlap = s.options.threads > 1 && std::is_same_v<Reader, RecordReader>;
  pipeline_blocks(overlap, fill, [&](RecordBlock& block) {
    encode_block(block, pre, s.options.threads);
    for (size_t i = 0; i < block.records(); ++i) {
      if (!block.bad[i].empty()) {
        if (pre.schema().on_error == BadRowPolicy::Error)
          throw Error(ErrorKind::Data, block.bad[i],
                      ErrorLocation{block.path, block.lines[i], 0, ""});
        bad.add(block.bad[i]);
        continue;
      }
      builder.add(block.labels[i], &block.dense[i * nd], &block.cat[i * nc], block.lines[i]);
      if (builder.rows() == s.manifest.shard_rows) {
        const int64_t end = block.ordinals[i] + 1;  // bad rows after it are counted next time
        src.bad_rows = bad_before + bad.skipped;
        src.records = end;
        write_shard(s, split, src, builder, shard_first, end);
        shard_first = end;
      }
    }
  });
  src.bad_rows = bad_before + bad.skipped;
  src.records = ordinal;
  src.complete = true;
  if (builder.rows() > 0) write_shard(s, split, src, builder, shard_first, ordinal);
  write_manifest(s.dir, s.manifest);
  s.result.records_read += ordinal - start;
}

void encode_source(Session& s, const std::string& split, SourceInfo& src) {
  auto arrow = s.arrow.find(src.path);
  if (arrow != s.arrow.end()) {
    ArrowArrayStream stream{};
    (*arrow->second)(&stream);
    ArrowRecordReader reader(&stream, s.pre.schema(), LabelMode::Required, arrow_name(src.path));
    encode_records(s, split, src, reader);
    return;
  }
  RowParser parser(s.pre.schema(), LabelMode::Required);
  RecordReader reader(FileSpec{src.path, src.skip_lines}, parser.schema());
  if (parser.schema().header)
    parser.check_header(reader.header(), reader.path(), reader.header_line());
  encode_records(s, split, src, reader);
}

// The splits a config's files make, without fingerprints or shards yet.
std::map<std::string, std::vector<SourceInfo>> plan_sources(const PrepareInputs& in) {
  auto source = [](const FileSpec& f, SourceSelection sel) {
    SourceInfo s;
    s.path = f.path;
    s.skip_lines = f.skip_lines;
    s.selection = sel;
    return s;
  };
  std::map<std::string, std::vector<SourceInfo>> splits;
  if (in.validation) {
    splits["train"].push_back(source(in.train, SourceSelection::All));
    splits["validation"].push_back(source(*in.validation, SourceSelection::All));
  } else if (in.validation_fraction > 0) {
    splits["train"].push_back(source(in.train, SourceSelection::Train));
    splits["validation"].push_back(source(in.train, SourceSelection::Validation));
  } else {
    splits["train"].push_back(source(in.train, SourceSelection::All));
  }
  if (in.test) splits["test"].push_back(source(*in.test, SourceSelection::All));
  return splits;
}

// Temporary files of a killed run, and shards no longer listed in the manifest.
void remove_unlisted(const std::string& dir, const PreparedManifest* m) {
  std::set<std::string> keep;
  if (m != nullptr)
    for (const auto& [split, sources] : m->splits)
      for (const SourceInfo& s : sources)
        for (const ShardInfo& sh : s.shards) keep.insert(sh.file);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const bool temporary = name.find(".tmp.") != std::string::npos;
    const bool shard = name.size() > 7 && name.compare(name.size() - 7, 7, ".tshard") == 0;
    if (temporary || (m != nullptr && shard && keep.count(name) == 0)) fs::remove(e.path(), ec);
  }
}

// The manifest already in `dir`, or nothing when there is none or it cannot be read.
std::optional<PreparedManifest> existing_manifest(const std::string& dir) {
  const std::string path = manifest_path(dir);
  if (!fs::exists(path)) return std::nullopt;
  try {
    return PreparedManifest::parse(read_file(path), path);
  } catch (const Error&) {
    return std::nullopt;  // unreadable: prepared again from the start
  }
}

bool fingerprints_match(const PreparedManifest& m) {
  for (const auto& [split, sources] : m.splits)
    for (const SourceInfo& s : sources) {
      std::error_code ec;
      if (!fs::exists(s.path, ec) || fingerprint_source(s.path) != s.fingerprint) return false;
    }
  return true;
}

bool shards_present(const std::string& dir, const PreparedManifest& m) {
  for (const auto& [split, sources] : m.splits)
    for (const SourceInfo& s : sources)
      for (const ShardInfo& sh : s.shards) {
        std::error_code ec;
        const auto size = fs::file_size(dir + "/" + sh.file, ec);
        if (ec || static_cast<int64_t>(size) != sh.bytes) return false;
      }
  return true;
}

void finish(Session& s, Clock::time_point t0) {
  for (auto& [split, sources] : s.manifest.splits)
    for (SourceInfo& src : sources)
      if (!src.complete) encode_source(s, split, src);
  s.manifest.complete = true;
  write_manifest(s.dir, s.manifest);
  remove_unlisted(s.dir, &s.manifest);
  for (const auto& [split, sources] : s.manifest.splits) {
    s.result.rows[split] = s.manifest.rows(split);
    for (const SourceInfo& src : sources) s.result.bad_rows += src.bad_rows;
  }
  s.result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

// The train rows of an Arrow input fitted as fit_preprocessor fits a file's: the same parser,
// row selection and bad-row reports.
Preprocessor fit_on_arrow(const ArrowPrepareInputs& in, const TableSchema& schema,
                          const RowSelection& rows, BadRowReport* report) {
  RowParser parser(schema, LabelMode::Required);
  PreprocessorFitter fitter(parser.schema(), in.options);
  ArrowArrayStream stream{};
  in.train(&stream);
  ArrowRecordReader reader(&stream, parser.schema(), LabelMode::Required, in.train_name);
  Record rec;
  ParsedRow row;
  int64_t ordinal = 0;
  while (reader.next(rec)) {
    if (!rows.selected(ordinal++)) continue;
    if (parser.parse(rec, row, report)) fitter.add(row);
  }
  Preprocessor p = fitter.finish();
  if (p.train_rows() == 0)
    TESSERA_THROW(Data, in.train_name << ": no usable training rows (" << ordinal << " rows read"
                                      << (report->skipped > 0 ? ", " + report->summary() : "")
                                      << ")");
  return p;
}

}  // namespace

PrepareResult prepare_dataset(const PrepareInputs& in, const std::string& dir,
                              const PrepareOptions& options) {
  const auto t0 = Clock::now();
  const TableSchema schema = resolve_schema(in.schema);
  if (schema.format == TableFormat::LibSvm)
    TESSERA_THROW(Config,
                  "prep: libSVM input has no fitted preprocessor to prepare with; "
                  "prepared data holds csv or criteo rows");
  if (options.shard_rows < 1 || options.shard_rows > static_cast<int64_t>(kMaxShardRows))
    TESSERA_THROW(Config, "prep: shard_rows must be in [1, 2^40], got " << options.shard_rows);
  Session s;
  s.dir = dir;
  s.options = options;
  auto planned = plan_sources(in);
  const double fraction = in.validation ? 0.0 : in.validation_fraction;
  const std::string key =
      inputs_key(schema, in.options, in.seed, fraction, options.shard_rows, planned);
  make_directories(dir);
  std::optional<PreparedManifest> old = existing_manifest(dir);
  if (old && old->inputs_key == key && fingerprints_match(*old) && shards_present(dir, *old)) {
    s.manifest = std::move(*old);
    s.pre = Preprocessor::from_json_string(s.manifest.preprocessor_json);
    if (s.manifest.complete) {  // nothing is written
      s.result.status = PrepareStatus::UpToDate;
      for (const auto& [split, sources] : s.manifest.splits)
        s.result.rows[split] = s.manifest.rows(split);
      return s.result;
    }
    s.result.status = PrepareStatus::Resumed;
    remove_unlisted(dir, nullptr);  // temporaries of a killed run
    finish(s, t0);
    return s.result;
  }
  for (auto& [split, sources] : planned)
    for (SourceInfo& src : sources) src.fingerprint = fingerprint_source(src.path);
  const RowSelection fit_rows{in.validation || fraction == 0 ? SplitPart::All : SplitPart::Train,
                              fraction, in.seed};
  BadRowReport fit_bad;
  s.pre = fit_preprocessor_threads(in.train, schema, in.options, fit_rows, options.threads,
                                   &fit_bad, &s.result.fit);
  if (!options.quiet && s.result.fit.sketched)
    std::fprintf(stderr,
                 "tessera prep: the token counts went over data.fit_memory_mb after %lld records: "
                 "counted in a %s MB sketch, then %lld candidates exactly in a second pass\n",
                 static_cast<long long>(s.result.fit.exact_records),
                 mb(s.result.fit.sketch_bytes).c_str(),
                 static_cast<long long>(s.result.fit.candidates));
  PreparedManifest& m = s.manifest;
  m.inputs_key = key;
  m.shard_rows = options.shard_rows;
  m.seed = in.seed;
  m.validation_fraction = fraction;
  m.preprocessor_json = s.pre.to_json_string();
  m.n_dense = s.pre.n_dense();
  m.n_cat = s.pre.n_cat();
  m.columns = columns_for(s.pre);
  m.splits = std::move(planned);
  write_preprocessor(dir, m);
  write_manifest(dir, m);
  remove_unlisted(dir, nullptr);
  finish(s, t0);
  return s.result;
}

PrepareResult append_source(const std::string& dir, const FileSpec& file,
                            const PrepareOptions& options) {
  const auto t0 = Clock::now();
  const std::string path = manifest_path(dir);
  Session s;
  s.dir = dir;
  s.options = options;
  s.manifest = PreparedManifest::parse(read_file(path), path);
  if (!s.manifest.complete)
    TESSERA_THROW(Data, path << ": complete is false: finish `tessera prep` before appending");
  s.pre = Preprocessor::from_json_string(s.manifest.preprocessor_json);
  const SourceFingerprint fp = fingerprint_source(file.path);
  std::vector<SourceInfo>& train = s.manifest.splits["train"];
  for (const SourceInfo& src : train) {
    if (src.path != file.path) continue;
    if (src.fingerprint != fp)
      TESSERA_THROW(Data, file.path << " was prepared into " << dir
                                    << " and has changed since: prepare the dataset again");
    s.result.status = PrepareStatus::UpToDate;
    for (const auto& [split, sources] : s.manifest.splits)
      s.result.rows[split] = s.manifest.rows(split);
    return s.result;
  }
  SourceInfo src;
  src.path = file.path;
  src.skip_lines = file.skip_lines;
  src.fingerprint = fp;
  src.appended = true;
  train.push_back(src);
  s.manifest.complete = false;
  write_manifest(dir, s.manifest);
  s.result.status = PrepareStatus::Appended;
  finish(s, t0);
  return s.result;
}

PrepareResult prepare_dataset_from_arrow(const ArrowPrepareInputs& in, const std::string& dir,
                                         const PrepareOptions& options) {
  const auto t0 = Clock::now();
  const TableSchema schema = resolve_schema(in.schema);
  if (schema.format == TableFormat::LibSvm)
    TESSERA_THROW(Config, "prep: libSVM rows are not read from Arrow data");
  if (options.shard_rows < 1 || options.shard_rows > static_cast<int64_t>(kMaxShardRows))
    TESSERA_THROW(Config, "prep: shard_rows must be in [1, 2^40], got " << options.shard_rows);
  if (!in.train) TESSERA_THROW(Usage, "prep: Arrow input without train rows");
  Session s;
  s.dir = dir;
  s.options = options;
  PrepareInputs plan;  // the file plan with each stream's name as its path
  plan.train.path = kArrowPrefix + in.train_name;
  s.arrow[plan.train.path] = &in.train;
  if (in.validation) {
    plan.validation = FileSpec{kArrowPrefix + in.validation_name, 0};
    s.arrow[plan.validation->path] = &in.validation;
  }
  if (in.test) {
    plan.test = FileSpec{kArrowPrefix + in.test_name, 0};
    s.arrow[plan.test->path] = &in.test;
  }
  if (s.arrow.size() != size_t{1} + bool(in.validation) + bool(in.test))
    TESSERA_THROW(Usage, "prep: the Arrow inputs need distinct names (train '"
                             << in.train_name << "', validation '" << in.validation_name
                             << "', test '" << in.test_name << "')");
  plan.validation_fraction = in.validation_fraction;
  auto planned = plan_sources(plan);
  const double fraction = in.validation ? 0.0 : in.validation_fraction;
  make_directories(dir);
  remove_unlisted(dir, nullptr);
  const RowSelection fit_rows{in.validation || fraction == 0 ? SplitPart::All : SplitPart::Train,
                              fraction, in.seed};
  BadRowReport fit_bad;
  s.pre = fit_on_arrow(in, schema, fit_rows, &fit_bad);
  PreparedManifest& m = s.manifest;
  // A stream has no identity to resume from: the key is new each time, so a rerun starts over.
  m.inputs_key = sha256_hex(
      "arrow|" + inputs_key(schema, in.options, in.seed, fraction, options.shard_rows, planned) +
      std::to_string(Clock::now().time_since_epoch().count()));
  m.shard_rows = options.shard_rows;
  m.seed = in.seed;
  m.validation_fraction = fraction;
  m.preprocessor_json = s.pre.to_json_string();
  m.n_dense = s.pre.n_dense();
  m.n_cat = s.pre.n_cat();
  m.columns = columns_for(s.pre);
  m.splits = std::move(planned);
  write_preprocessor(dir, m);
  write_manifest(dir, m);
  finish(s, t0);
  return s.result;
}

}  // namespace tessera
