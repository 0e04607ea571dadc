#include "host/data/ratings_data.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "host/core/error.h"
#include "host/data/buffered_file.h"

namespace tessera::data {
namespace {

constexpr size_t kMaxReasons = 5;

// The field without surrounding spaces and double quotes, copied NUL-terminated into `buf` (of
// more than max_len chars); false when that is empty or longer than max_len.
bool unquoted_field(std::string_view s, size_t max_len, char* buf) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '"')) s.remove_suffix(1);
  if (s.empty() || s.size() > max_len) return false;
  s.copy(buf, s.size());
  buf[s.size()] = '\0';
  return true;
}

bool parse_int(std::string_view s, int64_t& out) {
  char buf[24];
  if (!unquoted_field(s, 20, buf)) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(buf, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_float(std::string_view s, float& out) {
  char buf[48];
  if (!unquoted_field(s, 40, buf)) return false;
  char* end = nullptr;
  const double v = std::strtod(buf, &end);
  if (*end != '\0' || !std::isfinite(v)) return false;
  out = static_cast<float>(v);
  return true;
}

// Splits on the first delimiter seen in the line (',' or '\t'); at most 5 fields are kept.
size_t split(std::string_view line, std::string_view* fields) {
  const char delim = line.find('\t') != std::string_view::npos ? '\t' : ',';
  size_t n = 0;
  size_t start = 0;
  while (true) {
    const size_t pos = line.find(delim, start);
    if (n < 5) fields[n] = line.substr(start, pos == std::string_view::npos ? pos : pos - start);
    ++n;
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return n;
}

}  // namespace

RatingsData read_ratings(const std::string& path, const RatingsReadOptions& options) {
  RatingsData out;
  LineReader lines(path);
  std::string_view line;
  int64_t number = 0;
  bool first = true;
  while (lines.next(line, number)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::string_view f[5];
    const size_t n = split(line, f);
    if (first) {
      first = false;
      int64_t probe = 0;
      if (!parse_int(f[0], probe)) {  // "userId,movieId,rating,timestamp"
        out.header = true;
        continue;
      }
    }
    std::string reason;
    Rating r;
    if (n < 3 || n > 4) {
      reason = "(row): expected 3 or 4 fields (user, item, rating[, timestamp]), got " +
               std::to_string(n);
    } else if (!parse_int(f[0], r.user)) {
      reason = "(user): expected an integer id, got '" + std::string(f[0]) + "'";
    } else if (!parse_int(f[1], r.item)) {
      reason = "(item): expected an integer id, got '" + std::string(f[1]) + "'";
    } else if (!parse_float(f[2], r.rating)) {
      reason = "(rating): expected a finite number, got '" + std::string(f[2]) + "'";
    } else if (n == 4 && !parse_int(f[3], r.timestamp)) {
      reason = "(timestamp): expected an integer, got '" + std::string(f[3]) + "'";
    }
    if (!reason.empty()) {
      std::ostringstream msg;
      msg << path << ":" << number << " " << reason;
      if (options.on_error == RatingsOnError::Error) TESSERA_THROW(Data, msg.str());
      ++out.skipped;
      if (out.skip_reasons.size() < kMaxReasons) out.skip_reasons.push_back(msg.str());
      continue;
    }
    out.rows.push_back(r);
    if (options.max_rows > 0 && static_cast<int64_t>(out.rows.size()) >= options.max_rows) break;
  }
  if (out.rows.empty())
    TESSERA_THROW(Data, path << ": no ratings (expected user,item,rating[,timestamp] rows)");
  return out;
}

}  // namespace tessera::data
