#pragma once
// Stand-in for NCCL's header in the emulation build. tessera calls no NCCL function; only
// cuda/cuda_check.h names the result type (when <nccl.h> is found) to describe a failed call.
// Without this header, a machine with the CUDA toolkit's headers on the default include path
// (e.g. /usr/local/include) would hand the emulation build the real nccl.h and, through it, the
// real CUDA runtime headers, which clash with the emulator's. Values are the library's.
enum ncclResult_t : int {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8,
};

// A short description of `result`, as the library's function gives one.
inline const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error";
    case ncclSystemError:
      return "unhandled system error";
    case ncclInternalError:
      return "internal error";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
    default:
      return "unknown result code";
  }
}
