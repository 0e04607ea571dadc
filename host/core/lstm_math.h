#pragma once
// The LSTM cell's element-wise arithmetic, shared by the host backend (host/backend/host_lstm.cpp)
// and any CUDA kernel that fuses the gates, so the same code is tested on the CPU.
//
// Gates, PyTorch/cuDNN order (i, f, g, o), from pre-activations a_* = x W_ih^T + h W_hh^T + b:
//   i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
//   c = f * c_prev + i * g
//   h = o * tanh(c)
#include "host/core/hd.h"
#include "host/core/math.h"

namespace tessera::math {

// In: the four pre-activations (bias included) and c_prev. Out: the activations overwrite the
// pre-activations (the backward pass needs them), and the new cell and hidden values.
TESSERA_HD void lstm_cell_forward(float& i, float& f, float& g, float& o, float c_prev, float& c,
                                  float& h) {
  i = sigmoid(i);
  f = sigmoid(f);
  g = tanhf(g);
  o = sigmoid(o);
  c = f * c_prev + i * g;
  h = o * tanhf(c);
}

struct LstmCellGrads {
  float di, df, dg, do_;  // gradients of the pre-activations
  float dc_prev;
};

// From the saved activations (i, f, g, o), the cell values c_prev and c, the gradient reaching h
// (from above and from the next step) and the gradient reaching c from the next step.
TESSERA_HD LstmCellGrads lstm_cell_backward(float i, float f, float g, float o, float c_prev,
                                            float c, float dh, float dc_next) {
  const float tc = tanhf(c);
  const float dc = dc_next + dh * o * (1.f - tc * tc);
  LstmCellGrads r;
  r.di = dc * g * i * (1.f - i);
  r.df = dc * c_prev * f * (1.f - f);
  r.dg = dc * i * (1.f - g * g);
  r.do_ = dh * tc * o * (1.f - o);
  r.dc_prev = dc * f;
  return r;
}

}  // namespace tessera::math
