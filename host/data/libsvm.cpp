#include "host/data/libsvm.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>

#include "host/core/error.h"

namespace tessera {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// A non-negative integer up to `limit`: "" or why not (`what` names it in the reason).
std::string parse_index(std::string_view s, int64_t limit, const char* what,
                        const std::string& why_limit, int64_t& out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  const std::from_chars_result r = std::from_chars(b, e, out);
  const bool too_large =
      r.ec == std::errc::result_out_of_range && r.ptr == e && !s.empty() && *b != '-';
  if (!too_large && (s.empty() || r.ec != std::errc() || r.ptr != e))
    return std::string("expected an integer ") + what + " index";
  if (!too_large && out < 0) return std::string("negative ") + what + " index";
  if (too_large || out > limit) {
    std::string m = std::string(what) + " index above the limit " + std::to_string(limit);
    if (!why_limit.empty()) m += " (" + why_limit + ")";
    return m;
  }
  return std::string();
}

// One line's parse, appended to `t` (undone on a bad row).
class LineParser {
 public:
  LineParser(SparseTable& t, const LibSvmReadOptions& o, int& fields_mode)
      : t_(t), o_(o), fields_mode_(fields_mode), before_(t.indices.size()) {}
  // "" (a row), "blank", or the reason ("token N 'x': ...").
  std::string parse(std::string_view line);

 private:
  std::string fail(std::string_view tok, const std::string& what) {
    t_.indices.resize(before_);
    t_.values.resize(before_);
    if (t_.fields.size() > before_) t_.fields.resize(before_);
    std::ostringstream os;
    os << "token " << token_no_ << " " << quote_token(tok) << ": " << what;
    return os.str();
  }
  std::string entry(std::string_view tok);

  SparseTable& t_;
  const LibSvmReadOptions& o_;
  int& fields_mode_;
  size_t before_;
  int token_no_ = 0;
  int row_mode_ = -1;  // the mode this row's first entry set, when the file's was unknown
};

std::string LineParser::entry(std::string_view tok) {
  const size_t c1 = tok.find(':');
  const size_t c2 = c1 == std::string_view::npos ? c1 : tok.find(':', c1 + 1);
  if (c1 == std::string_view::npos || c1 == 0 || tok.back() == ':' ||
      (c2 != std::string_view::npos && tok.find(':', c2 + 1) != std::string_view::npos))
    return fail(tok, fields_mode_ == 1 ? "expected field:index:value" : "expected index:value");
  const int mode = c2 == std::string_view::npos ? 0 : 1;
  const int expected = fields_mode_ >= 0 ? fields_mode_ : row_mode_;
  if (expected >= 0 && mode != expected)
    return fail(tok, expected == 1 ? "expected field:index:value, as the file's first entries"
                                   : "expected index:value, as the file's first entries");
  row_mode_ = mode;
  int64_t field = -1, idx = 0;
  std::string why;
  std::string_view feature = tok.substr(0, c1), value = tok.substr(c1 + 1);
  if (mode == 1) {
    why = parse_index(tok.substr(0, c1), kLibFmMaxFields - 1, "field", "", field);
    if (!why.empty()) return fail(tok, why);
    feature = tok.substr(c1 + 1, c2 - c1 - 1);
    value = tok.substr(c2 + 1);
  }
  why = parse_index(feature, o_.max_index, "feature", o_.limit_reason, idx);
  if (!why.empty()) return fail(tok, why);
  double v = 0;
  if (!parse_double(value, v)) return fail(tok, "expected a numeric value");
  if (!std::isfinite(v)) return fail(tok, "expected a finite value");
  t_.indices.push_back(idx);
  t_.values.push_back(static_cast<float>(v));
  if (mode == 1) t_.fields.push_back(static_cast<int32_t>(field));
  return std::string();
}

std::string LineParser::parse(std::string_view line) {
  const size_t hash = line.find('#');
  if (hash != std::string_view::npos) line = line.substr(0, hash);
  size_t pos = 0;
  float label = 0.f;
  while (pos < line.size()) {
    while (pos < line.size() && is_blank(line[pos])) ++pos;
    if (pos == line.size()) break;
    size_t end = pos;
    while (end < line.size() && !is_blank(line[end])) ++end;
    const std::string_view tok = line.substr(pos, end - pos);
    pos = end;
    ++token_no_;
    if (token_no_ == 1) {
      double v = 0;
      if (!parse_double(tok, v) || (v != 1.0 && v != 0.0 && v != -1.0))
        return fail(tok, "expected a label 0/1 or -1/+1");
      label = v == 1.0 ? 1.f : 0.f;
      continue;
    }
    std::string why = entry(tok);
    if (!why.empty()) return why;
  }
  if (token_no_ == 0) return "blank";
  if (fields_mode_ < 0 && row_mode_ >= 0) fields_mode_ = row_mode_;
  t_.labels.push_back(label);
  return std::string();
}

}  // namespace

