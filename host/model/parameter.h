#pragma once
// A trainable tensor with its gradient and optimizer state, all on the model's backend.
#include <string>
#include <vector>

#include "host/backend/backend.h"

namespace tessera {

struct Parameter {
  std::string name;
  Tensor value;
  Tensor grad;
  Tensor state1;  // Adam m / SGD velocity
  Tensor state2;  // Adam v
};

}  // namespace tessera
