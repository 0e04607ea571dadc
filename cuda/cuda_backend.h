#pragma once
// The CUDA backend: every Backend op on one GPU, queued on the backend's own stream.
//   - Custom kernels (cuda/kernels/, one op per file) for element-wise and per-row ops, cuBLAS
//     for GEMM (cuda/cublas_gemm.*). Element-wise math is host/core/math.h, shared with the host
//     backend, which is the specification this backend is tested against.
//   - Ops are asynchronous: they return once queued. Copies to pageable host memory and
//     synchronize() wait for the stream; a copy to or from page-locked host memory (a
//     PinnedBuffer, cuda/pinned_stager.h) does not: the caller synchronizes before it reads,
//     changes or frees that memory.
//   - Bad input (embedding ids, class labels) is checked on the device without waiting and
//     raised later (cuda/deferred_checks.h; the contract: Backend::check_deferred).
//   - Device memory comes from a stream-ordered caching allocator (cuda/device_allocator.h):
//     no cudaMalloc or cudaFree once a training step's shapes have been seen.
//   - Not thread-safe: use one backend per host thread (it owns one stream and one cuBLAS handle).
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "cuda/cublas_gemm.h"
#include "cuda/deferred_checks.h"
#include "cuda/device_allocator.h"
#include "cuda/device_buffer.h"
#include "host/backend/backend.h"

namespace tessera {

namespace cuda {

class CudnnOps;   // cuda/cudnn_ops.h
class CudnnLstm;  // cuda/cudnn_lstm.h

struct StreamDeleter {
  void operator()(CUstream_st* stream) const noexcept;  // cudaStreamDestroy, logged on failure
};
using StreamHandle = std::unique_ptr<CUstream_st, StreamDeleter>;

class CudaBackend final : public Backend {
 public:
  // Uses device `device_index` (must exist: see cuda_backend::create, which checks).
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;  // "cuda:N (device name)"
  Device device() const override { return Device{DeviceKind::Cuda, device_index_}; }
  void synchronize() override;     // waits for the stream, then raises deferred checks
  void check_deferred() override;  // waits for the pending checks only, then raises
  std::optional<DeviceMemoryStats> memory_stats() const override;  // the caching allocator's
  // cudaMemGetInfo's free bytes plus what the allocator caches (free for this backend's tensors).
  int64_t available_memory_bytes() const override;

  cudaStream_t stream() const { return stream_.get(); }
  // Device memory for work on this backend's stream, from its caching allocator (what
  // Backend::empty uses, without the zeroing): for temporaries and workspaces of CUDA code that
  // queues on stream().
  std::shared_ptr<DeviceBuffer> device_buffer(size_t bytes);
  // The backend's deferred input checks, for CUDA code beside the ops that checks its input the
  // same way (the embedding-bag resolve, embeddings/device_bag_ops.cpp): what it queues is raised
  // by check_deferred(), synchronize() and copies to pageable host memory like the ops' checks.
  DeferredChecks& deferred_checks() { return *checks_; }
  // Work queued on this backend from now on runs after everything queued so far on `other` (a
  // CUDA backend on any device): an event of `other`'s, recorded again at each call, that this
  // stream waits for on the device. The host waits for nothing. (Sharded embeddings order the
  // model's stream and the shards' with it.)
  void wait_for(CudaBackend& other);

 protected:
  // Pinned host slots and a copy stream (cuda/pinned_stager.cpp).
  std::unique_ptr<StagingEngine> make_staging_engine_impl(
      int slots, const std::vector<StagedTensorSpec>& specs) override;
  // The ops (host/backend/backend_ops.h): custom kernels (cuda/kernels/, among them the DLRM dot
  // interaction and the log-mel front end) and cuBLAS, launched from cuda_backend.cpp; the LSTM
  // through cuDNN's RNN API (cuda/cudnn_lstm.cpp); convolution, pooling and batch normalisation
  // through cuDNN (cuda/cudnn_conv.cpp, cuda/cudnn_pool_bn.cpp).
  TESSERA_BACKEND_OPS(TESSERA_BACKEND_OVERRIDE_IMPL)

 private:
  // Queues the check of every id against [0, rows) (deferred: cuda/deferred_checks.h), after
  // raising any failed earlier check that has completed.
  void check_embedding_ids(CheckedOp op, const Tensor& ids, int64_t rows);

  int device_index_;
  std::string device_name_;
  // Destruction order matters: the cuBLAS handle is bound to the stream, so it goes first.
  StreamHandle stream_;
  CublasHandle cublas_;
  // Closed (its cache released) by ~CudaBackend; tensors that outlive the backend keep it.
  std::shared_ptr<CachingAllocator> allocator_;
  std::unique_ptr<DeferredChecks> checks_;  // after the stream: destroyed before it
  EventHandle fence_;  // what wait_for records on this backend's stream; made on first use
  // cuDNN handle, convolution plans and workspace, made on first use (cuda/cudnn_ops.h). Declared
  // after the stream: destroyed before it.
  std::unique_ptr<CudnnOps> cudnn_;
  // The LSTM's own cuDNN handle, plans and workspace, made on first use (cuda/cudnn_lstm.h).
  std::unique_ptr<CudnnLstm> lstm_;
  CudnnOps& cudnn();
};

}  // namespace cuda

namespace cuda_backend {

// Number of usable CUDA devices. Never throws or crashes: on failure (no driver, a driver older
// than the runtime, no device) returns 0 and, if why_not is given, says why, e.g.
// "cudaGetDeviceCount failed: CUDA driver version is insufficient for CUDA runtime version
// (cudaErrorInsufficientDriver)".
int device_count(std::string* why_not);

// A backend on device `index`. Throws Error(Backend) when CUDA is unusable or index is not in
// [0, device_count).
std::unique_ptr<Backend> create(int index);

// The calling thread's current device (cudaGetDevice; 0 when it cannot say): what "cuda" and
// "auto" without an index mean, so a process that picked its GPU first (one GPU per MPI rank,
// cuda/nccl_group.h use_local_device) gets that one.
int current_device();

}  // namespace cuda_backend
}  // namespace tessera
