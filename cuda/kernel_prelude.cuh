#pragma once
// Included first by every kernel file (cuda/kernels/*.cu). Kernel files hold kernels and their
// launchers only, never #ifdef for emulation: this prelude supplies the CUDA language.
//   - nvcc: the real CUDA runtime.
//   - TESSERA_CUDA_EMULATION (set by the build, never in kernel sources): the same source is
//     compiled by g++ as host C++, and cuda/emu/ supplies gridDim/blockDim/blockIdx/threadIdx,
//     __shared__, __syncthreads, warp primitives, atomics and the launcher twin.
#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#define TESSERA_DYNAMIC_SHARED(type, name) type* name = ::tessera::emu::dynamic_shared<type>()
#else
#include <cuda_runtime.h>
#define TESSERA_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#include "host/core/hd.h"
#include "host/core/math.h"
