#pragma once
// A convolutional classifier built from a layer list (the image config's "model.layers"), over
// the Backend ops: conv2d, pool2d, batchnorm, bias_act (ReLU), gemm (dense), dropout; the loss
// (softmax cross-entropy) is the caller's. A final dense layer to `classes` logits is always
// appended after the listed layers.
//
// Activations are NCHW; `flatten` turns [B, C, H, W] into [B, C*H*W] (a view, no copy); dense
// layers need a flat input (a dense after a 4-D layer flattens implicitly).
//
// Per-frame models (video clips): `frames_to_batch`, only as the first layer, reads the input's
// C channels as C frames of one clip and folds them into the batch, [B, T, H, W] ->
// [B*T, 1, H, W] (a view), so the layers after it run on every frame alike with shared weights;
// a later `temporal_avgpool` / `temporal_maxpool` turns [B*T, ...] back into one feature vector
// per clip, [B, F] with F the per-frame features flattened: the mean / maximum over the T frames.
// The pooling is the pool2d op on the [B, 1, T, F] view with a (T, 1) window, so its backward
// and every backend come for free. A fold needs exactly one temporal pool after it, and a
// temporal pool needs a fold.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/parameter.h"

namespace tessera {

enum class CnnLayerType : uint8_t {
  Conv,
  MaxPool,
  AvgPool,
  GlobalAvgPool,
  BatchNorm,
  Relu,
  Flatten,
  Dense,
  Dropout,
  FramesToBatch,
  TemporalAvgPool,
  TemporalMaxPool
};

struct CnnLayerSpec {
  CnnLayerType type = CnnLayerType::Conv;
  // conv: filters; dense: units
  int64_t units = 0;
  // conv: kernel, stride, padding, dilation, groups; pools: kernel (window), stride, padding
  int64_t kernel = 3, stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;                          // conv / dense
  Activation activation = Activation::None;  // conv / dense, fused after the op
  float p = 0.f;                             // dropout probability
};

struct CnnSpec {
  int64_t channels = 1, height = 28, width = 28;  // input image
  int64_t classes = 10;
  std::vector<CnnLayerSpec> layers;
};

enum class CnnMode : uint8_t { Train, Eval };

// The most values one sample may take in the input or in any layer's output (all its frames
// together): 2^26 floats, 256 MiB. A model asking for more is a Config error before anything is
// allocated (its buffers hold max_batch of them).
constexpr int64_t kCnnMaxLayerValues = int64_t{1} << 26;

class CnnModel {
 public:
  // Checks the whole layer list against the input shape (Error(Config) naming the layer and
  // shapes) before allocating; weights are initialised on the host from `seed` (He-uniform for
  // conv and dense, biases zero, batch-norm gamma 1 / beta 0 / running var 1), identically for
  // every backend.
  CnnModel(Backend& backend, const CnnSpec& spec, uint64_t seed, int64_t max_batch);

  // x f32 [B, C, H, W] (host or backend), B <= max_batch. Returns logits [B, classes] on the
  // backend (a view valid until the next forward). Train mode uses batch statistics (and
  // updates the running ones) and dropout with `dropout_seed`.
  Tensor forward(const Tensor& x, CnnMode mode, uint64_t dropout_seed = 0);
  // Gradients of every parameter from dlogits [B, classes] for the last Train-mode forward.
  void backward(const Tensor& dlogits);

  std::vector<Parameter*> parameters();
  // Everything a saved model needs: parameters and batch-norm running statistics, by name.
  std::vector<std::pair<std::string, Tensor*>> state();
  // The names and shapes state() has for `spec`, without building the model (a model file's
  // header is checked against the tensors it holds before the model is made); Error(Config)
  // as the constructor for a spec it refuses.
  static std::vector<std::pair<std::string, Shape>> state_shapes(const CnnSpec& spec);
  int64_t parameter_count() const;
  const CnnSpec& spec() const { return spec_; }
  Backend& backend() { return backend_; }
  // Per-sample output shape of each layer (without the batch dimension; per frame between a
  // frames_to_batch and its temporal pool), for summaries.
  std::vector<Shape> layer_shapes() const;

 private:
  struct Layer {
    CnnLayerSpec s;
    Shape in, out;  // per-sample shapes
    // Rows of the layer's input / output per input sample: T between a frames_to_batch and its
    // temporal pool, else 1.
    int64_t in_mult = 1, out_mult = 1;
    Conv2dParams conv;
    Pool2dParams pool;
    Parameter w, b;  // conv / dense weights and biases; bn gamma / beta
    Tensor running_mean, running_var, saved_mean, saved_invstd;  // batchnorm
    Tensor y;   // [max_batch, out...] output (undefined for flatten: a view of the input)
    Tensor dz;  // [max_batch, out...] gradient before the fused activation (conv / dense)
    Tensor dx;  // [max_batch, in...] gradient w.r.t. the input (undefined for the first layer)
    std::string name;
  };
  Tensor batch_view(const Tensor& t, const Shape& per_sample, int64_t b) const;
  // The layer list with every shape worked out (the head appended), nothing allocated.
  static std::vector<Layer> plan(const CnnSpec& spec);

  Backend& backend_;
  CnnSpec spec_;
  int64_t max_batch_;
  std::vector<Layer> layers_;
  Tensor input_;              // [max_batch, C, H, W]
  std::vector<Tensor> acts_;  // inputs of each layer for the last forward (acts_[i] = input of i)
  int64_t batch_ = 0;
  uint64_t dropout_seed_ = 0;
  CnnMode mode_ = CnnMode::Eval;
};

}  // namespace tessera
