#pragma once
// A small validating reader for JSON configs, shared by every task's config (behaviour,
// recommend, textgen, image, ...). The goal is error messages a user can act on without reading
// our code, and a whole config validated before anything is allocated:
//
//   - every error names the file, the line:column of the offending value (or key) and its JSON
//     path, says what was expected and, for enum-like fields, lists the valid choices;
//   - unknown keys are errors that list the allowed keys and suggest the closest one;
//   - errors are collected, not thrown one at a time: a config with five mistakes reports five
//     lines, each "file:line:col: $.path: message", in one tessera::Error(ErrorKind::Config).
//
// Usage (a task's parse function):
//
//   std::unique_ptr<json::Document> doc = json::parse(text, source_path);  // syntax errors throw
//   json::ObjectReader root = doc->root();
//   cfg.seed = root.integer<int64_t>("seed", 42, json::IntBounds::at_least(0));
//   {
//     json::ObjectReader model = root.object("model");       // absent: all fallbacks
//     cfg.model.dropout = model.number("dropout", 0.2, json::Bounds::closed(0, 0.95));
//     cfg.model.activation = model.choice("activation", Activation::Relu, activation_choices());
//     if (model.has("x") && ...) model.error("x", "only applies to ...");  // cross-field checks
//     model.finish();                                        // unknown keys -> errors
//   }
//   root.finish();
//   doc->errors.throw_if_any();                              // one Error listing all of them
//
// finish() every reader before throw_if_any() (the destructor runs it too, but too late to be
// part of the thrown list).
//
// A getter whose value is absent returns its fallback; whose value is wrong (type, range, choice)
// records an error and returns the fallback, so reading continues and later errors are found
// too. Every key a reader is asked about is "allowed"; finish() reports the keys nobody asked
// about (so read every key the schema knows, then check which ones apply with has()).
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <rapidjson/document.h>

#include "host/core/error.h"

namespace tessera::json {

// 1-based line and column (columns count UTF-8 code points); line 0 means "unknown".
struct SourceLocation {
  int line = 0;
  int column = 0;
};

// Where each value (and each object key) of a parsed document starts, by JSON path.
class SourceMap {
 public:
  void set_value(const std::string& path, SourceLocation at) { values_.emplace(path, at); }
  void set_key(const std::string& path, SourceLocation at) { keys_.emplace(path, at); }
  // The value at `path`, else its nearest ancestor that has one; {} when none.
  SourceLocation value(const std::string& path) const;
  // The key that names `path` (object members only), else value(path).
  SourceLocation key(const std::string& path) const;

 private:
  std::unordered_map<std::string, SourceLocation> values_;
  std::unordered_map<std::string, SourceLocation> keys_;
};

// Collected config errors, formatted "file:line:col: $.path: message" (location when known).
class ErrorList {
 public:
  explicit ErrorList(std::string source_path, const SourceMap* map = nullptr)
      : source_path_(std::move(source_path)), map_(map) {}

  // An error about the value at `json_path`; reported at the value's location.
  void add(const std::string& json_path, const std::string& message);
  // An error about the key itself (unknown or duplicate key); reported at the key's location.
  void add_at_key(const std::string& json_path, const std::string& message);
  // An error already located (syntax errors).
  void add_located(SourceLocation at, const std::string& json_path, const std::string& message);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // The formatted lines, sorted by position in the file (unlocated ones last, in report order).
  std::vector<std::string> lines() const;
  // Throws one Error(ErrorKind::Config): a summary line, then one line per error.
  void throw_if_any() const;

  const std::string& source_path() const { return source_path_; }
  void set_source_map(const SourceMap* map) { map_ = map; }

