#pragma once
// One character of a JSON string literal: how quoted text in messages and the JSON the scheduler
// writes by hand escape what they quote.
#include <cstdio>
#include <string>

namespace tessera {

// How a carriage return is written: both forms are valid JSON, and each caller keeps the one its
// output has always had.
enum class JsonCarriageReturn : unsigned char { Short /* \r */, Unicode /* \u000d */ };

// Appends `c` to `out` escaped for the inside of a JSON string: the quote and the backslash with a
// backslash, newline and tab by their short forms, the other control characters as \u00xx.
inline void append_json_escaped(std::string& out, char c, JsonCarriageReturn cr) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\r':
      if (cr == JsonCarriageReturn::Short) {
        out += "\\r";
        return;
      }
      break;
    default:
      break;
  }
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
    out += buf;
  } else {
    out += c;
  }
}

}  // namespace tessera
