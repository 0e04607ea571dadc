#pragma once
// The behaviour MLP (host/model/mlp.h) on sparse rows (libSVM / libFM, sparse_input.h), without
// a densified input: the first layer's product x W0 over a row's nonzeros is an embedding bag of
// W0's rows with the values as per-sample weights (embeddings/bag_ops.h, sum pooling), on any
// backend. The model is the dense MLP's: the same parameters ("dense<i>.weight" [in, out],
// ".bias"), initialised from the seed with the same draws, W0 [features, H0] a dense parameter of
// the optimizer (its gradient is zero but for the rows the batch touched), so a run equals the
// densified MLP's up to the order of float sums.
#include <cstdint>
#include <memory>
#include <vector>

#include "embeddings/bag_ops.h"
#include "host/backend/backend.h"
#include "host/model/mlp.h"
#include "host/model/parameter.h"

namespace tessera {

class SparseMlp {
 public:
  // spec.n_dense: the features (W0's rows); spec.n_cat must be 0.
  SparseMlp(Backend& backend, const MlpSpec& spec, uint64_t seed, int64_t max_batch);
  ~SparseMlp();

  // bags: host tensors, one table (offsets [B + 1]), ids the feature rows, weights the values
  // (undefined: all 1). Kept, and must stay unchanged, until backward. Returns logits [B, 1].
  Tensor forward(const emb::Bags& bags, Mode mode, uint64_t dropout_seed);
  void backward(const Tensor& dlogits);

  std::vector<Parameter*> parameters();
  int64_t parameter_count() const;
  Backend& backend() { return backend_; }
  const MlpSpec& spec() const { return spec_; }

 private:
  struct Layer {
    Parameter w, b;
    Activation act = Activation::None;
    Tensor h, a, dh;  // [max_batch, out]
  };
  Backend& backend_;
  MlpSpec spec_;
  int64_t max_batch_;
  std::vector<Layer> layers_;
  emb::TableLayout layout_;  // W0 as one table [features, H0]
  std::unique_ptr<emb::BagOps> ops_;
  emb::IdWarnState warn_;
  emb::Bags staged_;
  emb::ResolvedBags resolved_;
  Tensor da_;
  int64_t batch_ = 0;
  uint64_t dropout_seed_ = 0;
  Mode mode_ = Mode::Eval;
};

}  // namespace tessera
