#pragma once
// Reader for explicit-rating files in the MovieLens layout: `user,item,rating[,timestamp]` rows,
// comma separated (ml-latest-small's ratings.csv) or tab separated (ml-100k's u.data), with or
// without a header line (detected: a first line whose first field is not an integer).
//
// Bad rows (wrong field count, a non-integer id, a rating that is not a finite number, a
// non-integer timestamp) follow `on_error`: Error throws Error(Data) "file:line (field): reason";
// Skip counts them and keeps the first few reasons for the summary.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::data {

struct Rating {
  int64_t user = 0;  // raw ids, as in the file
  int64_t item = 0;
  float rating = 0.f;
  int64_t timestamp = 0;  // 0 when the file has no timestamp column
};

enum class RatingsOnError : uint8_t { Error = 0, Skip = 1 };

struct RatingsReadOptions {
  RatingsOnError on_error = RatingsOnError::Error;
  int64_t max_rows = 0;  // > 0: stop after this many rows (slices for tests)
};

struct RatingsData {
  std::vector<Rating> rows;  // file order
  bool header = false;
  int64_t skipped = 0;
  std::vector<std::string> skip_reasons;  // the first few, "file:line (field): reason"
};

RatingsData read_ratings(const std::string& path, const RatingsReadOptions& options = {});

}  // namespace tessera::data
