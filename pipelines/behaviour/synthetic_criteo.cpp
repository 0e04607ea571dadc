#include "pipelines/behaviour/synthetic_criteo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/criteo.h"
#include "pipelines/behaviour/synthetic_files.h"

namespace tessera::behaviour {

namespace {

constexpr int kInformativeTables = 8;                            // tables 0..7: per-id effects
constexpr int kPairTables[3][2] = {{8, 9}, {10, 11}, {12, 13}};  // dot-product effects
constexpr int kPairDim = 4;

// A uniform in [-1, 1) from (salt, table, id): the planted effects need no storage.
double hash_signed(uint64_t salt, int64_t table, int64_t id) {
  const uint64_t h = math::mix64(
      salt ^ math::mix64((static_cast<uint64_t>(table) << 48) ^ static_cast<uint64_t>(id)));
  return static_cast<double>(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

struct Tables {
  std::vector<int64_t> rows;             // [26]
  std::vector<std::vector<double>> cdf;  // Zipf CDF per table
};

Tables make_tables(const CriteoSyntheticOptions& o) {
  Tables t;
  const double lo = std::log(4.0),
               hi = std::log(static_cast<double>(std::max<int64_t>(o.max_vocab, 4)));
  for (int c = 0; c < kCriteoCategorical; ++c) {
    // A fixed permutation of the sizes, so large and small tables interleave.
    const double frac =
        static_cast<double>((c * 11) % kCriteoCategorical) / (kCriteoCategorical - 1);
    const int64_t rows = static_cast<int64_t>(std::llround(std::exp(lo + (hi - lo) * frac)));
    t.rows.push_back(rows);
    std::vector<double> cdf(static_cast<size_t>(rows));
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) {
      acc += std::pow(static_cast<double>(r + 1), -o.zipf_exponent);
      cdf[static_cast<size_t>(r)] = acc;
    }
    for (double& v : cdf) v /= acc;
    t.cdf.push_back(std::move(cdf));
  }
  return t;
}

std::string make_rows(int64_t n, const Tables& tables, uint64_t salt, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::string out;
  out.reserve(static_cast<size_t>(n) * 200);
  char buf[32];
  int64_t ids[kCriteoCategorical];
  double counts[kCriteoNumeric];
  bool missing[kCriteoNumeric];
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < kCriteoNumeric; ++k) {
      counts[k] = std::floor(std::exp(1.0 + 1.2 * normal(rng)));
      missing[k] = uni(rng) < 0.1;
    }
    for (int c = 0; c < kCriteoCategorical; ++c) {
      const auto& cdf = tables.cdf[static_cast<size_t>(c)];
      ids[c] = std::min<int64_t>(
          static_cast<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), uni(rng)) - cdf.begin()),
          static_cast<int64_t>(cdf.size()) - 1);
    }
    // The planted logit (missing counts contribute nothing).
    double z = -1.3;
    auto lc = [&](int k) { return missing[k] ? 1.5 : std::log1p(counts[k]); };
    z += 0.5 * (lc(0) - 1.5) - 0.4 * (lc(1) - 1.5) + 0.6 * std::sin(2.0 * lc(2));
    for (int c = 0; c < kInformativeTables; ++c) z += 0.7 * hash_signed(salt, c, ids[c]);
    for (const auto& p : kPairTables) {
      double dot = 0;
      for (int k = 0; k < kPairDim; ++k)
        dot +=
            hash_signed(salt + 1 + k, p[0], ids[p[0]]) * hash_signed(salt + 1 + k, p[1], ids[p[1]]);
      z += 1.2 * dot;
    }
    const int label = uni(rng) < math::sigmoid(static_cast<float>(z)) ? 1 : 0;
    out += label ? '1' : '0';
    for (int k = 0; k < kCriteoNumeric; ++k) {
      out += '\t';
      if (!missing[k]) {
        const int len = std::snprintf(buf, sizeof(buf), "%lld", (long long)counts[k]);
        out.append(buf, static_cast<size_t>(len));
      }
    }
    for (int c = 0; c < kCriteoCategorical; ++c) {
      // The id's token: 8 hex digits, as in the Kaggle files.
      const uint64_t h =
          math::mix64((static_cast<uint64_t>(c) << 40) ^ static_cast<uint64_t>(ids[c]));
      const int len =
          std::snprintf(buf, sizeof(buf), "\t%08llx", (unsigned long long)(h & 0xffffffffull));
      out.append(buf, static_cast<size_t>(len));
    }
    out += '\n';
  }
  return out;
}

}  // namespace

std::string write_synthetic_criteo(const std::string& dir, const CriteoSyntheticOptions& o) {
  TESSERA_CHECK(o.train_rows > 0 && o.test_rows >= 0 && o.max_vocab >= 4 && o.zipf_exponent > 0,
                "synthetic criteo: bad options");
  make_directories(dir);
  const Tables tables = make_tables(o);
  std::mt19937_64 rng(o.seed);
  const uint64_t salt = math::mix64(o.seed ^ 0xC217E0ull);
  write_file_atomic(dir + "/train.txt", make_rows(o.train_rows, tables, salt, rng));
  write_file_atomic(dir + "/test.txt", make_rows(o.test_rows, tables, salt, rng));
  std::ostringstream c;
  c << synthetic_config_head("synthetic-criteo-dlrm", dir, "txt")
    << "    \"format\": \"criteo\",\n    \"delimiter\": \"\\t\",\n    \"header\": false,\n"
    << "    \"validation_fraction\": 0.05,\n"
    << "    \"categorical\": {\"min_count\": 1, \"hash_buckets\": 0},\n"
    << "    \"numeric\": {\"normalization\": \"standard\"}\n"
    << "  },\n"
    << "  \"model\": {\"type\": \"dlrm\", \"embedding_dim\": 16, \"bottom\": [64], "
       "\"hidden\": [64, 32], \"dropout\": 0.0,\n"
    << "            \"sparse_optimizer\": {\"type\": \"rowwise_adagrad\", \"lr\": 0.05}},\n"
    << "  \"train\": {\"epochs\": 3, \"batch_size\": 1024, \"optimizer\": {\"type\": \"adam\", "
       "\"lr\": 0.001},\n"
    << "            \"early_stopping\": {\"metric\": \"auc\", \"patience\": 1}}\n"
    << "}\n";
  return write_synthetic_config(dir, c.str());
}

}  // namespace tessera::behaviour
