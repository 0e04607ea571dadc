#pragma once
// The one op interface. Every op is declared here once, backend-neutral; the host backend
// (host/backend/host_backend.*, the specification) and the CUDA backend (cuda/) implement it.
// Public methods check shapes, dtypes and devices at the edge, then call the *_impl virtual,
// which trusts them (the tiny-cuda-nn pattern). All tensors are row-major and contiguous.
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "host/backend/backend_ops.h"
#include "host/backend/batch_stager.h"
#include "host/backend/lstm_types.h"
#include "host/core/math.h"
#include "host/core/tensor.h"

namespace tessera {

enum class Transpose : uint8_t { No = 0, Yes = 1 };

// The LSTM op's tensors (shapes: T steps, B batch, I input, H hidden, L layers, D directions).
// All are backend tensors; optional ones may be left undefined.
struct LstmIo {
  Tensor x;        // [T, B, I] time-major input
  Tensor h0, c0;   // [L*D, B, H] initial state (row l*D + d); undefined = zeros
  Tensor w;        // [P] canonical weights (host/backend/lstm_types.h)
  Tensor y;        // [T, B, D*H] output: each step's top-layer h, forward then reverse half
  Tensor hn, cn;   // [L*D, B, H] final state (for the reverse direction: the state at t = 0);
                   // undefined = not written
  Tensor reserve;  // Training: written by forward (allocated there when undefined or of another
                   // size), read by backward. Backend-specific contents.
};
struct LstmGrads {
  Tensor dy;        // [T, B, D*H]
  Tensor dhn, dcn;  // [L*D, B, H]; undefined = zeros
  Tensor dx;        // [T, B, I], written
  Tensor dh0, dc0;  // [L*D, B, H], written when defined
  Tensor dw;        // [P], overwritten
};

struct DropoutParams {
  float p = 0.f;      // probability of dropping an element
  uint64_t seed = 0;  // counter-based: element i is kept iff hash_uniform(seed, i) >= p
};

// ---- convolution / pooling / batch normalisation parameters (NCHW f32) ------------------------
// Shapes: x [N, C, H, W]; conv weights [K, C / groups, R, S]; y [N, K, P, Q] with
//   P = (H + 2 pad_h - dilation_h (R - 1) - 1) / stride_h + 1 (likewise Q).
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;            // symmetric zero padding
  int64_t dilation_h = 1, dilation_w = 1;  // 1 = dense kernel
  int64_t groups = 1;                      // C and K both divisible by groups
};

// Average pooling divides by the whole window, padding included (PyTorch's default
// count_include_pad=True); max pooling never selects padding. Global average pooling is Average
// with the window equal to the input's H x W.
enum class PoolKind : uint8_t { Max = 0, Average = 1 };
struct Pool2dParams {
  PoolKind kind = PoolKind::Max;
  int64_t window_h = 2, window_w = 2;
  int64_t stride_h = 2, stride_w = 2;
  int64_t pad_h = 0, pad_w = 0;  // < window on each axis
};

// Training: normalise with the batch's per-channel mean and biased variance, save mean and
// 1/sqrt(var + eps) for the backward, and update the running statistics
//   running = (1 - momentum) running + momentum batch   (variance unbiased, N*H*W/(N*H*W - 1)).
// Inference: normalise with the running statistics; nothing is saved or updated.
enum class BatchNormMode : uint8_t { Training = 0, Inference = 1 };
struct BatchNormParams {
  BatchNormMode mode = BatchNormMode::Training;
  float eps = 1e-5f;
  float momentum = 0.1f;
};

// Output spatial extent of a convolution or pooling window along one axis (may be <= 0 for a
// window that does not fit; the edge checks reject that).
inline int64_t conv_out_extent(int64_t in, int64_t window, int64_t stride, int64_t pad,
                               int64_t dilation = 1) {
  return (in + 2 * pad - dilation * (window - 1) - 1) / stride + 1;
}
Shape conv2d_output_shape(const Conv2dParams& p, const Shape& x, const Shape& w);
Shape pool2d_output_shape(const Pool2dParams& p, const Shape& x);

