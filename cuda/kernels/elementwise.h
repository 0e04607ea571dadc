#pragma once
// Launchers of the element-wise arithmetic kernels (cuda/kernels/elementwise.cu), the CUDA side of
// Backend::mul_add and Backend::axpby. Same conventions as cuda/kernels/kernels.h: raw device
// pointers, 64-bit sizes, an explicit stream, nothing checked that the Backend edge checked.
// All arrays hold n floats; y may alias any input. beta == 0 never reads y.
#include <cstdint>

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace tessera::cuda {

// y[i] = a[i] * b[i] + beta * y[i].
void launch_mul_add(const float* a, const float* b, float beta, float* y, int64_t n,
                    cudaStream_t stream);
// y[i] = alpha * x[i] + beta * y[i].
void launch_axpby(float alpha, const float* x, float beta, float* y, int64_t n,
                  cudaStream_t stream);

}  // namespace tessera::cuda
