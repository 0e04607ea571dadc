// The validating JSON reader: parsing with source positions, error collection and ObjectReader.
#include "host/config/json_reader.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include "host/core/enum_table.h"
#include "host/core/json_escape.h"

namespace tessera::json {

namespace {

// Comments are allowed because configs are written by people; numbers arrive as text and are
// converted by number_value() (correctly rounded, so that they survive a parse -> write -> parse
// round trip; rapidjson 1.1.0's own full-precision conversion calls clz(0), which is undefined,
// for a zero significand with an exponent such as 0e100); iterative so deep nesting cannot
// overflow the stack while parsing (the depth limit below keeps later recursive walks safe too).
constexpr unsigned kParseFlags =
    rapidjson::kParseCommentsFlag | rapidjson::kParseNumbersAsStringsFlag |
    rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
constexpr int kMaxDepth = 128;

// The power of ten of a JSON number's leading digit (1.5e3 -> 3, 0.02 -> -2), the exponent
// saturating far beyond any double's range; 0 for a zero.
int64_t leading_exponent(std::string_view num) {
  const size_t e = num.find_first_of("eE");
  int64_t exp = 0;
  if (e != std::string_view::npos) {
    size_t i = e + 1;
    const bool minus = i < num.size() && num[i] == '-';
    if (i < num.size() && (num[i] == '-' || num[i] == '+')) ++i;
    for (; i < num.size(); ++i) exp = std::min<int64_t>(exp * 10 + (num[i] - '0'), 1 << 20);
    if (minus) exp = -exp;
  }
  const std::string_view mantissa = num.substr(0, e);
  const size_t dot = std::min(mantissa.find('.'), mantissa.size());
  const size_t lead = mantissa.find_first_of("123456789");
  if (lead == std::string_view::npos) return 0;
  const int64_t place =
      lead < dot ? static_cast<int64_t>(dot - lead) - 1 : -static_cast<int64_t>(lead - dot);
  return place + exp;
}

// The JSON number `num` (rapidjson has checked its grammar) as the value rapidjson's own
// conversion gives: Int / Uint for 32-bit integers, Int64 / Uint64 beyond, a double for
// fractions, exponents and integers beyond 64 bits. False when it is too large for a double; a
// value too small for one reads as zero.
bool number_value(std::string_view num, rapidjson::Document& out) {
  const char* b = num.data();
  const char* e = b + num.size();
  if (num.find_first_of(".eE") == std::string_view::npos) {
    if (num[0] == '-') {
      int64_t v = 0;
      const std::from_chars_result r = std::from_chars(b, e, v);
      if (r.ec == std::errc() && r.ptr == e) {
        return v >= INT32_MIN ? out.Int(static_cast<int>(v)) : out.Int64(v);
      }
    } else {
      uint64_t v = 0;
      const std::from_chars_result r = std::from_chars(b, e, v);
      if (r.ec == std::errc() && r.ptr == e) {
        return v <= UINT32_MAX ? out.Uint(static_cast<unsigned>(v)) : out.Uint64(v);
      }
    }
  }
  double d = 0;
  const std::from_chars_result r = std::from_chars(b, e, d);
  if (r.ec == std::errc::result_out_of_range) {
    if (leading_exponent(num) > 0) return false;
    d = num[0] == '-' ? -0.0 : 0.0;
  } else if (r.ec != std::errc() || r.ptr != e) {
    return false;
  }
  return out.Double(d);
}

// Quotes and escapes a string for a message, cut to `max_chars` bytes.
std::string quote(std::string_view s, size_t max_chars = 60) {
  std::string out = "\"";
  size_t n = 0;
  for (char c : s) {
    if (n++ == max_chars) {
      out += "...";
      break;
    }
    append_json_escaped(out, c, JsonCarriageReturn::Short);
  }
  out += "\"";
  return out;
}

bool is_identifier(std::string_view key) {
  if (key.empty() || !(std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_'))
    return false;
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// The path one level up: "$.a.b" -> "$.a", "$.a[3]" -> "$.a", "$" -> "".
std::string parent_path(const std::string& path) {
  if (path.size() <= 1) return "";
  if (path.back() == ']') {
    size_t open =
        path.size() >= 2 && path[path.size() - 2] == '"' ? path.rfind("[\"") : path.rfind('[');
    return open == std::string::npos ? "" : path.substr(0, open);
  }
  size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

// Byte offset -> 1-based line and column (in code points). Constant time per lookup whatever
// the line's length (a value's position is looked up for every value, so a scan from the line
// start made a long one-line document quadratic: 600 KB took minutes): the code points before
// every kStride-th byte are counted once, and at most kStride bytes are scanned per lookup.
class LineIndex {
 public:
  explicit LineIndex(const std::string& text) : text_(text) {
    starts_.push_back(0);
    points_.reserve(text.size() / kStride + 1);
    size_t points = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (i % kStride == 0) points_.push_back(points);
      if (text[i] == '\n') starts_.push_back(i + 1);
      if (starts_point(text[i])) ++points;
    }
    if (text.size() % kStride == 0) points_.push_back(points);
  }
  SourceLocation at(size_t offset) const {
    offset = std::min(offset, text_.size());
    auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - starts_.begin());  // 1-based
    const size_t column = points_before(offset) - points_before(starts_[line - 1]) + 1;
    return {static_cast<int>(line), static_cast<int>(std::min<size_t>(column, INT_MAX))};
  }

 private:
  static constexpr size_t kStride = 256;
  // UTF-8 continuation bytes do not start a new column.
  static bool starts_point(char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }
  size_t points_before(size_t offset) const {
    size_t n = points_[offset / kStride];
    for (size_t i = offset - offset % kStride; i < offset; ++i) n += starts_point(text_[i]);
    return n;
  }

  const std::string& text_;
  std::vector<size_t> starts_;
  std::vector<size_t> points_;  // [k]: code points in text_[0, k * kStride)
};

// A read-only stream over the text whose position is always current. rapidjson copies streams
// flagged "copyOptimization" (its own StringStream) into a local while parsing a token, which
// would leave the position our handler sees stale; this one is not flagged.
// Bounded: past the end it reads '\0' (rapidjson's end of input) and stays put. rapidjson's UTF-8
// validation takes all the continuation bytes a lead byte announces before judging them, so a
// text ending in a truncated sequence ("...\xEF") would otherwise be read beyond its terminator.
class LiveStream {
 public:
  using Ch = char;
  LiveStream(const char* text, const char* end) : head_(text), src_(text), end_(end) {}
  Ch Peek() const { return src_ < end_ ? *src_ : '\0'; }
  Ch Take() { return src_ < end_ ? *src_++ : '\0'; }
  size_t Tell() const { return static_cast<size_t>(src_ - head_); }
  // Output side, unused by a Reader over a read-only stream.
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

 private:
  const char* head_;
  const char* src_;
  const char* end_;
};

struct Duplicate {
  SourceLocation at;
  std::string path;
  std::string message;
};

// Forwards SAX events to the rapidjson::Document that is being built, and records where each
// value and key starts, keyed by JSON path. Handlers are called once a scalar token has been
// consumed (LiveStream makes sure the position we see is current), so scalar starts are found by
// scanning back from the stream position.
class Tracker {
 public:
  using Ch = char;

  Tracker(rapidjson::Document& doc, const std::string& text, const LiveStream& stream, size_t base,
          const LineIndex& lines, SourceMap& map, std::vector<Duplicate>& duplicates)
      : doc_(doc),
        text_(text),
        stream_(stream),
        base_(base),
        lines_(lines),
        map_(map),
        duplicates_(duplicates) {}

  bool too_deep() const { return too_deep_; }
  // Where a number too large for a double starts; npos when there was none.
  size_t number_too_big_at() const { return number_too_big_at_; }

  bool Null() {
    note_scalar(literal_start(4));
    return doc_.Null();
  }
  bool Bool(bool b) {
    note_scalar(literal_start(b ? 4 : 5));
    return doc_.Bool(b);
  }
  // Numbers come as text (kParseNumbersAsStringsFlag); rapidjson calls none of Int ... Double.
  bool Int(int) { return false; }
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool) {
    const size_t start = number_start();
    note_scalar(start);
    if (number_value(std::string_view(s, n), doc_)) return true;
    number_too_big_at_ = start;
    return false;
  }
  bool String(const Ch* s, rapidjson::SizeType n, bool copy) {
    note_scalar(string_start());
    return doc_.String(s, n, copy);
  }
  bool Key(const Ch* s, rapidjson::SizeType n, bool copy) {
    Frame& f = frames_.back();
    f.key.assign(s, n);
    const SourceLocation at = lines_.at(string_start());
    const std::string path = child_path(f.path, f.key);
    auto [it, inserted] = f.keys.emplace(f.key, at);
    if (inserted) {
      map_.set_key(path, at);
    } else {
      duplicates_.push_back({at, path,
                             "duplicate key " + quote(f.key) + " (first given at line " +
                                 std::to_string(it->second.line) + ")"});
    }
    return doc_.Key(s, n, copy);
  }
  bool StartObject() { return open_container('{', &rapidjson::Document::StartObject); }
  bool EndObject(rapidjson::SizeType n) {
    return close_container(&rapidjson::Document::EndObject, n);
  }
  bool StartArray() { return open_container('[', &rapidjson::Document::StartArray); }
  bool EndArray(rapidjson::SizeType n) {
    return close_container(&rapidjson::Document::EndArray, n);
  }

 private:
  struct Frame {
    bool is_array = false;
    std::string path;
    size_t next_index = 0;
    std::string key;
    std::unordered_map<std::string, SourceLocation> keys;
  };

  size_t pos() const { return base_ + stream_.Tell(); }

  // The path of the value that starts now (advances the array index).
  std::string next_value_path() {
    if (frames_.empty()) return "$";
    Frame& f = frames_.back();
    if (f.is_array) return element_path(f.path, f.next_index++);
    return child_path(f.path, f.key);
  }

  void note_scalar(size_t start) { map_.set_value(next_value_path(), lines_.at(start)); }

  // A '{' or '[': a frame for its members or elements, then the document's own `start`.
  bool open_container(char bracket, bool (rapidjson::Document::*start)()) {
    if (static_cast<int>(frames_.size()) >= kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    // The recursive parser calls Start* after taking the bracket, the iterative one before.
    size_t at = pos();
    if (at >= text_.size() || text_[at] != bracket) at = at > 0 ? at - 1 : 0;
    Frame f;
    f.is_array = bracket == '[';
    f.path = next_value_path();
    map_.set_value(f.path, lines_.at(at));
    frames_.push_back(std::move(f));
    return (doc_.*start)();
  }
  bool close_container(bool (rapidjson::Document::*end)(rapidjson::SizeType),
                       rapidjson::SizeType n) {
    frames_.pop_back();
    return (doc_.*end)(n);
  }

  size_t literal_start(size_t length) const { return pos() >= length ? pos() - length : 0; }
  size_t number_start() const {
    size_t p = pos();
    while (p > 0 && std::strchr("0123456789+-.eE", text_[p - 1]) != nullptr) --p;
    return p;
  }
  // pos() is just past the closing quote: find the opening quote, the nearest one before it
  // that is not escaped (an even number of backslashes precede it).
  size_t string_start() const {
    size_t close = pos() - 1;
    size_t p = close;
    while (p > 0) {
      --p;
      if (text_[p] != '"') continue;
      size_t slashes = 0;
      while (p >= slashes + 1 && text_[p - slashes - 1] == '\\') ++slashes;
      if (slashes % 2 == 0) return p;
    }
    return close;
  }

  rapidjson::Document& doc_;
  const std::string& text_;
  const LiveStream& stream_;
  size_t base_;
  const LineIndex& lines_;
  SourceMap& map_;
  std::vector<Duplicate>& duplicates_;
  std::vector<Frame> frames_;
  bool too_deep_ = false;
  size_t number_too_big_at_ = std::string::npos;
};

}  // namespace

// ---- SourceMap / ErrorList --------------------------------------------------------------------

SourceLocation SourceMap::value(const std::string& path) const {
  for (std::string p = path; !p.empty(); p = parent_path(p)) {
    auto it = values_.find(p);
    if (it != values_.end()) return it->second;
  }
  return {};
}

SourceLocation SourceMap::key(const std::string& path) const {
  auto it = keys_.find(path);
  return it != keys_.end() ? it->second : value(path);
}

void ErrorList::add(const std::string& json_path, const std::string& message) {
  add_located(map_ ? map_->value(json_path) : SourceLocation{}, json_path, message);
}

void ErrorList::add_at_key(const std::string& json_path, const std::string& message) {
  add_located(map_ ? map_->key(json_path) : SourceLocation{}, json_path, message);
}

void ErrorList::add_located(SourceLocation at, const std::string& json_path,
                            const std::string& message) {
  entries_.push_back({at, json_path.empty() ? message : json_path + ": " + message, json_path});
}

std::vector<std::string> ErrorList::lines() const {
  std::vector<const Entry*> order;
  order.reserve(entries_.size());
  for (const Entry& e : entries_) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    auto key = [](const Entry* e) {
      return std::make_pair(e->at.line == 0 ? INT32_MAX : e->at.line, e->at.column);
    };
    return key(a) < key(b);
  });
  std::vector<std::string> out;
  out.reserve(order.size());
  for (const Entry* e : order) {
    std::string line = source_path_;
    if (e->at.line > 0)
      line += ":" + std::to_string(e->at.line) + ":" + std::to_string(e->at.column);
    out.push_back(line + ": " + e->text);
  }
  return out;
}

void ErrorList::throw_if_any() const {
  if (entries_.empty()) return;
  std::vector<std::string> all = lines();
  std::string message;
  if (all.size() > 1) {
    message = "invalid config " + source_path_ + " (" + std::to_string(all.size()) + " errors):";
    for (const std::string& l : all) message += "\n" + l;
  } else {
    message = all.front();
  }
  // The first error in file order is the one a --json error object points at.
  const Entry* first = &entries_.front();
  for (const Entry& e : entries_) {
    auto key = [](const Entry* x) {
      return std::make_pair(x->at.line == 0 ? INT32_MAX : x->at.line, x->at.column);
    };
    if (key(&e) < key(first)) first = &e;
  }
  throw Error(ErrorKind::Config, message,
              ErrorLocation{source_path_, first->at.line, first->at.column, first->json_path});
}

// ---- parsing ----------------------------------------------------------------------------------

Document::Document(std::string source_path) : errors(std::move(source_path), &map) {}

ObjectReader Document::root() {
  return ObjectReader(json, "$", errors);
}

std::unique_ptr<Document> parse(const std::string& text, const std::string& source_path) {
  auto doc = std::make_unique<Document>(source_path);
  const LineIndex lines(text);
  auto fail = [&](size_t offset, const std::string& message) {
    ErrorList errors(source_path);
    errors.add_located(lines.at(offset), "", message);
    errors.throw_if_any();
  };
  // The C-string stream would stop at a NUL byte and silently ignore the rest of the file.
  if (size_t nul = text.find('\0'); nul != std::string::npos) {
    fail(nul, "JSON syntax error: NUL byte in the text");
  }
  const size_t base = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;  // UTF-8 byte order mark

  std::vector<Duplicate> duplicates;
  LiveStream stream(text.data() + base, text.data() + text.size());
  rapidjson::Reader reader;
  rapidjson::ParseResult result;
  bool too_deep = false;
  size_t number_too_big_at = std::string::npos;
  auto generate = [&](rapidjson::Document& handler) {
    Tracker tracker(handler, text, stream, base, lines, doc->map, duplicates);
    result = reader.Parse<kParseFlags>(stream, tracker);
    too_deep = tracker.too_deep();
    number_too_big_at = tracker.number_too_big_at();
    return !result.IsError();
  };
  doc->json.Populate(generate);
  if (result.IsError()) {
    const size_t offset = base + result.Offset();
    if (too_deep) {
      fail(offset,
           "JSON syntax error: nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    if (number_too_big_at != std::string::npos) {
      fail(number_too_big_at, std::string("JSON syntax error: ") +
                                  rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig));
    }
    fail(offset, std::string("JSON syntax error: ") + rapidjson::GetParseError_En(result.Code()));
  }
  for (const Duplicate& d : duplicates) doc->errors.add_located(d.at, d.path, d.message);
  return doc;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) TESSERA_THROW(Io, "cannot open " << path << ": " << std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) TESSERA_THROW(Io, "cannot read " << path << ": " << std::strerror(errno));
  return buf.str();
}

