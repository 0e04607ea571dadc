#include "cuda/cuda_backend.h"

#include <cstring>

#include "cuda/cuda_check.h"
#include "cuda/cudnn_lstm.h"
#include "cuda/cudnn_ops.h"  // CudnnOps is complete where ~CudaBackend is defined
#include "cuda/device_guard.h"
#include "cuda/kernels/kernels.h"
#include "host/backend/rows_cols.h"

namespace tessera {
namespace cuda {

namespace {
// Whether `p` is page-locked host memory (cudaHostAlloc or cudaHostRegister): the DMA engine
// reads and writes it directly, so a copy from or to it need not be waited for here.
bool is_pinned_host(const void* p) {
  cudaPointerAttributes attr{};
  const cudaError_t st = cudaPointerGetAttributes(&attr, p);
  if (st != cudaSuccess) {  // older runtimes: an error for ordinary host memory
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}
}  // namespace

void StreamDeleter::operator()(CUstream_st* stream) const noexcept {
  if (!stream) return;
  const cudaError_t st = cudaStreamDestroy(stream);
  if (st != cudaErrorCudartUnloading)
    log_status(st, cudaSuccess, "cudaStreamDestroy", __FILE__, __LINE__);
}

CudaBackend::CudaBackend(int device_index) : device_index_(device_index) {
  DeviceGuard guard(device_index_);
  cudaDeviceProp prop{};
  TESSERA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_index_));
  device_name_ = prop.name;
  cudaStream_t raw = nullptr;
  // Non-blocking: no implicit synchronization with the legacy default stream.
  TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking));
  stream_.reset(raw);
  cublas_ = make_cublas_handle(stream());
  allocator_ = make_device_allocator(device_index_);
  checks_ = std::make_unique<DeferredChecks>(device_index_, stream(),
                                             "cuda:" + std::to_string(device_index_));
}

CudaBackend::~CudaBackend() {
  // Let queued work finish before the stream and handle go (errors were reported by the ops
  // that caused them, or are reported here on stderr: destructors never throw).
  if (stream_)
    log_status(cudaStreamSynchronize(stream()), cudaSuccess, "cudaStreamSynchronize", __FILE__,
               __LINE__);
  // The whole cache goes back to the device; blocks still held by tensors go when they do.
  if (allocator_) allocator_->close();
}

std::string CudaBackend::name() const {
  return "cuda:" + std::to_string(device_index_) + " (" + device_name_ + ")";
}

void CudaBackend::synchronize() {
  DeviceGuard guard(device_index_);
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream()));
  checks_->drain();  // every check has landed: no further wait
}

void CudaBackend::check_deferred() {
  DeviceGuard guard(device_index_);
  checks_->drain();
}

void CudaBackend::wait_for(CudaBackend& other) {
  if (&other == this) return;  // one stream runs in order
  {
    DeviceGuard guard(other.device_index_);
    if (!other.fence_) other.fence_ = make_event();
    TESSERA_CUDA_CHECK(cudaEventRecord(other.fence_.get(), other.stream()));
  }
  DeviceGuard guard(device_index_);
  // Waits for the event as recorded now: recording it again later does not change this wait.
  TESSERA_CUDA_CHECK(cudaStreamWaitEvent(stream(), other.fence_.get(), 0));
}

std::optional<DeviceMemoryStats> CudaBackend::memory_stats() const {
  return allocator_->stats();
}

int64_t CudaBackend::available_memory_bytes() const {
  DeviceGuard guard(device_index_);
  size_t free_bytes = 0, total_bytes = 0;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(free_bytes + allocator_->cached_bytes());
}

std::shared_ptr<DeviceBuffer> CudaBackend::device_buffer(size_t bytes) {
  return std::make_shared<DeviceBuffer>(bytes, device_index_, allocator_, stream());
}

Tensor CudaBackend::empty_impl(const Shape& shape, DType dtype) {
  for (int64_t d : shape) TESSERA_CHECK(d >= 0, "negative dimension in " << shape_str(shape));
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto buffer = device_buffer(bytes);
  if (bytes) {
    // Zeroed on the stream, so the zeroing is ordered before every op this backend queues next.
    DeviceGuard guard(device_index_);
    TESSERA_CUDA_CHECK(cudaMemsetAsync(buffer->data(), 0, bytes, stream()));
  }
  return Tensor(std::move(buffer), shape, dtype);
}

