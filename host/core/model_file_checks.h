#pragma once
// Checks every model file reader makes of an archive (host/core/archive.h) before it builds a
// model from it: the header's reader fails as the file's fault (Io), and the tensors the header
// implies are all stored, f32, of the implied shapes and finite.
#include <string>
#include <utility>
#include <vector>

#include "host/core/archive.h"
#include "host/core/error.h"

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

// The tensors of `archive` (read from `path`), by name in archive order, once each of `shapes`
// (what its header implies) is stored as f32 of that shape and every tensor is finite; Io error
// naming `path` and the tensor otherwise.
std::vector<std::pair<std::string, Tensor>> checked_model_tensors(
    const Archive& archive, const std::string& path,
    const std::vector<std::pair<std::string, Shape>>& shapes);

}  // namespace tessera
