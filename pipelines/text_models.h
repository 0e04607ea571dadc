#pragma once
// What the text pipelines' models (textclass's classifier, textgen's language model) and their
// verbs share: the LSTM over the embedded tokens, of the shape's hidden size and layer count; a
// saved model made ready to run; the text file a predict reads.
#include <fstream>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/backend/lstm_types.h"
#include "host/core/error.h"

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

// A saved model on a backend of `device` ("" : "cpu") with its stored weights. Loaded: the
// pipeline's LoadedModel (`shape`, `tensors`); Model is built from (Backend&, shape).
template <typename Model>
struct RestoredTextModel {
  template <typename Loaded>
  RestoredTextModel(const Loaded& m, const std::string& device)
      : backend(make_backend(device.empty() ? "cpu" : device)), model(*backend, m.shape) {
    model.restore(m.tensors);
  }

  std::unique_ptr<Backend> backend;
  Model model;
};

// The text file `path`, opened to be read as bytes; an Io error when it cannot be.
inline std::ifstream open_text_input(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) TESSERA_THROW(Io, path << ": cannot open for reading");
  return in;
}

}  // namespace tessera
