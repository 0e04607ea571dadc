#pragma once
// The text-generation language model: embedding [V, E] -> LSTM (L layers, H) -> linear [H -> V]
// -> softmax, over token ids (characters or words), on any Backend. Time-major throughout:
// ids [T, B] (flattened t * B + b), logits [T * B, V].
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/math.h"
#include "host/model/parameter.h"

namespace tessera::textgen {

struct LmShape {
  int64_t vocab = 0;
  int64_t embedding_dim = 64;
  int64_t hidden_size = 256;
  int64_t num_layers = 2;
  float dropout = 0.f;         // between LSTM layers, training only
  float output_dropout = 0.f;  // on the top layer's output before the softmax, training only
};

// The recurrent state carried between batches (truncated backpropagation through time: carried
// as values, not differentiated through).
struct LmState {
  Tensor h, c;  // [L, B, H]
};

class LanguageModel {
 public:
  LanguageModel(Backend& backend, const LmShape& shape);
  // Uniform(-1/sqrt(H), 1/sqrt(H)) for the LSTM and output layer (PyTorch's default), N(0, 1)
  // scaled by 0.1 for the embedding; the forget-gate biases start at 1 (a common LSTM choice).
  void init(uint64_t seed);

  const LmShape& shape() const { return shape_; }
  // The parameters' names and shapes for `shape`, as the constructor makes them (a model file is
  // checked against them before a model is built); sizes must be within the config's bounds.
  static std::vector<std::pair<std::string, Shape>> parameter_shapes(const LmShape& shape);
  LstmConfig lstm_config() const;
  std::vector<Parameter*> parameters() { return {&embedding_, &lstm_w_, &out_w_, &out_b_}; }
  LmState zero_state(int64_t batch);

  // One TBPTT segment: ids, targets i64/i32 [T * B] (host tensors). Forward (training mode with
  // `dropout_seed`), loss, backward into the parameters' .grad. `state` is read as h0/c0 and
  // replaced by the final state. Returns the summed loss (nats) over the T * B targets.
  double train_step(const Tensor& ids, const Tensor& targets, int64_t t, int64_t b, LmState& state,
                    uint64_t dropout_seed);
  // Inference over a segment: summed loss over the targets; state carried.
  double eval_segment(const Tensor& ids, const Tensor& targets, int64_t t, int64_t b,
                      LmState& state);
  // Inference: logits of the last step [B, V] (host tensor) after feeding ids [T * B].
  Tensor next_logits(const Tensor& ids, int64_t t, int64_t b, LmState& state);

  // The parameters' values as host tensors, and back (the model artefact).
  std::vector<std::pair<std::string, Tensor>> snapshot();
  void restore(const std::vector<std::pair<std::string, Tensor>>& values);

 private:
  // Runs embedding + LSTM + output layer; fills io and logits_.
  void forward(const Tensor& ids_dev, int64_t t, int64_t b, LmState& state, LstmMode mode,
               uint64_t dropout_seed);
  // The top layer's output [T*B, H] as the output layer sees it: y_drop_ (after the output
  // dropout) when training with one, else io_.y.
  Tensor output_y(LstmMode mode, uint64_t dropout_seed);
  // The output dropout's mask seed: apart from the LSTM's own (inter-layer) dropout seed.
  static uint64_t output_dropout_seed(uint64_t seed) { return math::mix64(seed ^ 0x0D7D40ull); }

  Backend& be_;
  LmShape shape_;
  Parameter embedding_, lstm_w_, out_w_, out_b_;
  // Scratch of the last forward.
  LstmIo io_;
  Tensor emb_out_, logits_, y_drop_;
};

}  // namespace tessera::textgen
