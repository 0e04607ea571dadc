#include "host/data/preprocessor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <thread>

#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

#include "host/core/error.h"
#include "host/data/hash.h"

namespace tessera {

namespace {
// Train values kept per numeric column to fit the piecewise-linear bins' quantiles.
constexpr size_t kQuantileSample = 200000;
}  // namespace

using Alloc = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;

// ---- numeric and categorical columns ----------------------------------------------------------

double NumericColumnModel::transformed(double raw) const {
  if (transform == NumericTransform::Log1p) return std::log1p(raw > 0.0 ? raw : 0.0);  // NaN stays
  return raw;
}

float NumericColumnModel::encode(double raw) const {
  double t = transformed(raw);
  if (std::isnan(t)) t = mean;  // impute with the train mean
  switch (normalization) {
    case Normalization::Standard:
      return static_cast<float>((t - mean) / stddev);
    case Normalization::MinMax: {
      double range = static_cast<double>(max) - static_cast<double>(min);
      if (range == 0.0) range = 1.0;
      return static_cast<float>((t - min) / range);
    }
    case Normalization::None:
      break;
  }
  return static_cast<float>(t);
}

void NumericColumnModel::encode_into(double raw, float* out) const {
  out[0] = encode(raw);
  if (edges.size() < 2) return;
  double t = transformed(raw);
  if (std::isnan(t)) t = mean;
  for (size_t j = 0; j + 1 < edges.size(); ++j) {
    const double lo = edges[j], hi = edges[j + 1];
    out[1 + j] = t >= hi ? 1.f : t <= lo ? 0.f : static_cast<float>((t - lo) / (hi - lo));
  }
}

int64_t CategoricalColumnModel::local_row(std::string_view token) const {
  if (hash_buckets > 0)
    return static_cast<int64_t>(hash_token(token) % static_cast<uint64_t>(hash_buckets));
  const int64_t id = vocabulary.find(token);
  return id < 0 ? 0 : id + 1;
}

int64_t EncodeStats::total_oov() const {
  return std::accumulate(oov.begin(), oov.end(), int64_t{0});
}

void EncodeStats::merge(const EncodeStats& o) {
  rows += o.rows;
  if (oov.size() < o.oov.size()) oov.resize(o.oov.size(), 0);
  for (size_t i = 0; i < o.oov.size(); ++i) oov[i] += o.oov[i];
}

// ---- Preprocessor -----------------------------------------------------------------------------

int64_t Preprocessor::n_dense() const {
  int64_t n = 0;
  for (const NumericColumnModel& m : numeric_) n += m.width();
  return n;
}

int64_t Preprocessor::total_embedding_rows() const {
  int64_t n = 0;
  for (const CategoricalColumnModel& c : categorical_) n += c.size;
  return n;
}

void Preprocessor::assign_offsets() {
  int64_t offset = 0;
  for (CategoricalColumnModel& c : categorical_) {
    c.offset = offset;
    offset += c.size;
  }
}

EncodeStats Preprocessor::make_stats() const {
  EncodeStats s;
  s.oov.assign(categorical_.size(), 0);
  return s;
}

std::string Preprocessor::encode(const ParsedRow& row, float* dense, int64_t* cat,
                                 EncodeStats* stats) const {
  TESSERA_CHECK(
      row.numeric.size() == numeric_.size() && row.categorical.size() == categorical_.size(),
      "Preprocessor::encode: row has "
          << row.numeric.size() << " numeric and " << row.categorical.size()
          << " categorical values, the preprocessor " << numeric_.size() << " and "
          << categorical_.size());
  for (size_t k = 0; k < numeric_.size(); ++k) {
    const NumericColumnModel& m = numeric_[k];
    m.encode_into(row.numeric[k], dense);
    if (!std::isfinite(dense[0])) {
      std::ostringstream os;
      os << "column " << m.field + 1 << " (" << m.name << "): value " << row.numeric[k]
         << " is too far outside the training range to encode as a float32 feature (train range ["
         << m.min << ", " << m.max << "]"
         << (m.transform == NumericTransform::Log1p ? " after log1p)" : ")");
      return os.str();
    }
    dense += m.width();
  }
  if (stats != nullptr && stats->oov.size() != categorical_.size())
    stats->oov.resize(categorical_.size(), 0);
  encode_categorical(row.categorical, cat, stats);
  if (stats != nullptr) ++stats->rows;
  return std::string();
}

void Preprocessor::encode_categorical(const std::vector<std::string_view>& tokens, int64_t* cat,
                                      EncodeStats* stats) const {
  // Each vocabulary's slot is hashed and prefetched before any is read: the tables do not fit in
  // the cache, and the row's misses then overlap instead of following one another.
  constexpr size_t kChunk = 32;
  uint64_t hashes[kChunk];
  for (size_t k0 = 0; k0 < categorical_.size(); k0 += kChunk) {
    const size_t k1 = std::min(categorical_.size(), k0 + kChunk);
    for (size_t k = k0; k < k1; ++k) {
      if (categorical_[k].hashed()) continue;
      hashes[k - k0] = table_hash(tokens[k]);
      categorical_[k].vocabulary.prefetch(hashes[k - k0]);
    }
    for (size_t k = k0; k < k1; ++k) {
      const CategoricalColumnModel& c = categorical_[k];
      int64_t local = 0;
      if (c.hashed()) {
        local = c.local_row(tokens[k]);
      } else {
        local = c.vocabulary.find(tokens[k], hashes[k - k0]) + 1;  // -1 (unseen): the OOV row
        if (stats != nullptr && local == 0) ++stats->oov[k];
      }
      cat[k] = c.offset + local;
    }
  }
}

std::string Preprocessor::oov_summary(const EncodeStats& stats) const {
  std::ostringstream os;
  bool any = false;
  for (size_t k = 0; k < categorical_.size() && k < stats.oov.size(); ++k) {
    if (stats.oov[k] == 0) continue;
    os << (any ? "; " : "") << categorical_[k].name << ": " << stats.oov[k] << " of " << stats.rows
       << " values unseen on train (OOV row)";
    any = true;
  }
  return any ? os.str() : std::string("no unseen categories");
}

// ---- fitting ----------------------------------------------------------------------------------

PreprocessorFitter::PreprocessorFitter(const TableSchema& schema,
                                       const PreprocessOptions& options) {
  p_.schema_ = resolve_schema(schema);
  const std::vector<ColumnSpec>& cols = p_.schema_.columns;
  for (size_t i = 0; i < cols.size(); ++i) {
    const ColumnSpec& c = cols[i];
    if (c.type == ColumnType::Numeric) {
      NumericColumnModel m;
      m.name = c.name;
      m.field = static_cast<int>(i);
      m.transform = c.transform;
      auto it = options.numeric_overrides.find(c.name);
      const NumericSpec& spec =
          it != options.numeric_overrides.end() ? it->second : options.numeric;
      m.normalization = spec.normalization;
      if (spec.bins < 0 || spec.bins > 1024)
        TESSERA_THROW(Config,
                      "column '" << c.name << "': bins must be in [0, 1024], got " << spec.bins);
      bins_.push_back(spec.bins);
      bin_edges_.push_back(spec.bin_edges);
      p_.numeric_.push_back(std::move(m));
    } else if (c.type == ColumnType::Categorical) {
      CategoricalColumnModel m;
      m.name = c.name;
      m.field = static_cast<int>(i);
      auto it = options.categorical_overrides.find(c.name);
      const CategoricalSpec& spec =
          it != options.categorical_overrides.end() ? it->second : options.categorical;
      if (spec.min_count < 1) {
        TESSERA_THROW(Config,
                      "column '" << c.name << "': min_count must be >= 1, got " << spec.min_count);
      }
      if (spec.hash_buckets < 0) {
        TESSERA_THROW(Config, "column '" << c.name << "': hash_buckets must be >= 0, got "
                                         << spec.hash_buckets);
      }
      m.min_count = spec.min_count;
      m.hash_buckets = spec.hash_buckets;
      p_.categorical_.push_back(std::move(m));
    } else if (c.type == ColumnType::Label) {
      p_.label_field_ = static_cast<int>(i);
    }
  }
  for (auto& kv : options.numeric_overrides) {
    if (std::none_of(p_.numeric_.begin(), p_.numeric_.end(),
                     [&](const NumericColumnModel& m) { return m.name == kv.first; })) {
      TESSERA_THROW(
          Config, "numeric options given for '" << kv.first << "', which is not a numeric column");
    }
  }
  for (auto& kv : options.categorical_overrides) {
    if (std::none_of(p_.categorical_.begin(), p_.categorical_.end(),
                     [&](const CategoricalColumnModel& m) { return m.name == kv.first; })) {
      TESSERA_THROW(Config, "categorical options given for '"
                                << kv.first << "', which is not a categorical column");
    }
  }
  num_.resize(p_.numeric_.size());
  for (size_t k = 0; k < num_.size(); ++k) {
    num_[k].bins = bins_[k];
    num_[k].bin_edges = bin_edges_[k];
    num_[k].rng = 0x9E3779B97F4A7C15ull * (k + 1);
  }
  counts_ = make_counts();
}

CategoryCounts PreprocessorFitter::make_counts() const {
  std::vector<uint8_t> counted;
  std::vector<int64_t> min_counts;
  for (const CategoricalColumnModel& c : p_.categorical_) {
    counted.push_back(!c.hashed());
    min_counts.push_back(c.min_count);
  }
  return CategoryCounts(std::move(counted), std::move(min_counts));
}

void PreprocessorFitter::add_counts(CategoryCounts counts) {
  if (counts_.empty())
    counts_ = std::move(counts);  // the usual case: one merged count, not copied again
  else
    counts_.merge(counts);
}

bool CategoryCounts::empty() const {
  for (const TokenCounter& c : columns_)
    if (c.size() > 0) return false;
  return true;
}

CategoryCounts::CategoryCounts(std::vector<uint8_t> counted, std::vector<int64_t> min_counts)
    : counted_(std::move(counted)),
      min_counts_(std::move(min_counts)),
      columns_(counted_.size()),
      hashes_(counted_.size()) {
  TESSERA_CHECK(min_counts_.size() == counted_.size(), "CategoryCounts: min_counts per column");
}

void CategoryCounts::add(const std::vector<std::string_view>& tokens) {
  TESSERA_CHECK(tokens.size() == columns_.size(), "CategoryCounts::add: row does not match");
  if (mode_ != Mode::Exact) return add_sketched(tokens);
  // Hash every column first and prefetch its slot: the tables are too big for the cache, and the
  // misses of a row's columns then overlap instead of following one another.
  for (size_t k = 0; k < columns_.size(); ++k) {
    if (!counted_[k]) continue;
    hashes_[k] = table_hash(tokens[k]);
    columns_[k].prefetch(hashes_[k]);
  }
  for (size_t k = 0; k < columns_.size(); ++k)
    if (counted_[k]) columns_[k].add(tokens[k], hashes_[k]);
}

// Mode::Sketch and Mode::Candidates: each token's sketch counters are prefetched for the whole
// row first (kDepth misses a token), as add() does for the counters' slots.
void CategoryCounts::add_sketched(const std::vector<std::string_view>& tokens) {
  std::vector<uint64_t>& keys = keys_;
  keys.resize(columns_.size());
  for (size_t k = 0; k < columns_.size(); ++k) {
    if (!counted_[k]) continue;
    hashes_[k] = table_hash(tokens[k]);
    keys[k] = CountMinSketch::key_of(static_cast<int64_t>(k), hashes_[k]);
    sketch_->prefetch(keys[k]);
  }
  for (size_t k = 0; k < columns_.size(); ++k) {
    if (!counted_[k]) continue;
    if (mode_ == Mode::Sketch)
      sketch_->add(keys[k]);
    else if (sketch_->may_reach(keys[k], min_counts_[k]))
      columns_[k].add(tokens[k], hashes_[k]);
  }
}

void CategoryCounts::set_mode(Mode mode, CountMinSketch* sketch) {
  TESSERA_CHECK(mode == Mode::Exact || sketch != nullptr, "CategoryCounts::set_mode: no sketch");
  mode_ = mode;
  sketch_ = sketch;
}

void CategoryCounts::pour_into(CountMinSketch& sketch) {
  for (size_t k = 0; k < columns_.size(); ++k) {
    TokenCounter& c = columns_[k];
    const std::vector<int64_t> n = c.counts();
    for (int64_t id = 0; id < c.size(); ++id)
      sketch.add(CountMinSketch::key_of(static_cast<int64_t>(k), c.hash_of(id)),
                 static_cast<uint64_t>(n[static_cast<size_t>(id)]));
    c.clear();
  }
}

int64_t CategoryCounts::bytes() const {
  int64_t b = 0;
  for (const TokenCounter& c : columns_) b += c.bytes();
  return b;
}

int64_t CategoryCounts::bytes_bound(int64_t more_tokens, int64_t more_bytes) const {
  // An arena of capacity A that grows to hold e more bytes holds at most A + 2 (A + e) at once
  // (old buffer and a new one of at most twice the need): summed over the columns, at most
  // 3 A_k each and 2 more_bytes in all, however the new bytes fall between the columns.
  int64_t b = 2 * more_bytes;
  for (size_t k = 0; k < columns_.size(); ++k) {
    if (!counted_[k]) continue;
    b += columns_[k].bytes_bound(more_tokens) + 3 * columns_[k].arena_capacity();
  }
  return b;
}

void CategoryCounts::merge(const CategoryCounts& other) {
  TESSERA_CHECK(other.columns_.size() == columns_.size(), "CategoryCounts::merge: other columns");
  for (size_t k = 0; k < columns_.size(); ++k) columns_[k].merge(other.columns_[k]);
}

void CategoryCounts::merge_all(std::vector<CategoryCounts>& parts, int threads) {
  if (parts.size() < 2) return;
  const size_t n_cat = parts[0].columns_.size();
  const size_t t = std::max<size_t>(1, std::min<size_t>(threads, n_cat));
  // Column k is merged by thread k % t, parts in order 1, 2, ...: the same ids for any t.
  auto work = [&](size_t first) {
    for (size_t k = first; k < n_cat; k += t)
      for (size_t p = 1; p < parts.size(); ++p) {
        parts[0].columns_[k].merge(parts[p].columns_[k]);
        parts[p].columns_[k].clear();  // memory back as soon as it is merged
      }
  };
  std::vector<std::thread> pool;
  for (size_t i = 1; i < t; ++i) pool.emplace_back(work, i);
  work(0);
  for (std::thread& th : pool) th.join();
}

void PreprocessorFitter::add(const ParsedRow& row) {
  TESSERA_CHECK(row.numeric.size() == num_.size(),
                "PreprocessorFitter::add: row does not match the schema");
  add_numeric(row.numeric.data());
  counts_.add(row.categorical);
}

void PreprocessorFitter::add_numeric(const double* raw) {
  ++p_.train_rows_;
  for (size_t k = 0; k < num_.size(); ++k) {
    const double t = p_.numeric_[k].transformed(raw[k]);
    NumericAcc& a = num_[k];
    if (std::isnan(t)) {
      ++p_.numeric_[k].missing;
      continue;
    }
    if (a.n == 0) {
      a.min = a.max = t;
    } else {
      a.min = std::min(a.min, t);
      a.max = std::max(a.max, t);
    }
    ++a.n;
    if (a.bins > 0) {
      // Reservoir sampling (Algorithm R) with a fixed-seed xorshift: the same file gives the
      // same sample, and memory stays bounded on large training files.
      if (a.sample.size() < kQuantileSample) {
        a.sample.push_back(t);
      } else {
        a.rng ^= a.rng << 13, a.rng ^= a.rng >> 7, a.rng ^= a.rng << 17;
        const uint64_t j = a.rng % static_cast<uint64_t>(a.n);
        if (j < kQuantileSample) a.sample[j] = t;
      }
    }
    const double d = t - a.mean;
    a.mean += d / static_cast<double>(a.n);
    a.m2 += d * (t - a.mean);
  }
}

namespace {

float to_float_checked(double v, const std::string& column, const char* what) {
  const float f = static_cast<float>(v);
  if (!std::isfinite(f)) {
    TESSERA_THROW(Data, "column '" << column << "': train " << what << " " << v
                                   << " does not fit a float32 (transform the column, e.g. log1p)");
  }
  return f;
}

}  // namespace

Preprocessor PreprocessorFitter::finish() {
  for (size_t k = 0; k < num_.size(); ++k) {
    NumericColumnModel& m = p_.numeric_[k];
    const NumericAcc& a = num_[k];
    m.count = a.n;
    if (a.n == 0) {
      m.mean = 0.f, m.stddev = 1.f, m.min = 0.f, m.max = 0.f;
      continue;
    }
    m.mean = to_float_checked(a.mean, m.name, "mean");
    m.min = to_float_checked(a.min, m.name, "minimum");
    m.max = to_float_checked(a.max, m.name, "maximum");
    const float sd = to_float_checked(std::sqrt(a.m2 / static_cast<double>(a.n)), m.name, "stddev");
    m.stddev = sd > 0.f ? sd : 1.f;
    if (a.bins > 0) {
      std::vector<double> v = a.sample;
      std::sort(v.begin(), v.end());
      if (a.bin_edges == BinEdges::DistinctQuantile)
        v.erase(std::unique(v.begin(), v.end()), v.end());
      m.edges.clear();
      for (int q = 0; q <= a.bins; ++q) {
        const size_t idx = static_cast<size_t>(
            std::llround(static_cast<double>(q) * static_cast<double>(v.size() - 1) / a.bins));
        const float e = static_cast<float>(v[idx]);
        if (m.edges.empty() || e > m.edges.back()) m.edges.push_back(e);
      }
      if (m.edges.size() < 2) m.edges.clear();  // a constant column: nothing to encode
    }
  }
  for (size_t k = 0; k < p_.categorical_.size(); ++k) {
    CategoricalColumnModel& c = p_.categorical_[k];
    if (c.hashed()) {
      c.size = c.hash_buckets;
      continue;
    }
    const TokenCounter& seen = counts_.columns()[k];
    const std::vector<int64_t> cnt = seen.counts();
    std::vector<int64_t> keep;
    for (int64_t id = 0; id < seen.size(); ++id) {
      if (cnt[id] >= c.min_count) keep.push_back(id);
    }
    // Most frequent first, ties by token bytes: independent of the order tokens were first seen
    // (so of how the rows were split between threads).
    std::sort(keep.begin(), keep.end(), [&](int64_t a, int64_t b) {
      if (cnt[a] != cnt[b]) return cnt[a] > cnt[b];
      return seen.token(a) < seen.token(b);
    });
    c.vocabulary.clear();
    c.vocabulary.reserve(static_cast<int64_t>(keep.size()));
    c.counts.clear();
    for (int64_t id : keep) {
      c.vocabulary.insert(seen.token(id));
      c.counts.push_back(cnt[id]);
    }
    c.size = 1 + c.vocabulary.size();
  }
  counts_ = CategoryCounts();
  p_.assign_offsets();
  return std::move(p_);
}

// ---- JSON -------------------------------------------------------------------------------------

namespace {

// The names each enum has in the JSON, for writing it (enum_name) and reading it (parse_enum).
const std::pair<const char*, TableFormat> kFormats[] = {
    {"csv", TableFormat::Csv}, {"criteo", TableFormat::Criteo}, {"libsvm", TableFormat::LibSvm}};
const std::pair<const char*, ColumnType> kTypes[] = {{"numeric", ColumnType::Numeric},
                                                     {"categorical", ColumnType::Categorical},
                                                     {"label", ColumnType::Label},
                                                     {"ignore", ColumnType::Ignore}};
const std::pair<const char*, NumericTransform> kTransforms[] = {{"none", NumericTransform::None},
                                                                {"log1p", NumericTransform::Log1p}};
const std::pair<const char*, Normalization> kNorms[] = {{"none", Normalization::None},
                                                        {"standard", Normalization::Standard},
                                                        {"minmax", Normalization::MinMax}};
const std::pair<const char*, BadRowPolicy> kPolicies[] = {{"error", BadRowPolicy::Error},
                                                          {"skip", BadRowPolicy::Skip}};

template <typename E, size_t N>
const char* enum_name(E value, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& kv : table)
    if (kv.second == value) return kv.first;
  return "?";
}

rapidjson::Value str_value(std::string_view s, Alloc& a) {
  rapidjson::Value v;
  v.SetString(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
  return v;
}

rapidjson::Value str_array(const std::vector<std::string>& xs, Alloc& a) {
  rapidjson::Value arr(rapidjson::kArrayType);
  for (const std::string& x : xs) arr.PushBack(str_value(x, a), a);
  return arr;
}

// Reading, with errors that name the member.
[[noreturn]] void bad(const std::string& where, const std::string& what) {
  TESSERA_THROW(Data, "preprocessor JSON: " << where << ": " << what);
}

constexpr int64_t kMaxHashBuckets = int64_t{1} << 40;

const rapidjson::Value& member(const rapidjson::Value& obj, const char* name,
                               const std::string& where) {
  if (!obj.IsObject()) bad(where, "expected an object");
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) bad(where, std::string("missing member '") + name + "'");
  return it->value;
}
std::string get_string(const rapidjson::Value& obj, const char* name, const std::string& where) {
  const rapidjson::Value& v = member(obj, name, where);
  if (!v.IsString()) bad(where + "." + name, "expected a string");
  return std::string(v.GetString(), v.GetStringLength());
}
int64_t get_int(const rapidjson::Value& obj, const char* name, const std::string& where) {
  const rapidjson::Value& v = member(obj, name, where);
  if (!v.IsInt64()) bad(where + "." + name, "expected an integer");
  return v.GetInt64();
}
bool get_bool(const rapidjson::Value& obj, const char* name, const std::string& where) {
  const rapidjson::Value& v = member(obj, name, where);
  if (!v.IsBool()) bad(where + "." + name, "expected true or false");
  return v.GetBool();
}
float get_float(const rapidjson::Value& obj, const char* name, const std::string& where) {
  const rapidjson::Value& v = member(obj, name, where);
  if (!v.IsNumber()) bad(where + "." + name, "expected a number");
  return static_cast<float>(v.GetDouble());
}
const rapidjson::Value& get_array(const rapidjson::Value& obj, const char* name,
                                  const std::string& where) {
  const rapidjson::Value& v = member(obj, name, where);
  if (!v.IsArray()) bad(where + "." + name, "expected an array");
  return v;
}
std::vector<std::string> get_strings(const rapidjson::Value& obj, const char* name,
                                     const std::string& where) {
  std::vector<std::string> out;
  for (const rapidjson::Value& s : get_array(obj, name, where).GetArray()) {
    if (!s.IsString()) bad(where + "." + name, "expected an array of strings");
    out.emplace_back(s.GetString(), s.GetStringLength());
  }
  return out;
}

template <typename E, size_t N>
E parse_enum(const std::string& s, const std::pair<const char*, E> (&table)[N],
             const std::string& where) {
  std::string valid;
  for (const auto& kv : table) {
    if (s == kv.first) return kv.second;
    valid += std::string(valid.empty() ? "" : ", ") + kv.first;
  }
  bad(where, "'" + s + "' is not one of " + valid);
}

// A JSON array of one object per fitted column model, each opening with its "name" and "field";
// `members(model, object)` adds the rest.
template <typename Model, typename Members>
rapidjson::Value column_models_json(const std::vector<Model>& models, Alloc& a, Members members) {
  rapidjson::Value out(rapidjson::kArrayType);
  for (const Model& m : models) {
    rapidjson::Value v(rapidjson::kObjectType);
    v.AddMember("name", str_value(m.name, a), a);
    v.AddMember("field", m.field, a);
    members(m, v);
    out.PushBack(v, a);
  }
  return out;
}

}  // namespace

