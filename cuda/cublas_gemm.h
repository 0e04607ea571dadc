#pragma once
// cuBLAS in its own file (vendor-library code lives apart from the kernels): an RAII handle and
// the row-major GEMM the Backend asks for.
#include <cublas_v2.h>

#include <cstdint>
#include <memory>

#include "host/backend/backend.h"

namespace tessera::cuda {

struct CublasHandleDeleter {
  void operator()(cublasContext* handle) const noexcept;  // cublasDestroy, logged on failure
};
using CublasHandle = std::unique_ptr<cublasContext, CublasHandleDeleter>;

// A handle bound to `stream` for the current device. Pointer mode host (alpha and beta are host
// scalars), default math mode: strict FP32, no TF32, so results stay close to the host backend.
CublasHandle make_cublas_handle(cudaStream_t stream);

// Row-major C [m, n] = alpha * op(A) * op(B) + beta * C, with op(A) [m, k], op(B) [k, n] and
// leading dimensions (row strides) lda, ldb, ldc, as Backend::gemm_impl receives them.
// K = 0 gives C = beta * C (C = 0 when beta == 0). Queued on the handle's stream.
void gemm_row_major(cublasHandle_t handle, cudaStream_t stream, Transpose ta, Transpose tb,
                    int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace tessera::cuda
