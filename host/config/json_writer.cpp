// JsonWriter: a compact rapidjson::Writer underneath; pretty() re-reads the text and lays it out.
#include "host/config/json_writer.h"

#include <cmath>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tessera::json {

// rapidjson's Writer only asserts on misuse (a value where a key is due), and Release builds
// compile its asserts out, so we track the structure ourselves: a bug in a to_json function is an
// Error naming the mistake, never malformed output.
struct JsonWriter::Impl {
  struct Frame {
    bool object = false;
    bool key_next = true;  // objects: a key is due (else its value)
  };
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
  std::vector<Frame> stack;
  bool root_done = false;

  void before_value(const char* what) const {
    const bool ok = stack.empty() ? !root_done : (!stack.back().object || !stack.back().key_next);
    if (!ok) {
      TESSERA_THROW(Internal, "JsonWriter: " << what << " written where "
                                             << (stack.empty() ? "the document is already complete"
                                                               : "an object key is due"));
    }
  }
  void after_value() {
    if (stack.empty()) {
      root_done = true;
    } else if (stack.back().object) {
      stack.back().key_next = true;
    }
  }
  static void check(bool ok, const char* what) {
    if (!ok) TESSERA_THROW(Internal, "JsonWriter: cannot write " << what);
  }
  // A '{' or '[' (`object` says which): `start(writer)` writes it where a value may go.
  template <typename Start>
  void open(const char* what, bool object, Start start) {
    before_value(what);
    check(start(writer), what);
    stack.push_back({object, object});  // an object awaits a key first
  }
  // The innermost container's close, once the caller has checked it is the one to close.
  template <typename End>
  void close(const char* what, End end) {
    check(end(writer), what);
    stack.pop_back();
    after_value();
  }
  // A value that opens nothing: `write(writer)` writes it where the structure allows one.
  template <typename Write>
  void scalar(const char* what, Write write) {
    before_value(what);
    check(write(writer), what);
    after_value();
  }
};

JsonWriter::JsonWriter() : impl_(std::make_unique<Impl>()) {}
JsonWriter::~JsonWriter() = default;

JsonWriter& JsonWriter::begin_object() {
  impl_->open("an object", true, [](auto& w) { return w.StartObject(); });
  return *this;
}
JsonWriter& JsonWriter::end_object() {
  if (impl_->stack.empty() || !impl_->stack.back().object || !impl_->stack.back().key_next) {
    TESSERA_THROW(Internal, "JsonWriter: end_object() without an open object awaiting a key");
  }
  impl_->close("the end of an object", [](auto& w) { return w.EndObject(); });
  return *this;
}
JsonWriter& JsonWriter::begin_array() {
  impl_->open("an array", false, [](auto& w) { return w.StartArray(); });
  return *this;
}
JsonWriter& JsonWriter::end_array() {
  if (impl_->stack.empty() || impl_->stack.back().object) {
    TESSERA_THROW(Internal, "JsonWriter: end_array() without an open array");
  }
  impl_->close("the end of an array", [](auto& w) { return w.EndArray(); });
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view name) {
  if (impl_->stack.empty() || !impl_->stack.back().object || !impl_->stack.back().key_next) {
    TESSERA_THROW(Internal, "JsonWriter: key \"" << name << "\" written where no key is due");
  }
  Impl::check(impl_->writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()), true),
              "a key");
  impl_->stack.back().key_next = false;
  return *this;
}
JsonWriter& JsonWriter::value(std::string_view s) {
  impl_->scalar("a string", [s](auto& w) {
    return w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()), true);
  });
  return *this;
}
JsonWriter& JsonWriter::value(bool b) {
  impl_->scalar("a boolean", [b](auto& w) { return w.Bool(b); });
  return *this;
}
JsonWriter& JsonWriter::value(double d) {
  impl_->scalar("a number", [d](auto& w) {
    // JSON has no NaN or infinity; writing one would produce a file we cannot read back.
    if (!std::isfinite(d))
      TESSERA_THROW(Internal, "JsonWriter: cannot write the non-finite number " << d);
    return w.Double(d);
  });
  return *this;
}
JsonWriter& JsonWriter::signed_value(int64_t v) {
  impl_->scalar("an integer", [v](auto& w) { return w.Int64(v); });
  return *this;
}
JsonWriter& JsonWriter::unsigned_value(uint64_t v) {
  impl_->scalar("an integer", [v](auto& w) { return w.Uint64(v); });
  return *this;
}
JsonWriter& JsonWriter::null() {
  impl_->scalar("null", [](auto& w) { return w.Null(); });
  return *this;
}

std::string JsonWriter::compact() const {
  if (!impl_->root_done) {
    TESSERA_THROW(Internal,
                  "JsonWriter: the document is not complete (an unclosed object or array)");
  }
  return std::string(impl_->buffer.GetString(), impl_->buffer.GetSize());
}

std::string JsonWriter::pretty(int width) const {
  const std::string text = compact();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str(), text.size());
  if (doc.HasParseError()) TESSERA_THROW(Internal, "JsonWriter produced invalid JSON: " << text);
  return format_pretty(doc, width) + "\n";
}

namespace {

std::string scalar_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The one-line form with a space after ',' and ':'.
std::string flat_text(const rapidjson::Value& v) {
  if (v.IsObject()) {
    if (v.MemberCount() == 0) return "{}";
    std::string out = "{";
    bool first = true;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (!first) out += ", ";
      first = false;
      out += scalar_text(it->name) + ": " + flat_text(it->value);
    }
    return out + "}";
  }
  if (v.IsArray()) {
    if (v.Size() == 0) return "[]";
    std::string out = "[";
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (i) out += ", ";
      out += flat_text(v[i]);
    }
    return out + "]";
  }
  return scalar_text(v);
}

// Appends `v` starting at column `column` (the line already holds that many characters), with
// nested lines indented by `indent` + 2. `tail` characters (a comma) follow it on its last line.
void emit(const rapidjson::Value& v, int indent, int column, int tail, int width,
          std::string& out) {
  const std::string flat = flat_text(v);
  if ((!v.IsObject() && !v.IsArray()) || column + static_cast<int>(flat.size()) + tail <= width) {
    out += flat;
    return;
  }
  const std::string pad(static_cast<size_t>(indent) + 2, ' ');
  if (v.IsObject()) {
    out += "{\n";
    rapidjson::SizeType i = 0;
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it, ++i) {
      const bool last = i + 1 == v.MemberCount();
      const std::string key = scalar_text(it->name) + ": ";
      out += pad + key;
      emit(it->value, indent + 2, indent + 2 + static_cast<int>(key.size()), last ? 0 : 1, width,
           out);
      out += last ? "\n" : ",\n";
    }
    out += std::string(static_cast<size_t>(indent), ' ') + "}";
  } else {
    out += "[\n";
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      const bool last = i + 1 == v.Size();
      out += pad;
      emit(v[i], indent + 2, indent + 2, last ? 0 : 1, width, out);
      out += last ? "\n" : ",\n";
    }
    out += std::string(static_cast<size_t>(indent), ' ') + "]";
  }
}

}  // namespace

std::string format_pretty(const rapidjson::Value& value, int width) {
  std::string out;
  emit(value, 0, 0, 0, width, out);
  return out;
}

}  // namespace tessera::json
