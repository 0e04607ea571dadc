#pragma once
// A dense tower (a stack of fully connected layers) on a Backend, forward and backward, as the
// table models (DCN-V2, Wide & Deep) compose it: layer i is y = act(x W_i + b_i), W_i [in, out]
// named "<prefix><i>.weight", b_i [out] "<prefix><i>.bias", the model's activation on every layer
// but the last (last_act), and optionally inverted dropout after every layer but the last.
// Initialisation as the DLRM's towers: He-uniform before relu, Xavier-uniform otherwise, biases 0.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/mlp.h"
#include "host/model/parameter.h"

namespace tessera {

struct DenseTowerSpec {
  int64_t in = 0;
  std::vector<int64_t> widths;  // one layer each; empty: the tower is the identity
  Activation activation = Activation::Relu;
  Activation last_act = Activation::None;
  float dropout = 0.f;  // after every layer but the last
  std::string prefix;   // parameter names
};

class DenseTower {
 public:
  DenseTower() = default;
  DenseTower(Backend& backend, const DenseTowerSpec& spec, uint64_t seed, int64_t max_batch);

  // x [B, in] on the backend -> [B, out()] (x itself when the tower is empty). The output stays
  // valid until the next forward.
  Tensor forward(const Tensor& x, Mode mode, uint64_t dropout_seed);
  // dy [B, out()] for the last forward of x: weight and bias gradients overwritten; returns dx
  // [B, in] (in the tower's scratch) when want_dx, else an undefined tensor.
  Tensor backward(const Tensor& x, const Tensor& dy, bool want_dx);

  int64_t out() const { return widths_.empty() ? in_ : widths_.back(); }
  bool empty() const { return layers_.empty(); }
  std::vector<Parameter*> parameters();
  int64_t parameter_count() const;
  // The weights a tower of `spec` has, by name and shape (what the model artefact checks).
  static std::vector<std::pair<std::string, Shape>> weight_shapes(const DenseTowerSpec& spec);

 private:
  struct Layer {
    Parameter w, b;  // [in, out], [out]
    Activation act = Activation::None;
    bool dropout = false;
    Tensor h, a, dh;  // [max_batch, out]: post-activation, post-dropout (== h without), grad
  };
  Backend* backend_ = nullptr;
  int64_t in_ = 0;
  std::vector<int64_t> widths_;
  float dropout_ = 0.f;
  uint64_t dropout_seed_ = 0;
  std::vector<Layer> layers_;
  Tensor dx_;  // [max_batch * widest input] scratch for the backward
};

}  // namespace tessera