// ---- small helpers ----------------------------------------------------------------------------

std::string format_number(double v) {
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);  // 10, not 1e+01
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // "1e-08" -> "1e-8", "1e+20" -> "1e20".
  std::string out = buf;
  const size_t e = out.find('e');
  if (e != std::string::npos) {
    std::string mantissa = out.substr(0, e), exponent = out.substr(e + 1);
    const bool negative = exponent[0] == '-';
    exponent.erase(0, exponent.find_first_not_of("+-0"));
    out = mantissa + "e" + (negative ? "-" : "") + exponent;
  }
  return out;
}

std::string child_path(const std::string& parent, std::string_view key) {
  if (is_identifier(key)) return parent + "." + std::string(key);
  return parent + "[" + quote(key, std::string::npos) + "]";
}

std::string element_path(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  const size_t n = a.size(), m = b.size();
  // Three rows: previous-previous (for transpositions), previous, current.
  std::vector<size_t> pp(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        cur[j] = std::min(cur[j], pp[j - 2] + 1);
      }
    }
    pp.swap(prev);
    prev.swap(cur);
  }
  return prev[m];
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    // A typo changes a few characters: allow about one edit per three characters, at most 3.
    const size_t limit =
        std::max<size_t>(1, std::min<size_t>(3, std::max(word.size(), c.size()) / 3));
    if (d <= limit && d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  if (!best.empty() || word.size() < 4) return best;
  // "hidden_layers" for "hidden": one name contains the other.
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  };
  const std::string w = lower(word);
  for (const std::string& c : candidates) {
    const std::string lc = lower(c);
    if (lc.size() >= 4 && (w.find(lc) != std::string::npos || lc.find(w) != std::string::npos)) {
      return c;
    }
  }
  return "";
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += quote(names[i]);
  }
  return out;
}

