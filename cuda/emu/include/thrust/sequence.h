#pragma once
// Stand-in for thrust::sequence in the emulation build, on raw device pointers with a Thrust
// execution policy (thrust/system/cuda/execution_policy.h): first[i] = init + i * step for i in
// [0, last - first), queued on the policy's stream. Rules checked (cuda/emu/standin.h): last >=
// first, [first, last) in device memory, and the policy's stream belongs to the current device.
// Thrust reports failures by throwing: a broken rule throws tessera::Error (Backend) naming it, and
// nothing is queued.
#include <cstddef>
#include <string>

#include <thrust/execution_policy.h>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cub_standin.h"

namespace thrust {

template <typename DerivedPolicy, typename T, typename U, typename S>
void sequence(const detail::execution_policy_base<DerivedPolicy>& exec, T* first, T* last, U init,
              S step) {
  namespace cs = tessera::emu::cub_standin;
  const char* e = "thrust::sequence";
  tessera::emu::record_call("Thrust", e);
  cs::thrust_require(e, "last >= first", last >= first,
                     "last - first = " + std::to_string(last - first));
  const std::ptrdiff_t n = last - first;
  cs::thrust_require(
      e, "[first, last) is device memory",
      n == 0 || tessera::emu::is_device_range(first, static_cast<size_t>(n) * sizeof(T)),
      std::to_string(n) + " elements");
  if (n == 0) return;
  cs::thrust_check_stream(e, exec.stream);
  const T t_init = static_cast<T>(init), t_step = static_cast<T>(step);
  tessera::emu::enqueue(exec.stream, e, [=] {
    cs::require_allocated(e, "first", first, static_cast<size_t>(n) * sizeof(T), "Thrust");
    for (std::ptrdiff_t i = 0; i < n; ++i)
      first[i] = static_cast<T>(t_init + static_cast<T>(i) * t_step);
  });
  // thrust::cuda::par waits for the stream before returning (a host synchronisation the runtime
  // counts); par_nosync does not.
  if (exec.synchronizes) {
    const cudaError_t st = cudaStreamSynchronize(exec.stream);
    cs::thrust_require(e, "the stream synchronizes without a failure", st == cudaSuccess,
                       cudaGetErrorName(st));
  }
}

template <typename DerivedPolicy, typename T, typename U>
void sequence(const detail::execution_policy_base<DerivedPolicy>& exec, T* first, T* last, U init) {
  sequence(exec, first, last, init, T(1));
}

template <typename DerivedPolicy, typename T>
void sequence(const detail::execution_policy_base<DerivedPolicy>& exec, T* first, T* last) {
  sequence(exec, first, last, T(0), T(1));
}

}  // namespace thrust