 private:
  struct Entry {
    SourceLocation at;
    std::string text;  // "$.path: message"
    std::string json_path;
  };
  std::string source_path_;
  const SourceMap* map_ = nullptr;
  std::vector<Entry> entries_;
};

// Reads a whole text file; throws Error(Io) naming the path and the OS reason.
std::string read_text_file(const std::string& path);

// "$.a" + "b" -> "$.a.b"; keys that are not identifiers are quoted: $.a["my key"].
std::string child_path(const std::string& parent, std::string_view key);
// "$.a" + 3 -> "$.a[3]".
std::string element_path(const std::string& parent, size_t index);

// Shortest decimal that reads back as the same double, for messages ("0.1", "1e-08").
std::string format_number(double v);

// Optimal-string-alignment edit distance, ASCII case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` when it is close enough to be a likely typo; "" otherwise.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

// Inclusive or exclusive bounds on a number; describe() says them in words for messages.
struct Bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;

  static Bounds any() { return {}; }
  static Bounds closed(double lo, double hi) { return {lo, hi, false, false}; }
  static Bounds at_least(double lo) {
    return {lo, std::numeric_limits<double>::infinity(), false, false};
  }
  static Bounds positive() { return {0.0, std::numeric_limits<double>::infinity(), true, false}; }
  // (lo, hi]
  static Bounds open_closed(double lo, double hi) { return {lo, hi, true, false}; }
  // [lo, hi)
  static Bounds closed_open(double lo, double hi) { return {lo, hi, false, true}; }

  bool contains(double v) const;
  std::string describe() const;  // e.g. "a number in [0, 0.9]", "a number > 0"
};

struct IntBounds {
  int64_t lo = std::numeric_limits<int64_t>::min();
  int64_t hi = std::numeric_limits<int64_t>::max();

  static IntBounds any() { return {}; }
  static IntBounds closed(int64_t lo, int64_t hi) { return {lo, hi}; }
  static IntBounds at_least(int64_t lo) { return {lo, std::numeric_limits<int64_t>::max()}; }

  bool contains(int64_t v) const { return v >= lo && v <= hi; }
  std::string describe() const;  // e.g. "an integer in [1, 1024]", "an integer >= 0"
};

// Constraints on strings.
enum class Text : uint8_t { Any, NonEmpty };

// One valid spelling of an enum-like field. Keep each table in one place (a function returning
// a static vector) and use it both to read and to write the field.
template <typename E>
struct Choice {
  const char* name;
  E value;
};
template <typename E>
using Choices = std::vector<Choice<E>>;

// The spelling of `value` in `choices` (the first one listed); throws Error(Internal) if absent.
template <typename E>
const char* choice_name(E value, const Choices<E>& choices);
// `"a", "b", "c"`: the list used in messages.
std::string quoted_list(const std::vector<std::string>& names);

// JSON type of a member, as seen by has()/kind(); Absent when the key is missing.
enum class JsonKind : uint8_t { Absent, Null, Bool, Number, String, Array, Object };
const char* json_kind_name(JsonKind kind);  // "a number", "an object", ...
JsonKind kind_of(const rapidjson::Value& v);
// A short rendering of a value for messages: "a string (\"10\")", "2.5", "an array".
std::string describe_value(const rapidjson::Value& v);

// Reads the members of one JSON object. Movable, not copyable. Holds references to the
// document and the error list, which must outlive it. finish() (also run by the destructor if
// not called) reports unknown keys.
class ObjectReader {
 public:
  // `value` may be any JSON value: a non-object is reported ("expected an object") and read as
  // an empty object, so every getter returns its fallback.
  ObjectReader(const rapidjson::Value& value, std::string path, ErrorList& errors);
  ObjectReader(ObjectReader&& other) noexcept;
  ObjectReader& operator=(ObjectReader&&) = delete;
  ObjectReader(const ObjectReader&) = delete;
  ObjectReader& operator=(const ObjectReader&) = delete;
  ~ObjectReader();

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const { return child_path(path_, key); }
  ErrorList& errors() { return *errors_; }
  // False when the value was absent or not an object (the reader then yields fallbacks only).
  bool present() const { return present_; }