bool Bounds::contains(double v) const {
  if (lo_open ? !(v > lo) : !(v >= lo)) return false;
  if (hi_open ? !(v < hi) : !(v <= hi)) return false;
  return true;
}

std::string Bounds::describe() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi) {
    return std::string("a number in ") + (lo_open ? "(" : "[") + format_number(lo) + ", " +
           format_number(hi) + (hi_open ? ")" : "]");
  }
  if (has_lo) return std::string("a number ") + (lo_open ? "> " : ">= ") + format_number(lo);
  if (has_hi) return std::string("a number ") + (hi_open ? "< " : "<= ") + format_number(hi);
  return "a number";
}

std::string IntBounds::describe() const {
  const bool has_lo = lo != std::numeric_limits<int64_t>::min();
  const bool has_hi = hi != std::numeric_limits<int64_t>::max();
  if (has_lo && has_hi) {
    return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  if (has_lo) return "an integer >= " + std::to_string(lo);
  if (has_hi) return "an integer <= " + std::to_string(hi);
  return "an integer";
}

const char* json_kind_name(JsonKind kind) {
  static constexpr const char* kNames[] = {"nothing",  "null",     "a boolean", "a number",
                                           "a string", "an array", "an object"};
  return enum_entry<JsonKind::Object>(kind, kNames, "?");
}

JsonKind kind_of(const rapidjson::Value& v) {
  if (v.IsNull()) return JsonKind::Null;
  if (v.IsBool()) return JsonKind::Bool;
  if (v.IsNumber()) return JsonKind::Number;
  if (v.IsString()) return JsonKind::String;
  if (v.IsArray()) return JsonKind::Array;
  return JsonKind::Object;
}

std::string describe_value(const rapidjson::Value& v) {
  switch (kind_of(v)) {
    case JsonKind::Null:
      return "null";
    case JsonKind::Bool:
      return v.GetBool() ? "true" : "false";
    case JsonKind::Number:
      if (v.IsInt64()) return std::to_string(v.GetInt64());
      if (v.IsUint64()) return std::to_string(v.GetUint64());
      return format_number(v.GetDouble());
    case JsonKind::String:
      return "a string (" + quote(std::string_view(v.GetString(), v.GetStringLength())) + ")";
    case JsonKind::Array:
      return "an array";
    default:
      return "an object";
  }
}

// ---- ObjectReader -----------------------------------------------------------------------------

ObjectReader::ObjectReader(const rapidjson::Value& value, std::string path, ErrorList& errors)
    : path_(std::move(path)), errors_(&errors) {
  if (value.IsObject()) {
    value_ = &value;
    present_ = true;
    used_.assign(value.MemberCount(), false);
  } else {
    errors_->add(path_, "expected an object, got " + describe_value(value));
  }
}

ObjectReader::ObjectReader(ObjectReader&& o) noexcept
    : value_(o.value_),
      path_(std::move(o.path_)),
      errors_(o.errors_),
      present_(o.present_),
      finished_(o.finished_),
      used_(std::move(o.used_)),
      allowed_(std::move(o.allowed_)) {
  o.finished_ = true;  // the moved-from reader reports nothing
  o.value_ = nullptr;
}

ObjectReader::~ObjectReader() {
  try {
    finish();
  } catch (...) {
    // Destructors never throw; the only failure here is running out of memory for a message.
  }
}

const rapidjson::Value* ObjectReader::find(std::string_view key) const {
  if (!value_) return nullptr;
  for (auto it = value_->MemberBegin(); it != value_->MemberEnd(); ++it) {
    if (it->name.GetStringLength() == key.size() &&
        std::memcmp(it->name.GetString(), key.data(), key.size()) == 0) {
      return &it->value;
    }
  }
  return nullptr;
}

JsonKind ObjectReader::kind(std::string_view key) const {
  const rapidjson::Value* v = find(key);
  return v ? kind_of(*v) : JsonKind::Absent;
}

void ObjectReader::allow(std::string_view key) {
  take(key, /*required=*/false);
}

void ObjectReader::error(std::string_view key, const std::string& message) {
  errors_->add(key.empty() ? path_ : path_of(key), message);
}

const rapidjson::Value* ObjectReader::raw(std::string_view key) {
  return take(key, false);
}

const rapidjson::Value* ObjectReader::take(std::string_view key, bool required) {
  if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) {
    allowed_.emplace_back(key);
  }
  if (value_) {
    size_t i = 0;
    for (auto it = value_->MemberBegin(); it != value_->MemberEnd(); ++it, ++i) {
      if (it->name.GetStringLength() == key.size() &&
          std::memcmp(it->name.GetString(), key.data(), key.size()) == 0) {
        used_[i] = true;
        return &it->value;
      }
    }
  }
  // A missing key inside an absent or invalid object is not news: that object was reported.
  if (required && present_) {
    errors_->add(path_of(key), "missing required key " + quote(key));
  }
  return nullptr;
}

