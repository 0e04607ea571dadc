#pragma once
// train.on_nonfinite, the one config field every task's train section shares for divergence
// (host/model/divergence.h says what each value does):
//   "stop"        (default) a NaN or Inf in the loss or a gradient stops training at that step
//   "skip_batch"  such a batch is dropped before it changes any weight, and counted
// A train section declares it with config::on_nonfinite_field (host/config/sections.h).
#include <cstdint>

#include "host/config/json_reader.h"

namespace tessera {

enum class NonFinitePolicy : uint8_t { Stop, SkipBatch };

inline constexpr const char* kOnNonFiniteKey = "on_nonfinite";

inline const json::Choices<NonFinitePolicy>& nonfinite_policy_choices() {
  static const json::Choices<NonFinitePolicy> choices = {
      {"stop", NonFinitePolicy::Stop}, {"skip_batch", NonFinitePolicy::SkipBatch}};
  return choices;
}

}  // namespace tessera