void CudaBackend::copy_impl(const Tensor& src, Tensor& dst) {
  const size_t bytes = src.bytes();
  TESSERA_CHECK(bytes == dst.bytes(), "copy " << src.describe() << " -> " << dst.describe());
  if (bytes == 0) return;
  if (src.is_host() && dst.is_host()) {
    std::memmove(dst.raw(), src.raw(), bytes);
    return;
  }
  if (src.raw() == dst.raw()) return;
  DeviceGuard guard(device_index_);
  // cudaMemcpyDefault: with unified addressing the runtime knows which side each pointer is on
  // (host, this device, or a peer device).
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), bytes, cudaMemcpyDefault, stream()));
  const bool src_pageable = src.is_host() && !is_pinned_host(src.raw());
  const bool dst_pageable = dst.is_host() && !is_pinned_host(dst.raw());
  // A pageable host side keeps the wait: a copy to it is read by the caller as soon as we return
  // (to_host), and one from it must be done with the caller's memory before the caller changes
  // or frees it -- the runtime stages pageable sources without promising when, so the wait is
  // what makes "done when copy() returns" true. A page-locked side (PinnedBuffer) is read and
  // written by the DMA engine in stream order: the caller synchronizes before touching it.
  if (src_pageable || dst_pageable) {
    TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream()));
    checks_->drain();  // every check has landed: no further wait
  }
}

void CudaBackend::fill_impl(Tensor& t, float value) {
  DeviceGuard guard(device_index_);
  launch_fill(t.data<float>(), t.numel(), value, stream());
}

