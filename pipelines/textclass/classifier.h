#pragma once
// The text classifier: embedding [V, E] -> (bi)LSTM (L layers, H) -> pooling over the steps ->
// dropout -> dense [D*H -> C] -> softmax, on any Backend. A batch is B texts of ONE length T
// (text_data.h buckets them), time-major: ids [T * B], so the LSTM never sees padding and
// pooling over all T steps is pooling over the valid steps.
//   mean  average of the top layer's outputs over the T steps
//   max   element-wise maximum over the T steps (the gradient goes to the arg-max step)
//   last  the forward direction's output at T-1, and (bidirectional) the reverse direction's at
//         0: each direction's final state
// Pooling runs on the host over y [T, B, D*H] (copied from a device backend: small next to the
// LSTM); everything else runs on the backend.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera::textclass {

enum class Pooling : uint8_t { Mean = 0, Max = 1, Last = 2 };

struct ClassifierShape {
  int64_t vocab = 0;
  int64_t classes = 2;
  int64_t embedding_dim = 128;
  int64_t hidden_size = 128;
  int64_t num_layers = 1;
  bool bidirectional = true;
  Pooling pooling = Pooling::Max;
  float embedding_dropout = 0.f;  // on the embedded tokens, training only
  float lstm_dropout = 0.f;       // between LSTM layers, training only
  float dropout = 0.f;            // on the pooled vector, training only
};

class TextClassifier {
 public:
  TextClassifier(Backend& backend, const ClassifierShape& shape);
  // The parameters' names and shapes for `shape`, as the constructor makes them (a model file is
  // checked against them before a model is built); sizes must be within the config's bounds.
  static std::vector<std::pair<std::string, Shape>> parameter_shapes(const ClassifierShape& shape);
  // LSTM and dense layer Uniform(-1/sqrt(fan), 1/sqrt(fan)) (PyTorch's default), forget-gate
  // biases 1, embedding N(0, 0.1^2) with the <pad> row zero.
  void init(uint64_t seed);

  const ClassifierShape& shape() const { return shape_; }
  LstmConfig lstm_config() const;
  std::vector<Parameter*> parameters() { return {&embedding_, &lstm_w_, &out_w_, &out_b_}; }

  // One training step's forward and backward: ids i64 [T * B], labels i32 [B] (host tensors).
  // Gradients are overwritten; the loss gradient is scaled by grad_scale (e.g. 1/B). Returns the
  // summed loss; logits (host [B, C]) are left in *logits when given.
  double train_step(const Tensor& ids, const Tensor& labels, int64_t t, int64_t b, float grad_scale,
                    uint64_t dropout_seed, Tensor* logits = nullptr);
  // Inference logits, host [B, C].
  Tensor logits(const Tensor& ids, int64_t t, int64_t b);

  std::vector<std::pair<std::string, Tensor>> snapshot();
  void restore(const std::vector<std::pair<std::string, Tensor>>& values);

 private:
  void forward(const Tensor& ids_dev, int64_t t, int64_t b, LstmMode mode, uint64_t seed);
  void pool(int64_t t, int64_t b);                             // y -> pooled_ (host)
  Tensor unpool(const Tensor& dpooled, int64_t t, int64_t b);  // -> dy [T, B, DH] (device)

  Backend& be_;
  ClassifierShape shape_;
  Parameter embedding_, lstm_w_, out_w_, out_b_;
  // Scratch of the last forward.
  LstmIo io_;
  Tensor emb_, emb_drop_;        // [T, B, E]
  Tensor y_host_;                // [T, B, DH] host view of io_.y
  Tensor pooled_, pooled_drop_;  // [B, DH] device
  std::vector<int32_t> argmax_;  // Max pooling: the step of each pooled element
  Tensor logits_;                // [B, C] device
};

}  // namespace tessera::textclass
