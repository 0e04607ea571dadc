#pragma once
// The behaviour-prediction MLP: embeddings for the categorical columns (one flat table, the
// columns' vocabularies at row offsets), concatenated with the dense features, then
// Dense -> act -> Dropout ... -> Dense 1 (a logit). Runs on any Backend.
//
// The first layer never materialises the concatenation [dense | emb]: its weight W0
// [n_dense + n_cat*D, H0] is split into row blocks, Z0 = Xd * W0[:n_dense] + E * W0[n_dense:].
#include <cstdint>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera {

struct MlpSpec {
  int64_t n_dense = 0;
  int64_t n_cat = 0;
  int64_t embedding_rows = 0;  // rows of the flat table (all categorical columns together)
  int64_t embedding_dim = 8;
  std::vector<int64_t> hidden = {128, 64};
  float dropout = 0.2f;
  Activation activation = Activation::Relu;
  int64_t input_width() const { return n_dense + n_cat * embedding_dim; }
};

enum class Mode : uint8_t { Train, Eval };

class MlpModel {
 public:
  // Weights are initialised from `seed` (He-uniform for relu, Xavier-uniform otherwise;
  // embeddings N(0, 0.05^2)) on the host, identically for every backend.
  MlpModel(Backend& backend, const MlpSpec& spec, uint64_t seed, int64_t max_batch);

  // dense f32 [B, n_dense] and cat i64 [B, n_cat], host or backend tensors, B <= max_batch.
  // Returns logits [B, 1] on the backend (a view valid until the next forward).
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t dropout_seed);
  // Gradients of every parameter from dlogits [B, 1] (on the backend), for the last forward.
  void backward(const Tensor& dlogits);

  std::vector<Parameter*> parameters();
  const MlpSpec& spec() const { return spec_; }
  Backend& backend() { return backend_; }
  int64_t parameter_count() const;

 private:
  struct Layer {
    Parameter w;  // [in, out]
    Parameter b;  // [out]
    Activation act;
    Tensor h;     // [max_batch, out] post-activation
    Tensor a;     // [max_batch, out] post-dropout (== h when no dropout)
    Tensor dh;    // [max_batch, out]
  };
  Backend& backend_;
  MlpSpec spec_;
  int64_t max_batch_;
  Parameter table_;  // [embedding_rows, D]
  std::vector<Layer> layers_;  // hidden layers then the output layer
  Tensor dense_in_, cat_in_, emb_out_, demb_, da_;
  int64_t batch_ = 0;
  uint64_t dropout_seed_ = 0;
  Mode mode_ = Mode::Eval;
};

}  // namespace tessera
