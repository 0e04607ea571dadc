#include "host/model/cnn.h"

#include <cmath>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>

#include "host/core/checked_size.h"
#include "host/core/enum_table.h"
#include "host/core/math.h"

namespace tessera {

namespace {

// A parameter holding `value`, with a gradient of its shape (the optimizer adds its state).
Parameter parameter(Backend& backend, std::string name, Tensor value) {
  Tensor grad = backend.empty(value.shape());
  return {std::move(name), std::move(value), std::move(grad), {}, {}};
}

const char* type_name(CnnLayerType t) {
  static constexpr const char* kNames[] = {
      "conv",    "maxpool", "avgpool", "global_avgpool",  "batchnorm",        "relu",
      "flatten", "dense",   "dropout", "frames_to_batch", "temporal_avgpool", "temporal_maxpool"};
  return enum_entry<CnnLayerType::TemporalMaxPool>(t, kNames, "?");
}

Shape with_batch(int64_t b, const Shape& per_sample) {
  Shape s{b};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

Tensor init_uniform(const Shape& shape, float bound, std::mt19937_64& rng) {
  Tensor t = Tensor::host(shape);
  std::uniform_real_distribution<float> u(-bound, bound);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Tensor host_filled(const Shape& shape, float v) {
  Tensor t = Tensor::host(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v;
  return t;
}

// The rows of B clips' T frames' F features, [B*T, F], as the NCHW tensor [B, 1, T, F]: a
// (T, 1) pooling window then pools each clip's frames, feature by feature.
Shape temporal_view(int64_t b, int64_t t, int64_t f) {
  return {b, 1, t, f};
}

// Layers that only reinterpret their input (no buffers, no op).
bool is_view(CnnLayerType t) {
  return t == CnnLayerType::Flatten || t == CnnLayerType::FramesToBatch;
}

uint64_t layer_seed(uint64_t seed, size_t layer) {
  return math::mix64(seed * 31 + layer + 1);
}

BatchNormParams bn_params(CnnMode mode) {
  BatchNormParams p;
  p.mode = mode == CnnMode::Train ? BatchNormMode::Training : BatchNormMode::Inference;
  return p;
}

// Error(Config) for an input shape or class count no model can have.
void check_input(const CnnSpec& spec) {
  if (spec.channels < 1 || spec.height < 1 || spec.width < 1 || spec.classes < 2)
    TESSERA_THROW(Config, "CNN input " << spec.channels << "x" << spec.height << "x" << spec.width
                                       << " with " << spec.classes
                                       << " classes: every extent must be >= 1, classes >= 2");
  const std::optional<uint64_t> input = checked_product({spec.channels, spec.height, spec.width});
  if (!input || *input > static_cast<uint64_t>(kCnnMaxLayerValues))
    TESSERA_THROW(Config, "CNN input " << spec.channels << "x" << spec.height << "x" << spec.width
                                       << " is more than " << kCnnMaxLayerValues
                                       << " values per sample");
}

// A temporal pool over the `mult` frames of each sample, each frame's `cur` values flattened:
// fills `pool` and returns the per-sample output shape [F].
Shape plan_temporal_pool(CnnLayerType type, const Shape& cur, int64_t mult, Pool2dParams& pool) {
  const int64_t f = shape_numel(cur);
  pool.kind = type == CnnLayerType::TemporalMaxPool ? PoolKind::Max : PoolKind::Average;
  pool.window_h = pool.stride_h = mult;
  pool.window_w = pool.stride_w = 1;
  pool.pad_h = pool.pad_w = 0;
  const Shape ys = pool2d_output_shape(pool, {1, 1, mult, f});
  TESSERA_CHECK(ys == Shape({1, 1, 1, f}), "pools to " << shape_str(ys));
  return {f};
}

// Fills `conv` from the layer spec; returns the per-sample output [C', H', W'] of the [C, H, W]
// input `cur` (checked by the caller).
Shape plan_conv(const CnnLayerSpec& s, const Shape& cur, Conv2dParams& conv) {
  conv.stride_h = conv.stride_w = s.stride;
  conv.pad_h = conv.pad_w = s.padding;
  conv.dilation_h = conv.dilation_w = s.dilation;
  conv.groups = s.groups;
  const Shape ws{s.units, cur[0] / std::max<int64_t>(1, s.groups), s.kernel, s.kernel};
  const Shape ys = conv2d_output_shape(conv, with_batch(1, cur), ws);
  return Shape(ys.begin() + 1, ys.end());
}

// Max, average or global average pooling: fills `pool`; returns the per-sample output shape.
Shape plan_pool(const CnnLayerSpec& s, const Shape& cur, Pool2dParams& pool) {
  TESSERA_CHECK(cur.size() == 3, "needs a [C, H, W] input, got " << shape_str(cur));
  pool.kind = s.type == CnnLayerType::MaxPool ? PoolKind::Max : PoolKind::Average;
  if (s.type == CnnLayerType::GlobalAvgPool) {
    pool.window_h = cur[1];
    pool.window_w = cur[2];
    pool.stride_h = pool.stride_w = 1;
    pool.pad_h = pool.pad_w = 0;
  } else {
    pool.window_h = pool.window_w = s.kernel;
    pool.stride_h = pool.stride_w = s.stride;
    pool.pad_h = pool.pad_w = s.padding;
  }
  const Shape ys = pool2d_output_shape(pool, with_batch(1, cur));
  return Shape(ys.begin() + 1, ys.end());
}

}  // namespace

std::vector<CnnModel::Layer> CnnModel::plan(const CnnSpec& spec) {
  check_input(spec);
  std::vector<Layer> layers;
  std::vector<CnnLayerSpec> all = spec.layers;
  CnnLayerSpec head;
  head.type = CnnLayerType::Dense;
  head.units = spec.classes;
  all.push_back(head);

  Shape cur{spec.channels, spec.height, spec.width};
  int64_t mult = 1;     // rows per input sample at this point (T inside a fold)
  bool folded = false;  // a frames_to_batch has been seen
  bool pooled = false;  // ... and its temporal pool
  for (size_t i = 0; i < all.size(); ++i) {
    Layer l;
    l.s = all[i];
    const bool is_head = i + 1 == all.size();
    l.name = is_head ? std::string("output")
                     : "layers[" + std::to_string(i) + "] (" + type_name(l.s.type) + ")";
    l.in = cur;
    l.in_mult = mult;
    try {
      if (is_head && folded && !pooled)
        TESSERA_THROW(Config,
                      "the frames folded into the batch by layers[0] (frames_to_batch) "
                      "are never pooled: add a temporal_avgpool or temporal_maxpool");
      switch (l.s.type) {
        case CnnLayerType::FramesToBatch:
          TESSERA_CHECK(i == 0,
                        "must be the first layer (it reads the input's channels as frames)");
          TESSERA_CHECK(cur.size() == 3, "needs a [T, H, W] input, got " << shape_str(cur));
          l.out = {1, cur[1], cur[2]};
          mult = cur[0];
          folded = true;
          break;
        case CnnLayerType::TemporalAvgPool:
        case CnnLayerType::TemporalMaxPool: {
          TESSERA_CHECK(folded,
                        "needs a frames_to_batch first layer (there are no frames to pool)");
          TESSERA_CHECK(!pooled, "the frames were already pooled by an earlier temporal pool");
          l.out = plan_temporal_pool(l.s.type, cur, mult, l.pool);
          mult = 1;
          pooled = true;
          break;
        }
        case CnnLayerType::Conv:
          TESSERA_CHECK(cur.size() == 3, "needs a [C, H, W] input, got " << shape_str(cur));
          TESSERA_CHECK(l.s.units >= 1, "needs filters >= 1");
          l.out = plan_conv(l.s, cur, l.conv);
          break;
        case CnnLayerType::MaxPool:
        case CnnLayerType::AvgPool:
        case CnnLayerType::GlobalAvgPool:
          l.out = plan_pool(l.s, cur, l.pool);
          break;
        case CnnLayerType::BatchNorm:
        case CnnLayerType::Relu:
        case CnnLayerType::Dropout:
          l.out = cur;
          break;
        case CnnLayerType::Flatten:
          l.out = {shape_numel(cur)};
          break;
        case CnnLayerType::Dense:
          TESSERA_CHECK(l.s.units >= 1, "needs units >= 1");
          l.in = {shape_numel(cur)};  // implicit flatten
          l.out = {l.s.units};
          break;
      }
    } catch (const Error& e) {
      TESSERA_THROW(Config,
                    "model " << l.name << " on input " << shape_str(cur) << ": " << e.what());
    }
    cur = l.out;
    l.out_mult = mult;
    // Per sample (all its frames), each layer's output: bounded, so a model never asks for
    // buffers of max_batch x an unbounded size (a model file's header says what it is).
    const std::optional<uint64_t> values = checked_product(l.out);
    if (!values || *values > static_cast<uint64_t>(kCnnMaxLayerValues / mult))
      TESSERA_THROW(Config, "model " << l.name << " outputs " << shape_str(l.out)
                                     << (mult > 1 ? " per frame" : "") << ": more than "
                                     << kCnnMaxLayerValues << " values per sample");
    layers.push_back(std::move(l));
  }
  return layers;
}

CnnModel::CnnModel(Backend& backend, const CnnSpec& spec, uint64_t seed, int64_t max_batch)
    : backend_(backend), spec_(spec), max_batch_(max_batch) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  // ---- shapes first: the whole list is checked before anything is allocated ----
  layers_ = plan(spec);

  // ---- parameters and buffers ----
  std::mt19937_64 rng(seed);
  input_ = backend.empty(with_batch(max_batch, {spec.channels, spec.height, spec.width}));
  bool first = true;  // no layer so far computes anything (views only)
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    const bool is_head = i + 1 == layers_.size();
    const std::string prefix = is_head ? "output" : "layers." + std::to_string(i);
    switch (l.s.type) {
      case CnnLayerType::Conv: {
        const Shape ws{l.s.units, l.in[0] / l.s.groups, l.s.kernel, l.s.kernel};
        const float fan_in = static_cast<float>(ws[1] * ws[2] * ws[3]);
        l.w = parameter(backend, prefix + ".conv.weight",
                        backend.to_device(init_uniform(ws, std::sqrt(6.f / fan_in), rng)));
        if (l.s.bias) l.b = parameter(backend, prefix + ".conv.bias", backend.empty({l.s.units}));
        l.dz = backend.empty(with_batch(max_batch * l.out_mult, l.out));
        break;
      }
      case CnnLayerType::Dense: {
        const Shape ws{l.in[0], l.s.units};
        // He-uniform for hidden layers, Xavier-uniform for the logits.
        const float bound = is_head ? std::sqrt(6.f / static_cast<float>(ws[0] + ws[1]))
                                    : std::sqrt(6.f / static_cast<float>(ws[0]));
        l.w = parameter(backend, prefix + ".dense.weight",
                        backend.to_device(init_uniform(ws, bound, rng)));
        if (l.s.bias) l.b = parameter(backend, prefix + ".dense.bias", backend.empty({l.s.units}));
        l.dz = backend.empty(with_batch(max_batch * l.out_mult, l.out));
        break;
      }
      case CnnLayerType::BatchNorm: {
        const int64_t c = l.in[0];
        l.w = parameter(backend, prefix + ".bn.gamma", backend.to_device(host_filled({c}, 1.f)));
        l.b = parameter(backend, prefix + ".bn.beta", backend.empty({c}));
        l.running_mean = backend.empty({c});
        l.running_var = backend.to_device(host_filled({c}, 1.f));
        l.saved_mean = backend.empty({c});
        l.saved_invstd = backend.empty({c});
        break;
      }
      default:
        break;
    }
    if (!is_view(l.s.type)) l.y = backend.empty(with_batch(max_batch * l.out_mult, l.out));
    // The input gradient of the first layer that computes anything is needed only by a batch
    // norm (its op computes it).
    if (!is_view(l.s.type) && (!first || l.s.type == CnnLayerType::BatchNorm))
      l.dx = backend.empty(with_batch(max_batch * l.in_mult, l.in));
    if (!is_view(l.s.type)) first = false;
  }
}

Tensor CnnModel::batch_view(const Tensor& t, const Shape& per_sample, int64_t b) const {
  return t.rows(0, b).reshape(with_batch(b, per_sample));
}

std::vector<Parameter*> CnnModel::parameters() {
  std::vector<Parameter*> ps;
  for (Layer& l : layers_) {
    if (l.w.value.defined()) ps.push_back(&l.w);
    if (l.b.value.defined()) ps.push_back(&l.b);
  }
  return ps;
}

std::vector<std::pair<std::string, Tensor*>> CnnModel::state() {
  std::vector<std::pair<std::string, Tensor*>> st;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    if (l.w.value.defined()) st.emplace_back(l.w.name, &l.w.value);
    if (l.b.value.defined()) st.emplace_back(l.b.name, &l.b.value);
    if (l.running_mean.defined()) {
      const std::string prefix = "layers." + std::to_string(i) + ".bn.";
      st.emplace_back(prefix + "running_mean", &l.running_mean);
      st.emplace_back(prefix + "running_var", &l.running_var);
    }
  }
  return st;
}

std::vector<std::pair<std::string, Shape>> CnnModel::state_shapes(const CnnSpec& spec) {
  // The constructor's allocation, names and shapes only (state() lists them in this order).
  const std::vector<Layer> layers = plan(spec);
  std::vector<std::pair<std::string, Shape>> st;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    const std::string prefix = i + 1 == layers.size() ? "output" : "layers." + std::to_string(i);
    switch (l.s.type) {
      case CnnLayerType::Conv:
        st.emplace_back(prefix + ".conv.weight",
                        Shape{l.s.units, l.in[0] / l.s.groups, l.s.kernel, l.s.kernel});
        if (l.s.bias) st.emplace_back(prefix + ".conv.bias", Shape{l.s.units});
        break;
      case CnnLayerType::Dense:
        st.emplace_back(prefix + ".dense.weight", Shape{l.in[0], l.s.units});
        if (l.s.bias) st.emplace_back(prefix + ".dense.bias", Shape{l.s.units});
        break;
      case CnnLayerType::BatchNorm:
        for (const char* part : {".bn.gamma", ".bn.beta", ".bn.running_mean", ".bn.running_var"})
          st.emplace_back(prefix + part, Shape{l.in[0]});
        break;
      default:
        break;
    }
  }
  return st;
}

