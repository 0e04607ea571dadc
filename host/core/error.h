#pragma once
// One error family for the whole engine. Library code throws these; only main() turns them into
// exit codes. Every error carries the place it was raised (file:line of the source) and, where it
// is about user input, the input's own place (file, line, column/field) in its message.
#include <sstream>
#include <stdexcept>
#include <string>

namespace tessera {

enum class ErrorKind { Config, Data, Io, Backend, Shape, Usage, Internal };

const char* error_kind_name(ErrorKind kind);  // "config error", "I/O error", ...
// One word for scripts (the "kind" of `--json` error objects): "config", "data", "io", "backend",
// "shape", "usage", "internal".
const char* error_kind_id(ErrorKind kind);

// Where in the user's input an error is, when it is about one place of one file (a config's
// value, a data file's row): what `tessera ... --json` reports beside the message.
struct ErrorLocation {
  std::string file;
  int64_t line = 0;       // 1-based; 0: not known
  int64_t column = 0;     // 1-based; 0: not known
  std::string json_path;  // "$.train.epochs" for a config value; "" otherwise
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Error(ErrorKind kind, const std::string& message, ErrorLocation at)
      : std::runtime_error(message), kind_(kind), at_(std::move(at)) {}
  ErrorKind kind() const { return kind_; }
  const ErrorLocation& location() const { return at_; }

 private:
  ErrorKind kind_;
  ErrorLocation at_;
};

// Builds a message from stream-able parts: TESSERA_THROW(Data, "bad value '" << v << "'").
#define TESSERA_THROW(kind, parts)                                          \
  do {                                                                      \
    std::ostringstream tessera_msg_;                                        \
    tessera_msg_ << parts;                                                  \
    throw ::tessera::Error(::tessera::ErrorKind::kind, tessera_msg_.str()); \
  } while (0)

// Internal invariants and argument checks at public edges.
#define TESSERA_CHECK(cond, parts)                                                                 \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      TESSERA_THROW(                                                                               \
          Shape, parts << " [check '" #cond "' failed at " << __FILE__ << ":" << __LINE__ << "]"); \
    }                                                                                              \
  } while (0)

}  // namespace tessera
