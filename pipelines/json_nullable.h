#pragma once
// JSON values that may be undefined (a NaN figure, an absent file or line): written as null, so
// the key is always there.
#include <string_view>

#include "host/config/json_writer.h"

namespace tessera::json {

// `v` where `defined`, else null.
template <typename T>
JsonWriter& value_or_null(JsonWriter& w, const T& v, bool defined) {
  return defined ? w.value(v) : w.null();
}

// `name`: value_or_null(v, defined).
template <typename T>
JsonWriter& field_or_null(JsonWriter& w, std::string_view name, const T& v, bool defined) {
  w.key(name);
  return value_or_null(w, v, defined);
}

}  // namespace tessera::json
