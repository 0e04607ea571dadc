#include "pipelines/behaviour/synthetic_criteo.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/criteo.h"
#include "pipelines/behaviour/synthetic_files.h"

namespace tessera::behaviour {

// The number of distinct values of each categorical feature C1..C26 of the Criteo 1TB Click Logs
// over all 24 days (day_0..day_23). The MLPerf DLRM-DCNv2 reference (mlcommons/training,
// recommendation_v2/torchrec_dlrm) trains with these figures as --num_embeddings_per_feature,
// the five above 40M capped there at 40,000,000 ("40000000,39060,17295,7424,20265,3,7122,...");
// the uncapped counts of those five are the ones the frequency-counting pass over day_0..23
// reports (227,605,432 for C1, 130,229,467 for C10, 292,775,614 for C20, 40,790,948 for C21,
// 187,188,510 for C22).
const std::array<int64_t, 26>& criteo_1tb_table_rows() {
  static const std::array<int64_t, 26> rows = {
      227605432, 39060,     17295,    7424,      20265,  3,     7122, 1543, 63,
      130229467, 3067956,   405282,   10,        2209,   11938, 155,  4,    976,
      14,        292775614, 40790948, 187188510, 590152, 12973, 108,  36};
  return rows;
}

// ---- Zipf by rejection-inversion ---------------------------------------------------------------
// With s the exponent and h(x) = x^-s, area(x) = (x^(1-s) - 1) / (1 - s) (log x when s == 1) is
// an antiderivative of h. A uniform u over [area(1.5) - h(1), area(n + 0.5)] inverted through
// area gives x; k = round(x) is accepted when x is in the part of k's bar that lies under the
// curve (always when k - x <= squeeze_), else u is drawn again. log1p(t)/t and expm1(t)/t keep
// the formulas exact near s == 1.
namespace {
double log1p_over(double t) {
  return std::abs(t) > 1e-8 ? std::log1p(t) / t : 1.0 - t * (0.5 - t * (1.0 / 3.0 - 0.25 * t));
}
double expm1_over(double t) {
  return std::abs(t) > 1e-8 ? std::expm1(t) / t
                            : 1.0 + t * 0.5 * (1.0 + t / 3.0 * (1.0 + 0.25 * t));
}
}  // namespace

ZipfSampler::ZipfSampler(int64_t n, double exponent) : n_(n), s_(exponent) {
  TESSERA_CHECK(n >= 1 && exponent > 0, "ZipfSampler: needs n >= 1 and an exponent > 0");
  area_1_ = area(1.5) - 1.0;
  area_n_ = area(static_cast<double>(n) + 0.5);
  squeeze_ = 2.0 - area_inverse(area(2.5) - density(2.0));
}
double ZipfSampler::density(double x) const {
  return std::exp(-s_ * std::log(x));
}
double ZipfSampler::area(double x) const {
  const double lx = std::log(x);
  return expm1_over((1.0 - s_) * lx) * lx;
}
double ZipfSampler::area_inverse(double y) const {
  const double t = std::max(-1.0, y * (1.0 - s_));
  return std::exp(log1p_over(t) * y);
}

namespace {

constexpr int kInformativeTables = 8;                            // tables 0..7: per-id effects
constexpr int kPairTables[3][2] = {{8, 9}, {10, 11}, {12, 13}};  // dot-product effects
constexpr int kPairDim = 4;
constexpr int64_t kChunkRows = 8192;  // rows per generated block (a couple of MB of text)
enum Split : uint64_t { kTrain = 1, kTest = 2 };

// A uniform in [-1, 1) from (salt, table, id): the planted effects need no storage.
double hash_signed(uint64_t salt, int64_t table, int64_t id) {
  const uint64_t h = math::mix64(
      salt ^ math::mix64((static_cast<uint64_t>(table) << 48) ^ static_cast<uint64_t>(id)));
  return static_cast<double>(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

// A counter-based stream (splitmix64) per chunk: its draws depend on (seed, split, chunk) only.
struct ChunkRng {
  using result_type = uint64_t;
  uint64_t state;
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() { return ~uint64_t{0}; }
  uint64_t operator()() { return math::mix64(state += 0x9E3779B97F4A7C15ull); }
  double uniform() { return static_cast<double>((*this)() >> 11) * (1.0 / 9007199254740992.0); }
};

struct Generator {
  std::vector<ZipfSampler> tables;
  uint64_t seed = 0, salt = 0;
};

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out += buf[--n];
}

void append_hex8(std::string& out, uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  char buf[9];
  buf[0] = '\t';
  for (int i = 8; i >= 1; --i, v >>= 4) buf[i] = kDigits[v & 15];
  out.append(buf, 9);
}

// The planted logit of a row (missing counts contribute as a log1p of 1.5 would).
double planted_logit(const Generator& g, const int64_t* ids, const double* counts,
                     const bool* missing) {
  double z = -1.3;
  auto lc = [&](int k) { return missing[k] ? 1.5 : std::log1p(counts[k]); };
  z += 0.5 * (lc(0) - 1.5) - 0.4 * (lc(1) - 1.5) + 0.6 * std::sin(2.0 * lc(2));
  for (int c = 0; c < kInformativeTables; ++c) z += 0.7 * hash_signed(g.salt, c, ids[c]);
  for (const auto& p : kPairTables) {
    double dot = 0;
    for (int k = 0; k < kPairDim; ++k)
      dot += hash_signed(g.salt + 1 + k, p[0], ids[p[0]]) *
             hash_signed(g.salt + 1 + k, p[1], ids[p[1]]);
    z += 1.2 * dot;
  }
  return z;
}

// Rows [chunk * kChunkRows, +rows) of a split, as text.
std::string make_chunk(const Generator& g, Split split, int64_t chunk, int64_t rows) {
  ChunkRng rng{
      math::mix64(g.seed ^ math::mix64(split * 0x100000000ull + static_cast<uint64_t>(chunk)))};
  auto uniform = [&rng] { return rng.uniform(); };
  std::normal_distribution<double> normal(0.0, 1.0);
  std::string out;
  out.reserve(static_cast<size_t>(rows) * 280);
  int64_t ids[kCriteoCategorical];
  double counts[kCriteoNumeric];
  bool missing[kCriteoNumeric];
  for (int64_t i = 0; i < rows; ++i) {
    for (int k = 0; k < kCriteoNumeric; ++k) {
      counts[k] = std::floor(std::exp(1.0 + 1.2 * normal(rng)));
      missing[k] = rng.uniform() < 0.1;
    }
    for (int c = 0; c < kCriteoCategorical; ++c)
      ids[c] = g.tables[static_cast<size_t>(c)](uniform) - 1;  // rank 1 is id 0
    const double z = planted_logit(g, ids, counts, missing);
    out += rng.uniform() < math::sigmoid(static_cast<float>(z)) ? '1' : '0';
    for (int k = 0; k < kCriteoNumeric; ++k) {
      out += '\t';
      if (!missing[k]) append_uint(out, static_cast<uint64_t>(std::min(counts[k], 1e15)));
    }
    for (int c = 0; c < kCriteoCategorical; ++c)  // the id's token: 8 hex digits, as in Kaggle's
      append_hex8(out, static_cast<uint32_t>(math::mix64((static_cast<uint64_t>(c) << 40) ^
                                                         static_cast<uint64_t>(ids[c]))));
    out += '\n';
  }
  return out;
}

// Generates the chunks of one file on `threads` workers and writes them in order; at most
// 2 x threads chunks are held (generated and not yet written) at any time.
class ChunkPipeline {
 public:
  ChunkPipeline(const Generator& g, Split split, int64_t rows, int threads)
      : g_(g),
        split_(split),
        rows_(rows),
        chunks_((rows + kChunkRows - 1) / kChunkRows),
        window_(2 * static_cast<int64_t>(threads)) {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~ChunkPipeline() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  // The next chunk in file order (empty after the last).
  std::string next() {
    std::unique_lock<std::mutex> l(m_);
    if (taken_ >= chunks_) return {};
    cv_.wait(l, [&] { return error_ || done_.count(taken_) != 0; });
    if (error_) std::rethrow_exception(error_);
    std::string text = std::move(done_[taken_]);
    done_.erase(taken_++);
    cv_.notify_all();
    return text;
  }

 private:
  void work() {
    for (;;) {
      int64_t k;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l,
                 [&] { return stop_ || error_ || next_ >= chunks_ || next_ < taken_ + window_; });
        if (stop_ || error_ || next_ >= chunks_) return;
        k = next_++;
      }
      try {
        std::string text = make_chunk(g_, split_, k, std::min(kChunkRows, rows_ - k * kChunkRows));
        std::lock_guard<std::mutex> l(m_);
        done_[k] = std::move(text);
      } catch (...) {
        std::lock_guard<std::mutex> l(m_);
        if (!error_) error_ = std::current_exception();
      }
      cv_.notify_all();
    }
  }

  const Generator& g_;
  Split split_;
  int64_t rows_, chunks_, window_;
  std::mutex m_;
  std::condition_variable cv_;
  std::map<int64_t, std::string> done_;
  int64_t next_ = 0, taken_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

int64_t write_split(const std::string& path, const Generator& g, Split split, int64_t rows,
                    int threads) {
  AtomicFileWriter out(path);
  int64_t bytes = 0;
  {
    ChunkPipeline pipeline(g, split, rows, threads);
    for (std::string text = pipeline.next(); !text.empty(); text = pipeline.next()) {
      out.write(text);
      bytes += static_cast<int64_t>(text.size());
    }
  }
  out.commit();
  return bytes;
}

std::string absolute_dir(const std::string& dir) {
  make_directories(dir);
  char* real = ::realpath(dir.c_str(), nullptr);
  if (real == nullptr) return dir;
  std::string out(real);
  std::free(real);
  return out;
}

std::string config_text(const std::string& dir, const CriteoSyntheticOptions& o) {
  std::ostringstream c;
  // Criteo's format implies its columns: log1p(max(x, 0)) on the 13 counts, then the
  // standardisation below (host/data/criteo.h), as the DLRM reference preprocesses them.
  c << synthetic_config_head("synthetic-criteo-dlrm", dir, "txt") << "    \"prepared\": \"" << dir
    << "/prepared\",\n    \"read\": \"auto\",\n"
    << "    \"format\": \"criteo\",\n    \"delimiter\": \"\\t\",\n    \"header\": false,\n"
    << "    \"validation_fraction\": 0.05,\n"
    << "    \"categorical\": {\"min_count\": " << o.min_count << ", \"hash_buckets\": 0},\n"
    << "    \"numeric\": {\"normalization\": \"standard\"}\n"
    << "  },\n"
    << "  \"model\": {\"type\": \"dlrm\", \"embedding_dim\": 16, \"bottom\": [64], "
       "\"hidden\": [64, 32], \"dropout\": 0.0,\n"
    << "            \"sparse_optimizer\": {\"type\": \"rowwise_adagrad\", \"lr\": 0.05}},\n"
    << "  \"train\": {\"epochs\": 3, \"batch_size\": 1024, \"optimizer\": {\"type\": \"adam\", "
       "\"lr\": 0.001},\n"
    << "            \"early_stopping\": {\"metric\": \"auc\", \"patience\": 1}}\n"
    << "}\n";
  return c.str();
}

}  // namespace

CriteoSyntheticResult write_synthetic_criteo(const std::string& dir_in,
                                             const CriteoSyntheticOptions& o) {
  TESSERA_CHECK((o.target_bytes > 0 || (o.train_rows > 0 && o.test_rows >= 0)) &&
                    o.max_table_rows >= 1 && o.zipf_exponent > 0 && o.min_count >= 1 &&
                    o.threads >= 1 && o.threads <= 256,
                "synthetic criteo: bad options");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = absolute_dir(dir_in);
  CriteoSyntheticResult r;
  Generator g;
  g.seed = o.seed;
  g.salt = math::mix64(o.seed ^ 0xC217E0ull);
  for (int64_t rows : criteo_1tb_table_rows()) {
    r.table_rows.push_back(std::min(rows, o.max_table_rows));
    g.tables.emplace_back(r.table_rows.back(), o.zipf_exponent);
  }
  r.train_rows = o.train_rows;
  r.test_rows = o.test_rows;
  if (o.target_bytes > 0) {  // bytes per row measured on the first train chunk (deterministic)
    const double per_row =
        static_cast<double>(make_chunk(g, kTrain, 0, kChunkRows).size()) / kChunkRows;
    const double rows = static_cast<double>(o.target_bytes) / per_row;
    r.train_rows = std::max<int64_t>(1, std::llround(rows * 0.8));
    r.test_rows = r.train_rows / 4;
  }
  r.bytes = write_split(dir + "/train.txt", g, kTrain, r.train_rows, o.threads);
  r.bytes += write_split(dir + "/test.txt", g, kTest, r.test_rows, o.threads);
  r.config = write_synthetic_config(dir, config_text(dir, o));
  // The same as a pipeline: its prep stage prepares DIR/prepared (the config declares it).
  r.pipeline = dir + "/pipeline.json";
  write_file_atomic(
      r.pipeline,
      "{\n  \"name\": \"synthetic-criteo\",\n  \"task\": \"behaviour\",\n"
      "  \"runs_dir\": \"runs\",\n  \"stages\": [\n"
      "    {\"name\": \"prep\", \"kind\": \"prep\", \"config\": {\"source\": \"dataset\", "
      "\"config\": \"config.json\"}},\n"
      "    {\"name\": \"train\", \"kind\": \"train\", \"inputs\": [\"prep\"], \"config\": {}},\n"
      "    {\"name\": \"evaluate\", \"kind\": \"evaluate\", \"inputs\": [\"train\", \"prep\"]}\n"
      "  ]\n}\n");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace tessera::behaviour
