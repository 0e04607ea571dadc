#include "host/core/json_fields.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

#include "host/core/error.h"

namespace tessera {

bool json_nesting_within(const char* p, size_t n, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

void parse_json_object(rapidjson::Document& doc, const std::string& text,
                       const std::string& source) {
  if (!json_nesting_within(text.data(), text.size(), kJsonMaxNesting))
    TESSERA_THROW(Io, source << ": JSON nested deeper than " << kJsonMaxNesting << " levels");
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) TESSERA_THROW(Io, source << ": not a JSON object");
}

std::string json_text(const rapidjson::Value& value) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  value.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

JsonFields::JsonFields(const rapidjson::Value& object, std::string source, std::string path)
    : object_(&object), source_(std::move(source)), path_(std::move(path)) {
  if (!object.IsObject()) fail(path_.empty() ? "the root" : path_, "is not an object");
}

std::string JsonFields::field(const char* key) const {
  return path_.empty() ? std::string(key) : path_ + "." + key;
}

void JsonFields::fail(const std::string& field, const std::string& why) const {
  TESSERA_THROW(Io, source_ << ": " << field << " " << why);
}

bool JsonFields::has(const char* key) const {
  return object_->FindMember(key) != object_->MemberEnd();
}

const rapidjson::Value& JsonFields::get(const char* key) const {
  auto it = object_->FindMember(key);
  if (it == object_->MemberEnd()) fail(field(key), "is missing");
  return it->value;
}

std::string JsonFields::string(const char* key) const {
  const rapidjson::Value& v = get(key);
  if (!v.IsString()) fail(field(key), "is not a string");
  return std::string(v.GetString(), v.GetStringLength());
}

std::string JsonFields::string_or(const char* key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

int64_t JsonFields::integer(const char* key, int64_t min, int64_t max) const {
  const rapidjson::Value& v = get(key);
  if (!v.IsInt64() || v.GetInt64() < min || v.GetInt64() > max)
    fail(field(key),
         "is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return v.GetInt64();
}

double JsonFields::number(const char* key) const {
  const rapidjson::Value& v = get(key);
  if (!v.IsNumber() || !std::isfinite(v.GetDouble())) fail(field(key), "is not a finite number");
  return v.GetDouble();
}

bool JsonFields::boolean(const char* key) const {
  const rapidjson::Value& v = get(key);
  if (!v.IsBool()) fail(field(key), "is not true or false");
  return v.GetBool();
}

JsonFields JsonFields::object(const char* key) const {
  return JsonFields(get(key), source_, field(key));
}

const rapidjson::Value& JsonFields::array(const char* key) const {
  const rapidjson::Value& v = get(key);
  if (!v.IsArray()) fail(field(key), "is not an array");
  return v;
}

std::vector<int64_t> JsonFields::integers(const char* key, int64_t min, int64_t max) const {
  std::vector<int64_t> out;
  size_t i = 0;
  for (const rapidjson::Value& e : array(key).GetArray()) {
    if (!e.IsInt64() || e.GetInt64() < min || e.GetInt64() > max)
      fail(field(key) + "[" + std::to_string(i) + "]",
           "is not an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    out.push_back(e.GetInt64());
    ++i;
  }
  return out;
}

std::vector<std::string> JsonFields::strings(const char* key) const {
  std::vector<std::string> out;
  size_t i = 0;
  for (const rapidjson::Value& e : array(key).GetArray()) {
    if (!e.IsString()) fail(field(key) + "[" + std::to_string(i) + "]", "is not a string");
    out.emplace_back(e.GetString(), e.GetStringLength());
    ++i;
  }
  return out;
}

std::string JsonFields::json(const char* key) const {
  return json_text(get(key));
}

}  // namespace tessera
