// The host backend's LSTM (the specification for cuda/cudnn_lstm.cpp). Per layer and direction:
//   1. one GEMM projects the inputs of all T steps at once: G [T*B, 4H] = X [T*B, I_l] W_ih^T;
//   2. per step, one GEMM adds the recurrent term: G_t [B, 4H] += h_prev [B, H] W_hh^T;
//   3. the fused gate function (host/core/lstm_math.h, shared with CUDA) adds both biases,
//      activates the gates in place and writes c_t and h_t.
// host_lstm_dnnl.cpp is the same op on oneDNN's LSTM primitive; host_lstm_impl() picks one
// (host/backend/host_lstm_impl.h).
//
// Reserve layout (f32), per layer l in order:
//   [l >= 1 and dropout > 0]  x_l   [T, B, D*H]  the dropped-out input of layer l
//   [l <  L-1]                y_l   [T, B, D*H]  layer l's output (the top layer's is io.y)
//   per direction d:          gates [T, B, 4H]   activations i, f, g, o
//                             cells [T, B, H]    c_t
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "host/backend/host_backend.h"
#include "host/backend/host_lstm_impl.h"
#include "host/backend/lstm_reserve_layout.h"
#include "host/core/lstm_math.h"

namespace tessera {

namespace {

// The per-step work (one [B, 4H] x [H] GEMM and the gate function) runs on the calling thread:
// it is a chain of small dependent ops, and a thread barrier per step costs more than the step on
// a busy 2-core machine (measured: 8.9k tokens/s with per-step work serial, 1.2k with it spread
// over 2 threads while other jobs ran). The batched GEMMs (input projection, weight gradients,
// input gradients) keep every thread.
class SerialScope {
 public:
  SerialScope() : threads_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SerialScope() { omp_set_num_threads(threads_); }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int threads_;
};

struct LayerReserve {
  float* x = nullptr;  // dropped input (null: the input is the layer below's output as is)
  float* y = nullptr;  // output (null for the top layer: io.y)
  float* gates[2] = {nullptr, nullptr};
  float* cells[2] = {nullptr, nullptr};
};

// Floats the reserve needs; with `base`, also fills in each layer's pointers.
int64_t reserve_layout(const LstmConfig& c, bool dropout, int64_t t, int64_t b, float* base,
                       std::vector<LayerReserve>* layers) {
  const int64_t h = c.hidden_size;
  return lstm_reserve_layout(c, dropout, t, b, base, 1, layers,
                             [&](int64_t, ReserveCursor& cursor, LayerReserve& r) {
                               for (int d = 0; d < c.dirs(); ++d) {
                                 r.gates[d] = cursor.take(t * b * 4 * h);
                                 r.cells[d] = cursor.take(t * b * h);
                               }
                             });
}

// Step s of direction d runs time index t.
int64_t time_of(int d, int64_t s, int64_t steps) {
  return d == 0 ? s : steps - 1 - s;
}

// The gradient the caller gives one (layer, direction)'s final state (rows from `srow` of dhn or
// dcn), or zeros when it gives none.
void load_state_grad(const Tensor& grad, int64_t srow, std::vector<float>& out) {
  if (grad.defined())
    std::memcpy(out.data(), grad.data<float>() + srow, out.size() * 4);
  else
    std::fill(out.begin(), out.end(), 0.f);
}

// One step's gate gradients, [B, 4H] into dgt, from the forward's activated gates gt [B, 4H],
// the previous cell cp and this step's ct [B, H], and the output gradient dyt (row stride dh)
// plus the one from the next step (dh_next). dc_next becomes the gradient of the previous cell.
void cell_backward_step(int64_t b, int64_t h, int64_t dh, const float* gt, const float* cp,
                        const float* ct, const float* dyt, const float* dh_next, float* dc_next,
                        float* dgt) {
  const int64_t g4 = 4 * h;
  for (int64_t bi = 0; bi < b; ++bi) {
    const float* row = gt + bi * g4;
    float* drow = dgt + bi * g4;
    for (int64_t j = 0; j < h; ++j) {
      const int64_t e = bi * h + j;
      const math::LstmCellGrads cg =
          math::lstm_cell_backward(row[j], row[h + j], row[2 * h + j], row[3 * h + j], cp[e], ct[e],
                                   dyt[bi * dh + j] + dh_next[e], dc_next[e]);
      drow[j] = cg.di;
      drow[h + j] = cg.df;
      drow[2 * h + j] = cg.dg;
      drow[3 * h + j] = cg.do_;
      dc_next[e] = cg.dc_prev;
    }
  }
}

// Both biases get the column sums of dgates [rows, 4H] (double accumulation: thread-count free).
void bias_grads(const float* dgates, int64_t rows, int64_t g4, const LstmWeightOffsets& o,
                float* dw) {
  std::vector<double> acc(static_cast<size_t>(g4), 0.0);
  for (int64_t rr = 0; rr < rows; ++rr) {
    const float* row = dgates + rr * g4;
    for (int64_t j = 0; j < g4; ++j) acc[j] += row[j];
  }
  for (int64_t j = 0; j < g4; ++j) {
    dw[o.b_ih + j] = static_cast<float>(acc[j]);
    dw[o.b_hh + j] = static_cast<float>(acc[j]);
  }
}

}  // namespace

void lstm_layer_dropout(const LstmConfig& c, int64_t layer, const float* in, float* out,
                        int64_t n) {
  const uint64_t seed = lstm_dropout_seed(c.dropout_seed, layer);
  const float scale = 1.f / (1.f - c.dropout);
  for (int64_t e = 0; e < n; ++e)
    out[e] = math::dropout_keep(seed, static_cast<uint64_t>(e), c.dropout) ? in[e] * scale : 0.f;
}

float* lstm_forward_reserve(LstmMode mode, int64_t need, LstmIo& io, Tensor& scratch) {
  if (mode != LstmMode::Training) {
    scratch = Tensor::host({need});
    return scratch.data<float>();
  }
  if (!io.reserve.defined() || io.reserve.numel() != need || io.reserve.dtype() != DType::F32)
    io.reserve = Tensor::host({need});
  return io.reserve.data<float>();
}

void check_backward_reserve(const LstmIo& io, int64_t need) {
  TESSERA_CHECK(io.reserve.numel() == need && io.reserve.is_host(),
                "LSTM reserve " << io.reserve.describe() << " is not this config's (" << need
                                << " floats): run a Training forward first");
}

int64_t host_lstm_reserve_floats(const LstmConfig& c, int64_t steps, int64_t batch) {
  if (host_lstm_uses_onednn(c, steps, batch)) return dnnl_lstm_reserve_floats(c, steps, batch);
  return reserve_layout(c, lstm_uses_dropout(c, LstmMode::Training), steps, batch, nullptr,
                        nullptr);
}

void HostBackend::lstm_forward_impl(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  if (host_lstm_uses_onednn(c, io.x.dim(0), io.x.dim(1))) return dnnl_lstm_forward(c, mode, io);
  gemm_lstm_forward(c, mode, io);
}

void HostBackend::lstm_backward_impl(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  if (host_lstm_uses_onednn(c, io.x.dim(0), io.x.dim(1))) return dnnl_lstm_backward(c, io, g);
  gemm_lstm_backward(c, io, g);
}

void HostBackend::gemm_lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  const int64_t t_len = io.x.dim(0), b = io.x.dim(1), h = c.hidden_size, g4 = 4 * h;
  const int64_t dh = c.dirs() * h;
  const bool dropout = lstm_uses_dropout(c, mode);

