#pragma once
// A synthetic dataset in the Criteo layout (host/data/criteo.h: label, 13 integer features, 26
// categorical features as 8 hex digits, tab separated, no header) for DLRM scale tests and
// benchmarks, at any size, with what makes Criteo hard and DLRM useful:
//   - the Criteo 1TB table sizes (criteo_1tb_table_rows below), each capped at max_table_rows;
//   - ids drawn from a Zipf (power-law) distribution per table, so a few ids are most of the
//     traffic and most ids are rare (test rows hold ids never seen in training);
//   - heavy-tailed integer counts (log-normal), 10% of them missing;
//   - a planted logistic signal, so AUC is meaningful: per-id effects in 8 tables, pairwise
//     (dot-product) effects between 3 pairs of tables, and effects of log1p of 3 counts (a
//     linear and a sinusoidal one).
//
// Expected test AUC of the generated DLRM config (default options; measured on the host, one
// epoch unless said): about 0.61 on 20k rows with tables capped at 5000 (3 epochs); 0.70 on 100k
// train rows; 0.715 +- 0.011 on 200k (seeds 1-3); 0.747 on 400k (128M of text): it rises with
// the rows.
// On 200k rows, log1p on the counts before standardising (the Criteo format's default, as in
// the DLRM reference) gave 0.7166 +- 0.0080 against 0.7311 +- 0.0006 without it (seeds 1-3,
// min_count 1), and min_count 2 against 1 moved nothing beyond that spread.
//
// Scale: rows are generated in chunks of a fixed size on `threads` threads and written in order
// through one AtomicFileWriter per file (temporary file, fsync, rename), with at most 2 x threads
// chunks in memory (a few MB each) whatever the size. Each chunk's random stream is a function of
// (seed, file, chunk index) alone, so the files are byte-identical for every thread count.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::behaviour {

struct CriteoSyntheticOptions {
  int64_t train_rows = 100000;
  int64_t test_rows = 25000;
  // > 0: the rows are chosen so that train.txt + test.txt come to about this many bytes (test
  // gets a fifth of them, a quarter of the train rows); train_rows and test_rows are ignored.
  int64_t target_bytes = 0;
  // Cap on every table's rows. The default keeps the generated DLRM (dimension 16, fp32, Adagrad
  // state) under 1 GB with all 26 tables full: about 6.9M rows in all.
  int64_t max_table_rows = 1000000;
  double zipf_exponent = 1.05;
  // The generated config's data.categorical.min_count: ids seen fewer times on train share the
  // OOV row (the frequency threshold of the DLRM preprocessing).
  int64_t min_count = 2;
  int threads = 4;
  uint64_t seed = 7;
};

struct CriteoSyntheticResult {
  std::string config;    // DIR/config.json
  std::string pipeline;  // DIR/pipeline.json: prep (into DIR/prepared), train, evaluate
  int64_t train_rows = 0, test_rows = 0;
  int64_t bytes = 0;  // train.txt + test.txt
  double seconds = 0;
  std::vector<int64_t> table_rows;  // [26] after the cap
};

// The distinct values of each of Criteo 1TB's 26 categorical features over days 0..23.
const std::array<int64_t, 26>& criteo_1tb_table_rows();

// Writes DIR/train.txt, DIR/test.txt (DIR made absolute), DIR/config.json and DIR/pipeline.json
// (`tessera run DIR/pipeline.json`: prep, train, evaluate), all atomically.
// The config takes the large-data route: data.prepared is DIR/prepared, with data.read "auto",
// so it trains after `tessera prep DIR/config.json` (or a pipeline's prep stage) has written it.
CriteoSyntheticResult write_synthetic_criteo(const std::string& dir,
                                             const CriteoSyntheticOptions& options);

// P(k) proportional to k^-exponent over k in [1, n], in O(1) time and memory per draw (rejection-
// inversion: W. Hormann and G. Derflinger, "Rejection-inversion to generate variates from
// monotone discrete distributions", ACM TOMACS 6(3), 1996). `uniform` is called with no
// arguments and returns a double in [0, 1).
class ZipfSampler {
 public:
  ZipfSampler(int64_t n, double exponent);
  template <class Uniform>
  int64_t operator()(Uniform& uniform) const {
    for (;;) {
      const double u = area_n_ + uniform() * (area_1_ - area_n_);
      const double x = area_inverse(u);
      double rounded = x + 0.5;  // clamped in floating point, so the cast is always defined
      if (!(rounded >= 1.0)) rounded = 1.0;
      if (rounded > static_cast<double>(n_)) rounded = static_cast<double>(n_);
      const auto k = static_cast<int64_t>(rounded);
      if (static_cast<double>(k) - x <= squeeze_ ||
          u >= area(static_cast<double>(k) + 0.5) - density(static_cast<double>(k)))
        return k;
    }
  }
  int64_t n() const { return n_; }

 private:
  int64_t n_;
  double s_;
  double area_1_ = 0, area_n_ = 0, squeeze_ = 0;
  double density(double x) const;       // x^-s
  double area(double x) const;          // an antiderivative of x^-s
  double area_inverse(double y) const;  // area(area_inverse(y)) == y
};

}  // namespace tessera::behaviour