int64_t CnnModel::parameter_count() const {
  int64_t n = 0;
  for (const Layer& l : layers_) {
    if (l.w.value.defined()) n += l.w.value.numel();
    if (l.b.value.defined()) n += l.b.value.numel();
  }
  return n;
}

std::vector<Shape> CnnModel::layer_shapes() const {
  std::vector<Shape> s;
  for (const Layer& l : layers_) s.push_back(l.out);
  return s;
}

Tensor CnnModel::forward(const Tensor& x, CnnMode mode, uint64_t dropout_seed) {
  const Shape want{spec_.channels, spec_.height, spec_.width};
  TESSERA_CHECK(x.rank() == 4 && Shape(x.shape().begin() + 1, x.shape().end()) == want,
                "CNN input " << x.describe() << ", expected [B, " << want[0] << ", " << want[1]
                             << ", " << want[2] << "]");
  const int64_t b = x.dim(0);
  TESSERA_CHECK(b >= 1 && b <= max_batch_, "batch of " << b << " images outside [1, " << max_batch_
                                                       << "] (the model's max batch)");
  batch_ = b;
  mode_ = mode;
  dropout_seed_ = dropout_seed;
  Tensor cur = batch_view(input_, want, b);
  backend_.copy(x, cur);
  acts_.assign(layers_.size(), Tensor());
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    const int64_t bi = b * l.in_mult, bo = b * l.out_mult;  // rows in and out (frames folded)
    if (l.s.type == CnnLayerType::Dense) cur = cur.reshape({bi, l.in[0]});
    acts_[i] = cur;
    if (is_view(l.s.type)) {
      cur = cur.reshape(with_batch(bo, l.out));
      continue;
    }
    Tensor y = batch_view(l.y, l.out, bo);
    switch (l.s.type) {
      case CnnLayerType::Conv:
        backend_.conv2d_forward(l.conv, cur, l.w.value, l.b.value, y);
        if (l.s.activation != Activation::None)
          backend_.bias_act_forward(l.s.activation, y, Tensor(), y);
        break;
      case CnnLayerType::Dense:
        backend_.gemm(Transpose::No, Transpose::No, 1.f, cur, l.w.value, 0.f, y);
        backend_.bias_act_forward(l.s.activation, y, l.b.value, y);
        break;
      case CnnLayerType::MaxPool:
      case CnnLayerType::AvgPool:
      case CnnLayerType::GlobalAvgPool:
        backend_.pool2d_forward(l.pool, cur, y);
        break;
      case CnnLayerType::BatchNorm: {
        Tensor none;
        Tensor& sm = mode == CnnMode::Train ? l.saved_mean : none;
        Tensor& si = mode == CnnMode::Train ? l.saved_invstd : none;
        backend_.batchnorm_forward(bn_params(mode), cur, l.w.value, l.b.value, l.running_mean,
                                   l.running_var, y, sm, si);
        break;
      }
      case CnnLayerType::Relu:
        backend_.bias_act_forward(Activation::Relu, cur, Tensor(), y);
        break;
      case CnnLayerType::Dropout:
        if (mode == CnnMode::Train && l.s.p > 0.f)
          backend_.dropout_forward({l.s.p, layer_seed(dropout_seed, i)}, cur, y);
        else
          backend_.copy(cur, y);
        break;
      case CnnLayerType::TemporalAvgPool:
      case CnnLayerType::TemporalMaxPool: {
        Tensor yv = y.reshape(temporal_view(b, 1, l.out[0]));
        backend_.pool2d_forward(l.pool, cur.reshape(temporal_view(b, l.in_mult, l.out[0])), yv);
        break;
      }
      case CnnLayerType::Flatten:
      case CnnLayerType::FramesToBatch:
        break;
    }
    cur = y;
  }
  return cur;  // [B, classes]
}

