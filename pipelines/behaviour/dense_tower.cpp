#include "pipelines/behaviour/dense_tower.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

namespace {
uint64_t layer_seed(uint64_t seed, size_t layer) {
  return math::mix64(seed * 31 + layer + 1);
}
}  // namespace

DenseTower::DenseTower(Backend& backend, const DenseTowerSpec& spec, uint64_t seed,
                       int64_t max_batch)
    : backend_(&backend), in_(spec.in), widths_(spec.widths), dropout_(spec.dropout) {
  TESSERA_CHECK(spec.in > 0, "a dense tower needs a positive input width, got " << spec.in);
  std::mt19937_64 rng(seed);
  int64_t in = spec.in, widest_in = spec.in;
  for (size_t i = 0; i < spec.widths.size(); ++i) {
    const int64_t out = spec.widths[i];
    TESSERA_CHECK(out > 0, "dense tower layer " << i << " has width " << out);
    const bool last = i + 1 == spec.widths.size();
    Layer l;
    l.act = last ? spec.last_act : spec.activation;
    l.dropout = spec.dropout > 0.f && !last;
    const float bound = l.act == Activation::Relu ? std::sqrt(6.f / static_cast<float>(in))
                                                  : std::sqrt(6.f / static_cast<float>(in + out));
    std::uniform_real_distribution<float> u(-bound, bound);
    Tensor w = Tensor::host({in, out});
    for (int64_t k = 0; k < w.numel(); ++k) w.data<float>()[k] = u(rng);
    l.w.name = spec.prefix + std::to_string(i) + ".weight";
    l.w.value = backend.to_device(w);
    l.w.grad = backend.empty({in, out});
    l.b.name = spec.prefix + std::to_string(i) + ".bias";
    l.b.value = backend.empty({out});
    l.b.grad = backend.empty({out});
    l.h = backend.empty({max_batch, out});
    l.a = l.dropout ? backend.empty({max_batch, out}) : l.h;
    l.dh = backend.empty({max_batch, out});
    widest_in = std::max(widest_in, in);
    layers_.push_back(std::move(l));
    in = out;
  }
  if (!layers_.empty()) dx_ = backend.empty({max_batch * widest_in});
}

Tensor DenseTower::forward(const Tensor& x, Mode mode, uint64_t dropout_seed) {
  const int64_t b = x.dim(0);
  dropout_seed_ = dropout_seed;
  Tensor prev = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    Tensor h = l.h.rows(0, b);
    backend_->gemm(Transpose::No, Transpose::No, 1.f, prev, l.w.value, 0.f, h);
    backend_->bias_act_forward(l.act, h, l.b.value, h);
    Tensor a = l.a.rows(0, b);
    if (l.dropout) {
      if (mode == Mode::Train)
        backend_->dropout_forward({dropout_, layer_seed(dropout_seed, i)}, h, a);
      else
        backend_->copy(h, a);
    }
    prev = a;
  }
  return prev;
}

Tensor DenseTower::backward(const Tensor& x, const Tensor& dy, bool want_dx) {
  const int64_t b = x.dim(0);
  Tensor da = dy;
  for (size_t idx = layers_.size(); idx-- > 0;) {
    Layer& l = layers_[idx];
    Tensor dh = l.dh.rows(0, b);
    Tensor h = l.h.rows(0, b);
    if (l.dropout) {
      backend_->dropout_backward({dropout_, layer_seed(dropout_seed_, idx)}, da, dh);
      backend_->bias_act_backward(l.act, h, dh, dh, l.b.grad);
    } else {
      backend_->bias_act_backward(l.act, h, da, dh, l.b.grad);
    }
    const Tensor in = idx > 0 ? layers_[idx - 1].a.rows(0, b) : x;
    backend_->gemm(Transpose::Yes, Transpose::No, 1.f, in, dh, 0.f, l.w.grad);
    if (idx == 0 && !want_dx) return Tensor();
    Tensor dprev = dx_.rows(0, b * in.dim(1)).reshape({b, in.dim(1)});
    backend_->gemm(Transpose::No, Transpose::Yes, 1.f, dh, l.w.value, 0.f, dprev);
    da = dprev;
  }
  return want_dx ? da : Tensor();
}

std::vector<Parameter*> DenseTower::parameters() {
  std::vector<Parameter*> ps;
  for (Layer& l : layers_) {
    ps.push_back(&l.w);
    ps.push_back(&l.b);
  }
  return ps;
}

int64_t DenseTower::parameter_count() const {
  int64_t n = 0;
  for (const Layer& l : layers_) n += l.w.value.numel() + l.b.value.numel();
  return n;
}

std::vector<std::pair<std::string, Shape>> DenseTower::weight_shapes(const DenseTowerSpec& spec) {
  std::vector<std::pair<std::string, Shape>> out;
  int64_t in = spec.in;
  for (size_t i = 0; i < spec.widths.size(); ++i) {
    out.emplace_back(spec.prefix + std::to_string(i) + ".weight", Shape{in, spec.widths[i]});
    out.emplace_back(spec.prefix + std::to_string(i) + ".bias", Shape{spec.widths[i]});
    in = spec.widths[i];
  }
  return out;
}

}  // namespace tessera
