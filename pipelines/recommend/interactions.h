#pragma once
// User-item interactions with dense ids, and the evaluation splits of the recommendation
// pipeline:
//   random_split      seeded 90/10 (any fraction) split of the rating rows, for RMSE;
//   leave_last_out    each user's latest interaction (by timestamp; ties: the later row in the
//                     file) held out, the NCF protocol's test set;
//   sample_negatives  per held-out user, N items the user never interacted with (in any split),
//                     distinct, seeded.
// Dense ids number the distinct raw ids in ascending order, so they do not depend on row order.
#include <cstdint>
#include <vector>

#include "host/data/ratings_data.h"

namespace tessera::recommend {

struct Interactions {
  std::vector<int64_t> user_ids;   // [U] raw id of each dense user
  std::vector<int64_t> item_ids;   // [I] raw id of each dense item
  std::vector<int32_t> user;       // [N] dense user of each row
  std::vector<int32_t> item;       // [N] dense item
  std::vector<float> rating;       // [N]
  std::vector<int64_t> timestamp;  // [N]
  int64_t num_users() const { return static_cast<int64_t>(user_ids.size()); }
  int64_t num_items() const { return static_cast<int64_t>(item_ids.size()); }
  int64_t size() const { return static_cast<int64_t>(user.size()); }
};

Interactions index_interactions(const std::vector<data::Rating>& rows);

struct Split {
  std::vector<int64_t> train;  // row indices, ascending
  std::vector<int64_t> test;   // row indices, ascending
};

// Each row goes to test with probability ~fraction: a seeded shuffle, the first round(N*f) rows.
Split random_split(int64_t rows, double test_fraction, uint64_t seed);
// One test row per user with at least two rows (a user's only row stays in train).
Split leave_last_out(const Interactions& data);

// Per-user item lists (CSR) of the given rows: offsets [U + 1], items sorted ascending, distinct.
struct UserItems {
  std::vector<int64_t> offsets;
  std::vector<int32_t> items;
  bool contains(int32_t user, int32_t item) const;
  int64_t count(int32_t user) const { return offsets[user + 1] - offsets[user]; }
};
UserItems user_items(const Interactions& data, const std::vector<int64_t>& rows);

// For each test row: `n` distinct items the row's user has not interacted with in `all` (every
// split), drawn uniformly with a generator seeded by (seed, user). [test.size() * n].
std::vector<int32_t> sample_negatives(const Interactions& data, const std::vector<int64_t>& test,
                                      const UserItems& all, int64_t n, uint64_t seed);

}  // namespace tessera::recommend
