#pragma once
// The entry points every task config's .cpp would otherwise write out again over declare.h's
// templates. Each macro defines functions with the names and signatures the task's header
// declares, so callers see ordinary functions; the macros only end the copying of their bodies.
// Use them inside the namespace the header declares the functions in.
#include <string>

#include "host/config/declare.h"

// Defines a config T's reader, file loader, writer and equality:
//   T PARSE(const std::string& text, const std::string& source_path);  // every error at once
//   T LOAD(const std::string& path);          // PARSE of READ_TEXT(path), errors naming path
//   std::string to_json(const T& c);          // the resolved config, pretty, newline-ended
//   bool operator==(const T& a, const T& b);  // equal identities (config::same_config)
// Followed by a semicolon.
#define TESSERA_CONFIG_IO(T, PARSE, LOAD, READ_TEXT)                 \
  T PARSE(const std::string& text, const std::string& source_path) { \
    return ::tessera::config::read_config<T>(text, source_path);     \
  }                                                                  \
  T LOAD(const std::string& path) {                                  \
    return PARSE(READ_TEXT(path), path);                             \
  }                                                                  \
  std::string to_json(const T& c) {                                  \
    return ::tessera::config::write_config(c);                       \
  }                                                                  \
  bool operator==(const T& a, const T& b) {                          \
    return ::tessera::config::same_config(a, b);                     \
  }                                                                  \
  static_assert(true, "")

// Declares, in the task's header, what TESSERA_CONFIG_IO defines, and operator!= as the negation of
// operator==. Followed by a semicolon.
#define TESSERA_DECLARE_CONFIG_IO(T, PARSE, LOAD)                   \
  T PARSE(const std::string& text, const std::string& source_path); \
  T LOAD(const std::string& path);                                  \
  std::string to_json(const T& c);                                  \
  bool operator==(const T& a, const T& b);                          \
  inline bool operator!=(const T& a, const T& b) {                  \
    return !(a == b);                                               \
  }                                                                 \
  static_assert(true, "")

// Defines `tessera config TASK --example` and `--schema` for a config:
//   std::string EXAMPLE();  // HEADER as comment lines, then every field with SETTINGS' values
//   std::string SCHEMA();   // JSON Schema titled TASK, with DEFAULTS' values as the defaults
// SETTINGS and DEFAULTS are expressions giving a config (T{} for the plain defaults). Followed by
// a semicolon.
#define TESSERA_CONFIG_DOCS(EXAMPLE, SCHEMA, TASK, HEADER, SETTINGS, DEFAULTS) \
  std::string EXAMPLE() {                                                      \
    return ::tessera::config::example_config(HEADER, SETTINGS);                \
  }                                                                            \
  std::string SCHEMA() {                                                       \
    return ::tessera::config::schema_config(TASK, DEFAULTS);                   \
  }                                                                            \
  static_assert(true, "")