void CudaBackend::gemm_impl(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k,
                            float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                            float beta, float* c, int64_t ldc) {
  DeviceGuard guard(device_index_);
  gemm_row_major(cublas_.get(), stream(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void CudaBackend::bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                                        Tensor& y) {
  DeviceGuard guard(device_index_);
  const RowsCols rc = rows_cols(x);
  launch_bias_act_forward(act, x.data<float>(), bias.defined() ? bias.data<float>() : nullptr,
                          y.data<float>(), rc.rows, rc.cols, stream());
}

void CudaBackend::bias_act_backward_impl(Activation act, const Tensor& y, const Tensor& dy,
                                         Tensor& dx, Tensor& dbias) {
  DeviceGuard guard(device_index_);
  const RowsCols rc = rows_cols(y);
  launch_bias_act_backward(act, y.data<float>(), dy.data<float>(), dx.data<float>(),
                           dbias.defined() ? dbias.data<float>() : nullptr, rc.rows, rc.cols,
                           stream());
}

void CudaBackend::dropout_forward_impl(const DropoutParams& d, const Tensor& x, Tensor& y) {
  DeviceGuard guard(device_index_);
  const float scale = 1.f / (1.f - d.p);  // exactly the host backend's expression
  launch_dropout(d.seed, d.p, scale, x.data<float>(), y.data<float>(), x.numel(), stream());
}

void CudaBackend::dropout_backward_impl(const DropoutParams& d, const Tensor& dy, Tensor& dx) {
  dropout_forward_impl(d, dy, dx);  // the same mask and scale
}

void CudaBackend::check_embedding_ids(CheckedOp op, const Tensor& ids, int64_t rows) {
  checks_->queue(op, ids, rows, [&](unsigned long long* flag) {
    launch_embedding_check_ids(ids.data<int64_t>(), ids.numel(), rows, flag, stream());
  });
}

void CudaBackend::embedding_forward_impl(const Tensor& table, const Tensor& ids, Tensor& out) {
  DeviceGuard guard(device_index_);
  check_embedding_ids(CheckedOp::EmbeddingForward, ids, table.dim(0));
  launch_embedding_forward(table.data<float>(), table.dim(0), ids.data<int64_t>(),
                           out.data<float>(), ids.numel(), table.dim(1), stream());
}

void CudaBackend::embedding_backward_impl(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  DeviceGuard guard(device_index_);
  // Checked, not waited for (Backend::check_deferred): the scatter below is queued before the
  // answer is known, so it is given the row count and leaves an id outside [0, V) alone.
  check_embedding_ids(CheckedOp::EmbeddingBackward, ids, dtable.dim(0));
  launch_embedding_backward(ids.data<int64_t>(), dout.data<float>(), dtable.data<float>(),
                            dtable.dim(0), ids.numel(), dtable.dim(1), stream());
}

void CudaBackend::dot_interaction_forward_impl(const Tensor& dense, const Tensor& emb, Tensor& y) {
  DeviceGuard guard(device_index_);
  const int64_t d = dense.dim(1);
  launch_dot_interaction_forward(dense.data<float>(), emb.data<float>(), y.data<float>(),
                                 dense.dim(0), d, emb.dim(1) / d, stream());
}

void CudaBackend::dot_interaction_backward_impl(const Tensor& dense, const Tensor& emb,
                                                const Tensor& dy, Tensor& ddense, Tensor& demb) {
  DeviceGuard guard(device_index_);
  const int64_t d = dense.dim(1);
  launch_dot_interaction_backward(dense.data<float>(), emb.data<float>(), dy.data<float>(),
                                  ddense.data<float>(), demb.data<float>(), dense.dim(0), d,
                                  emb.dim(1) / d, stream());
}

void CudaBackend::stft_frames_impl(const Tensor& waves, const Tensor& window, int64_t hop,
                                   Tensor& frames) {
  DeviceGuard guard(device_index_);
  launch_stft_frames(waves.data<float>(), window.data<float>(), frames.data<float>(), waves.dim(0),
                     waves.dim(1), window.dim(0), hop, stream());
}

void CudaBackend::power_spectrum_impl(const Tensor& spectrum, Tensor& power) {
  DeviceGuard guard(device_index_);
  launch_power_spectrum(spectrum.data<float>(), power.data<float>(), power.dim(0), power.dim(1),
                        stream());
}

void CudaBackend::log_mel_transpose_impl(const Tensor& mel, float log_floor, Tensor& out) {
  DeviceGuard guard(device_index_);
  launch_log_mel_transpose(mel.data<float>(), out.data<float>(), out.dim(0), out.dim(1), out.dim(2),
                           log_floor, stream());
}

void CudaBackend::bce_with_logits_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                                       Tensor& loss, Tensor& dlogits) {
  DeviceGuard guard(device_index_);
  launch_bce_with_logits(logits.data<float>(), labels.data<float>(), grad_scale, loss.data<float>(),
                         dlogits.data<float>(), logits.numel(), stream());
}

void CudaBackend::softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                                    Tensor& loss, Tensor& dlogits) {
  DeviceGuard guard(device_index_);
  const int64_t n = logits.dim(0);
  const int64_t c = logits.dim(1);
  checks_->queue(CheckedOp::SoftmaxXent, labels, c, [&](unsigned long long* flag) {
    launch_check_class_labels(labels.data<int32_t>(), n, c, flag, stream());
  });
  launch_softmax_xent(logits.data<float>(), labels.data<int32_t>(), grad_scale, loss.data<float>(),
                      dlogits.data<float>(), n, c, stream());
}

void CudaBackend::sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                                  Tensor& velocity) {
  DeviceGuard guard(device_index_);
  // Without momentum sgd_step never touches the velocity (which may be undefined).
  float* vel = p.momentum != 0.f ? velocity.data<float>() : nullptr;
  launch_sgd_update(p, param.data<float>(), grad.data<float>(), vel, param.numel(), stream());
}

void CudaBackend::adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad,
                                   Tensor& m, Tensor& v) {
  DeviceGuard guard(device_index_);
  launch_adam_update(p, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                     param.numel(), stream());
}

}  // namespace cuda

namespace cuda_backend {

int device_count(std::string* why_not) {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();  // do not leave the error for the next, unrelated check
    if (why_not)
      *why_not = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(st) + " (" +
                 cudaGetErrorName(st) + ")";
    return 0;
  }
  if (count <= 0) {
    if (why_not) *why_not = "cudaGetDeviceCount found no CUDA device";
    return 0;
  }
  return count;
}

int current_device() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return device;
}

std::unique_ptr<Backend> create(int index) {
  std::string why;
  const int count = device_count(&why);
  if (count == 0) TESSERA_THROW(Backend, "cannot create a CUDA backend: " << why);
  if (index < 0 || index >= count)
    TESSERA_THROW(Backend, "CUDA device index " << index << " is out of range: this machine has "
                                                << count
                                                << " device(s), cuda:0 to cuda:" << count - 1);
  return std::make_unique<cuda::CudaBackend>(index);
}

}  // namespace cuda_backend
}  // namespace tessera
