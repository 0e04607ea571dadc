#pragma once
// Stand-in for Thrust's execution policies in the emulation build: the base every policy derives
// from, carrying the stream its algorithms queue work on (nullptr: the default stream). The CUDA
// policies tessera uses (thrust::cuda::par, .on(stream)) are in thrust/system/cuda/.
#include "cuda/emu/runtime_api.h"

namespace thrust {
namespace detail {

template <typename DerivedPolicy>
struct execution_policy_base {
  cudaStream_t stream = nullptr;
  // thrust::cuda::par: the algorithm synchronizes its stream before it returns (Thrust's
  // documented behaviour); thrust::cuda::par_nosync: it need not.
  bool synchronizes = true;
};

}  // namespace detail

template <typename DerivedPolicy>
struct execution_policy : detail::execution_policy_base<DerivedPolicy> {};

}  // namespace thrust