void SparseTable::clear() {
  labels.clear();
  offsets.assign(1, 0);
  indices.clear();
  values.clear();
  fields.clear();
  lines.clear();
  max_index = -1;
  max_field = -1;
}

LibSvmReader::LibSvmReader(const FileSpec& file, LibSvmReadOptions options, BadRowReport* report)
    : path_(file.path),
      options_(std::move(options)),
      report_(report),
      lines_(file.path, file.skip_lines, {}, file.range) {
  TESSERA_CHECK(options_.max_index >= 0 && options_.max_index <= kLibSvmMaxSparseIndex,
                "libSVM max_index " << options_.max_index);
}

bool LibSvmReader::next_block(SparseTable& t, int64_t max_rows) {
  TESSERA_CHECK(max_rows > 0, "next_block: max_rows " << max_rows);
  t.clear();
  t.path = path_;
  std::string_view line;
  int64_t line_no = 0;
  while (t.rows() < max_rows && lines_.next(line, line_no)) {
    const std::string reason = LineParser(t, options_, fields_mode_).parse(line);
    if (reason == "blank") continue;
    if (!reason.empty()) {
      std::ostringstream os;
      os << path_ << ":" << line_no << ":" << reason;
      if (options_.on_error == BadRowPolicy::Error)
        throw Error(ErrorKind::Data, os.str(),
                    ErrorLocation{path_, static_cast<int64_t>(line_no), 0, ""});
      if (report_ != nullptr) report_->add(os.str());
      continue;
    }
    const int64_t begin = t.offsets.back(), end = t.nnz();
    for (int64_t k = begin; k < end; ++k) t.max_index = std::max(t.max_index, t.indices[k]);
    for (size_t k = static_cast<size_t>(begin); k < t.fields.size(); ++k)
      t.max_field = std::max<int64_t>(t.max_field, t.fields[k]);
    t.offsets.push_back(end);
    t.lines.push_back(line_no);
  }
  t.has_fields = fields_mode_ == 1;
  return t.rows() > 0;
}

SparseTable read_libsvm(const FileSpec& file, const LibSvmReadOptions& options,
                        BadRowReport* report) {
  LibSvmReader reader(file, options, report);
  SparseTable all, block;
  all.clear();
  all.path = file.path;
  while (reader.next_block(block, 65536)) {
    const int64_t base = all.nnz();
    all.labels.insert(all.labels.end(), block.labels.begin(), block.labels.end());
    for (size_t r = 1; r < block.offsets.size(); ++r)
      all.offsets.push_back(base + block.offsets[r]);
    all.indices.insert(all.indices.end(), block.indices.begin(), block.indices.end());
    all.values.insert(all.values.end(), block.values.begin(), block.values.end());
    all.fields.insert(all.fields.end(), block.fields.begin(), block.fields.end());
    all.lines.insert(all.lines.end(), block.lines.begin(), block.lines.end());
    all.max_index = std::max(all.max_index, block.max_index);
    all.max_field = std::max(all.max_field, block.max_field);
  }
  all.has_fields = block.has_fields;
  return all;
}

SparseTable read_libsvm(const FileSpec& file, BadRowPolicy on_error, BadRowReport* report) {
  LibSvmReadOptions o;
  o.on_error = on_error;
  return read_libsvm(file, o, report);
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
