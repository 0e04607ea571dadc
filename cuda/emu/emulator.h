#pragma once
// The CUDA language for g++: what cuda/kernel_prelude.cuh includes instead of cuda_runtime.h when
// the build defines TESSERA_CUDA_EMULATION. With it, a kernel file (cuda/kernels/<op>.cu) compiles
// as host C++ unchanged, and its launcher's TESSERA_LAUNCH runs the kernel on the CPU with CUDA
// semantics (cuda/emu/launch_emu.h). Kernel sources never test TESSERA_CUDA_EMULATION themselves.
//
// Execution qualifiers vanish; __shared__ becomes a block-wide static: all threads of a block are
// fibers on one OS thread, and one block runs at a time per OS thread, so `static thread_local`
// is exactly "one instance per running block". Like the device's, its contents are left over
// from the previous block. Dynamic shared memory comes from TESSERA_DYNAMIC_SHARED (the prelude)
// through tessera::emu::dynamic_shared<T>().
#if defined(__CUDACC__)
#error "cuda/emu/emulator.h is for the g++ emulation build; nvcc uses cuda_runtime.h"
#endif

// Standard headers that spell GNU attributes with CUDA's keyword names (shared_ptr_base.h uses
// __attribute__((__noinline__))) are included before those names become macros.
#include <memory>

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __shared__ static thread_local
// __restrict__ is a g++ keyword already.

#include "cuda/emu/device_functions.h"
#include "cuda/emu/runtime_api.h"
#include "cuda/emu/vector_types.h"
