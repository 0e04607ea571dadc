#pragma once
// The message of the tessera::Error a call throws, checked to be of the kind expected; "" and a
// test failure when the call throws nothing.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "host/core/error.h"

namespace tessera::test {

inline std::string error_of_kind(ErrorKind kind, const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

}  // namespace tessera::test