void ObjectReader::type_error(std::string_view key, const char* expected,
                              const rapidjson::Value& got) {
  errors_->add(path_of(key), std::string("expected ") + expected + ", got " + describe_value(got));
}

double ObjectReader::number(std::string_view key, double fallback, Bounds bounds) {
  const rapidjson::Value* v = take(key, false);
  if (!v) return fallback;
  if (!v->IsNumber() || !bounds.contains(v->GetDouble())) {
    type_error(key, bounds.describe().c_str(), *v);
    return fallback;
  }
  return v->GetDouble();
}

double ObjectReader::required_number(std::string_view key, Bounds bounds) {
  if (!take(key, true)) return 0.0;
  return number(key, 0.0, bounds);
}

bool ObjectReader::read_integer(std::string_view key, bool required, IntBounds bounds,
                                int64_t* out) {
  const rapidjson::Value* v = take(key, required);
  if (!v) return false;
  const std::string expected = bounds.describe();
  int64_t i = 0;
  if (v->IsInt64()) {
    i = v->GetInt64();
  } else if (v->IsDouble()) {
    // 1e6 is an integer written as a double; 2.5 is not.
    const double d = v->GetDouble();
    if (d != std::floor(d) || d < -9.2e18 || d > 9.2e18) {
      type_error(key, expected.c_str(), *v);
      return false;
    }
    i = static_cast<int64_t>(d);
  } else {
    type_error(key, expected.c_str(), *v);  // strings, and integers beyond int64
    return false;
  }
  if (!bounds.contains(i)) {
    type_error(key, expected.c_str(), *v);
    return false;
  }
  *out = i;
  return true;
}

