#pragma once
// One error-check family for every CUDA library (the HugeCTR core23 pattern): an overload of
// check_status per status type, and one macro that records the expression, file and line.
//
//   TESSERA_CUDA_CHECK(cudaMemcpyAsync(...));   // cudaError_t
//   TESSERA_CUDA_CHECK(cublasSgemm_64(...));    // cublasStatus_t
//
// A failure throws tessera::Error(ErrorKind::Backend) with
//   "<expr> failed at <file>:<line>: <library's error name>: <library's error string>".
// Library code throws; only main() turns errors into exit codes. Destructors must not use this
// macro (they log instead, see log_status below).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <curand.h>

#include <cstdio>
#include <string>

#include "host/core/error.h"

#if __has_include(<nccl.h>)
#include <nccl.h>
#define TESSERA_CUDA_HAVE_NCCL_HEADER 1
#else
#define TESSERA_CUDA_HAVE_NCCL_HEADER 0
#endif

namespace tessera::cuda {

[[noreturn]] inline void throw_status(const char* library_message, const char* expr,
                                      const char* file, int line) {
  TESSERA_THROW(Backend, expr << " failed at " << file << ":" << line << ": " << library_message);
}

inline std::string describe_status(cudaError_t s) {
  return std::string(cudaGetErrorName(s)) + ": " + cudaGetErrorString(s);
}

inline const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cublasStatus_t";
  }
}
inline std::string describe_status(cublasStatus_t s) {
  return std::string(cublas_status_name(s)) + " (" + std::to_string(static_cast<int>(s)) + ")";
}

inline std::string describe_status(cudnnStatus_t s) {
  return std::string(cudnnGetErrorString(s)) + " (" + std::to_string(static_cast<int>(s)) + ")";
}

// cuRAND has no error-string function of its own.
inline const char* curand_status_name(curandStatus_t s) {
  switch (s) {
    case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
    case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH (header and library versions differ)";
    case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED (generator not initialized)";
    case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED (memory allocation failed)";
    case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR (generator is wrong type)";
    case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE (argument out of range)";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE (length not a multiple of dimension)";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED (GPU lacks double precision)";
    case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE (kernel launch failure)";
    case CURAND_STATUS_PREEXISTING_FAILURE: return "CURAND_STATUS_PREEXISTING_FAILURE (preexisting failure on library entry)";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED (initialization of CUDA failed)";
    case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH (architecture mismatch)";
    case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR (internal library error)";
    default: return "unknown curandStatus_t";
  }
}
inline std::string describe_status(curandStatus_t s) { return curand_status_name(s); }

#if TESSERA_CUDA_HAVE_NCCL_HEADER
inline std::string describe_status(ncclResult_t s) {
  return std::string(ncclGetErrorString(s)) + " (" + std::to_string(static_cast<int>(s)) + ")";
}
#endif

// The overload set the macro dispatches to: success is each library's zero value.
inline void check_status(cudaError_t s, const char* expr, const char* file, int line) {
  if (s == cudaSuccess) return;
  // Clear a non-sticky error so the next, unrelated check does not report it again.
  (void)cudaGetLastError();
  throw_status(describe_status(s).c_str(), expr, file, line);
}
inline void check_status(cublasStatus_t s, const char* expr, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throw_status(describe_status(s).c_str(), expr, file, line);
}
inline void check_status(cudnnStatus_t s, const char* expr, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS) throw_status(describe_status(s).c_str(), expr, file, line);
}
inline void check_status(curandStatus_t s, const char* expr, const char* file, int line) {
  if (s != CURAND_STATUS_SUCCESS) throw_status(describe_status(s).c_str(), expr, file, line);
}
#if TESSERA_CUDA_HAVE_NCCL_HEADER
inline void check_status(ncclResult_t s, const char* expr, const char* file, int line) {
  if (s != ncclSuccess) throw_status(describe_status(s).c_str(), expr, file, line);
}
#endif

// For destructors and other noexcept paths: report to stderr, never throw.
template <typename Status>
void log_status(Status s, Status success, const char* expr, const char* file, int line) noexcept {
  if (s == success) return;
  try {
    std::fprintf(stderr, "tessera: %s failed at %s:%d: %s (ignored in a destructor)\n", expr, file,
                 line, describe_status(s).c_str());
  } catch (...) {
    std::fprintf(stderr, "tessera: %s failed at %s:%d\n", expr, file, line);
  }
}

}  // namespace tessera::cuda

#define TESSERA_CUDA_CHECK(expr) ::tessera::cuda::check_status((expr), #expr, __FILE__, __LINE__)
