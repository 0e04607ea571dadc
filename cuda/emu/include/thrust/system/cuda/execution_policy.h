#pragma once
// Stand-in for Thrust's CUDA execution policy in the emulation build: thrust::cuda::par runs an
// algorithm on the default stream, par.on(stream) on `stream` (the spelling tessera uses, e.g.
// thrust::sequence(thrust::cuda::par.on(stream), ...)). thrust::cuda and thrust::system::cuda
// name the same namespace, as in Thrust.
#include <thrust/execution_policy.h>

namespace thrust {
namespace cuda_cub {

struct execute_on_stream : thrust::execution_policy<execute_on_stream> {
  explicit execute_on_stream(cudaStream_t s) { this->stream = s; }
};

struct par_t : thrust::execution_policy<par_t> {
  execute_on_stream on(cudaStream_t s) const { return execute_on_stream(s); }
};

inline constexpr par_t par{};

}  // namespace cuda_cub

namespace cuda = cuda_cub;
namespace system {
namespace cuda = thrust::cuda_cub;
}  // namespace system

}  // namespace thrust