void Preprocessor::to_json(rapidjson::Value& out, Alloc& a) const {
  out.SetObject();
  out.AddMember("format", "tessera.preprocessor", a);
  out.AddMember("version", 1, a);
  rapidjson::Value schema(rapidjson::kObjectType);
  schema.AddMember("format", rapidjson::StringRef(enum_name(schema_.format, kFormats)), a);
  schema.AddMember("delimiter", str_value(std::string_view(&schema_.delimiter, 1), a), a);
  schema.AddMember("header", schema_.header, a);
  schema.AddMember("trim", schema_.trim, a);
  schema.AddMember("missing_tokens", str_array(schema_.missing_tokens, a), a);
  schema.AddMember("on_error", rapidjson::StringRef(enum_name(schema_.on_error, kPolicies)), a);
  schema.AddMember("libsvm_features", schema_.libsvm_features, a);
  rapidjson::Value cols(rapidjson::kArrayType);
  for (const ColumnSpec& c : schema_.columns) {
    rapidjson::Value col(rapidjson::kObjectType);
    col.AddMember("name", str_value(c.name, a), a);
    col.AddMember("type", rapidjson::StringRef(enum_name(c.type, kTypes)), a);
    col.AddMember("transform", rapidjson::StringRef(enum_name(c.transform, kTransforms)), a);
    col.AddMember("positive", str_array(c.positive, a), a);
    col.AddMember("negative", str_array(c.negative, a), a);
    cols.PushBack(col, a);
  }
  schema.AddMember("columns", cols, a);
  out.AddMember("schema", schema, a);

  auto numeric = [&](const NumericColumnModel& m, rapidjson::Value& v) {
    v.AddMember("transform", rapidjson::StringRef(enum_name(m.transform, kTransforms)), a);
    v.AddMember("normalization", rapidjson::StringRef(enum_name(m.normalization, kNorms)), a);
    v.AddMember("count", m.count, a);
    v.AddMember("missing", m.missing, a);
    v.AddMember("mean", static_cast<double>(m.mean), a);
    v.AddMember("stddev", static_cast<double>(m.stddev), a);
    v.AddMember("min", static_cast<double>(m.min), a);
    v.AddMember("max", static_cast<double>(m.max), a);
    rapidjson::Value edges(rapidjson::kArrayType);
    for (float e : m.edges) edges.PushBack(static_cast<double>(e), a);
    v.AddMember("edges", edges, a);
  };
  out.AddMember("numeric", column_models_json(numeric_, a, numeric), a);

  auto categorical = [&](const CategoricalColumnModel& c, rapidjson::Value& v) {
    v.AddMember("min_count", c.min_count, a);
    v.AddMember("hash_buckets", c.hash_buckets, a);
    v.AddMember("offset", c.offset, a);
    v.AddMember("size", c.size, a);
    rapidjson::Value tokens(rapidjson::kArrayType);
    rapidjson::Value counts(rapidjson::kArrayType);
    for (int64_t i = 0; i < c.vocabulary.size(); ++i) {
      tokens.PushBack(str_value(c.vocabulary.token(i), a), a);
      counts.PushBack(c.counts[i], a);
    }
    v.AddMember("tokens", tokens, a);  // token i is local row i + 1; row 0 is OOV
    v.AddMember("counts", counts, a);
  };
  out.AddMember("categorical", column_models_json(categorical_, a, categorical), a);
  out.AddMember("train_rows", train_rows_, a);
}

