#include "host/model/mlp.h"

#include <cmath>
#include <random>

#include "host/core/math.h"

namespace tessera {

namespace {
Tensor init_uniform(int64_t rows, int64_t cols, float bound, std::mt19937_64& rng) {
  Tensor t = Tensor::host({rows, cols});
  std::uniform_real_distribution<float> u(-bound, bound);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = u(rng);
  return t;
}
uint64_t layer_seed(uint64_t seed, size_t layer) { return math::mix64(seed * 31 + layer + 1); }
}  // namespace

MlpModel::MlpModel(Backend& backend, const MlpSpec& spec, uint64_t seed, int64_t max_batch)
    : backend_(backend), spec_(spec), max_batch_(max_batch) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  TESSERA_CHECK(spec.input_width() > 0, "the model has no input features");
  std::mt19937_64 rng(seed);
  const int64_t d = spec.embedding_dim;
  if (spec.n_cat > 0) {
    TESSERA_CHECK(spec.embedding_rows > 0, "categorical columns without embedding rows");
    Tensor t = Tensor::host({spec.embedding_rows, d});
    std::normal_distribution<float> n(0.f, 0.05f);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = n(rng);
    table_.name = "embedding.table";
    table_.value = backend.to_device(t);
    table_.grad = backend.empty(t.shape());
    cat_in_ = backend.empty({max_batch, spec.n_cat}, DType::I64);
    emb_out_ = backend.empty({max_batch, spec.n_cat * d});
    demb_ = backend.empty({max_batch, spec.n_cat * d});
  }
  if (spec.n_dense > 0) dense_in_ = backend.empty({max_batch, spec.n_dense});

  std::vector<int64_t> widths = spec.hidden;
  widths.push_back(1);
  int64_t in = spec.input_width();
  int64_t widest = 1;
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    const bool last = i + 1 == widths.size();
    Layer l;
    l.act = last ? Activation::None : spec.activation;
    // He-uniform (relu): sqrt(6/in); Xavier-uniform otherwise: sqrt(6/(in+out)).
    const float bound = l.act == Activation::Relu
                            ? std::sqrt(6.f / static_cast<float>(in))
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
}

std::vector<Parameter*> MlpModel::parameters() {
  std::vector<Parameter*> ps;
  if (table_.value.defined()) ps.push_back(&table_);
  for (Layer& l : layers_) {
    ps.push_back(&l.w);
    ps.push_back(&l.b);
  }
  return ps;
}

int64_t MlpModel::parameter_count() const {
  int64_t n = table_.value.defined() ? table_.value.numel() : 0;
  for (const Layer& l : layers_) n += l.w.value.numel() + l.b.value.numel();
  return n;
}