// A backend's device-memory allocator, as counted since the backend was made (CUDA: the caching
// allocator of cuda/device_allocator.h). Bytes are the allocator's rounded block sizes.
struct DeviceMemoryStats {
  int64_t bytes_in_use = 0;       // handed out and not yet freed
  int64_t peak_bytes_in_use = 0;  // the most bytes_in_use has been
  int64_t bytes_reserved = 0;     // held from the device: in use + cached for reuse
  int64_t raw_allocations = 0;    // cudaMalloc calls (cache misses, and retries after a release)
  int64_t raw_frees = 0;          // cudaFree calls (cache releases, the backend's end)
  int64_t cache_hits = 0;         // allocations served from the cache
  int64_t cache_misses = 0;       // allocations that needed a raw allocation
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu" or "cuda:N (device name)"
  virtual Device device() const = 0;
  // Bytes this backend could still allocate (host: available physical memory; CUDA: the device's
  // free memory): what the embedding shard planner fills.
  virtual int64_t available_memory_bytes() const;

  // ---- memory ---------------------------------------------------------------------------------
  Tensor empty(const Shape& shape, DType dtype = DType::F32);  // zero-filled
  Tensor to_device(const Tensor& host_tensor);                 // copy a host tensor here
  Tensor to_host(const Tensor& t);                             // copy to a new host tensor
  void copy(const Tensor& src, Tensor& dst);                   // same shape; any devices
  void fill(Tensor& t, float value);                           // f32 tensors
  // Waits for the backend's queued work. On CUDA it also raises the errors of the deferred checks
  // (see check_deferred) of every op queued before it.
  virtual void synchronize() = 0;
  // Deferred input checks. The host backend checks embedding ids and class labels before the op
  // runs and throws from the op itself. The CUDA backend checks them on the device without
  // waiting: the op returns once queued, and an id or label out of range is raised as
  // Error(Data) -- naming the op, which call of it, the position and the value -- by a later
  // op's call once the check has finished on the device, and at the latest by synchronize(), a
  // copy to host memory (to_host), or check_deferred(). Until then the outputs of the op that got
  // the bad input are unspecified. A caller that needs the error at a given point (a test, the
  // end of an epoch) calls check_deferred(), which waits for the pending checks. The host
  // backend's is a no-op (its checks have already thrown).
  virtual void check_deferred() {}
  // Statistics of the backend's device-memory allocator; nullopt for a backend without one (the
  // host backend).
  virtual std::optional<DeviceMemoryStats> memory_stats() const { return std::nullopt; }
  // A bounded ring of `slots` (>= 2) staging slots for training batches (batch_stager.h): on CUDA
  // pinned memory and a copy stream, so a batch uploads while the previous one computes.
  std::unique_ptr<BatchStager> make_batch_stager(int slots,
                                                 const std::vector<StagedTensorSpec>& specs);

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
  // is an error naming the position and id, on every backend (on CUDA a deferred one: see
  // check_deferred).
  void embedding_forward(const Tensor& table, const Tensor& ids, Tensor& out);
  // dtable[ids[i], :] += dout[i, :] (accumulates; the caller zeroes dtable).
  void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);

  // ---- DLRM pairwise dot interaction (host/core/interaction.h: output layout) ----------------
  // dense [B, d] (the bottom MLP's output), emb [B, F*d] (F pooled embeddings of dim d, as an
  // EmbeddingCollection writes them), F >= 1 -> y [B, d + F(F+1)/2] =
  // [dense | <Z_i, Z_j> for i > j] over Z = (dense, emb_1..emb_F).
  void dot_interaction_forward(const Tensor& dense, const Tensor& emb, Tensor& y);
  // From dy [B, d + F(F+1)/2]: ddense [B, d] and demb [B, F*d], overwritten.
  void dot_interaction_backward(const Tensor& dense, const Tensor& emb, const Tensor& dy,
                                Tensor& ddense, Tensor& demb);

  // ---- log-mel front end (host/backend/backend_log_mel.cpp: edge checks; host/data/
  // log_mel_batch.h runs them with two gemms; element math in host/core/log_mel_math.h) -------
  // waves [B, n], window [n_fft] (n_fft >= 2, hop >= 1) -> frames [B*F, n_fft], F = 1 + n / hop:
  // row b*F + t is waveform b's frame t, centred on sample t * hop with zero padding, windowed.
  void stft_frames(const Tensor& waves, const Tensor& window, int64_t hop, Tensor& frames);
  // spectrum [R, 2*bins] (real parts, then imaginary parts) -> power [R, bins] = re^2 + im^2.
  void power_spectrum(const Tensor& spectrum, Tensor& power);
  // mel [B*F, n_mels] -> out [B, n_mels, F], out[b, m, t] = log(mel[b*F + t, m] + log_floor);
  // log_floor >= 0.
  void log_mel_transpose(const Tensor& mel, float log_floor, Tensor& out);

  // ---- losses (per-sample loss out; gradient scaled by `grad_scale`, e.g. 1/N) -----------------
  // logits [N] or [N,1], labels f32 [N] in [0,1]; loss [N]; dlogits like logits.
  void bce_with_logits(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                       Tensor& dlogits);
  // logits [N,C], labels i32 [N] in [0,C) (on CUDA a deferred check: see check_deferred); loss
  // [N]; dlogits [N,C].
  void softmax_xent(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                    Tensor& dlogits);

  // ---- element-wise arithmetic (host/backend/backend_elementwise.cpp: edge checks) -------------
  // f32, a, b, x and y of one shape (contiguous). beta == 0: y is not read (may hold anything).
  // y = a (.) b + beta * y  (the Hadamard product: DCN-v2's x0 (.) (W x + b)).
  void mul_add(const Tensor& a, const Tensor& b, float beta, Tensor& y);
  // y = alpha * x + beta * y.
  void axpby(float alpha, const Tensor& x, float beta, Tensor& y);
  // The Trainer's loss accumulator (backend_loss_accumulate.cpp): loss f32 [N] (per-sample
  // losses of one step), acc f32 [3] on this backend: acc[0] += sum(loss) (non-finite values
  // included), acc[1] += the number of non-finite values in loss, and acc[2] = step when acc[2]
  // is 0 and this loss holds a non-finite value (steps are 1-based; exact below 2^24). Nothing
  // is read back: the Trainer reads acc every few steps.
  void loss_accumulate(const Tensor& loss, float step, Tensor& acc);

  // ---- recommendation scores and losses (host/backend/backend_rec.cpp: edge checks) -----------
  // out f32 [S, W] with W >= 2 * dim (each row: p | q | bias columns), score f32 [S]:
  // score[s] = offset + sum_{k<dim} out[s,k] * out[s,dim+k] + sum_{j>=2dim} out[s,j].
  void rec_score_forward(const Tensor& out, int64_t dim, float offset, Tensor& score);
  // dscore f32 [S] -> dout [S, W] (overwritten): for k < dim, dout[s,k] = ds*out[s,dim+k] +
  // l2*out[s,k], dout[s,dim+k] = ds*out[s,k] + l2*out[s,dim+k]; bias columns ds + bias_l2*out.
  void rec_score_backward(const Tensor& out, const Tensor& dscore, int64_t dim, float l2,
                          float bias_l2, Tensor& dout);
  // pred, target, loss, dpred f32 [N]: e = pred - target, loss = e*e, dpred = grad_scale * e.
  void squared_error(const Tensor& pred, const Tensor& target, float grad_scale, Tensor& loss,
                     Tensor& dpred);
  // scores f32 [n * group] (group >= 2: a positive, then group - 1 negatives), loss [n],
  // dscores [n * group]: BPR, loss[i] = sum_j softplus(-(s_pos - s_j)), gradients scaled.
  void pairwise_logistic(const Tensor& scores, int64_t group, float grad_scale, Tensor& loss,
                         Tensor& dscores);

  // ---- LSTM (host/backend/backend_lstm.cpp: edge checks) ---------------------------------------
  // Multi-layer, optionally bidirectional LSTM over a whole sequence. Inference mode applies no
  // dropout and writes no reserve.
  void lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io);
  // After a Training forward of the same io (x, h0, c0, w, y and reserve unchanged since).
  void lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g);

  // ---- dense optimizers (element-wise over the whole parameter tensor) ------------------------
  void sgd_update(const math::SgdParams& p, Tensor& param, const Tensor& grad, Tensor& velocity);
  void adam_update(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                   Tensor& v);

  // ---- convolution (NCHW f32; host: oneDNN, CUDA: cuDNN; see Conv2dParams for shapes) ---------
  // y = conv(x, w) + bias. bias [K] may be undefined.
  void conv2d_forward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& bias,
                      Tensor& y);
  // Overwrites dx (skipped when undefined: a first layer needs no input gradient), dw, and dbias
  // (skipped when undefined).
  void conv2d_backward(const Conv2dParams& p, const Tensor& x, const Tensor& w, const Tensor& dy,
                       Tensor& dx, Tensor& dw, Tensor& dbias);
  // ---- pooling ----
  // x [N, C, H, W] -> y [N, C, P, Q].
  void pool2d_forward(const Pool2dParams& p, const Tensor& x, Tensor& y);
  // dx overwritten. Max pooling routes each dy to the window's maximum in x (y is the forward
  // output, for backends that locate the maximum through it).
  void pool2d_backward(const Pool2dParams& p, const Tensor& x, const Tensor& y, const Tensor& dy,
                       Tensor& dx);
  // ---- batch normalisation (per channel over N, H, W; x [N, C, H, W] or [N, C]) ----
  // gamma, beta, running_mean, running_var, saved_mean, saved_invstd: [C]. Training updates the
  // running statistics and writes saved_*; Inference reads the running statistics only (saved_*
  // may be undefined).
  void batchnorm_forward(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                         const Tensor& beta, Tensor& running_mean, Tensor& running_var, Tensor& y,
                         Tensor& saved_mean, Tensor& saved_invstd);
  // The training-mode backward from the saved statistics: dx, dgamma, dbeta overwritten.
  void batchnorm_backward(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                          const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd,
                          Tensor& dx, Tensor& dgamma, Tensor& dbeta);

 protected:
  // Default: the tensors as they are on the host, a synchronous copy elsewhere.
  virtual std::unique_ptr<StagingEngine> make_staging_engine_impl(
      int slots, const std::vector<StagedTensorSpec>& specs);
  // The ops, each `<name>_impl` with the arguments already checked (backend_ops.h lists them).
  TESSERA_BACKEND_OPS(TESSERA_BACKEND_PURE_IMPL)

  void check_here(const Tensor& t, const char* what) const;
  friend struct LstmEdge;  // the LSTM's edge checks (backend_lstm.cpp)
  // An element-wise op's input and output: both f32, here, and of one shape.
  void check_elementwise(const Tensor& in, const Tensor& out, const char* in_name,
                         const char* out_name) const;
  // An embedding op's table (or its gradient) [V, D] f32, its i64 ids, and the f32 rows (or
  // their gradient) of ids.numel() * D elements, all here.
  void check_embedding(const Tensor& table, const char* table_name, const Tensor& ids,
                       const Tensor& rows, const char* rows_name) const;
};

// Backend selection. spec: "auto" (CUDA when a GPU is present, else host), "cpu", "cuda",
// "cuda:N". Asking for CUDA without a usable GPU (or in a build without CUDA) is an Error of kind
// Backend that says why, never a crash.
std::unique_ptr<Backend> make_backend(const std::string& spec);
std::unique_ptr<Backend> make_host_backend();

// Whether a CUDA device can be used, and if not, why (e.g. "cudaGetDeviceCount: insufficient
// driver"). Always false in a build without the CUDA backend.
bool cuda_available(std::string* why_not = nullptr);
// How many CUDA devices this process can use (0 without a GPU or without the CUDA backend).
int cuda_device_count();
// The devices a backend of the CUDA kind can be on, as make_backend specs: "cuda:0".."cuda:N-1"
// for the GPUs, or "cuda-emu:0".. for the emulated devices in the emulation build (where a CUDA
// backend is always an emulated one). Empty when there are none.
std::vector<std::string> cuda_device_specs();

}  // namespace tessera
