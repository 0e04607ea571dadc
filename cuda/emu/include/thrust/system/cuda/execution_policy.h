#pragma once
// Stand-in for Thrust's CUDA execution policies in the emulation build: thrust::cuda::par runs an
// algorithm on the default stream, par.on(stream) on `stream`, and waits for that stream before
// returning, as Thrust does; thrust::cuda::par_nosync(.on(stream)) does not wait (the spelling
// tessera uses: thrust::sequence(thrust::cuda::par_nosync.on(stream), ...)). thrust::cuda and
// thrust::system::cuda name the same namespace, as in Thrust.
#include <thrust/execution_policy.h>

namespace thrust {
namespace cuda_cub {

struct execute_on_stream : thrust::execution_policy<execute_on_stream> {
  execute_on_stream(cudaStream_t s, bool sync) {
    this->stream = s;
    this->synchronizes = sync;
  }
};

struct par_t : thrust::execution_policy<par_t> {
  execute_on_stream on(cudaStream_t s) const { return execute_on_stream(s, true); }
};

struct par_nosync_t : thrust::execution_policy<par_nosync_t> {
  par_nosync_t() { this->synchronizes = false; }
  execute_on_stream on(cudaStream_t s) const { return execute_on_stream(s, false); }
};

inline const par_t par{};
inline const par_nosync_t par_nosync{};

}  // namespace cuda_cub

namespace cuda = cuda_cub;
namespace system {
namespace cuda = thrust::cuda_cub;
}  // namespace system

}  // namespace thrust