Tensor MlpModel::forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t dropout_seed) {
  const int64_t b = spec_.n_dense > 0 ? dense.dim(0) : cat.dim(0);
  TESSERA_CHECK(b <= max_batch_, "batch of " << b << " rows exceeds the model's max batch "
                                             << max_batch_);
  batch_ = b;
  mode_ = mode;
  dropout_seed_ = dropout_seed;
  const int64_t d = spec_.embedding_dim;

  Tensor xd, e;
  if (spec_.n_dense > 0) {
    TESSERA_CHECK(dense.rank() == 2 && dense.dim(1) == spec_.n_dense,
                  "dense input " << dense.describe() << ", expected [B, " << spec_.n_dense << "]");
    xd = dense_in_.rows(0, b);
    backend_.copy(dense, xd);
  }
  if (spec_.n_cat > 0) {
    TESSERA_CHECK(cat.rank() == 2 && cat.dim(0) == b && cat.dim(1) == spec_.n_cat,
                  "categorical input " << cat.describe() << ", expected [" << b << ", "
                                       << spec_.n_cat << "]");
    Tensor ids = cat_in_.rows(0, b);
    backend_.copy(cat, ids);
    e = emb_out_.rows(0, b);
    Tensor flat_ids = ids.reshape({b * spec_.n_cat});
    backend_.embedding_forward(table_.value, flat_ids, e);
  }

  Tensor prev;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer& l = layers_[i];
    Tensor h = l.h.rows(0, b);
    if (i == 0) {
      float beta = 0.f;
      if (spec_.n_dense > 0) {
        backend_.gemm(Transpose::No, Transpose::No, 1.f, xd, l.w.value.rows(0, spec_.n_dense), 0.f, h);
        beta = 1.f;
      }
      if (spec_.n_cat > 0)
        backend_.gemm(Transpose::No, Transpose::No, 1.f, e,
                      l.w.value.rows(spec_.n_dense, spec_.n_dense + spec_.n_cat * d), beta, h);
    } else {
      backend_.gemm(Transpose::No, Transpose::No, 1.f, prev, l.w.value, 0.f, h);
    }
    backend_.bias_act_forward(l.act, h, l.b.value, h);
    Tensor a = l.a.rows(0, b);
    if (l.a.raw() != l.h.raw()) {
      if (mode == Mode::Train) {
        backend_.dropout_forward({spec_.dropout, layer_seed(dropout_seed, i)}, h, a);
      } else {
        backend_.copy(h, a);
      }
    }
    prev = a;
  }
  return prev;  // [B, 1] logits
}

void MlpModel::backward(const Tensor& dlogits) {
  TESSERA_CHECK(mode_ == Mode::Train, "backward after an evaluation-mode forward");
  const int64_t b = batch_;
  const int64_t d = spec_.embedding_dim;
  TESSERA_CHECK(dlogits.numel() == b, "dlogits " << dlogits.describe() << " for batch " << b);
  Tensor da = dlogits.reshape({b, 1});
  for (size_t idx = layers_.size(); idx-- > 0;) {
    Layer& l = layers_[idx];
    const int64_t out = l.h.dim(1);
    Tensor dh = l.dh.rows(0, b);
    Tensor h = l.h.rows(0, b);
    if (l.a.raw() != l.h.raw()) {
      backend_.dropout_backward({spec_.dropout, layer_seed(dropout_seed_, idx)}, da, dh);
      backend_.bias_act_backward(l.act, h, dh, dh, l.b.grad);
    } else {
      backend_.bias_act_backward(l.act, h, da, dh, l.b.grad);
    }
    (void)out;
    if (idx > 0) {
      Tensor prev = layers_[idx - 1].a.rows(0, b);
      backend_.gemm(Transpose::Yes, Transpose::No, 1.f, prev, dh, 0.f, l.w.grad);
      Tensor dprev = da_.rows(0, b).reshape({b * da_.dim(1)}).rows(0, b * prev.dim(1)).reshape({b, prev.dim(1)});
      backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dh, l.w.value, 0.f, dprev);
      da = dprev;
    } else {
      if (spec_.n_dense > 0) {
        Tensor gw = l.w.grad.rows(0, spec_.n_dense);
        backend_.gemm(Transpose::Yes, Transpose::No, 1.f, dense_in_.rows(0, b), dh, 0.f, gw);
      }
      if (spec_.n_cat > 0) {
        const int64_t r0 = spec_.n_dense, r1 = spec_.n_dense + spec_.n_cat * d;
        Tensor gw = l.w.grad.rows(r0, r1);
        Tensor e = emb_out_.rows(0, b);
        backend_.gemm(Transpose::Yes, Transpose::No, 1.f, e, dh, 0.f, gw);
        Tensor de = demb_.rows(0, b);
        backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dh, l.w.value.rows(r0, r1), 0.f, de);
        backend_.fill(table_.grad, 0.f);
        Tensor ids = cat_in_.rows(0, b).reshape({b * spec_.n_cat});
        backend_.embedding_backward(ids, de.reshape({b * spec_.n_cat, d}), table_.grad);
      }
    }
  }
}

}  // namespace tessera
