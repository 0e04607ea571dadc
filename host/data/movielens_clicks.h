#pragma once
// MovieLens ratings as click data for behaviour prediction (DLRM's "ml-latest-small as clicks"):
// a rating >= 4 is a click (label 1), any other rating a non-click; each user's LAST rating by
// timestamp is held out for test (leave-last-out; ties broken by file order, the later line is
// last), users with a single rating keep it in train.
//
// write_movielens_clicks() reads ratings.csv (userId,movieId,rating,timestamp, with header) and
// movies.csv (movieId,title,genres; quoted titles) and writes, atomically, two CSV files with a
// header that the behaviour pipeline reads as ordinary CSV:
//   user,movie,genre,year,user_ratings,movie_ratings,clicked
// genre: the movie's first listed genre; year: from the title's "(YYYY)" (empty if none);
// user_ratings / movie_ratings: how often the user / movie occurs in the TRAIN rows (counts
// from train only, so nothing of a test row leaks into any feature). Malformed lines are errors
// naming file:line and field.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

struct MovieRating {
  int64_t user = 0;
  int64_t movie = 0;
  double rating = 0;
  int64_t timestamp = 0;
};

// Indices into `ratings` of each user's last rating by timestamp (ties: the larger index),
// ascending; users with one rating have none.
std::vector<int64_t> leave_last_out(const std::vector<MovieRating>& ratings);

// Reads ratings.csv (header required).
std::vector<MovieRating> read_movielens_ratings(const std::string& path);

struct ClicksSplitReport {
  int64_t users = 0;
  int64_t train_rows = 0, test_rows = 0;
  int64_t train_clicks = 0, test_clicks = 0;
};

inline constexpr double kClickMinRating = 4.0;
inline constexpr const char* kClicksTrainFile = "clicks_train.csv";
inline constexpr const char* kClicksTestFile = "clicks_test.csv";

// Writes out_dir/clicks_train.csv and out_dir/clicks_test.csv (see above).
ClicksSplitReport write_movielens_clicks(const std::string& ratings_csv,
                                         const std::string& movies_csv, const std::string& out_dir);

}  // namespace tessera
