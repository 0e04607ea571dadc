#pragma once
// Type-checked reading of JSON that comes from a file: model artefact and checkpoint headers,
// stage manifests, run results. RapidJSON's accessors are unchecked in release builds (GetString
// on a number, or HasMember on an array, is undefined behaviour), so every such read goes
// through JsonFields: a member that is missing or of the wrong type is an Error(Io) naming the
// file and the member's path, e.g. "'run/model.tsm' header: spec.hidden[2] is not an integer in
// [1, 65536]".
//
//   rapidjson::Document doc;
//   parse_json_object(doc, text, "'" + path + "' header");     // Io error unless an object
//   JsonFields h(doc, "'" + path + "' header");
//   const int64_t n = h.integer("n_dense", 0, 1 << 20);
//   JsonFields spec = h.object("spec");                          // errors then name "spec.x"
#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tessera {

// How deep the JSON read from files may nest (RapidJSON's reader and writer recurse per level).
constexpr int kJsonMaxNesting = 64;

// Whether the JSON text nests arrays and objects at most `max_depth` deep (brackets inside
// strings do not count).
bool json_nesting_within(const char* text, size_t size, int max_depth);

// Parses `text` into `doc`; an Error(Io) naming `source` unless it is one JSON object nested at
// most kJsonMaxNesting deep.
void parse_json_object(rapidjson::Document& doc, const std::string& text,
                       const std::string& source);

class JsonFields {
 public:
  // `object` must be a JSON object (an Error(Io) otherwise). `source` names the file in errors,
  // `path` where this object sits in it ("" for the root).
  JsonFields(const rapidjson::Value& object, std::string source, std::string path = "");

  bool has(const char* key) const;
  // The member, of any type (it must be present).
  const rapidjson::Value& get(const char* key) const;
  std::string string(const char* key) const;
  // Absent: `fallback`; present, it must be a string.
  std::string string_or(const char* key, const std::string& fallback) const;
  int64_t integer(const char* key, int64_t min = std::numeric_limits<int64_t>::min(),
                  int64_t max = std::numeric_limits<int64_t>::max()) const;
  // A finite number.
  double number(const char* key) const;
  bool boolean(const char* key) const;
  JsonFields object(const char* key) const;
  const rapidjson::Value& array(const char* key) const;
  std::vector<int64_t> integers(const char* key, int64_t min, int64_t max) const;
  std::vector<std::string> strings(const char* key) const;
  // The member written back as compact JSON.
  std::string json(const char* key) const;

  // "path.key" as errors name it.
  std::string field(const char* key) const;
  [[noreturn]] void fail(const std::string& field, const std::string& why) const;

 private:
  const rapidjson::Value* object_;
  std::string source_, path_;
};

// Compact JSON text of a value.
std::string json_text(const rapidjson::Value& value);

}  // namespace tessera
