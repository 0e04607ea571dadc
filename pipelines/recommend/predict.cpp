// tessera predict on a recommendation model (predict.h): (user, item) scores or top-K lists for
// the users of a file, streamed into an atomically written CSV.
#include "pipelines/recommend/predict.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string_view>

#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/buffered_file.h"

namespace tessera::recommend {

namespace {

enum class Mode { Unknown, Pairs, Users };

// An integer id, spaces and quotes around it allowed.
bool parse_id(std::string_view s, int64_t& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '"')) s.remove_suffix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// The fields of a row, split on tabs when it has one, else on commas (the first two kept).
size_t split_row(std::string_view line, std::string_view (&f)[2]) {
  const char delim = line.find('\t') != std::string_view::npos ? '\t' : ',';
  size_t n = 0, start = 0;
  while (true) {
    const size_t pos = line.find(delim, start);
    if (n < 2) f[n] = line.substr(start, pos == std::string_view::npos ? pos : pos - start);
    ++n;
    if (pos == std::string_view::npos) return n;
    start = pos + 1;
  }
}

// The dense id of `raw` in the ascending `ids`, or -1 when the model lacks it.
int32_t dense_id(const std::vector<int64_t>& ids, int64_t raw) {
  const auto it = std::lower_bound(ids.begin(), ids.end(), raw);
  return it != ids.end() && *it == raw ? static_cast<int32_t>(it - ids.begin()) : -1;
}

struct Counts {
  int64_t rows = 0, scored = 0, unknown_user_rows = 0, unknown_item_rows = 0, skipped = 0;
  std::string first_skip;
};

// What is wrong with a row of `n` fields under `mode` ("" when nothing), with its ids.
std::string row_problem(Mode mode, size_t n, const std::string_view (&f)[2], int64_t& user,
                        int64_t& item) {
  if (mode == Mode::Users && n != 1)
    return "(row): expected 1 field (user) as on the first row, got " + std::to_string(n);
  if (mode == Mode::Pairs && n < 2)
    return "(row): expected 2 or more fields (user, item, ...) as on the first row, got 1";
  if (!parse_id(f[0], user))
    return "(user): expected an integer id, got '" + std::string(f[0]) + "'";
  if (mode == Mode::Pairs && !parse_id(f[1], item))
    return "(item): expected an integer id, got '" + std::string(f[1]) + "'";
  return "";
}

// One pairs row: `user,item,score`, the score empty when the model lacks the user or the item.
std::string pair_line(const RecArtefact& a, const Scorer& sc, int64_t user, int64_t item,
                      Counts& c) {
  const int32_t u = dense_id(a.user_ids, user), i = dense_id(a.item_ids, item);
  if (u < 0) ++c.unknown_user_rows;
  if (i < 0) ++c.unknown_item_rows;
  char buf[96];
  if (u < 0 || i < 0) {
    std::snprintf(buf, sizeof buf, "%lld,%lld,\n", static_cast<long long>(user),
                  static_cast<long long>(item));
    return buf;
  }
  float s = sc.score(u, i);
  if (a.kind == ModelKind::Mf && a.has_rating_range) s = std::clamp(s, a.min_rating, a.max_rating);
  ++c.scored;
  std::snprintf(buf, sizeof buf, "%lld,%lld,%.6g\n", static_cast<long long>(user),
                static_cast<long long>(item), static_cast<double>(s));
  return buf;
}

Result predict_result(const std::string& model_path, const std::string& input_path,
                      const std::string& output_path, Mode mode, int64_t k, const Counts& c) {
  const bool users = mode == Mode::Users;
  json::JsonWriter w;
  w.begin_object().field("command", "predict").field("task", "recommend");
  w.field("model", model_path).field("input", input_path).field("output", output_path);
  w.field("mode", users ? "users" : "pairs").field("rows", c.rows).field("scored", c.scored);
  if (users) w.field("k", k).field("unknown_users", c.unknown_user_rows);
  if (!users) w.field("unknown_user_rows", c.unknown_user_rows);
  if (!users) w.field("unknown_item_rows", c.unknown_item_rows);
  w.field("skipped_rows", c.skipped).end_object();
  std::string s = "scored " + std::to_string(c.scored) + " of " + std::to_string(c.rows) +
                  (users ? " users (top-" + std::to_string(k) + ")" : " (user, item) rows") +
                  " of " + input_path + " into " + output_path;
  if (c.rows > c.scored)
    s += users ? "; the model lacks the other users"
               : "; the model lacks the user or item of the others";
  if (c.skipped > 0)
    s += "; " + std::to_string(c.skipped) + " bad rows skipped, first: " + c.first_skip;
  return {s + "\n", w.compact()};
}

}  // namespace

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& o) {
  if (o.k < 1) TESSERA_THROW(Usage, "--k must be at least 1, got " << o.k);
  const RecArtefact a = load_rec_artefact(model_path);
  const Scorer sc = a.scorer();
  LineReader lines(input_path);
  AtomicFileWriter out(output_path);
  Mode mode = Mode::Unknown;
  Counts c;
  std::vector<float> scores;
  std::vector<int32_t> cand;
  std::string_view line;
  int64_t number = 0;
  while (lines.next(line, number)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::string_view f[2];
    const size_t n = split_row(line, f);
    int64_t user = 0, item = 0;
    if (mode == Mode::Unknown) {
      mode = n == 1 ? Mode::Users : Mode::Pairs;
      out.write(mode == Mode::Users ? "user,rank,item,score\n" : "user,item,score\n");
      if (!parse_id(f[0], user)) continue;  // a header: "userId,movieId,..."
    }
    const std::string problem = row_problem(mode, n, f, user, item);
    if (!problem.empty()) {
      const std::string where = input_path + ":" + std::to_string(number) + " " + problem;
      if (!o.skip_bad_rows)
        throw Error(ErrorKind::Data, where, ErrorLocation{input_path, number, 0, ""});
      if (c.skipped++ == 0) c.first_skip = where;
      continue;
    }
    ++c.rows;
    if (mode == Mode::Pairs) {
      out.write(pair_line(a, sc, user, item, c));
    } else if (const int32_t u = dense_id(a.user_ids, user); u < 0) {
      ++c.unknown_user_rows;
    } else {
      out.write(top_k_lines(a, sc, u, o.k, scores, cand));
      ++c.scored;
    }
  }
  if (c.rows == 0)
    TESSERA_THROW(Data, input_path << ": no rows to score (expected user,item[,...] rows, or "
                                      "rows of one user id each)");
  out.commit();
  return predict_result(model_path, input_path, output_path, mode, o.k, c);
}

}  // namespace tessera::recommend