  const int64_t need = reserve_layout(c, dropout, t_len, b, nullptr, nullptr);
  Tensor scratch;
  std::vector<LayerReserve> layers;
  reserve_layout(c, dropout, t_len, b, lstm_forward_reserve(mode, need, io, scratch), &layers);

  const float* w = io.w.data<float>();
  const float* h0 = io.h0.defined() ? io.h0.data<float>() : nullptr;
  const float* c0 = io.c0.defined() ? io.c0.data<float>() : nullptr;
  const std::vector<float> zeros(static_cast<size_t>(b * h), 0.f);

  const float* in = io.x.data<float>();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t il = c.layer_input_size(l);
    LayerReserve& r = layers[l];
    if (r.x) {  // inverted dropout on this layer's input (the output of the layer below)
      lstm_layer_dropout(c, l, in, r.x, t_len * b * il);
      in = r.x;
    }
    float* out = r.y ? r.y : io.y.data<float>();  // [T, B, D*H]
    for (int d = 0; d < c.dirs(); ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      const float* b_ih = w + o.b_ih;
      const float* b_hh = w + o.b_hh;
      const int64_t srow = (l * c.dirs() + d) * b * h;  // this (layer, direction)'s state rows
      float* gates = r.gates[d];
      float* cells = r.cells[d];
      // 1. input projection of every step: gates [T*B, 4H] = in [T*B, il] W_ih^T
      gemm_impl(Transpose::No, Transpose::Yes, t_len * b, g4, il, 1.f, in, il, w + o.w_ih, il, 0.f,
                gates, g4);
      SerialScope serial;
      for (int64_t s = 0; s < t_len; ++s) {
        const int64_t t = time_of(d, s, t_len);
        float* gt = gates + t * b * g4;
        // h_prev: the previous step's output columns of this direction, or h0.
        const float* hp;
        int64_t ldh;
        const float* cp;
        if (s == 0) {
          hp = h0 ? h0 + srow : zeros.data();
          ldh = h;
          cp = c0 ? c0 + srow : zeros.data();
        } else {
          const int64_t tp = time_of(d, s - 1, t_len);
          hp = out + tp * b * dh + d * h;
          ldh = dh;
          cp = cells + tp * b * h;
        }
        // 2. recurrent term: gates_t [B, 4H] += h_prev [B, H] W_hh^T
        gemm_impl(Transpose::No, Transpose::Yes, b, g4, h, 1.f, hp, ldh, w + o.w_hh, h, 1.f, gt,
                  g4);
        // 3. fused gates
        float* ct = cells + t * b * h;
        float* ht = out + t * b * dh + d * h;
        const int64_t ldc_prev = h;
        for (int64_t bi = 0; bi < b; ++bi) {
          float* row = gt + bi * g4;
          for (int64_t j = 0; j < h; ++j) {
            float& gi = row[j];
            float& gf = row[h + j];
            float& gg = row[2 * h + j];
            float& go = row[3 * h + j];
            gi += b_ih[j] + b_hh[j];
            gf += b_ih[h + j] + b_hh[h + j];
            gg += b_ih[2 * h + j] + b_hh[2 * h + j];
            go += b_ih[3 * h + j] + b_hh[3 * h + j];
            math::lstm_cell_forward(gi, gf, gg, go, cp[bi * ldc_prev + j], ct[bi * h + j],
                                    ht[bi * dh + j]);
          }
        }
      }
      // Final state: the last step processed (t = T-1 forward, t = 0 reverse).
      const int64_t tl = time_of(d, t_len - 1, t_len);
      if (io.hn.defined()) {
        float* hn = io.hn.data<float>() + srow;
        for (int64_t bi = 0; bi < b; ++bi)
          std::memcpy(hn + bi * h, out + tl * b * dh + bi * dh + d * h, h * sizeof(float));
      }
      if (io.cn.defined())
        std::memcpy(io.cn.data<float>() + srow, cells + tl * b * h, b * h * sizeof(float));
    }
    in = out;
  }
}

