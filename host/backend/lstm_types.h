#pragma once
// The LSTM op's description and its canonical weight layout (host/backend/backend.h declares the
// op itself).
//
// Canonical weights: ONE flat f32 tensor [P], the concatenation, for layer l = 0..L-1 and, within
// a layer, direction d = 0 (forward in time), 1 (reverse; bidirectional only), of
//   W_ih [4H, I_l]   input weights, I_0 = input_size, I_l = D*H for l >= 1
//   W_hh [4H, H]     recurrent weights
//   b_ih [4H]        input bias
//   b_hh [4H]        recurrent bias
// each row-major, with the rows of each in gate order i, f, g, o (blocks of H rows). This is
// PyTorch nn.LSTM's parameters flattened in named_parameters() order, so weights move between
// tessera and PyTorch with one copy; cuDNN's weight space holds the same blocks in another order
// (cuda/cudnn_lstm.cpp converts, block by block, both ways).
#include <cstdint>

namespace tessera {

enum class LstmDirections : uint8_t { Unidirectional = 1, Bidirectional = 2 };
enum class LstmMode : uint8_t { Inference = 0, Training = 1 };

struct LstmConfig {
  int64_t input_size = 0;   // I
  int64_t hidden_size = 0;  // H
  int64_t num_layers = 1;   // L
  LstmDirections directions = LstmDirections::Unidirectional;
  // Inverted dropout on the input of layers 1..L-1 (the output of the layer below), training
  // only. Host: element e of layer l's input is kept iff
  // math::dropout_keep(lstm_dropout_seed(dropout_seed, l), e, dropout). CUDA: cuDNN's own
  // generator (seeded once per backend from the first dropout_seed), so masks differ between
  // backends; parity is tested with dropout 0.
  float dropout = 0.f;
  uint64_t dropout_seed = 0;

  int dirs() const { return directions == LstmDirections::Bidirectional ? 2 : 1; }
  int64_t layer_input_size(int64_t layer) const {
    return layer == 0 ? input_size : dirs() * hidden_size;
  }
  bool operator==(const LstmConfig& o) const {
    return input_size == o.input_size && hidden_size == o.hidden_size &&
           num_layers == o.num_layers && directions == o.directions && dropout == o.dropout;
  }
};

// Offsets (in floats) of one (layer, direction)'s blocks inside the canonical weight tensor.
struct LstmWeightOffsets {
  int64_t w_ih = 0;
  int64_t w_hh = 0;
  int64_t b_ih = 0;
  int64_t b_hh = 0;
  int64_t end = 0;  // one past b_hh
};
LstmWeightOffsets lstm_weight_offsets(const LstmConfig& c, int64_t layer, int dir);
int64_t lstm_weight_count(const LstmConfig& c);  // P

// The per-layer dropout seed (so layers get independent masks).
uint64_t lstm_dropout_seed(uint64_t seed, int64_t layer);

}  // namespace tessera
