#include "host/data/movielens_clicks.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera {

namespace {

// One CSV line into fields (RFC 4180 quotes, "" inside quotes; no embedded newlines).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

template <typename T>
T parse_field(const std::string& s, const std::string& path, int64_t line, const char* field) {
  T v{};
  bool ok = false;
  if constexpr (std::is_integral_v<T>) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    ok = r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
  } else {
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    ok = !s.empty() && end == s.c_str() + s.size();
  }
  if (!ok)
    TESSERA_THROW(Data, path << ":" << line << " (" << field << "): '" << s << "' is not a number");
  return v;
}

std::ifstream open_with_header(const std::string& path, const std::string& header) {
  std::ifstream in(path);
  if (!in) TESSERA_THROW(Io, "cannot open '" << path << "'");
  std::string line;
  if (!std::getline(in, line))
    TESSERA_THROW(Data, path << ":1: empty file, expected header '" << header << "'");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line != header)
    TESSERA_THROW(Data, path << ":1: header '" << line << "', expected '" << header << "'");
  return in;
}

// Calls row(fields, line_number) for each non-blank line after the header, split on commas; a
// line without exactly `fields` fields is an error naming it.
template <typename Row>
void for_each_row(const std::string& path, const std::string& header, size_t fields, Row row) {
  std::ifstream in = open_with_header(path, header);
  std::string line;
  for (int64_t ln = 2; std::getline(in, line); ++ln) {
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> f = split_csv(line);
    if (f.size() != fields)
      TESSERA_THROW(Data, path << ":" << ln << ": " << f.size() << " fields, expected " << fields);
    row(f, ln);
  }
}

struct MovieInfo {
  std::string genre;
  std::string year;  // "" when the title has none
};

std::unordered_map<int64_t, MovieInfo> read_movies(const std::string& path) {
  std::unordered_map<int64_t, MovieInfo> movies;
  for_each_row(path, "movieId,title,genres", 3, [&](const std::vector<std::string>& f, int64_t ln) {
    MovieInfo m;
    m.genre = f[2].substr(0, f[2].find('|'));
    // The year is the last "(YYYY)" of the title (titles may hold other parentheses).
    std::string t = f[1];
    while (!t.empty() && t.back() == ' ') t.pop_back();
    if (t.size() >= 6 && t.back() == ')' && t[t.size() - 6] == '(') {
      const std::string y = t.substr(t.size() - 5, 4);
      if (y.find_first_not_of("0123456789") == std::string::npos) m.year = y;
    }
    movies[parse_field<int64_t>(f[0], path, ln, "movieId")] = m;
  });
  return movies;
}

}  // namespace

std::vector<int64_t> leave_last_out(const std::vector<MovieRating>& ratings) {
  std::unordered_map<int64_t, int64_t> last;   // user -> index of the last rating
  std::unordered_map<int64_t, int64_t> count;  // user -> ratings
  for (int64_t i = 0; i < static_cast<int64_t>(ratings.size()); ++i) {
    const MovieRating& r = ratings[static_cast<size_t>(i)];
    ++count[r.user];
    auto it = last.find(r.user);
    if (it == last.end() || r.timestamp >= ratings[static_cast<size_t>(it->second)].timestamp)
      last[r.user] = i;
  }
  std::vector<int64_t> out;
  for (const auto& kv : last)
    if (count[kv.first] > 1) out.push_back(kv.second);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<MovieRating> read_movielens_ratings(const std::string& path) {
  std::vector<MovieRating> out;
  for_each_row(path, "userId,movieId,rating,timestamp", 4,
               [&](const std::vector<std::string>& f, int64_t ln) {
                 MovieRating r;
                 r.user = parse_field<int64_t>(f[0], path, ln, "userId");
                 r.movie = parse_field<int64_t>(f[1], path, ln, "movieId");
                 r.rating = parse_field<double>(f[2], path, ln, "rating");
                 r.timestamp = parse_field<int64_t>(f[3], path, ln, "timestamp");
                 out.push_back(r);
               });
  return out;
}

ClicksSplitReport write_movielens_clicks(const std::string& ratings_csv,
                                         const std::string& movies_csv,
                                         const std::string& out_dir) {
  const std::vector<MovieRating> ratings = read_movielens_ratings(ratings_csv);
  const auto movies = read_movies(movies_csv);
  const std::vector<int64_t> test_idx = leave_last_out(ratings);
  std::vector<bool> is_test(ratings.size(), false);
  for (int64_t i : test_idx) is_test[static_cast<size_t>(i)] = true;
  std::unordered_map<int64_t, int64_t> user_n, movie_n;  // train counts
  for (size_t i = 0; i < ratings.size(); ++i)
    if (!is_test[i]) {
      ++user_n[ratings[i].user];
      ++movie_n[ratings[i].movie];
    }
  ClicksSplitReport rep;
  std::unordered_map<int64_t, bool> users;
  std::ostringstream train, test;
  const char* header = "user,movie,genre,year,user_ratings,movie_ratings,clicked\n";
  train << header;
  test << header;
  for (size_t i = 0; i < ratings.size(); ++i) {
    const MovieRating& r = ratings[i];
    users[r.user] = true;
    auto m = movies.find(r.movie);
    if (m == movies.end())
      TESSERA_THROW(Data, ratings_csv << ":" << (i + 2) << " (movieId): movie " << r.movie
                                      << " is not in " << movies_csv);
    const bool click = r.rating >= kClickMinRating;
    auto mc = movie_n.find(r.movie);
    std::ostringstream& o = is_test[i] ? test : train;
    o << r.user << "," << r.movie << "," << m->second.genre << "," << m->second.year << ","
      << user_n[r.user] << "," << (mc == movie_n.end() ? 0 : mc->second) << "," << (click ? 1 : 0)
      << "\n";
    if (is_test[i]) {
      ++rep.test_rows;
      rep.test_clicks += click;
    } else {
      ++rep.train_rows;
      rep.train_clicks += click;
    }
  }
  rep.users = static_cast<int64_t>(users.size());
  make_directories(out_dir);
  write_file_atomic(out_dir + "/" + kClicksTrainFile, train.str());
  write_file_atomic(out_dir + "/" + kClicksTestFile, test.str());
  return rep;
}

}  // namespace tessera
