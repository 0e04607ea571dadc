#pragma once
// The single kernel launcher (the FBGEMM kernel_launcher pattern). Every kernel launch in tessera
// goes through TESSERA_LAUNCH, which
//   - validates the configuration (block threads in [1, 1024], grid dims > 0 and within the
//     device limits) and shared memory: static + dynamic over 48 KiB opts the kernel in
//     (cudaFuncSetAttribute) after checking the sum against the device's opt-in limit
//     (cuda/launch_checks.h, which the emulation twin runs too),
//   - launches on the explicit stream,
//   - checks cudaGetLastError() and throws Error(Backend) naming the kernel and configuration,
//   - with TESSERA_CUDA_SYNC=1 in the environment, synchronizes the stream after the launch and
//     checks again, so an asynchronous fault is reported at the kernel that caused it.
//
// In the emulation build (TESSERA_CUDA_EMULATION) cuda/emu/launch_emu.h provides
// tessera::cuda::launch_kernel with the same signature, running the kernel on the CPU.
#include <cstdint>

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/launch_emu.h"
#else
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "cuda/cuda_check.h"
#include "cuda/launch_checks.h"

namespace tessera::cuda {

namespace detail {

// Read once per process: TESSERA_CUDA_SYNC=1 makes every launch synchronous (debugging).
inline bool sync_after_launch() {
  static const bool enabled = [] {
    const char* v = std::getenv("TESSERA_CUDA_SYNC");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return enabled;
}

}  // namespace detail

template <typename... P, typename... A>
void launch_kernel(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem,
                   cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch_kernel: wrong number of kernel arguments");
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || threads > 1024 || block.z > 64)
    detail::throw_launch_error(name, grid, block, smem,
                               "block must have 1..1024 threads (z <= 64)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535u ||
      grid.z > 65535u)
    detail::throw_launch_error(name, grid, block, smem,
                               "grid dims must be > 0 (x < 2^31, y and z <= 65535)");
  detail::opt_in_shared_memory(name, reinterpret_cast<const void*>(kernel), grid, block, smem);
  kernel<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
  cudaError_t st = cudaGetLastError();
  if (st != cudaSuccess)
    detail::throw_launch_error(name, grid, block, smem, "launch failed: " + describe_status(st));
  if (detail::sync_after_launch()) {
    st = cudaStreamSynchronize(stream);
    if (st != cudaSuccess) {
      (void)cudaGetLastError();
      detail::throw_launch_error(
          name, grid, block, smem,
          "failed during execution (TESSERA_CUDA_SYNC=1): " + describe_status(st));
    }
  }
}

}  // namespace tessera::cuda
#endif  // TESSERA_CUDA_EMULATION

namespace tessera::cuda {

// Threads per block for the element-wise (grid-stride) kernels.
constexpr unsigned kElementwiseBlock = 256;
// Cap on grid.x for grid-stride kernels: enough blocks to fill any current GPU many times over;
// larger problems loop inside the kernel (64-bit indices).
constexpr int64_t kMaxGridStrideBlocks = int64_t{1} << 20;

// Blocks for a grid-stride loop over n items with `block` threads each (at least 1).
inline unsigned grid_stride_blocks(int64_t n, unsigned block = kElementwiseBlock) {
  int64_t blocks = (n + block - 1) / block;
  if (blocks < 1) blocks = 1;
  if (blocks > kMaxGridStrideBlocks) blocks = kMaxGridStrideBlocks;
  return static_cast<unsigned>(blocks);
}

}  // namespace tessera::cuda

// Launch `kernel` through the one launcher; the kernel's name goes into every error.
#define TESSERA_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::tessera::cuda::launch_kernel(#kernel, kernel, grid, block, smem, stream, __VA_ARGS__)