bool ObjectReader::boolean(std::string_view key, bool fallback) {
  const rapidjson::Value* v = take(key, false);
  if (!v) return fallback;
  if (!v->IsBool()) {
    type_error(key, "true or false", *v);
    return fallback;
  }
  return v->GetBool();
}

std::string ObjectReader::string(std::string_view key, std::string fallback, Text rule) {
  const rapidjson::Value* v = take(key, false);
  if (!v) return fallback;
  const char* expected = rule == Text::NonEmpty ? "a non-empty string" : "a string";
  if (!v->IsString() || (rule == Text::NonEmpty && v->GetStringLength() == 0)) {
    type_error(key, expected, *v);
    return fallback;
  }
  return std::string(v->GetString(), v->GetStringLength());
}

std::string ObjectReader::required_string(std::string_view key, Text rule) {
  if (!take(key, true)) return "";
  return string(key, "", rule);
}

bool ObjectReader::read_choice(std::string_view key, bool required,
                               const std::vector<std::string>& names, size_t* index) {
  const rapidjson::Value* v = take(key, required);
  if (!v) return false;
  const std::string expected = "one of " + quoted_list(names);
  if (!v->IsString()) {
    type_error(key, expected.c_str(), *v);
    return false;
  }
  const std::string_view got(v->GetString(), v->GetStringLength());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == got) {
      *index = i;
      return true;
    }
  }
  std::string message = "expected " + expected + ", got " + quote(got);
  const std::string suggestion = closest_match(got, names);
  if (!suggestion.empty()) message += "; did you mean " + quote(suggestion) + "?";
  errors_->add(path_of(key), message);
  return false;
}