void CnnModel::backward(const Tensor& dlogits) {
  TESSERA_CHECK(mode_ == CnnMode::Train, "backward after an evaluation-mode forward");
  const int64_t b = batch_;
  TESSERA_CHECK(dlogits.shape() == Shape({b, spec_.classes}),
                "dlogits " << dlogits.describe() << " for a batch of " << b << " and "
                           << spec_.classes << " classes");
  Tensor dcur = dlogits;
  for (size_t idx = layers_.size(); idx-- > 0;) {
    Layer& l = layers_[idx];
    const bool need_dx = l.dx.defined();
    const int64_t bi = b * l.in_mult, bo = b * l.out_mult;
    if (is_view(l.s.type)) {
      dcur = dcur.reshape(with_batch(bi, l.in));
      continue;
    }
    const Tensor& x = acts_[idx];
    Tensor y = batch_view(l.y, l.out, bo);
    Tensor dx = need_dx ? batch_view(l.dx, l.in, bi) : Tensor();
    switch (l.s.type) {
      case CnnLayerType::Conv: {
        Tensor dz = dcur;
        if (l.s.activation != Activation::None) {
          dz = batch_view(l.dz, l.out, bo);
          Tensor none;
          backend_.bias_act_backward(l.s.activation, y, dcur, dz, none);
        }
        backend_.conv2d_backward(l.conv, x, l.w.value, dz, dx, l.w.grad, l.b.grad);
        break;
      }
      case CnnLayerType::Dense: {
        Tensor dz = batch_view(l.dz, l.out, bo);
        backend_.bias_act_backward(l.s.activation, y, dcur, dz, l.b.grad);
        backend_.gemm(Transpose::Yes, Transpose::No, 1.f, x, dz, 0.f, l.w.grad);
        if (need_dx) backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dz, l.w.value, 0.f, dx);
        break;
      }
      case CnnLayerType::MaxPool:
      case CnnLayerType::AvgPool:
      case CnnLayerType::GlobalAvgPool:
        if (need_dx) backend_.pool2d_backward(l.pool, x, y, dcur, dx);
        break;
      case CnnLayerType::BatchNorm:
        backend_.batchnorm_backward(bn_params(CnnMode::Train), x, dcur, l.w.value, l.saved_mean,
                                    l.saved_invstd, dx, l.w.grad, l.b.grad);
        break;
      case CnnLayerType::Relu:
        if (need_dx) {
          Tensor none;
          backend_.bias_act_backward(Activation::Relu, y, dcur, dx, none);
        }
        break;
      case CnnLayerType::Dropout:
        if (need_dx) {
          if (l.s.p > 0.f)
            backend_.dropout_backward({l.s.p, layer_seed(dropout_seed_, idx)}, dcur, dx);
          else
            backend_.copy(dcur, dx);
        }
        break;
      case CnnLayerType::TemporalAvgPool:
      case CnnLayerType::TemporalMaxPool:
        if (need_dx) {
          const int64_t f = l.out[0];
          Tensor dxv = dx.reshape(temporal_view(b, l.in_mult, f));
          backend_.pool2d_backward(l.pool, x.reshape(temporal_view(b, l.in_mult, f)),
                                   y.reshape(temporal_view(b, 1, f)),
                                   dcur.reshape(temporal_view(b, 1, f)), dxv);
        }
        break;
      case CnnLayerType::Flatten:
      case CnnLayerType::FramesToBatch:
        break;
    }
    if (!need_dx) break;  // the first layer: nothing below needs a gradient
    // A dense layer's dx is flat; the layer below sees its own output shape.
    dcur = idx > 0 ? dx.reshape(with_batch(b * layers_[idx - 1].out_mult, layers_[idx - 1].out))
                   : dx.reshape(with_batch(bi, l.in));
  }
}

}  // namespace tessera
