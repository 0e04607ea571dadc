#include "pipelines/behaviour/sparse_mlp.h"

#include <cmath>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

namespace {
// As MlpModel's: the same draws in the same order from the same engine.
Tensor init_uniform(int64_t rows, int64_t cols, float bound, std::mt19937_64& rng) {
  Tensor t = Tensor::host({rows, cols});
  std::uniform_real_distribution<float> u(-bound, bound);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(rng);
  return t;
}
uint64_t layer_seed(uint64_t seed, size_t layer) {
  return math::mix64(seed * 31 + layer + 1);
}
}  // namespace

SparseMlp::SparseMlp(Backend& backend, const MlpSpec& spec, uint64_t seed, int64_t max_batch)
    : backend_(backend), spec_(spec), max_batch_(max_batch) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  TESSERA_CHECK(spec.n_dense > 0 && spec.n_cat == 0,
                "a sparse MLP takes n_dense features and no categorical columns, got "
                    << spec.n_dense << " and " << spec.n_cat);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> widths = spec.hidden;
  widths.push_back(1);
  int64_t in = spec.n_dense, widest = 1;
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    const bool last = i + 1 == widths.size();
    Layer l;
    l.act = last ? Activation::None : spec.activation;
    const float bound = l.act == Activation::Relu ? std::sqrt(6.f / static_cast<float>(in))
                                                  : std::sqrt(6.f / static_cast<float>(in + out));
    l.w.name = "dense" + std::to_string(i) + ".weight";
    l.w.value = backend.to_device(init_uniform(in, out, bound, rng));
    l.w.grad = backend.empty({in, out});
    l.b.name = "dense" + std::to_string(i) + ".bias";
    l.b.value = backend.empty({out});
    l.b.grad = backend.empty({out});
    l.h = backend.empty({max_batch, out});
    l.a = (!last && spec.dropout > 0.f) ? backend.empty({max_batch, out}) : l.h;
    l.dh = backend.empty({max_batch, out});
    layers_.push_back(std::move(l));
    widest = std::max(widest, out);
    in = out;
  }
  da_ = backend.empty({max_batch, widest});
  layout_ = emb::TableLayout({{"dense0.weight", spec.n_dense, widths[0]}});
  ops_ = emb::make_bag_ops(backend);
  warn_.warned.assign(1, false);
}

SparseMlp::~SparseMlp() = default;

std::vector<Parameter*> SparseMlp::parameters() {
  std::vector<Parameter*> ps;
  for (Layer& l : layers_) {
    ps.push_back(&l.w);
    ps.push_back(&l.b);
  }
  return ps;
}

int64_t SparseMlp::parameter_count() const {
  int64_t n = 0;
  for (const Layer& l : layers_) n += l.w.value.numel() + l.b.value.numel();
  return n;
}

Tensor SparseMlp::forward(const emb::Bags& bags, Mode mode, uint64_t dropout_seed) {
  const int64_t b = bags.batch;
  TESSERA_CHECK(b >= 1 && b <= max_batch_,
                "batch of " << b << " rows for the model's max batch " << max_batch_);
  batch_ = b;
  mode_ = mode;
  dropout_seed_ = dropout_seed;
  staged_ = ops_->stage(layout_, bags);
  resolved_ = ops_->resolve(layout_, staged_, warn_);
  Tensor prev;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    Tensor h = l.h.rows(0, b);
    if (i == 0)
      ops_->forward(layout_, l.w.value.reshape({l.w.value.numel()}), resolved_, h);
    else
      backend_.gemm(Transpose::No, Transpose::No, 1.f, prev, l.w.value, 0.f, h);
    backend_.bias_act_forward(l.act, h, l.b.value, h);
    Tensor a = l.a.rows(0, b);
    if (l.a.raw() != l.h.raw()) {
      if (mode == Mode::Train)
        backend_.dropout_forward({spec_.dropout, layer_seed(dropout_seed, i)}, h, a);
      else
        backend_.copy(h, a);
    }
    prev = a;
  }
  return prev;
}

void SparseMlp::backward(const Tensor& dlogits) {
  TESSERA_CHECK(mode_ == Mode::Train, "backward after an evaluation-mode forward");
  const int64_t b = batch_;
  TESSERA_CHECK(dlogits.numel() == b, "dlogits " << dlogits.describe() << " for batch " << b);
  Tensor da = dlogits.reshape({b, 1});
  for (size_t idx = layers_.size(); idx-- > 0;) {
    Layer& l = layers_[idx];
    Tensor dh = l.dh.rows(0, b);
    Tensor h = l.h.rows(0, b);
    if (l.a.raw() != l.h.raw()) {
      backend_.dropout_backward({spec_.dropout, layer_seed(dropout_seed_, idx)}, da, dh);
      backend_.bias_act_backward(l.act, h, dh, dh, l.b.grad);
    } else {
      backend_.bias_act_backward(l.act, h, da, dh, l.b.grad);
    }
    if (idx > 0) {
      Tensor prev = layers_[idx - 1].a.rows(0, b);
      backend_.gemm(Transpose::Yes, Transpose::No, 1.f, prev, dh, 0.f, l.w.grad);
      Tensor dprev = da_.reshape({da_.numel()}).rows(0, b * prev.dim(1)).reshape({b, prev.dim(1)});
      backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dh, l.w.value, 0.f, dprev);
      da = dprev;
      continue;
    }
    // dW0 = x^T dh: the bag's gradient rows (one per feature the batch touched), scattered.
    const emb::SparseGrad g = ops_->backward(layout_, resolved_, dh);
    backend_.fill(l.w.grad, 0.f);
    if (g.count > 0)
      backend_.embedding_backward(g.keys.rows(0, g.count), g.grads.rows(0, g.count), l.w.grad);
  }
}

}  // namespace tessera
