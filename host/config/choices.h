#pragma once
// A choice table declared once. Use it inside the namespace that declares the table's function.
#include "host/config/json_reader.h"

// Defines `const json::Choices<E>& NAME()`: the spellings of an enum-like field, listed once and
// shared by its reader, writer, example and schema (the first spelling of a value is the one
// written). The table is built on the first call. Followed by a semicolon:
//   TESSERA_CHOICES(loss_choices, Loss, {"bce", Loss::Bce}, {"bpr", Loss::Bpr});
#define TESSERA_CHOICES(NAME, E, ...)                               \
  const ::tessera::json::Choices<E>& NAME() {                       \
    static const ::tessera::json::Choices<E> table = {__VA_ARGS__}; \
    return table;                                                   \
  }                                                                 \
  static_assert(true, "")
