#pragma once
// The CUDA backend: every Backend op on one GPU, queued on the backend's own stream.
//   - Custom kernels (cuda/kernels/, one op per file) for element-wise and per-row ops, cuBLAS
//     for GEMM (cuda/cublas_gemm.*). Element-wise math is host/core/math.h, shared with the host
//     backend, which is the specification this backend is tested against.
//   - Ops are asynchronous: they return once queued. Copies to host memory, ops that must report
//     bad input (embedding ids, class labels), and synchronize() wait for the stream.
//   - Not thread-safe: use one backend per host thread (it owns one stream and one cuBLAS handle).
#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "cuda/cublas_gemm.h"
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
  void synchronize() override;
  int64_t available_memory_bytes() const override;  // cudaMemGetInfo's free bytes

  cudaStream_t stream() const { return stream_.get(); }

 protected:
  // Pinned host slots and a copy stream (cuda/pinned_stager.cpp).
  std::unique_ptr<StagingEngine> make_staging_engine_impl(
      int slots, const std::vector<StagedTensorSpec>& specs) override;
  Tensor empty_impl(const Shape& shape, DType dtype) override;
  void copy_impl(const Tensor& src, Tensor& dst) override;
  void fill_impl(Tensor& t, float value) override;
  void gemm_impl(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) override;
  void bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                             Tensor& y) override;
  void bias_act_backward_impl(Activation act, const Tensor& y, const Tensor& dy, Tensor& dx,
                              Tensor& dbias) override;
  void dropout_forward_impl(const DropoutParams& d, const Tensor& x, Tensor& y) override;
  void dropout_backward_impl(const DropoutParams& d, const Tensor& dy, Tensor& dx) override;
  void embedding_forward_impl(const Tensor& table, const Tensor& ids, Tensor& out) override;
  void embedding_backward_impl(const Tensor& ids, const Tensor& dout, Tensor& dtable) override;
  // ---- DLRM dot interaction: cuda/kernels/dot_interaction.cu ----
  void dot_interaction_forward_impl(const Tensor& dense, const Tensor& emb, Tensor& y) override;
  void dot_interaction_backward_impl(const Tensor& dense, const Tensor& emb, const Tensor& dy,
                                     Tensor& ddense, Tensor& demb) override;
  // ---- log-mel front end: cuda/kernels/{stft_frames,power_spectrum,log_mel_transpose}.cu ----
  void stft_frames_impl(const Tensor& waves, const Tensor& window, int64_t hop,
                        Tensor& frames) override;
  void power_spectrum_impl(const Tensor& spectrum, Tensor& power) override;
  void log_mel_transpose_impl(const Tensor& mel, float log_floor, Tensor& out) override;
  void bce_with_logits_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                            Tensor& loss, Tensor& dlogits) override;
  void softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                         Tensor& dlogits) override;
  void sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                       Tensor& velocity) override;
  void adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                        Tensor& v) override;
  // ---- LSTM: cuDNN RNN API (cuda/cudnn_lstm.cpp) ----
  void lstm_forward_impl(const LstmConfig& c, LstmMode mode, LstmIo& io) override;
  void lstm_backward_impl(const LstmConfig& c, const LstmIo& io, LstmGrads& g) override;
  // ---- convolution / pooling / batch normalisation: cuDNN (cuda/cudnn_*.cpp) ----
  void conv2d_forward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                           const Tensor& bias, Tensor& y) override;
  void conv2d_backward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                            const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) override;
  void pool2d_forward_impl(const Pool2dParams& p, const Tensor& x, Tensor& y) override;
  void pool2d_backward_impl(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                            const Tensor& dy, Tensor& dx) override;
  void batchnorm_forward_impl(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                              Tensor& y, Tensor& saved_mean, Tensor& saved_invstd) override;
  void batchnorm_backward_impl(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& saved_mean,
                               const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                               Tensor& dbeta) override;

 private:
  // Throws Error(Data) naming the first id outside [0, rows), as the host backend does. Waits
  // for the stream (the answer is needed on the host).
  void check_embedding_ids(const Tensor& ids, int64_t rows);

  int device_index_;
  std::string device_name_;
  // Destruction order matters: the cuBLAS handle is bound to the stream, so it goes first.
  StreamHandle stream_;
  CublasHandle cublas_;
  DeviceBuffer first_bad_;  // one unsigned long long: the validation kernels' flag
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

}  // namespace cuda_backend
}  // namespace tessera