void HostBackend::gemm_lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  const int64_t t_len = io.x.dim(0), b = io.x.dim(1), h = c.hidden_size, g4 = 4 * h;
  const int64_t dh = c.dirs() * h;
  const bool dropout = lstm_uses_dropout(c, LstmMode::Training);
  const int64_t need = reserve_layout(c, dropout, t_len, b, nullptr, nullptr);
  check_backward_reserve(io, need);
  std::vector<LayerReserve> layers;
  reserve_layout(c, dropout, t_len, b, io.reserve.data<float>(), &layers);

  const float* w = io.w.data<float>();
  float* dw = g.dw.data<float>();
  const float* h0 = io.h0.defined() ? io.h0.data<float>() : nullptr;
  const float* c0 = io.c0.defined() ? io.c0.data<float>() : nullptr;
  const std::vector<float> zeros(static_cast<size_t>(b * h), 0.f);

  std::vector<float> dgates(static_cast<size_t>(t_len * b * g4));
  std::vector<float> dh_next(static_cast<size_t>(b * h)), dc_next(static_cast<size_t>(b * h));
  // The gradient reaching the current layer's output [T, B, D*H], and the one its input gets.
  std::vector<float> dout(g.dy.data<float>(), g.dy.data<float>() + t_len * b * dh);
  std::vector<float> din;

  for (int64_t l = c.num_layers - 1; l >= 0; --l) {
    const int64_t il = c.layer_input_size(l);
    const LayerReserve& r = layers[l];
    const float* out = r.y ? r.y : io.y.data<float>();
    // This layer's input as the forward saw it.
    const float* in = l == 0 ? io.x.data<float>() : (r.x ? r.x : layers[l - 1].y);
    if (l > 0) din.assign(static_cast<size_t>(t_len * b * il), 0.f);
    float* dinp = l == 0 ? g.dx.data<float>() : din.data();
    for (int d = 0; d < c.dirs(); ++d) {
      const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
      const int64_t srow = (l * c.dirs() + d) * b * h;
      const float* gates = r.gates[d];
      const float* cells = r.cells[d];
      load_state_grad(g.dhn, srow, dh_next);
      load_state_grad(g.dcn, srow, dc_next);

      {  // the step loop: serial (see SerialScope)
        SerialScope serial;
        for (int64_t s = t_len - 1; s >= 0; --s) {
          const int64_t t = time_of(d, s, t_len);
          const float* cp =
              s == 0 ? (c0 ? c0 + srow : zeros.data()) : cells + time_of(d, s - 1, t_len) * b * h;
          const float* gt = gates + t * b * g4;
          const float* ct = cells + t * b * h;
          const float* dyt = dout.data() + t * b * dh + d * h;
          float* dgt = dgates.data() + t * b * g4;
          cell_backward_step(b, h, dh, gt, cp, ct, dyt, dh_next.data(), dc_next.data(), dgt);
          // dh_prev [B, H] = dgates_t [B, 4H] W_hh [4H, H]
          gemm_impl(Transpose::No, Transpose::No, b, h, g4, 1.f, dgt, g4, w + o.w_hh, h, 0.f,
                    dh_next.data(), h);
        }
      }
      if (g.dh0.defined()) std::memcpy(g.dh0.data<float>() + srow, dh_next.data(), b * h * 4);
      if (g.dc0.defined()) std::memcpy(g.dc0.data<float>() + srow, dc_next.data(), b * h * 4);

      // dW_hh [4H, H] = sum_t dgates_t^T h_prev_t. Steps after the first read h_prev from this
      // direction's output columns (forward: y[t-1] for t >= 1; reverse: y[t+1] for t <= T-2),
      // the first step from h0.
      const int64_t inner = (t_len - 1) * b;
      const float* dg_inner = dgates.data() + (d == 0 ? b * g4 : 0);
      const float* h_inner = out + (d == 0 ? 0 : b * dh) + d * h;
      gemm_impl(Transpose::Yes, Transpose::No, g4, h, inner, 1.f, dg_inner, g4, h_inner, dh, 0.f,
                dw + o.w_hh, h);
      if (h0) {
        const int64_t tf = time_of(d, 0, t_len);
        gemm_impl(Transpose::Yes, Transpose::No, g4, h, b, 1.f, dgates.data() + tf * b * g4, g4,
                  h0 + srow, h, 1.f, dw + o.w_hh, h);
      }
      // dW_ih [4H, il] = dgates^T [4H, T*B] in [T*B, il]
      gemm_impl(Transpose::Yes, Transpose::No, g4, il, t_len * b, 1.f, dgates.data(), g4, in, il,
                0.f, dw + o.w_ih, il);
      bias_grads(dgates.data(), t_len * b, g4, o, dw);
      // d(in) [T*B, il] (+)= dgates [T*B, 4H] W_ih [4H, il]
      gemm_impl(Transpose::No, Transpose::No, t_len * b, il, g4, 1.f, dgates.data(), g4, w + o.w_ih,
                il, d == 0 ? 0.f : 1.f, dinp, il);
    }
    if (l > 0) {
      // Back through the dropout between layer l-1 and l: the same mask and scale.
      dout.assign(din.begin(), din.end());
      if (r.x)
        lstm_layer_dropout(c, l, dout.data(), dout.data(), static_cast<int64_t>(dout.size()));
    }
  }
}

}  // namespace tessera
