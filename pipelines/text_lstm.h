#pragma once
// The LSTM of the text pipelines' models (textclass's classifier, textgen's language model):
// over the embedded tokens, of the shape's hidden size and layer count.
#include "host/backend/lstm_types.h"

namespace tessera {

// Shape: embedding_dim, hidden_size and num_layers (ClassifierShape, LmShape).
template <typename Shape>
LstmConfig text_lstm(const Shape& s, LstmDirections directions, float dropout) {
  LstmConfig c;
  c.input_size = s.embedding_dim;
  c.hidden_size = s.hidden_size;
  c.num_layers = s.num_layers;
  c.directions = directions;
  c.dropout = dropout;
  return c;
}

}  // namespace tessera
