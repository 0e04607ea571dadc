#pragma once
// One error family for the whole engine. Library code throws these; only main() turns them into
// exit codes. Every error carries the place it was raised (file:line of the source) and, where it
// is about user input, the input's own place (file, line, column/field) in its message.
#include <sstream>
#include <stdexcept>
#include <string>

namespace tessera {

enum class ErrorKind { Config, Data, Io, Backend, Shape, Usage, Internal };

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Builds a message from stream-able parts: TESSERA_THROW(Data, "bad value '" << v << "'").
#define TESSERA_THROW(kind, parts)                                   \
  do {                                                               \
    std::ostringstream tessera_msg_;                                 \
    tessera_msg_ << parts;                                           \
    throw ::tessera::Error(::tessera::ErrorKind::kind, tessera_msg_.str()); \
  } while (0)

// Internal invariants and argument checks at public edges.
#define TESSERA_CHECK(cond, parts)                                                     \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      TESSERA_THROW(Shape, parts << " [check '" #cond "' failed at " << __FILE__ << ":" \
                                 << __LINE__ << "]");                                  \
    }                                                                                  \
  } while (0)

}  // namespace tessera