  // Presence and type, without consuming the key (it stays "unknown" unless read or allowed).
  bool has(std::string_view key) const { return find(key) != nullptr; }
  JsonKind kind(std::string_view key) const;
  // Marks keys as known without reading them (a section read elsewhere, a reserved key).
  void allow(std::string_view key);
  // Records an error about the value of `key` (a cross-field check), or about this object
  // itself when `key` is empty.
  void error(std::string_view key, const std::string& message);
  // The raw value (consumes the key); nullptr when absent. For fields with unusual shapes.
  const rapidjson::Value* raw(std::string_view key);
  // Marks `key` allowed and reports "missing required key" when absent; returns presence. For
  // required fields read by shape (string or object): check kind(), then read with a getter.
  bool require(std::string_view key) { return take(key, /*required=*/true) != nullptr; }

  // Scalars. The required_* forms report "missing required key" when absent.
  double number(std::string_view key, double fallback, Bounds bounds = Bounds::any());
  double required_number(std::string_view key, Bounds bounds = Bounds::any());

  // Integers accept integral JSON numbers (10, 1e6) and reject 2.5 and out-of-range values.
  // `T` is any integer type; the bounds are also limited to T's range.
  template <typename T = int64_t>
  T integer(std::string_view key, T fallback, IntBounds bounds = IntBounds::any()) {
    static_assert(std::is_integral_v<T>);
    int64_t out = 0;
    return read_integer(key, /*required=*/false, clamp_bounds<T>(bounds), &out)
               ? static_cast<T>(out)
               : fallback;
  }
  template <typename T = int64_t>
  T required_integer(std::string_view key, IntBounds bounds = IntBounds::any()) {
    int64_t out = 0;
    return read_integer(key, /*required=*/true, clamp_bounds<T>(bounds), &out) ? static_cast<T>(out)
                                                                               : T{};
  }

  bool boolean(std::string_view key, bool fallback);

  std::string string(std::string_view key, std::string fallback, Text rule = Text::Any);
  std::string required_string(std::string_view key, Text rule = Text::NonEmpty);

  // Enum-like strings: a bad value lists every choice and suggests the closest.
  template <typename E>
  E choice(std::string_view key, E fallback, const Choices<E>& choices) {
    size_t index = 0;
    return read_choice(key, /*required=*/false, names_of(choices), &index) ? choices[index].value
                                                                           : fallback;
  }
  template <typename E>
  E required_choice(std::string_view key, const Choices<E>& choices, E if_missing) {
    size_t index = 0;
    return read_choice(key, /*required=*/true, names_of(choices), &index) ? choices[index].value
                                                                          : if_missing;
  }

  // Arrays of scalars. `size` bounds the number of elements.
  std::vector<std::string> string_list(std::string_view key, std::vector<std::string> fallback,
                                       Text rule = Text::Any, IntBounds size = IntBounds::any());
  template <typename T = int64_t>
  std::vector<T> integer_list(std::string_view key, std::vector<T> fallback,
                              IntBounds bounds = IntBounds::any(),
                              IntBounds size = IntBounds::any()) {
    std::vector<int64_t> out;
    if (!read_integer_list(key, clamp_bounds<T>(bounds), size, &out)) return fallback;
    return std::vector<T>(out.begin(), out.end());
  }
  std::vector<double> number_list(std::string_view key, std::vector<double> fallback,
                                  Bounds bounds = Bounds::any(), IntBounds size = IntBounds::any());

  // Nested objects. An absent key gives a reader over an empty object (all fallbacks).
  ObjectReader object(std::string_view key);
  ObjectReader required_object(std::string_view key);
  // Arrays of objects: one reader per element ("$.columns[2]"); elements that are not objects
  // are reported and skipped. Absent: empty.
  std::vector<ObjectReader> object_list(std::string_view key, IntBounds size = IntBounds::any());
  std::vector<ObjectReader> required_object_list(std::string_view key,
                                                 IntBounds size = IntBounds::any());

  // Reports every member that no getter, raw(), require() or allow() claimed (has() and kind()
  // do not claim), with the allowed keys and the closest one. Idempotent.
  void finish();

