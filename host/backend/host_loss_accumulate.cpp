// HostBackend::loss_accumulate: the losses summed in double in index order (as the tasks' steps
// summed them on the host before), added to acc[0] in double and rounded once.
#include <cmath>

#include "host/backend/host_backend.h"

namespace tessera {

void HostBackend::loss_accumulate_impl(const Tensor& loss, float step, Tensor& acc) {
  const float* l = loss.data<float>();
  const int64_t n = loss.numel();
  double sum = 0.0;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += l[i];
    bad += std::isfinite(l[i]) ? 0 : 1;
  }
  float* a = acc.data<float>();
  a[0] = static_cast<float>(static_cast<double>(a[0]) + sum);
  if (bad > 0) {
    a[1] = static_cast<float>(static_cast<double>(a[1]) + static_cast<double>(bad));
    if (a[2] == 0.f) a[2] = step;
  }
}

}  // namespace tessera
