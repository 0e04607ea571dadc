#include "pipelines/behaviour/wide_deep_model.h"

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

namespace {

int64_t deep_emb_width(const WideDeepSpec& s) {
  return static_cast<int64_t>(s.table_rows.size()) * s.embedding_dim;
}

// The pooled output is [deep tables | wide tables]; the deep input takes the dense features and
// the deep tables' columns.
std::vector<int64_t> parts(const WideDeepSpec& s) {
  std::vector<int64_t> p;
  if (s.n_dense > 0) p.push_back(s.n_dense);
  p.push_back(deep_emb_width(s) + static_cast<int64_t>(s.table_rows.size()));
  return p;
}
std::vector<ColumnPick> picks(const WideDeepSpec& s) {
  std::vector<ColumnPick> p;
  if (s.n_dense > 0) p.push_back({0, 0, s.n_dense});
  p.push_back({s.n_dense > 0 ? 1 : 0, 0, deep_emb_width(s)});
  return p;
}

}  // namespace

std::vector<FeatureTable> WideDeepSpec::wide_tables() const {
  std::vector<FeatureTable> w;
  for (size_t t = 0; t < table_rows.size(); ++t)
    w.push_back({static_cast<int64_t>(t), table_rows[t], 1, true});
  return w;
}

DenseTowerSpec WideDeepModel::deep_spec(const WideDeepSpec& s) {
  DenseTowerSpec t;
  t.in = s.n_dense + deep_emb_width(s);
  t.widths = s.top;
  t.widths.push_back(1);
  t.activation = s.activation;
  t.last_act = Activation::None;
  t.dropout = s.dropout;
  t.prefix = "deep";
  return t;
}

WideDeepModel::WideDeepModel(Backend& backend, const WideDeepSpec& spec, uint64_t seed,
                             int64_t max_batch)
    : TableModel(backend, spec, spec.features(spec.wide_tables()), parts(spec), picks(spec),
                 spec.n_dense > 0 ? 1 : 0, seed, max_batch),
      deep_(backend, deep_spec(spec), math::mix64(seed ^ 0xDEE9ull), max_batch) {
  if (spec.n_dense > 0) {
    wide_w_.name = "wide.weight";
    wide_w_.value = backend.empty({spec.n_dense, 1});
    wide_w_.grad = backend.empty({spec.n_dense, 1});
  }
  const int64_t de = deep_emb_width(spec), nt = static_cast<int64_t>(spec.table_rows.size());
  Tensor sel = Tensor::host({de + nt, 1});
  for (int64_t i = 0; i < de + nt; ++i) sel.data<float>()[i] = i < de ? 0.f : 1.f;
  wide_sum_ = backend.to_device(sel);
  logits_ = backend.empty({max_batch, 1});
}

Tensor WideDeepModel::forward_layers(int64_t b, Mode mode, uint64_t dropout_seed) {
  if (spec_.n_dense > 0) {
    Tensor part = concat_.part(b, 0);
    backend_.copy(dense_in(b), part);
  }
  x_ = concat_.forward(b);
  Tensor logits = logits_.rows(0, b);
  backend_.copy(deep_.forward(x_, mode, dropout_seed), logits);
  // + the wide tables' sum (a gemm against the 0/1 column selector) + the dense linear.
  backend_.gemm(Transpose::No, Transpose::No, 1.f, concat_.part(b, pooled_part_), wide_sum_, 1.f,
                logits);
  if (spec_.n_dense > 0)
    backend_.gemm(Transpose::No, Transpose::No, 1.f, dense_in(b), wide_w_.value, 1.f, logits);
  return logits;
}

void WideDeepModel::backward_layers(const Tensor& dl) {
  const int64_t b = dl.dim(0);
  concat_.backward(deep_.backward(x_, dl, /*want_dx=*/true));
  // The wide tables' columns of the pooled gradient are dl (the deep ones got the deep input's).
  Tensor dpooled = concat_.dpart(b, pooled_part_);
  backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dl, wide_sum_, 1.f, dpooled);
  if (spec_.n_dense > 0)
    backend_.gemm(Transpose::Yes, Transpose::No, 1.f, dense_in(b), dl, 0.f, wide_w_.grad);
}

std::vector<Parameter*> WideDeepModel::parameters() {
  std::vector<Parameter*> ps = deep_.parameters();
  if (spec_.n_dense > 0) ps.push_back(&wide_w_);
  return ps;
}

std::vector<std::pair<std::string, Shape>> WideDeepModel::weight_shapes(const WideDeepSpec& spec) {
  std::vector<std::pair<std::string, Shape>> out = DenseTower::weight_shapes(deep_spec(spec));
  if (spec.n_dense > 0) out.emplace_back("wide.weight", Shape{spec.n_dense, 1});
  return out;
}

}  // namespace tessera