 private:
  const rapidjson::Value* find(std::string_view key) const;
  // Marks `key` allowed, and returns its value (nullptr when absent; reports it when required).
  const rapidjson::Value* take(std::string_view key, bool required);
  void type_error(std::string_view key, const char* expected, const rapidjson::Value& got);
  bool read_integer(std::string_view key, bool required, IntBounds bounds, int64_t* out);
  bool read_choice(std::string_view key, bool required, const std::vector<std::string>& names,
                   size_t* index);
  bool read_integer_list(std::string_view key, IntBounds bounds, IntBounds size,
                         std::vector<int64_t>* out);
  const rapidjson::Value* take_array(std::string_view key, bool required, IntBounds size);
  std::vector<ObjectReader> read_object_list(std::string_view key, bool required, IntBounds size);

  template <typename T>
  static IntBounds clamp_bounds(IntBounds b) {
    if constexpr (std::is_same_v<T, bool>) {
      return b;
    } else {
      const auto lo = static_cast<int64_t>(std::numeric_limits<T>::min());
      const int64_t hi = std::numeric_limits<T>::max() > static_cast<uint64_t>(INT64_MAX)
                             ? INT64_MAX
                             : static_cast<int64_t>(std::numeric_limits<T>::max());
      return {b.lo < lo ? lo : b.lo, b.hi > hi ? hi : b.hi};
    }
  }
  template <typename E>
  static std::vector<std::string> names_of(const Choices<E>& choices) {
    std::vector<std::string> names;
    names.reserve(choices.size());
    for (const auto& c : choices) names.emplace_back(c.name);
    return names;
  }

  const rapidjson::Value* value_ = nullptr;  // an object, or nullptr when absent/invalid
  std::string path_;
  ErrorList* errors_ = nullptr;
  bool present_ = false;
  bool finished_ = false;
  std::vector<bool> used_;            // per member of *value_
  std::vector<std::string> allowed_;  // in the order asked, for messages
};

// A parsed JSON document with the positions of its values and an error list bound to both.
// Neither copyable nor movable (the error list points into the source map): held by unique_ptr.
struct Document {
  explicit Document(std::string source_path);
  Document(Document&&) = delete;
  Document(const Document&) = delete;

  rapidjson::Document json;
  SourceMap map;
  ErrorList errors;
  // A reader over the root; a non-object root is reported and read as an empty object.
  ObjectReader root();
};

// Parses `text` (strict JSON plus // and /* */ comments). A syntax error (or a NUL byte, or
// nesting deeper than 128 levels) throws Error(Config) "file:line:col: JSON syntax error: ...".
// Duplicate keys are recorded in the returned document's `errors`, not thrown.
std::unique_ptr<Document> parse(const std::string& text, const std::string& source_path);

// Parses `text`, reads its root object into a T with read(root, value), refuses keys nobody read
// (root.finish()) and throws every error found at once (Error(Config), each naming the source,
// line and key). The common shape of a task's parse_*_config.
template <typename T, typename Read>
T read_document(const std::string& text, const std::string& source_path, Read&& read) {
  std::unique_ptr<Document> doc = parse(text, source_path);
  T value{};
  {
    ObjectReader root = doc->root();
    read(root, value);
    root.finish();
  }
  doc->errors.throw_if_any();
  return value;
}

// Whether JSON text is an object whose "task" is the string `task`; false for anything malformed
// (the task's own reader reports that). Used to route a config file or a model's metadata to
// its pipeline.
bool text_has_task(const std::string& text, std::string_view task);
// The same for the file at `path` (false when it cannot be read).
bool file_has_task(const std::string& path, std::string_view task);

template <typename E>
const char* choice_name(E value, const Choices<E>& choices) {
  for (const auto& c : choices) {
    if (c.value == value) return c.name;
  }
  TESSERA_THROW(Internal,
                "enum value " << static_cast<int64_t>(value) << " has no name in its choice table");
}

}  // namespace tessera::json
