#pragma once
// Checks every model file reader makes of an archive (host/core/archive.h) before it builds a
// model from it: the header's reader fails as the file's fault (Io), and the tensors the header
// implies are all stored, f32, of the implied shapes and finite.
#include <string>
#include <utility>
#include <vector>

#include "host/core/archive.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"

namespace tessera {

// Runs `read_header` (a model header read with the config reader); its Config and Data errors
// become Io errors with the same message: a bad header is the model file's fault.
template <typename ReadHeader>
auto read_model_header_as_io(ReadHeader&& read_header) -> decltype(read_header()) {
  try {
    return read_header();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Config && e.kind() != ErrorKind::Data) throw;
    throw Error(ErrorKind::Io, e.what());
  }
}

// A model file of `task`, opened: its archive, and its header parsed as a JSON object (an Io
// error naming "'PATH' header" when it is not one) with the fields reader over it.
class ModelFileHeader {
  const std::string path_, task_;
  rapidjson::Document doc_;  // before `fields`, which reads it

 public:
  ModelFileHeader(const std::string& path, const std::string& task)
      : path_(path),
        task_(task),
        archive(load_archive(path)),
        fields(parsed(doc_, archive.meta_json, "'" + path + "' header"), "'" + path + "' header") {}
  ModelFileHeader(const ModelFileHeader&) = delete;
  ModelFileHeader& operator=(const ModelFileHeader&) = delete;

  // Io error: "'PATH' is not a tessera TASK model: WHY".
  [[noreturn]] void refuse(const std::string& why) const {
    TESSERA_THROW(Io, "'" << path_ << "' is not a tessera " << task_ << " model: " << why);
  }

  Archive archive;
  const JsonFields fields;  // over the header's root object

 private:
  static const rapidjson::Document& parsed(rapidjson::Document& doc, const std::string& text,
                                           const std::string& source) {
    parse_json_object(doc, text, source);
    return doc;
  }
};

// The tensors of `archive` (read from `path`), by name in archive order, once each of `shapes`
// (what its header implies) is stored as f32 of that shape and every tensor is finite; Io error
// naming `path` and the tensor otherwise.
std::vector<std::pair<std::string, Tensor>> checked_model_tensors(
    const Archive& archive, const std::string& path,
    const std::vector<std::pair<std::string, Shape>>& shapes);

}  // namespace tessera
