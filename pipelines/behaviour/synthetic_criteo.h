#pragma once
// A synthetic dataset in the Criteo Kaggle layout (host/data/criteo.h: label, 13 integer
// features, 26 categorical features as 8 hex digits, tab separated, no header) for DLRM scale
// tests and benchmarks, with what makes Criteo hard and DLRM useful:
//   - table sizes spread log-uniformly from 4 rows to `max_vocab`;
//   - ids drawn from a Zipf (power-law) distribution per table, so a few ids are most of the
//     traffic and most ids are rare (test rows hold ids never seen in training);
//   - heavy-tailed integer counts (log-normal), 10% of them missing;
//   - a planted logistic signal, so AUC is meaningful: per-id effects in 8 tables, pairwise
//     (dot-product) effects between 3 pairs of tables, and a nonlinear effect of 3 counts.
// The generator is deterministic in its options (the seed).
#include <cstdint>
#include <string>

namespace tessera::behaviour {

struct CriteoSyntheticOptions {
  int64_t train_rows = 100000;
  int64_t test_rows = 25000;
  int64_t max_vocab = 100000;  // rows of the largest table
  double zipf_exponent = 1.05;
  uint64_t seed = 7;
};

// Writes DIR/train.txt, DIR/test.txt and DIR/config.json (a DLRM config that trains on them),
// all atomically; returns the config path.
std::string write_synthetic_criteo(const std::string& dir, const CriteoSyntheticOptions& options);

}  // namespace tessera::behaviour
