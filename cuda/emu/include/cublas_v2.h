#pragma once
// Stand-in for cuBLAS in the emulation build (cuda/emu/README.md, "Stand-ins: cuBLAS, CUB").
// Declares only what tessera calls (cuda/cublas_gemm.*, cuda/cuda_check.h): the handle, its
// stream, pointer and math modes, the status names and the 64-bit SGEMM. Enumerator values are
// the library's, so code that prints or compares them behaves as with the real header.
// Implemented in cuda/emu/standins/cublas.cpp: every call checks the argument rules that the
// cuBLAS documentation states, returns the vendor's status when one is broken (queuing nothing),
// and queues the computation on the handle's stream.
#include <cstdint>

#include "cuda/emu/runtime_api.h"

// The opaque context a handle points to (defined by the stand-in).
struct cublasContext;
using cublasHandle_t = cublasContext*;

enum cublasStatus_t : int {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};

// What happens to a matrix operand: N as is, T transposed, C conjugate-transposed (the same as T
// for real types). CONJG is a placeholder the library does not support.
enum cublasOperation_t : int {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_OP_C = 2,
  CUBLAS_OP_HERMITAN = 2,
  CUBLAS_OP_CONJG = 3,
};

// Where alpha and beta live: host memory (read at the call) or device memory (read when the
// queued work runs).
enum cublasPointerMode_t : int {
  CUBLAS_POINTER_MODE_HOST = 0,
  CUBLAS_POINTER_MODE_DEVICE = 1,
};

// The math modes the library accepts; the stand-in always computes in FP32, and records the mode
// for the report.
enum cublasMath_t : int {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
  CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
};

cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);

// Column-major C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C, with leading
// dimensions lda, ldb, ldc; beta == 0 means C is not read. 64-bit sizes.
cublasStatus_t cublasSgemm_64(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, int64_t m, int64_t n, int64_t k,
                              const float* alpha, const float* A, int64_t lda, const float* B,
                              int64_t ldb, const float* beta, float* C, int64_t ldc);
