#include "cuda/cublas_gemm.h"

#include "cuda/cuda_check.h"
#include "cuda/kernels/kernels.h"

namespace tessera::cuda {

void CublasHandleDeleter::operator()(cublasContext* handle) const noexcept {
  if (handle) log_status(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS, "cublasDestroy", __FILE__, __LINE__);
}

CublasHandle make_cublas_handle(cudaStream_t stream) {
  cublasHandle_t raw = nullptr;
  TESSERA_CUDA_CHECK(cublasCreate(&raw));
  CublasHandle handle(raw);
  TESSERA_CUDA_CHECK(cublasSetStream(raw, stream));
  TESSERA_CUDA_CHECK(cublasSetPointerMode(raw, CUBLAS_POINTER_MODE_HOST));
  TESSERA_CUDA_CHECK(cublasSetMathMode(raw, CUBLAS_DEFAULT_MATH));
  return handle;
}

void gemm_row_major(cublasHandle_t handle, cudaStream_t stream, Transpose ta, Transpose tb,
                    int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // No products: C = beta * C. (The row-major A or B then has a zero leading dimension, which
    // cuBLAS rejects.) C is contiguous when ldc == n, as the Backend guarantees.
    TESSERA_CHECK(ldc == n, "gemm with K = 0 expects a contiguous C (ldc " << ldc << ", n " << n << ")");
    launch_scale(c, m * n, beta, stream);
    return;
  }
  // cuBLAS is column-major; a row-major [r, c] matrix with row stride ld is, to cuBLAS, its
  // transpose [c, r] with leading dimension ld. So compute C^T [n, m] = op(B)^T [n, k] op(A)^T
  // [k, m]: swap the operands and keep each one's transpose flag.
  const cublasOperation_t op_a = ta == Transpose::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb == Transpose::Yes ? CUBLAS_OP_T : CUBLAS_OP_N;
  TESSERA_CUDA_CHECK(cublasSgemm_64(handle, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c,
                                    ldc));
}

}  // namespace tessera::cuda