const rapidjson::Value* ObjectReader::take_array(std::string_view key, bool required,
                                                 IntBounds size) {
  const rapidjson::Value* v = take(key, required);
  if (!v) return nullptr;
  if (!v->IsArray()) {
    type_error(key, "an array", *v);
    return nullptr;
  }
  const int64_t n = v->Size();
  if (!size.contains(n)) {
    std::string want;
    if (size.lo == size.hi) {
      want = std::to_string(size.lo);
    } else if (size.hi == std::numeric_limits<int64_t>::max()) {
      want = "at least " + std::to_string(size.lo);
    } else if (size.lo <= 0) {
      want = "at most " + std::to_string(size.hi);
    } else {
      want = std::to_string(size.lo) + " to " + std::to_string(size.hi);
    }
    errors_->add(path_of(key),
                 "expected an array of " + want + " elements, got " + std::to_string(n));
  }
  return v;
}

std::vector<std::string> ObjectReader::string_list(std::string_view key,
                                                   std::vector<std::string> fallback, Text rule,
                                                   IntBounds size) {
  const size_t errors_before = errors_->size();
  const rapidjson::Value* v = take_array(key, false, size);
  if (!v) return fallback;
  std::vector<std::string> out;
  const std::string base = path_of(key);
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const rapidjson::Value& e = (*v)[i];
    if (!e.IsString() || (rule == Text::NonEmpty && e.GetStringLength() == 0)) {
      errors_->add(element_path(base, i),
                   std::string("expected ") +
                       (rule == Text::NonEmpty ? "a non-empty string" : "a string") + ", got " +
                       describe_value(e));
      continue;
    }
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return errors_->size() == errors_before ? out : fallback;
}

