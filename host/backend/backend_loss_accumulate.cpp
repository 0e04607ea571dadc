// Edge checks of Backend::loss_accumulate (backend.h: the Trainer's loss accumulator).
#include <cmath>

#include "host/backend/backend.h"

namespace tessera {

void Backend::loss_accumulate(const Tensor& loss, float step, Tensor& acc) {
  check_here(loss, "loss_accumulate loss");
  check_here(acc, "loss_accumulate accumulator");
  TESSERA_CHECK(loss.dtype() == DType::F32 && loss.rank() == 1,
                "loss_accumulate: the losses must be f32 [N], got " << loss.describe());
  TESSERA_CHECK(acc.dtype() == DType::F32 && acc.rank() == 1 && acc.dim(0) == 3,
                "loss_accumulate: the accumulator must be f32 [3], got " << acc.describe());
  // Steps are 1-based (acc[2] == 0 means "no bad step yet") and exact in f32 below 2^24.
  TESSERA_CHECK(step >= 1.f && step < 16777216.f && std::floor(step) == step,
                "loss_accumulate: step " << step << " is not a whole number in [1, 2^24)");
  if (loss.numel() == 0) return;
  loss_accumulate_impl(loss, step, acc);
}

}  // namespace tessera
