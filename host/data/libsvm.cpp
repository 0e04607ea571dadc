#include "host/data/libsvm.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>

#include "host/core/error.h"
#include "host/data/buffered_file.h"

namespace tessera {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// Parses one line into `t` (appending). Returns "" or the reason ("token N 'x': ...").
std::string parse_line(std::string_view line, SparseTable& t) {
  const size_t hash = line.find('#');
  if (hash != std::string_view::npos) line = line.substr(0, hash);
  size_t pos = 0;
  int token_no = 0;
  const size_t entries_before = t.indices.size();
  auto fail = [&](std::string_view tok, std::string_view what) {
    t.indices.resize(entries_before);
    t.values.resize(entries_before);
    std::ostringstream os;
    os << "token " << token_no << " " << quote_token(tok) << ": " << what;
    return os.str();
  };
  float label = 0.f;
  while (pos < line.size()) {
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos == line.size()) break;
    size_t end = pos;
    while (end < line.size() && !is_blank(line[end])) ++end;
    const std::string_view tok = line.substr(pos, end - pos);
    pos = end;
    ++token_no;
    if (token_no == 1) {
      double v = 0;
      if (!parse_double(tok, v)) return fail(tok, "expected a label 0/1 or -1/+1");
      if (v == 1.0) {
        label = 1.f;
      } else if (v == 0.0 || v == -1.0) {
        label = 0.f;
      } else {
        return fail(tok, "expected a label 0/1 or -1/+1");
      }
      continue;
    }
    const size_t colon = tok.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == tok.size()) {
      return fail(tok, "expected index:value");
    }
    int64_t idx = 0;
    const char* ib = tok.data();
    const char* ie = tok.data() + colon;
    const std::from_chars_result r = std::from_chars(ib, ie, idx);
    const bool too_large = r.ec == std::errc::result_out_of_range && r.ptr == ie && *ib != '-';
    if (!too_large && (r.ec != std::errc() || r.ptr != ie)) {
      return fail(tok, "expected an integer feature index");
    }
    if (!too_large && idx < 0) return fail(tok, "negative feature index");
    if (too_large || idx >= kLibSvmMaxFeatures) {
      return fail(tok, "feature index above the limit " + std::to_string(kLibSvmMaxFeatures - 1) +
                           " (rows are densified: one float per feature)");
    }
    double v = 0;
    if (!parse_double(tok.substr(colon + 1), v)) return fail(tok, "expected a numeric value");
    if (!std::isfinite(v)) return fail(tok, "expected a finite value");
    t.indices.push_back(idx);
    t.values.push_back(static_cast<float>(v));
  }
  if (token_no == 0) return "blank";
  t.labels.push_back(label);
  return std::string();
}

}  // namespace

SparseTable read_libsvm(const FileSpec& file, BadRowPolicy on_error, BadRowReport* report) {
  SparseTable t;
  t.path = file.path;
  t.offsets.push_back(0);
  LineReader reader(file.path, file.skip_lines);
  std::string_view line;
  int64_t line_no = 0;
  while (reader.next(line, line_no)) {
    const std::string reason = parse_line(line, t);
    if (reason == "blank") continue;
    if (!reason.empty()) {
      std::ostringstream os;
      os << file.path << ":" << line_no << ":" << reason;
      if (on_error == BadRowPolicy::Error)
        throw Error(ErrorKind::Data, os.str(),
                    ErrorLocation{file.path, static_cast<int64_t>(line_no), 0, ""});
      if (report != nullptr) report->add(os.str());
      continue;
    }
    for (int64_t k = t.offsets.back(); k < static_cast<int64_t>(t.indices.size()); ++k) {
      if (t.indices[k] > t.max_index) t.max_index = t.indices[k];
    }
    t.offsets.push_back(static_cast<int64_t>(t.indices.size()));
    t.lines.push_back(line_no);
  }
  return t;
}

std::vector<float> densify(const SparseTable& t, int64_t width, OutOfRangeFeature out_of_range) {
  TESSERA_CHECK(width >= 0, "densify: negative width " << width);
  int64_t values = 0;
  if (width > kLibSvmMaxFeatures || __builtin_mul_overflow(t.rows(), width, &values) ||
      values > kLibSvmMaxDenseValues) {
    TESSERA_THROW(Data,
                  t.path << ": " << t.rows() << " rows of " << width
                         << " features are too many to densify (limits: " << kLibSvmMaxFeatures
                         << " features, " << kLibSvmMaxDenseValues << " values in all)");
  }
  std::vector<float> out(static_cast<size_t>(values), 0.f);
  for (int64_t r = 0; r < t.rows(); ++r) {
    float* row = out.data() + r * width;
    for (int64_t k = t.offsets[r]; k < t.offsets[r + 1]; ++k) {
      const int64_t idx = t.indices[k];
      if (idx >= width) {
        if (out_of_range == OutOfRangeFeature::Drop) continue;
        const int64_t line = r < static_cast<int64_t>(t.lines.size()) ? t.lines[r] : r + 1;
        TESSERA_THROW(Data, t.path << ":" << line << ": feature index " << idx
                                   << " is outside the width " << width
                                   << " (fitted on the training file)");
      }
      row[idx] = t.values[k];
    }
  }
  return out;
}

}  // namespace tessera