bool ObjectReader::read_integer_list(std::string_view key, IntBounds bounds, IntBounds size,
                                     std::vector<int64_t>* out) {
  const size_t errors_before = errors_->size();
  const rapidjson::Value* v = take_array(key, false, size);
  if (!v) return false;
  const std::string base = path_of(key);
  const std::string expected = bounds.describe();
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const rapidjson::Value& e = (*v)[i];
    bool ok = false;
    int64_t x = 0;
    if (e.IsInt64()) {
      x = e.GetInt64();
      ok = true;
    } else if (e.IsDouble() && e.GetDouble() == std::floor(e.GetDouble()) &&
               std::fabs(e.GetDouble()) < 9.2e18) {
      x = static_cast<int64_t>(e.GetDouble());
      ok = true;
    }
    if (!ok || !bounds.contains(x)) {
      errors_->add(element_path(base, i), "expected " + expected + ", got " + describe_value(e));
      continue;
    }
    out->push_back(x);
  }
  return errors_->size() == errors_before;
}

std::vector<double> ObjectReader::number_list(std::string_view key, std::vector<double> fallback,
                                              Bounds bounds, IntBounds size) {
  const size_t errors_before = errors_->size();
  const rapidjson::Value* v = take_array(key, false, size);
  if (!v) return fallback;
  std::vector<double> out;
  const std::string base = path_of(key);
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const rapidjson::Value& e = (*v)[i];
    if (!e.IsNumber() || !bounds.contains(e.GetDouble())) {
      errors_->add(element_path(base, i),
                   "expected " + bounds.describe() + ", got " + describe_value(e));
      continue;
    }
    out.push_back(e.GetDouble());
  }
  return errors_->size() == errors_before ? out : fallback;
}

