// The MovieLens clicks reader (host/data/movielens_clicks.h) on tiny fixtures: leave-last-out by
// timestamp (ties, unsorted input, single-rating users), labels, train-only counts, quoted
// titles, and the errors for malformed input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/movielens_clicks.h"

namespace tessera {
namespace {

std::string work_dir() {
  const std::string d = ::testing::TempDir() + "/ml_clicks." + std::to_string(::getpid());
  make_directories(d);
  return d;
}

TEST(MovielensClicks, LeaveLastOutPicksEachUsersLatestRating) {
  // user 1: latest at index 2 (input not sorted by time); user 2: a tie at t=50, the later line
  // (index 4) wins; user 3: one rating stays in train.
  std::vector<MovieRating> r = {{1, 10, 4, 100}, {2, 11, 3, 50}, {1, 12, 5, 300},
                                {1, 13, 2, 200}, {2, 14, 4, 50}, {3, 15, 5, 10}};
  EXPECT_EQ(leave_last_out(r), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(leave_last_out({}).empty());
}

TEST(MovielensClicks, WritesTrainAndTestWithTrainOnlyCounts) {
  const std::string d = work_dir();
  write_file_atomic(d + "/ratings.csv",
                    "userId,movieId,rating,timestamp\n"
                    "1,10,4.0,100\n1,20,3.5,300\n1,10,5.0,200\n"
                    "2,20,4.5,10\n2,30,1.0,20\n"
                    "3,30,4.0,5\n");
  write_file_atomic(d + "/movies.csv",
                    "movieId,title,genres\n10,Toy Story (1995),Adventure|Animation\n"
                    "20,\"Good, the Bad and the Ugly, The (1966)\",Western\n"
                    "30,No Year,(no genres listed)\n");
  ClicksSplitReport rep = write_movielens_clicks(d + "/ratings.csv", d + "/movies.csv", d + "/out");
  EXPECT_EQ(rep.users, 3);
  EXPECT_EQ(rep.train_rows, 4);
  EXPECT_EQ(rep.test_rows, 2);
  EXPECT_EQ(rep.test_clicks, 0);   // user 1's last (3.5) and user 2's last (1.0) are not clicks
  EXPECT_EQ(rep.train_clicks, 4);  // 4.0, 5.0, 4.5, 4.0
  // Counts are over train rows only: user 1 has 2 train ratings, movie 20 one (user 2's),
  // movie 30 one (user 3's; user 2's rating of it is the test row).
  EXPECT_EQ(read_file(d + "/out/clicks_test.csv"),
            "user,movie,genre,year,user_ratings,movie_ratings,clicked\n"
            "1,20,Western,1966,2,1,0\n"
            "2,30,(no genres listed),,1,1,0\n");
  EXPECT_EQ(read_file(d + "/out/clicks_train.csv"),
            "user,movie,genre,year,user_ratings,movie_ratings,clicked\n"
            "1,10,Adventure,1995,2,2,1\n"
            "1,10,Adventure,1995,2,2,1\n"
            "2,20,Western,1966,1,1,1\n"
            "3,30,(no genres listed),,1,1,1\n");
}

TEST(MovielensClicks, MalformedInputNamesFileLineAndField) {
  const std::string d = work_dir();
  write_file_atomic(d + "/bad.csv", "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,x,4.0,5\n");
  try {
    read_movielens_ratings(d + "/bad.csv");
    FAIL() << "accepted a non-numeric movieId";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("bad.csv:3 (movieId)"), std::string::npos) << e.what();
  }
  write_file_atomic(d + "/hdr.csv", "user,movie\n");
  EXPECT_THROW(read_movielens_ratings(d + "/hdr.csv"), Error);
}

}  // namespace
}  // namespace tessera
