#pragma once
// The host (CPU) backend: the specification every other backend is tested against, and the
// product for CPU scoring fleets. GEMM through oneDNN (it detects the CPU itself), element-wise
// and per-row ops with OpenMP over the shared math in host/core/math.h.
#include "host/backend/backend.h"

namespace tessera {

// Floats of the reserve the host LSTM's Training forward writes (host/backend/host_lstm.cpp), so
// a backend that runs the host LSTM over its own memory (cuda-emu) can allocate it there.
int64_t host_lstm_reserve_floats(const LstmConfig& c, int64_t steps, int64_t batch);

class HostBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device{}; }
  void synchronize() override {}

 protected:
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
  // ---- DLRM dot interaction (host/backend/host_interaction.cpp) ----
  void dot_interaction_forward_impl(const Tensor& dense, const Tensor& emb, Tensor& y) override;
  void dot_interaction_backward_impl(const Tensor& dense, const Tensor& emb, const Tensor& dy,
                                     Tensor& ddense, Tensor& demb) override;
  // ---- log-mel front end (host/backend/host_log_mel.cpp) ----
  void stft_frames_impl(const Tensor& waves, const Tensor& window, int64_t hop,
                        Tensor& frames) override;
  void power_spectrum_impl(const Tensor& spectrum, Tensor& power) override;
  void log_mel_transpose_impl(const Tensor& mel, float log_floor, Tensor& out) override;
  void bce_with_logits_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                            Tensor& loss, Tensor& dlogits) override;
  void softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                         Tensor& dlogits) override;
  // ---- LSTM (host/backend/host_lstm.cpp) ----
  void lstm_forward_impl(const LstmConfig& c, LstmMode mode, LstmIo& io) override;
  void lstm_backward_impl(const LstmConfig& c, const LstmIo& io, LstmGrads& g) override;
  // The GEMM + fused-gate path (the other one: host_lstm_dnnl.cpp; host_lstm_impl.h chooses).
  void gemm_lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io);
  void gemm_lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g);
  void sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                       Tensor& velocity) override;
  void adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                        Tensor& v) override;
  // ---- convolution / pooling / batch normalisation (host/backend/host_conv.cpp, oneDNN) ----
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
};

}  // namespace tessera
