#include "pipelines/behaviour/cross_network.h"

#include <cmath>
#include <random>

#include "host/core/error.h"

namespace tessera {

namespace {

Tensor xavier(Backend& backend, int64_t in, int64_t out, std::mt19937_64& rng) {
  const float bound = std::sqrt(6.f / static_cast<float>(in + out));
  std::uniform_real_distribution<float> u(-bound, bound);
  Tensor w = Tensor::host({in, out});
  for (int64_t k = 0; k < w.numel(); ++k) w.data<float>()[k] = u(rng);
  return backend.to_device(w);
}

Parameter param(Backend& backend, const std::string& name, Tensor value) {
  Parameter p;
  p.name = name;
  p.grad = backend.empty(value.shape());
  p.value = std::move(value);
  return p;
}

}  // namespace

CrossNetwork::CrossNetwork(Backend& backend, const CrossNetworkSpec& spec, uint64_t seed,
                           int64_t max_batch)
    : backend_(&backend), spec_(spec) {
  TESSERA_CHECK(spec.width > 0, "a cross network needs a positive width, got " << spec.width);
  TESSERA_CHECK(spec.layers >= 1, "a cross network needs at least one layer, got " << spec.layers);
  TESSERA_CHECK(spec.low_rank >= 0, "cross network rank " << spec.low_rank << " is negative");
  const int64_t d = spec.width, r = spec.low_rank;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < spec.layers; ++i) {
    const std::string name = "cross" + std::to_string(i);
    Layer l;
    if (r == 0) {
      l.w = param(backend, name + ".weight", xavier(backend, d, d, rng));
    } else {
      l.v = param(backend, name + ".v", xavier(backend, d, r, rng));
      l.u = param(backend, name + ".u", xavier(backend, r, d, rng));
      l.xv = backend.empty({max_batch, r});
    }
    l.b = param(backend, name + ".bias", backend.empty({d}));
    l.z = backend.empty({max_batch, d});
    l.x_out = backend.empty({max_batch, d});
    layers_.push_back(std::move(l));
  }
  dz_ = backend.empty({max_batch, d});
  dx_a_ = backend.empty({max_batch, d});
  dx_b_ = backend.empty({max_batch, d});
  if (r > 0) dxv_ = backend.empty({max_batch, r});
}

Tensor CrossNetwork::forward(const Tensor& x0) {
  TESSERA_CHECK(x0.rank() == 2 && x0.dim(1) == spec_.width,
                "cross network input " << x0.describe() << ", expected [B, " << spec_.width << "]");
  const int64_t b = x0.dim(0);
  TESSERA_CHECK(b <= layers_[0].z.dim(0),
                "batch of " << b << " rows exceeds the cross network's " << layers_[0].z.dim(0));
  x0_ = x0;
  Tensor x = x0;
  for (Layer& l : layers_) {
    Tensor z = l.z.rows(0, b);
    if (spec_.low_rank == 0) {
      backend_->gemm(Transpose::No, Transpose::No, 1.f, x, l.w.value, 0.f, z);
    } else {
      Tensor xv = l.xv.rows(0, b);
      backend_->gemm(Transpose::No, Transpose::No, 1.f, x, l.v.value, 0.f, xv);
      backend_->gemm(Transpose::No, Transpose::No, 1.f, xv, l.u.value, 0.f, z);
    }
    backend_->bias_act_forward(Activation::None, z, l.b.value, z);
    Tensor next = l.x_out.rows(0, b);
    backend_->copy(x, next);
    backend_->mul_add(x0, z, 1.f, next);
    x = next;
  }
  return x;
}

void CrossNetwork::backward(const Tensor& dy, Tensor& dx0) {
  const int64_t b = x0_.dim(0);
  TESSERA_CHECK(dy.shape() == x0_.shape() && dx0.shape() == x0_.shape(),
                "cross network backward: dy " << dy.describe() << ", dx0 " << dx0.describe()
                                              << " for x0 " << x0_.describe());
  Tensor g = dy;  // dL/dx_{l+1}
  Tensor dz = dz_.rows(0, b);
  for (size_t idx = layers_.size(); idx-- > 0;) {
    Layer& l = layers_[idx];
    const Tensor x = idx > 0 ? layers_[idx - 1].x_out.rows(0, b) : x0_;
    Tensor z = l.z.rows(0, b);
    // x_{l+1} = x0 (.) z + x_l: dx0 += g (.) z, dz = g (.) x0, dx_l = g + dz W^T.
    backend_->mul_add(g, z, 1.f, dx0);
    backend_->mul_add(g, x0_, 0.f, dz);
    backend_->bias_act_backward(Activation::None, z, dz, dz, l.b.grad);
    Tensor dx = (idx % 2 == 0 ? dx_a_ : dx_b_).rows(0, b);
    backend_->copy(g, dx);
    if (spec_.low_rank == 0) {
      backend_->gemm(Transpose::Yes, Transpose::No, 1.f, x, dz, 0.f, l.w.grad);
      backend_->gemm(Transpose::No, Transpose::Yes, 1.f, dz, l.w.value, 1.f, dx);
    } else {
      Tensor xv = l.xv.rows(0, b), dxv = dxv_.rows(0, b);
      backend_->gemm(Transpose::Yes, Transpose::No, 1.f, xv, dz, 0.f, l.u.grad);
      backend_->gemm(Transpose::No, Transpose::Yes, 1.f, dz, l.u.value, 0.f, dxv);
      backend_->gemm(Transpose::Yes, Transpose::No, 1.f, x, dxv, 0.f, l.v.grad);
      backend_->gemm(Transpose::No, Transpose::Yes, 1.f, dxv, l.v.value, 1.f, dx);
    }
    g = dx;
  }
  backend_->axpby(1.f, g, 1.f, dx0);  // x_0 is x0 itself
}

std::vector<Parameter*> CrossNetwork::parameters() {
  std::vector<Parameter*> ps;
  for (Layer& l : layers_) {
    if (spec_.low_rank == 0) {
      ps.push_back(&l.w);
    } else {
      ps.push_back(&l.v);
      ps.push_back(&l.u);
    }
    ps.push_back(&l.b);
  }
  return ps;
}

int64_t CrossNetwork::parameter_count() const {
  const int64_t d = spec_.width, r = spec_.low_rank;
  return spec_.layers * ((r == 0 ? d * d : 2 * d * r) + d);
}

std::vector<std::pair<std::string, Shape>> CrossNetwork::weight_shapes(
    const CrossNetworkSpec& spec) {
  std::vector<std::pair<std::string, Shape>> out;
  const int64_t d = spec.width, r = spec.low_rank;
  for (int64_t i = 0; i < spec.layers; ++i) {
    const std::string name = "cross" + std::to_string(i);
    if (r == 0) {
      out.emplace_back(name + ".weight", Shape{d, d});
    } else {
      out.emplace_back(name + ".v", Shape{d, r});
      out.emplace_back(name + ".u", Shape{r, d});
    }
    out.emplace_back(name + ".bias", Shape{d});
  }
  return out;
}

}  // namespace tessera
