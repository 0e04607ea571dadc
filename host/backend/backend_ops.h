#pragma once
// The Backend's virtual ops, listed once. Backend (backend.h) declares `<name>_impl` pure virtual
// for each, every backend declares its overrides from the same list, so an op is added, or its
// signature changed, in one place. An X-macro list: TESSERA_BACKEND_OPS(X) expands X(ret, name,
// (params)) once per op. Include after the types the signatures name (backend.h does).

// Convolution, pooling and batch normalisation (NCHW f32), also the surface of the CUDA backend's
// cuDNN wrapper (cuda/cudnn_ops.h).
#define TESSERA_BACKEND_CONV_OPS(X)                                                           \
  X(void, conv2d_forward,                                                                     \
    (const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y)) \
  X(void, conv2d_backward,                                                                    \
    (const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,   \
     Tensor& dw, Tensor& dbias))                                                              \
  X(void, pool2d_forward, (const Pool2dParams& p, const Tensor& x, Tensor& y))                \
  X(void, pool2d_backward,                                                                    \
    (const Pool2dParams& p, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx))  \
  X(void, batchnorm_forward,                                                                  \
    (const BatchNormParams& p, const Tensor& x, const Tensor& gamma, const Tensor& beta,      \
     Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& saved_mean,                \
     Tensor& saved_invstd))                                                                   \
  X(void, batchnorm_backward,                                                                 \
    (const BatchNormParams& p, const Tensor& x, const Tensor& dy, const Tensor& gamma,        \
     const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,        \
     Tensor& dbeta))

// Element-wise arithmetic the DCN-v2 cross network and Wide & Deep compose their layers from
// (host: host_elementwise.cpp; CUDA: cuda/cuda_backend_elementwise.cpp), and the Trainer's
// device-side loss accumulator (host_loss_accumulate.cpp; cuda/cuda_backend_loss.cpp).
#define TESSERA_BACKEND_ELEMENTWISE_OPS(X)                                    \
  X(void, mul_add, (const Tensor& a, const Tensor& b, float beta, Tensor& y)) \
  X(void, axpby, (float alpha, const Tensor& x, float beta, Tensor& y))       \
  X(void, loss_accumulate, (const Tensor& loss, float step, Tensor& acc))

// The recommendation models' scores and losses (host: host_rec.cpp; CUDA:
// cuda/cuda_backend_rec.cpp).
#define TESSERA_BACKEND_REC_OPS(X)                                                                 \
  X(void, rec_score_forward, (const Tensor& out, int64_t dim, float offset, Tensor& score))        \
  X(void, rec_score_backward,                                                                      \
    (const Tensor& out, const Tensor& dscore, int64_t dim, float l2, float bias_l2, Tensor& dout)) \
  X(void, squared_error,                                                                           \
    (const Tensor& pred, const Tensor& target, float grad_scale, Tensor& loss, Tensor& dpred))     \
  X(void, pairwise_logistic,                                                                       \
    (const Tensor& scores, int64_t group, float grad_scale, Tensor& loss, Tensor& dscores))

// Every op a backend must implement, in the order of backend.h's public methods. The _impl
// arguments are already checked (backend.h); gemm takes raw pointers and leading dimensions.
#define TESSERA_BACKEND_OPS(X)                                                                     \
  X(Tensor, empty, (const Shape& shape, DType dtype))                                              \
  X(void, copy, (const Tensor& src, Tensor& dst))                                                  \
  X(void, fill, (Tensor & t, float value))                                                         \
  X(void, gemm,                                                                                    \
    (Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,     \
     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc))                 \
  X(void, bias_act_forward, (Activation act, const Tensor& x, const Tensor& bias, Tensor& y))      \
  X(void, bias_act_backward,                                                                       \
    (Activation act, const Tensor& y, const Tensor& dy, Tensor& dx, Tensor& dbias))                \
  X(void, dropout_forward, (const DropoutParams& d, const Tensor& x, Tensor& y))                   \
  X(void, dropout_backward, (const DropoutParams& d, const Tensor& dy, Tensor& dx))                \
  X(void, embedding_forward, (const Tensor& table, const Tensor& ids, Tensor& out))                \
  X(void, embedding_backward, (const Tensor& ids, const Tensor& dout, Tensor& dtable))             \
  X(void, dot_interaction_forward, (const Tensor& dense, const Tensor& emb, Tensor& y))            \
  X(void, dot_interaction_backward,                                                                \
    (const Tensor& dense, const Tensor& emb, const Tensor& dy, Tensor& ddense, Tensor& demb))      \
  X(void, stft_frames, (const Tensor& waves, const Tensor& window, int64_t hop, Tensor& frames))   \
  X(void, power_spectrum, (const Tensor& spectrum, Tensor& power))                                 \
  X(void, log_mel_transpose, (const Tensor& mel, float log_floor, Tensor& out))                    \
  X(void, bce_with_logits,                                                                         \
    (const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss, Tensor& dlogits)) \
  X(void, softmax_xent,                                                                            \
    (const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss, Tensor& dlogits)) \
  X(void, lstm_forward, (const LstmConfig& c, LstmMode mode, LstmIo& io))                          \
  X(void, lstm_backward, (const LstmConfig& c, const LstmIo& io, LstmGrads& g))                    \
  X(void, sgd_update,                                                                              \
    (const math::SgdParams& p, Tensor& param, const Tensor& grad, Tensor& velocity))               \
  X(void, adam_update,                                                                             \
    (const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v))          \
  TESSERA_BACKEND_CONV_OPS(X)                                                                      \
  TESSERA_BACKEND_ELEMENTWISE_OPS(X)                                                               \
  TESSERA_BACKEND_REC_OPS(X)

// The declarations the list expands to: Backend's pure virtuals, a backend's overrides, and a
// plain member function of the op's own name (a helper class with the same surface).
#define TESSERA_BACKEND_PURE_IMPL(ret, name, params) virtual ret name##_impl params = 0;
#define TESSERA_BACKEND_OVERRIDE_IMPL(ret, name, params) ret name##_impl params override;
#define TESSERA_BACKEND_MEMBER(ret, name, params) ret name params;
