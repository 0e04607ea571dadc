#pragma once
// Launchers of tessera's custom CUDA kernels: plain C++ (no CUDA-only types), callable from g++
// code. Each takes raw device pointers, 64-bit sizes and an explicit stream, checks nothing the
// Backend edge already checked, and launches through TESSERA_LAUNCH (cuda/launch.cuh).
//
// The stream is a cudaStream_t: the CUDA runtime's type in a real build, the emulator's own
// definition in the emulation build (cuda/emu/, TESSERA_CUDA_EMULATION), where "device" pointers
// are ordinary host memory.
//
// One op per file under cuda/kernels/; the file is named beside each group below. Launchers
// return after queueing work: results are ready once the stream is synchronized.
#include <cstdint>

#include "host/core/math.h"

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace tessera::cuda {

// The "no bad position" value of a first-bad-position flag: all bits set. Set the flag to this
// before a check launcher (cudaMemsetAsync(flag, 0xFF, 8) does it); afterwards it holds the
// smallest offending position, or still kNoBadPosition.
constexpr unsigned long long kNoBadPosition = ~0ull;

// ---- fill.cu ----------------------------------------------------------------------------------
// p[i] = value for i in [0, n).
void launch_fill(float* p, int64_t n, float value, cudaStream_t stream);
// p[i] = beta == 0 ? 0 : beta * p[i] (the BLAS convention: beta == 0 never reads p, so NaN in
// p does not survive). Used for C = beta * C when a GEMM has K = 0.
void launch_scale(float* p, int64_t n, float beta, cudaStream_t stream);

// ---- bias_act.cu ------------------------------------------------------------------------------
// y[r, c] = act(x[r, c] + bias[c]); x, y [rows, cols]; bias [cols] or nullptr. y may alias x.
void launch_bias_act_forward(Activation act, const float* x, const float* bias, float* y,
                             int64_t rows, int64_t cols, cudaStream_t stream);
// dx[r, c] = dy[r, c] * act'(y[r, c]) (through the output y); dx may alias dy. If dbias is not
// nullptr, dbias[c] = sum_r dx[r, c] (overwritten; accumulated in double, in a fixed order, so
// the result is deterministic). y, dy, dx [rows, cols]; dbias [cols].
void launch_bias_act_backward(Activation act, const float* y, const float* dy, float* dx,
                              float* dbias, int64_t rows, int64_t cols, cudaStream_t stream);

// ---- dropout.cu -------------------------------------------------------------------------------
// Inverted dropout with a counter-based mask: y[i] = dropout_keep(seed, i, p) ? x[i] * scale : 0,
// scale = 1 / (1 - p). Backward is the same call on dy -> dx. y may alias x.
void launch_dropout(uint64_t seed, float p, float scale, const float* x, float* y, int64_t n,
                    cudaStream_t stream);

// ---- embedding.cu -----------------------------------------------------------------------------
// *first_bad = min(*first_bad, smallest i with ids[i] outside [0, rows)). ids [n].
void launch_embedding_check_ids(const int64_t* ids, int64_t n, int64_t rows,
                                unsigned long long* first_bad, cudaStream_t stream);
// out[i, :] = table[ids[i], :]; table [rows, dim], ids [n], out [n, dim]. The ids need not have
// been checked yet (the CUDA Backend's check is deferred): an id outside [0, rows) reads nothing
// and gives a zero row of out.
void launch_embedding_forward(const float* table, int64_t rows, const int64_t* ids, float* out,
                              int64_t n, int64_t dim, cudaStream_t stream);
// dtable[ids[i], :] += dout[i, :] with atomicAdd (summation order of repeated ids varies).
// ids [n], dout [n, dim], dtable [rows, dim]. An id outside [0, rows) is skipped: nothing is
// written for it.
void launch_embedding_backward(const int64_t* ids, const float* dout, float* dtable, int64_t rows,
                               int64_t n, int64_t dim, cudaStream_t stream);

// ---- dot_interaction.cu -----------------------------------------------------------------------
// DLRM pairwise dot interaction (layout: host/core/interaction.h). dense [batch, d],
// emb [batch, f * d] (f >= 1), y [batch, d + f (f + 1) / 2]. Shared memory per block:
// (f + 1) * (d | 1) floats forward, plus f (f + 1) / 2 backward.
void launch_dot_interaction_forward(const float* dense, const float* emb, float* y, int64_t batch,
                                    int64_t d, int64_t f, cudaStream_t stream);
// ddense [batch, d] and demb [batch, f * d] overwritten from dy [batch, d + f (f + 1) / 2].
void launch_dot_interaction_backward(const float* dense, const float* emb, const float* dy,
                                     float* ddense, float* demb, int64_t batch, int64_t d,
                                     int64_t f, cudaStream_t stream);

// ---- stft_frames.cu, power_spectrum.cu, log_mel_transpose.cu: the log-mel front end ------------
// Element math: host/core/log_mel_math.h. waves [batch, n], window [n_fft] ->
// frames [batch * F, n_fft] with F = 1 + n / hop (centred frames, zero padding).
void launch_stft_frames(const float* waves, const float* window, float* frames, int64_t batch,
                        int64_t n, int64_t n_fft, int64_t hop, cudaStream_t stream);
// spectrum [rows, 2 * bins] (re | im) -> power [rows, bins].
void launch_power_spectrum(const float* spectrum, float* power, int64_t rows, int64_t bins,
                           cudaStream_t stream);
// mel [batch * frames, n_mels] -> out [batch, n_mels, frames] = log(mel + log_floor).
void launch_log_mel_transpose(const float* mel, float* out, int64_t batch, int64_t n_mels,
                              int64_t frames, float log_floor, cudaStream_t stream);

// ---- losses.cu --------------------------------------------------------------------------------
// loss[i] = bce_with_logits_loss(z[i], y[i]); dlogits[i] = grad_scale * bce_with_logits_grad.
void launch_bce_with_logits(const float* logits, const float* labels, float grad_scale, float* loss,
                            float* dlogits, int64_t n, cudaStream_t stream);
// *first_bad = min(*first_bad, smallest row i with labels[i] outside [0, classes)).
void launch_check_class_labels(const int32_t* labels, int64_t n, int64_t classes,
                               unsigned long long* first_bad, cudaStream_t stream);
// Per row i of logits [n, classes]: lse = log-sum-exp of the row, loss[i] = lse - z[i, y_i],
// dlogits[i, j] = grad_scale * (exp(z[i, j] - lse) - [j == y_i]). The labels need not have been
// checked yet (the CUDA Backend's check is deferred): a row whose label is outside [0, classes)
// reads no logit at the label, gets loss NaN and an all-zero dlogits row. dlogits may alias logits.
void launch_softmax_xent(const float* logits, const int32_t* labels, float grad_scale, float* loss,
                         float* dlogits, int64_t n, int64_t classes, cudaStream_t stream);

// ---- optimizers.cu ----------------------------------------------------------------------------
// math::sgd_step per element; velocity may be nullptr only when p.momentum == 0.
void launch_sgd_update(const math::SgdParams& p, float* param, const float* grad, float* velocity,
                       int64_t n, cudaStream_t stream);
// math::adam_step per element (p.bc1, p.bc2 set by the caller for the current step).
void launch_adam_update(const math::AdamParams& p, float* param, const float* grad, float* m,
                        float* v, int64_t n, cudaStream_t stream);

// ---- lstm_weights.cu --------------------------------------------------------------------------
// LSTM weights between the canonical layout and cuDNN's weight space, in one launch. table
// [entries, 3] (device memory): per contiguous block its canonical offset, weight-space offset and
// float count; max_count >= every count. to_cudnn: canonical -> space, else space -> canonical.
// Blocks must not overlap on the destination side.
void launch_lstm_weights_convert(const int64_t* table, int64_t entries, int64_t max_count,
                                 float* canonical, float* space, bool to_cudnn,
                                 cudaStream_t stream);

}  // namespace tessera::cuda
