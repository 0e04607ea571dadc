#pragma once
// The one op interface. Every op is declared here once, backend-neutral; the host backend
// (host/backend/host_backend.*, the specification) and the CUDA backend (cuda/) implement it.
// Public methods check shapes, dtypes and devices at the edge, then call the *_impl virtual,
// which trusts them (the tiny-cuda-nn pattern). All tensors are row-major and contiguous.
#include <initializer_list>
#include <memory>
#include <string>

#include "host/core/math.h"
#include "host/core/tensor.h"

namespace tessera {

enum class Transpose : uint8_t { No = 0, Yes = 1 };

struct DropoutParams {
  float p = 0.f;        // probability of dropping an element
  uint64_t seed = 0;    // counter-based: element i is kept iff hash_uniform(seed, i) >= p
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda:N (device name)"
  virtual Device device() const = 0;

  // ---- memory ---------------------------------------------------------------------------------
  Tensor empty(const Shape& shape, DType dtype = DType::F32);  // zero-filled
  Tensor to_device(const Tensor& host_tensor);                 // copy a host tensor here
  Tensor to_host(const Tensor& t);                             // copy to a new host tensor
  void copy(const Tensor& src, Tensor& dst);                   // same shape; any devices
  void fill(Tensor& t, float value);                           // f32 tensors
  virtual void synchronize() = 0;

  // ---- dense ----------------------------------------------------------------------------------
  // C = alpha * op(A) * op(B) + beta * C, with op(A) [M,K], op(B) [K,N], C [M,N].
  void gemm(Transpose ta, Transpose tb, float alpha, const Tensor& a, const Tensor& b, float beta,
            Tensor& c);
  // y = act(x + bias) row-wise; bias [F] may be undefined (no bias). y may alias x.
  void bias_act_forward(Activation act, const Tensor& x, const Tensor& bias, Tensor& y);
  // dx = dy * act'(y) (from the forward output y); dbias (if defined) = column sums of dx,
  // overwritten. dx may alias dy.
  void bias_act_backward(Activation act, const Tensor& y, const Tensor& dy, Tensor& dx,
                         Tensor& dbias);
  // Inverted dropout: y = keep ? x / (1 - p) : 0. Backward applies the same mask to dy.
  void dropout_forward(const DropoutParams& d, const Tensor& x, Tensor& y);
  void dropout_backward(const DropoutParams& d, const Tensor& dy, Tensor& dx);

  // ---- embeddings (single flat table; the sharded subsystem lives in embeddings/) --------------
  // out[i, :] = table[ids[i], :]. ids i64 [N], table [V, D], out [N, D]. An id outside [0, V)
  // is an error naming the position and id, on every backend.
  void embedding_forward(const Tensor& table, const Tensor& ids, Tensor& out);
  // dtable[ids[i], :] += dout[i, :] (accumulates; the caller zeroes dtable).
  void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);

  // ---- losses (per-sample loss out; gradient scaled by `grad_scale`, e.g. 1/N) -----------------
  // logits [N] or [N,1], labels f32 [N] in [0,1]; loss [N]; dlogits like logits.
  void bce_with_logits(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                       Tensor& dlogits);
  // logits [N,C], labels i32 [N] in [0,C); loss [N]; dlogits [N,C].
  void softmax_xent(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                    Tensor& dlogits);

  // ---- dense optimizers (element-wise over the whole parameter tensor) ------------------------
  void sgd_update(const math::SgdParams& p, Tensor& param, const Tensor& grad, Tensor& velocity);
  void adam_update(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                   Tensor& v);

 protected:
  virtual Tensor empty_impl(const Shape& shape, DType dtype) = 0;
  virtual void copy_impl(const Tensor& src, Tensor& dst) = 0;
  virtual void fill_impl(Tensor& t, float value) = 0;
  virtual void gemm_impl(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, float alpha,
                         const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc) = 0;
  virtual void bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                                     Tensor& y) = 0;
  virtual void bias_act_backward_impl(Activation act, const Tensor& y, const Tensor& dy,
                                      Tensor& dx, Tensor& dbias) = 0;
  virtual void dropout_forward_impl(const DropoutParams& d, const Tensor& x, Tensor& y) = 0;
  virtual void dropout_backward_impl(const DropoutParams& d, const Tensor& dy, Tensor& dx) = 0;
  virtual void embedding_forward_impl(const Tensor& table, const Tensor& ids, Tensor& out) = 0;
  virtual void embedding_backward_impl(const Tensor& ids, const Tensor& dout, Tensor& dtable) = 0;
  virtual void bce_with_logits_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                                    Tensor& loss, Tensor& dlogits) = 0;
  virtual void softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                                 Tensor& loss, Tensor& dlogits) = 0;
  virtual void sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                               Tensor& velocity) = 0;
  virtual void adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad,
                                Tensor& m, Tensor& v) = 0;

  void check_here(const Tensor& t, const char* what) const;
};

// Backend selection. spec: "auto" (CUDA when a GPU is present, else host), "cpu", "cuda",
// "cuda:N". Asking for CUDA without a usable GPU (or in a build without CUDA) is an Error of kind
// Backend that says why, never a crash.
std::unique_ptr<Backend> make_backend(const std::string& spec);
std::unique_ptr<Backend> make_host_backend();

// Whether a CUDA device can be used, and if not, why (e.g. "cudaGetDeviceCount: insufficient
// driver"). Always false in a build without the CUDA backend.
bool cuda_available(std::string* why_not = nullptr);

}  // namespace tessera
