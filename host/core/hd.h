#pragma once
// TESSERA_HD marks functions shared by the host backend (g++) and the CUDA kernels (nvcc), so the
// same arithmetic is compiled and tested on the CPU.
#if defined(__CUDACC__)
#define TESSERA_HD __host__ __device__ inline
#else
#define TESSERA_HD inline
#endif
