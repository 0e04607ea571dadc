#pragma once
// A built-in synthetic behaviour dataset, so the quickstart runs where no real dataset can be
// found or downloaded: users with numeric and categorical attributes and a planted logistic
// signal (some categories and a nonlinear numeric effect raise the click probability), written
// as train.csv / test.csv with a header, plus a config that trains on them.
#include <cstdint>
#include <string>

namespace tessera::behaviour {

struct SyntheticOptions {
  int64_t train_rows = 20000;
  int64_t test_rows = 5000;
  uint64_t seed = 7;
};

// Writes DIR/train.csv, DIR/test.csv and DIR/config.json (atomically); returns the config path.
std::string write_synthetic_dataset(const std::string& dir, const SyntheticOptions& options);

}  // namespace tessera::behaviour