ObjectReader ObjectReader::object(std::string_view key) {
  static const rapidjson::Value kEmpty(rapidjson::kObjectType);
  const rapidjson::Value* v = take(key, false);
  ObjectReader r(v ? *v : kEmpty, path_of(key), *errors_);
  if (!v) r.present_ = false;
  return r;
}

ObjectReader ObjectReader::required_object(std::string_view key) {
  if (!take(key, true)) {
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    ObjectReader r(kEmpty, path_of(key), *errors_);
    r.present_ = false;
    return r;
  }
  return object(key);
}

std::vector<ObjectReader> ObjectReader::read_object_list(std::string_view key, bool required,
                                                         IntBounds size) {
  std::vector<ObjectReader> out;
  const rapidjson::Value* v = take_array(key, required, size);
  if (!v) return out;
  const std::string base = path_of(key);
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const rapidjson::Value& e = (*v)[i];
    if (!e.IsObject()) {
      errors_->add(element_path(base, i), "expected an object, got " + describe_value(e));
      continue;
    }
    out.emplace_back(e, element_path(base, i), *errors_);
  }
  return out;
}

std::vector<ObjectReader> ObjectReader::object_list(std::string_view key, IntBounds size) {
  return read_object_list(key, false, size);
}

std::vector<ObjectReader> ObjectReader::required_object_list(std::string_view key, IntBounds size) {
  return read_object_list(key, true, size);
}

void ObjectReader::finish() {
  if (finished_) return;
  finished_ = true;
  if (!value_) return;
  size_t i = 0;
  for (auto it = value_->MemberBegin(); it != value_->MemberEnd(); ++it, ++i) {
    if (used_[i]) continue;
    const std::string name(it->name.GetString(), it->name.GetStringLength());
    // A repeated key was reported by the parser as a duplicate; do not call it unknown too.
    bool repeated = false;
    for (auto prev = value_->MemberBegin(); prev != it && !repeated; ++prev) {
      repeated = prev->name == it->name;
    }
    if (repeated) continue;
    std::string message = "unknown key " + quote(name);
    const std::string suggestion = closest_match(name, allowed_);
    if (!suggestion.empty()) message += "; did you mean " + quote(suggestion) + "?";
    if (allowed_.empty()) {
      message += " (this object takes no keys)";
    } else {
      message += " (allowed keys: " + quoted_list(allowed_) + ")";
    }
    errors_->add_at_key(child_path(path_, name), message);
  }
}

bool text_has_task(const std::string& text, std::string_view task) {
  rapidjson::Document d;
  // Iterative: a deeply nested file cannot exhaust the stack while it is only being routed.
  d.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseIterativeFlag>(text.c_str(),
                                                                          text.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  const auto it = d.FindMember("task");
  return it != d.MemberEnd() && it->value.IsString() &&
         std::string_view(it->value.GetString(), it->value.GetStringLength()) == task;
}

bool file_has_task(const std::string& path, std::string_view task) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  return text_has_task(ss.str(), task);
}

}  // namespace tessera::json
