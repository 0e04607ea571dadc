#pragma once
// The launch-configuration checks of the one kernel launcher (cuda/launch.cuh), shared by the CUDA
// launcher and its emulation twin (cuda/emu/launch_emu.h), so the emulation build runs the same
// code against the emulated runtime.
//
// Shared memory: a block gets the kernel's static shared memory (its __shared__ arrays,
// cudaFuncGetAttributes' sharedSizeBytes) plus the launch's dynamic shared memory. Without an
// opt-in the two together must fit 48 KiB; above that the kernel must first raise
// cudaFuncAttributeMaxDynamicSharedMemorySize to the dynamic size, and static + dynamic must fit
// the device's opt-in limit (cudaDevAttrMaxSharedMemoryPerBlockOptin, 227 KiB on sm_90).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

#include "host/core/error.h"

namespace tessera::cuda::detail {

// Shared memory a block may use without the opt-in attribute.
constexpr size_t kDefaultSharedLimit = 48 * 1024;

[[noreturn]] inline void throw_launch_error(const char* name, dim3 grid, dim3 block, size_t smem,
                                            const std::string& why) {
  TESSERA_THROW(Backend, "CUDA kernel '" << name << "' (grid [" << grid.x << ", " << grid.y << ", "
                                         << grid.z << "], block [" << block.x << ", " << block.y
                                         << ", " << block.z << "], dynamic smem " << smem
                                         << " B): " << why);
}

inline void check_launch_call(cudaError_t st, const char* call, const char* name, dim3 grid,
                              dim3 block, size_t smem) {
  if (st == cudaSuccess) return;
  (void)cudaGetLastError();
  throw_launch_error(
      name, grid, block, smem,
      std::string(call) + " failed: " + cudaGetErrorName(st) + ": " + cudaGetErrorString(st));
}

// Raises the kernel's dynamic shared-memory limit when static + dynamic exceed 48 KiB, after
// checking that they fit the device's opt-in limit (Error(Backend) naming both sizes if not).
inline void opt_in_shared_memory(const char* name, const void* kernel, dim3 grid, dim3 block,
                                 size_t smem) {
  if (smem == 0) return;  // static shared memory alone fits: the compiler enforces 48 KiB
  cudaFuncAttributes attributes{};
  check_launch_call(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes", name, grid,
                    block, smem);
  const size_t static_bytes = attributes.sharedSizeBytes;
  if (static_bytes + smem <= kDefaultSharedLimit) return;
  int device = 0, optin = 0;
  check_launch_call(cudaGetDevice(&device), "cudaGetDevice", name, grid, block, smem);
  check_launch_call(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
                    "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)", name, grid, block,
                    smem);
  if (static_bytes + smem > static_cast<size_t>(optin))
    throw_launch_error(name, grid, block, smem,
                       std::to_string(static_bytes) + " B of static and " + std::to_string(smem) +
                           " B of dynamic shared memory exceed the device's per-block limit of " +
                           std::to_string(optin) + " B");
  check_launch_call(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem)),
                    "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)", name, grid, block, smem);
}

}  // namespace tessera::cuda::detail
