#pragma once
// Writes a resolved config (every default filled in) as readable JSON: the run directory keeps
// it, and `tessera config --resolve` style tools print it. Objects and arrays that fit on one
// line (within `width` columns) stay on one line, so a column list reads as a table:
//
//   json::JsonWriter w;
//   w.begin_object();
//   w.field("task", "behaviour").field("seed", int64_t{42});
//   w.key("model").begin_object().choice("activation", a, activation_choices()).end_object();
//   w.key("hidden").list(std::vector<int>{128, 64});
//   w.end_object();
//   std::string text = w.pretty();   // ends with a newline
//
// Numbers are written in the shortest form that reads back as the same double, so
// parse(write(config)) == config.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <rapidjson/document.h>

#include "host/config/json_reader.h"

namespace tessera::json {

class JsonWriter {
 public:
  JsonWriter();
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(double d);
  // Every integer type (int, size_t, long long, ...), but not char: a char is rarely a number.
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                             !std::is_same_v<T, char>,
                                         int> = 0>
  JsonWriter& value(T v) {
    if constexpr (std::is_signed_v<T>) {
      return signed_value(static_cast<int64_t>(v));
    } else {
      return unsigned_value(static_cast<uint64_t>(v));
    }
  }
  JsonWriter& null();

  template <typename T>
  JsonWriter& list(const std::vector<T>& items) {
    begin_array();
    for (const T& item : items) value(item);
    return end_array();
  }

  // key + value / list / enum spelling.
  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }
  template <typename T>
  JsonWriter& field(std::string_view name, const std::vector<T>& items) {
    key(name);
    return list(items);
  }
  template <typename E>
  JsonWriter& choice(std::string_view name, E v, const Choices<E>& choices) {
    key(name);
    return value(choice_name(v, choices));
  }

  // The document written so far, which must be complete (one closed root value).
  std::string compact() const;
  std::string pretty(int width = 100) const;

 private:
  JsonWriter& signed_value(int64_t v);
  JsonWriter& unsigned_value(uint64_t v);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Any JSON value, laid out like JsonWriter::pretty(): two-space indent, containers that fit in
// `width` columns on one line. Ends without a newline.
std::string format_pretty(const rapidjson::Value& value, int width = 100);

}  // namespace tessera::json
