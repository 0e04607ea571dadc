#include "host/core/path_name.h"

#include <cctype>

namespace tessera {

std::string path_component_problem(const std::string& name) {
  if (name.empty()) return "it is empty";
  if (name == "." || name == "..") return "'" + name + "' names a directory itself";
  if (name.size() > 255) return "it is longer than 255 bytes";
  for (unsigned char c : name) {
    if (c == '/' || c == '\\') return "it holds a path separator";
    if (c < 0x20 || c == 0x7f) return "it holds a control character";
  }
  return "";
}

bool is_valid_run_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name == "." || name == "..") return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

void require_path_component(const std::string& name, const std::string& what, ErrorKind kind) {
  const std::string why = path_component_problem(name);
  if (why.empty()) return;
  std::string shown;  // control characters shown as \xNN, never written to the terminal raw
  for (unsigned char c : name.substr(0, 80)) {
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      shown += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    } else {
      shown += static_cast<char>(c);
    }
  }
  throw Error(kind, what + " '" + shown + "' cannot be a file or directory name: " + why);
}

}  // namespace tessera