// ---- the same JSON, streamed ------------------------------------------------------------------
// to_json builds a document of ~110 bytes a vocabulary token (a rapidjson Value per token and per
// count) only to serialise it; at 7.1M tokens that was ~0.8 GB at every model save. append_json
// writes the same bytes straight from the fitted columns through rapidjson's Writer, in the
// member order to_json adds them (tests/preprocessor_json_stream_test.cpp holds the two equal).

namespace {

// A rapidjson output stream appending to a std::string (no intermediate buffer to copy out).
struct StringAppendStream {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};

using JsonWriter = rapidjson::Writer<StringAppendStream>;

// Every Writer call returns false only on a non-finite double (kWriteDefaultFlags), which the
// document's Accept reports the same way.
void check(bool ok) {
  if (!ok) TESSERA_THROW(Internal, "preprocessor JSON: writing failed");
}

void write_string(JsonWriter& w, std::string_view s) {
  check(w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())));
}

void write_strings(JsonWriter& w, const char* key, const std::vector<std::string>& xs) {
  w.Key(key);
  w.StartArray();
  for (const std::string& x : xs) write_string(w, x);
  w.EndArray();
}

void write_schema(JsonWriter& w, const TableSchema& s) {
  w.StartObject();
  w.Key("format");
  write_string(w, enum_name(s.format, kFormats));
  w.Key("delimiter");
  write_string(w, std::string_view(&s.delimiter, 1));
  w.Key("header");
  w.Bool(s.header);
  w.Key("trim");
  w.Bool(s.trim);
  write_strings(w, "missing_tokens", s.missing_tokens);
  w.Key("on_error");
  write_string(w, enum_name(s.on_error, kPolicies));
  w.Key("libsvm_features");
  w.Int(s.libsvm_features);
  w.Key("columns");
  w.StartArray();
  for (const ColumnSpec& c : s.columns) {
    w.StartObject();
    w.Key("name");
    write_string(w, c.name);
    w.Key("type");
    write_string(w, enum_name(c.type, kTypes));
    w.Key("transform");
    write_string(w, enum_name(c.transform, kTransforms));
    write_strings(w, "positive", c.positive);
    write_strings(w, "negative", c.negative);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void write_double(JsonWriter& w, const char* key, float v) {
  w.Key(key);
  check(w.Double(static_cast<double>(v)));
}

void write_numeric(JsonWriter& w, const NumericColumnModel& m) {
  w.Key("transform");
  write_string(w, enum_name(m.transform, kTransforms));
  w.Key("normalization");
  write_string(w, enum_name(m.normalization, kNorms));
  w.Key("count");
  w.Int64(m.count);
  w.Key("missing");
  w.Int64(m.missing);
  write_double(w, "mean", m.mean);
  write_double(w, "stddev", m.stddev);
  write_double(w, "min", m.min);
  write_double(w, "max", m.max);
  w.Key("edges");
  w.StartArray();
  for (float e : m.edges) check(w.Double(static_cast<double>(e)));
  w.EndArray();
}

void write_categorical(JsonWriter& w, const CategoricalColumnModel& c) {
  w.Key("min_count");
  w.Int64(c.min_count);
  w.Key("hash_buckets");
  w.Int64(c.hash_buckets);
  w.Key("offset");
  w.Int64(c.offset);
  w.Key("size");
  w.Int64(c.size);
  w.Key("tokens");  // token i is local row i + 1; row 0 is OOV
  w.StartArray();
  for (int64_t i = 0; i < c.vocabulary.size(); ++i) write_string(w, c.vocabulary.token(i));
  w.EndArray();
  w.Key("counts");
  w.StartArray();
  for (int64_t i = 0; i < c.vocabulary.size(); ++i) w.Int64(c.counts[i]);
  w.EndArray();
}

// As column_models_json: one object per model, opening with "name" and "field".
template <typename Model, typename Members>
void write_column_models(JsonWriter& w, const char* key, const std::vector<Model>& models,
                         Members members) {
  w.Key(key);
  w.StartArray();
  for (const Model& m : models) {
    w.StartObject();
    w.Key("name");
    write_string(w, m.name);
    w.Key("field");
    w.Int(m.field);
    members(w, m);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

void Preprocessor::append_json(std::string& out) const {
  StringAppendStream os{&out};
  JsonWriter w(os);
  w.StartObject();
  w.Key("format");
  w.String("tessera.preprocessor");
  w.Key("version");
  w.Int(1);
  w.Key("schema");
  write_schema(w, schema_);
  write_column_models(w, "numeric", numeric_, write_numeric);
  write_column_models(w, "categorical", categorical_, write_categorical);
  w.Key("train_rows");
  w.Int64(train_rows_);
  w.EndObject();
  if (!w.IsComplete()) TESSERA_THROW(Internal, "preprocessor JSON: writing failed");
}

std::string Preprocessor::to_json_string() const {
  std::string out;
  append_json(out);
  return out;
}

Preprocessor Preprocessor::from_json_string(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    TESSERA_THROW(Data, "preprocessor JSON: parse error at offset "
                            << doc.GetErrorOffset() << ": "
                            << rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return from_json(doc);
}

namespace {

// The "schema" member, resolved (resolve_schema's errors name "schema").
TableSchema schema_from_json(const rapidjson::Value& js) {
  TableSchema s;
  s.format = parse_enum(get_string(js, "format", "schema"), kFormats, "schema.format");
  const std::string delim = get_string(js, "delimiter", "schema");
  if (delim.size() != 1) bad("schema.delimiter", "expected one character");
  s.delimiter = delim[0];
  s.header = get_bool(js, "header", "schema");
  s.trim = get_bool(js, "trim", "schema");
  s.missing_tokens = get_strings(js, "missing_tokens", "schema");
  s.on_error = parse_enum(get_string(js, "on_error", "schema"), kPolicies, "schema.on_error");
  s.libsvm_features = static_cast<int>(get_int(js, "libsvm_features", "schema"));
  s.columns.clear();
  int i = 0;
  for (const rapidjson::Value& jc : get_array(js, "columns", "schema").GetArray()) {
    const std::string where = "schema.columns[" + std::to_string(i++) + "]";
    ColumnSpec c;
    c.name = get_string(jc, "name", where);
    c.type = parse_enum(get_string(jc, "type", where), kTypes, where + ".type");
    c.transform = parse_enum(get_string(jc, "transform", where), kTransforms, where + ".transform");
    c.positive = get_strings(jc, "positive", where);
    c.negative = get_strings(jc, "negative", where);
    s.columns.push_back(std::move(c));
  }
  try {
    return resolve_schema(s);
  } catch (const Error& e) {
    bad("schema", e.what());
  }
}

// One "numeric[i]" entry (`where`), which must model the numeric column of `s` it names.
NumericColumnModel numeric_from_json(const rapidjson::Value& jn, const std::string& where,
                                     const TableSchema& s) {
  NumericColumnModel m;
  m.name = get_string(jn, "name", where);
  m.field = static_cast<int>(get_int(jn, "field", where));
  m.transform = parse_enum(get_string(jn, "transform", where), kTransforms, where + ".transform");
  m.normalization =
      parse_enum(get_string(jn, "normalization", where), kNorms, where + ".normalization");
  m.count = get_int(jn, "count", where);
  m.missing = get_int(jn, "missing", where);
  m.mean = get_float(jn, "mean", where);
  m.stddev = get_float(jn, "stddev", where);
  m.min = get_float(jn, "min", where);
  m.max = get_float(jn, "max", where);
  if (jn.HasMember("edges")) {
    const rapidjson::Value& edges = get_array(jn, "edges", where);
    for (const rapidjson::Value& e : edges.GetArray()) {
      if (!e.IsNumber()) bad(where + ".edges", "must be numbers");
      const float f = static_cast<float>(e.GetDouble());
      if (!m.edges.empty() && !(f > m.edges.back())) bad(where + ".edges", "must increase");
      m.edges.push_back(f);
    }
    if (m.edges.size() == 1) bad(where + ".edges", "needs at least 2 edges or none");
  }
  if (m.field < 0 || m.field >= static_cast<int>(s.columns.size()) ||
      s.columns[m.field].type != ColumnType::Numeric || s.columns[m.field].name != m.name) {
    bad(where, "field " + std::to_string(m.field) + " is not the numeric column '" + m.name + "'");
  }
  if (!(m.stddev > 0.f)) bad(where + ".stddev", "must be > 0");
  return m;
}

// One "categorical[i]" entry (`where`), which must model the categorical column of `s` it names
// and start at `expected_offset` (advanced past its rows).
CategoricalColumnModel categorical_from_json(const rapidjson::Value& jc, const std::string& where,
                                             const TableSchema& s, int64_t& expected_offset) {
  CategoricalColumnModel c;
  c.name = get_string(jc, "name", where);
  c.field = static_cast<int>(get_int(jc, "field", where));
  c.min_count = get_int(jc, "min_count", where);
  c.hash_buckets = get_int(jc, "hash_buckets", where);
  // As a config may ask (2^40 at most): the offsets below add up without overflow.
  if (c.hash_buckets < 0 || c.hash_buckets > kMaxHashBuckets)
    bad(where + ".hash_buckets", "must be in [0, 2^40]");
  c.offset = get_int(jc, "offset", where);
  c.size = get_int(jc, "size", where);
  if (c.field < 0 || c.field >= static_cast<int>(s.columns.size()) ||
      s.columns[c.field].type != ColumnType::Categorical || s.columns[c.field].name != c.name) {
    bad(where,
        "field " + std::to_string(c.field) + " is not the categorical column '" + c.name + "'");
  }
  const rapidjson::Value& tokens = get_array(jc, "tokens", where);
  const rapidjson::Value& counts = get_array(jc, "counts", where);
  if (tokens.Size() != counts.Size()) bad(where, "tokens and counts differ in length");
  c.vocabulary.reserve(tokens.Size());
  for (rapidjson::SizeType t = 0; t < tokens.Size(); ++t) {
    if (!tokens[t].IsString() || !counts[t].IsInt64())
      bad(where, "tokens must be strings, counts integers");
    const int64_t before = c.vocabulary.size();
    c.vocabulary.insert(std::string_view(tokens[t].GetString(), tokens[t].GetStringLength()));
    if (c.vocabulary.size() == before) bad(where + ".tokens", "repeated token");
    c.counts.push_back(counts[t].GetInt64());
  }
  const int64_t want_size = c.hash_buckets > 0 ? c.hash_buckets : 1 + c.vocabulary.size();
  if (c.size != want_size) bad(where + ".size", "expected " + std::to_string(want_size));
  if (c.offset != expected_offset)
    bad(where + ".offset", "expected " + std::to_string(expected_offset));
  expected_offset += c.size;  // each size is at most 2^40 + 1: no overflow before this check
  if (expected_offset > kMaxHashBuckets * 1024) bad(where, "the tables add up to over 2^50 rows");
  return c;
}

// Every numeric and categorical schema column has its model, in column order, and no model is
// left over.
void check_models_cover_columns(const TableSchema& s,
                                const std::vector<NumericColumnModel>& numeric,
                                const std::vector<CategoricalColumnModel>& categorical) {
  size_t kn = 0, kc = 0;
  for (size_t f = 0; f < s.columns.size(); ++f) {
    if (s.columns[f].type == ColumnType::Numeric) {
      if (kn >= numeric.size() || numeric[kn++].field != static_cast<int>(f)) {
        bad("numeric", "no model, in column order, for numeric column '" + s.columns[f].name + "'");
      }
    } else if (s.columns[f].type == ColumnType::Categorical) {
      if (kc >= categorical.size() || categorical[kc++].field != static_cast<int>(f)) {
        bad("categorical",
            "no model, in column order, for categorical column '" + s.columns[f].name + "'");
      }
    }
  }
  if (kn != numeric.size() || kc != categorical.size())
    bad("preprocessor", "more column models than schema columns");
}

}  // namespace

Preprocessor Preprocessor::from_json(const rapidjson::Value& in) {
  const std::string root = "preprocessor";
  if (get_string(in, "format", root) != "tessera.preprocessor")
    bad(root + ".format", "not a tessera preprocessor");
  const int64_t version = get_int(in, "version", root);
  if (version != 1) bad(root + ".version", "unsupported version " + std::to_string(version));

  Preprocessor p;
  p.schema_ = schema_from_json(member(in, "schema", root));
  const TableSchema& s = p.schema_;
  for (size_t f = 0; f < s.columns.size(); ++f) {
    if (s.columns[f].type == ColumnType::Label) p.label_field_ = static_cast<int>(f);
  }

  int i = 0;
  for (const rapidjson::Value& jn : get_array(in, "numeric", root).GetArray()) {
    const std::string where = "numeric[" + std::to_string(i++) + "]";
    p.numeric_.push_back(numeric_from_json(jn, where, s));
  }
  i = 0;
  int64_t expected_offset = 0;
  for (const rapidjson::Value& jc : get_array(in, "categorical", root).GetArray()) {
    const std::string where = "categorical[" + std::to_string(i++) + "]";
    p.categorical_.push_back(categorical_from_json(jc, where, s, expected_offset));
  }
  check_models_cover_columns(s, p.numeric_, p.categorical_);
  p.train_rows_ = get_int(in, "train_rows", root);
  return p;
}

}  // namespace tessera
