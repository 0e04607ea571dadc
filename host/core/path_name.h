#pragma once
// Names read from configs and model files that become one component of a path: run names,
// pipeline and stage names, table names in exports. They are checked where they are read (with
// the reader's file:line and JSON path) and again where they become paths, so no name can climb
// out of its directory, name a hidden parent, or carry control characters into a file name.
#include <string>

#include "host/core/error.h"

namespace tessera {

// Why `name` cannot be one path component, or "" when it can: empty, "." or "..", longer than
// 255 bytes, or holding '/', '\', NUL or another control character (below 0x20, or 0x7f).
std::string path_component_problem(const std::string& name);

// A run name (a directory under the runs directory): ASCII letters, digits, '.', '_' and '-',
// not "." or "..", at most 200 bytes (a timestamp is appended).
bool is_valid_run_name(const std::string& name);

// Throws an error of `kind` saying which `what` ("table name in model.tsm", ...) is refused and
// why, when path_component_problem(name) is not empty.
void require_path_component(const std::string& name, const std::string& what, ErrorKind kind);

}  // namespace tessera
