// Fuzz target: the recommender's ratings CSV (host/data/ratings_data.h: user,item,rating
// [,timestamp], comma or tab, header detected) and what the pipeline builds from it
// (pipelines/recommend/interactions.h): dense ids, the random split (mf), leave-last-out with
// sampled negatives (two-tower), and the per-user item lists.
//
// Input: 1 option byte, then the file's bytes.
//   bit 0  on_error skip; bit 1 at most 7 rows (max_rows)
//   bits 2-4  negatives per held-out row: 0..7
// Invariants checked: dense ids inside [0, users) / [0, items), each split a partition of the
// rows, negatives never an item the user interacted with, distinct per row.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "host/data/ratings_data.h"
#include "pipelines/recommend/interactions.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;
using namespace tessera::recommend;

void check_partition(const Split& s, int64_t rows) {
  std::vector<int64_t> all = s.train;
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(static_cast<size_t>(rows));
  std::iota(expected.begin(), expected.end(), 0);
  fuzz::check(all == expected, "a split is not a partition of the rows");
}

void run(const std::string& path, uint8_t flags) {
  data::RatingsReadOptions ro;
  ro.on_error = (flags & 1) != 0 ? data::RatingsOnError::Skip : data::RatingsOnError::Error;
  ro.max_rows = (flags & 2) != 0 ? 7 : 0;
  const int64_t negatives = (flags >> 2) & 7;
  const data::RatingsData rd = data::read_ratings(path, ro);
  fuzz::check(!rd.rows.empty(), "read_ratings returned no rows without an error");
  fuzz::check(ro.max_rows == 0 || static_cast<int64_t>(rd.rows.size()) <= ro.max_rows, "max_rows");
  const Interactions d = index_interactions(rd.rows);
  for (int64_t r = 0; r < d.size(); ++r) {
    fuzz::check(d.user[r] >= 0 && d.user[r] < d.num_users(), "dense user out of range");
    fuzz::check(d.item[r] >= 0 && d.item[r] < d.num_items(), "dense item out of range");
    fuzz::check(d.user_ids[d.user[r]] == rd.rows[r].user, "dense user maps back");
  }
  check_partition(random_split(d.size(), 0.1, 3), d.size());
  const Split lo = leave_last_out(d);
  check_partition(lo, d.size());
  std::vector<int64_t> rows(static_cast<size_t>(d.size()));
  std::iota(rows.begin(), rows.end(), 0);
  const UserItems all = user_items(d, rows);
  const UserItems train = user_items(d, lo.train);
  fuzz::check(train.items.size() <= all.items.size(), "train lists within all lists");
  const std::vector<int32_t> neg = sample_negatives(d, lo.test, all, negatives, 17);
  fuzz::check(neg.size() == lo.test.size() * static_cast<size_t>(negatives), "negatives count");
  for (size_t t = 0; t < lo.test.size(); ++t) {
    const int32_t u = d.user[lo.test[t]];
    const auto b = neg.begin() + static_cast<std::ptrdiff_t>(t * negatives);
    std::vector<int32_t> mine(b, b + negatives);
    for (int32_t item : mine) fuzz::check(!all.contains(u, item), "a negative the user rated");
    std::sort(mine.begin(), mine.end());
    fuzz::check(std::adjacent_find(mine.begin(), mine.end()) == mine.end(), "repeated negative");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile tmp("ratings");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const std::string& path = tmp.write(in.rest());
  fuzz::expect_input_errors([&] { run(path, flags); });
  return 0;
}
