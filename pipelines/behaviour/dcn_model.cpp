#include "pipelines/behaviour/dcn_model.h"

#include <cmath>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

namespace {

// The concatenation x0 = [dense part | pooled embeddings]: parts and picks for ColumnConcat.
std::vector<int64_t> x0_parts(const DcnSpec& s) {
  std::vector<int64_t> parts;
  if (s.n_dense > 0) parts.push_back(s.dense_width());
  parts.push_back(static_cast<int64_t>(s.table_rows.size()) * s.embedding_dim);
  return parts;
}
std::vector<ColumnPick> all_of(const std::vector<int64_t>& parts) {
  std::vector<ColumnPick> picks;
  for (size_t p = 0; p < parts.size(); ++p) picks.push_back({static_cast<int64_t>(p), 0, parts[p]});
  return picks;
}

}  // namespace

int64_t DcnSpec::dense_width() const {
  if (n_dense == 0) return 0;
  return bottom.empty() ? n_dense : embedding_dim;
}

int64_t DcnSpec::x0_width() const {
  return dense_width() + static_cast<int64_t>(table_rows.size()) * embedding_dim;
}

DenseTowerSpec DcnModel::bottom_spec(const DcnSpec& s) {
  DenseTowerSpec t;
  t.in = s.n_dense;
  t.widths = s.bottom;
  t.widths.push_back(s.embedding_dim);
  t.activation = t.last_act = s.activation;
  t.prefix = "bottom";
  return t;
}

DenseTowerSpec DcnModel::deep_spec(const DcnSpec& s) {
  DenseTowerSpec t;
  t.in = s.x0_width();
  t.widths = s.top;
  t.activation = s.activation;
  t.dropout = s.dropout;
  t.prefix = "deep";
  if (s.parallel) {
    t.last_act = s.activation;  // the final linear follows
  } else {
    t.widths.push_back(1);  // the final linear is the tower's last layer
    t.last_act = Activation::None;
  }
  return t;
}

CrossNetworkSpec DcnModel::cross_spec(const DcnSpec& s) {
  return {s.x0_width(), s.cross_layers, s.low_rank};
}

DcnModel::DcnModel(Backend& backend, const DcnSpec& spec, uint64_t seed, int64_t max_batch)
    : TableModel(backend, spec, spec.features(), x0_parts(spec), all_of(x0_parts(spec)),
                 spec.n_dense > 0 ? 1 : 0, seed, max_batch),
      dcn_(spec) {
  if (spec.n_dense > 0 && !spec.bottom.empty())
    bottom_ = DenseTower(backend, bottom_spec(spec), math::mix64(seed ^ 0xB0770Aull), max_batch);
  cross_ = CrossNetwork(backend, cross_spec(spec), math::mix64(seed ^ 0xC7055ull), max_batch);
  const DenseTowerSpec deep = deep_spec(spec);
  if (!deep.widths.empty())
    deep_ = DenseTower(backend, deep, math::mix64(seed ^ 0xDEE9ull), max_batch);
  const int64_t d = spec.x0_width();
  if (spec.parallel) {
    const int64_t in = d + (deep.widths.empty() ? 0 : deep.widths.back());
    std::mt19937_64 rng(math::mix64(seed ^ 0xF1Aull));
    const float bound = std::sqrt(6.f / static_cast<float>(in + 1));
    std::uniform_real_distribution<float> u(-bound, bound);
    Tensor w = Tensor::host({in, 1});
    for (int64_t i = 0; i < in; ++i) w.data<float>()[i] = u(rng);
    final_w_.name = "final.weight";
    final_w_.value = backend.to_device(w);
    final_w_.grad = backend.empty({in, 1});
    final_b_.name = "final.bias";
    final_b_.value = backend.empty({1});
    final_b_.grad = backend.empty({1});
    logits_ = backend.empty({max_batch, 1});
    dl_ = backend.empty({max_batch, 1});
    dxc_ = backend.empty({max_batch, d});
    if (!deep.widths.empty()) ddeep_ = backend.empty({max_batch, deep.widths.back()});
  }
  dx0_ = backend.empty({max_batch, d});
}

Tensor DcnModel::forward_layers(int64_t b, Mode mode, uint64_t dropout_seed) {
  if (dcn_.n_dense > 0) {
    Tensor part = concat_.part(b, 0);
    backend_.copy(bottom_.empty() ? dense_in(b) : bottom_.forward(dense_in(b), mode, 0), part);
  }
  x0_ = concat_.forward(b);
  xc_ = cross_.forward(x0_);
  if (!dcn_.parallel) return deep_.forward(xc_, mode, dropout_seed);
  // logit = [x_L | deep(x0)] final.weight + final.bias, one gemm per side.
  const int64_t d = dcn_.x0_width();
  Tensor logits = logits_.rows(0, b);
  backend_.gemm(Transpose::No, Transpose::No, 1.f, xc_, final_w_.value.rows(0, d), 0.f, logits);
  if (!deep_.empty()) {
    deep_out_ = deep_.forward(x0_, mode, dropout_seed);
    backend_.gemm(Transpose::No, Transpose::No, 1.f, deep_out_,
                  final_w_.value.rows(d, final_w_.value.dim(0)), 1.f, logits);
  }
  backend_.bias_act_forward(Activation::None, logits, final_b_.value, logits);
  return logits;
}

void DcnModel::backward_layers(const Tensor& dl) {
  const int64_t b = dl.dim(0), d = dcn_.x0_width();
  Tensor dx0 = dx0_.rows(0, b);
  backend_.fill(dx0, 0.f);
  if (!dcn_.parallel) {
    const Tensor dxc = deep_.backward(xc_, dl, /*want_dx=*/true);
    cross_.backward(dxc, dx0);
  } else {
    Tensor dlc = dl_.rows(0, b);
    backend_.bias_act_backward(Activation::None, logits_.rows(0, b), dl, dlc, final_b_.grad);
    Tensor gw_c = final_w_.grad.rows(0, d);
    backend_.gemm(Transpose::Yes, Transpose::No, 1.f, xc_, dlc, 0.f, gw_c);
    Tensor dxc = dxc_.rows(0, b);
    backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dlc, final_w_.value.rows(0, d), 0.f, dxc);
    if (!deep_.empty()) {
      const int64_t rows = final_w_.value.dim(0);
      Tensor gw_d = final_w_.grad.rows(d, rows), dd = ddeep_.rows(0, b);
      backend_.gemm(Transpose::Yes, Transpose::No, 1.f, deep_out_, dlc, 0.f, gw_d);
      backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dlc, final_w_.value.rows(d, rows), 0.f, dd);
      backend_.axpby(1.f, deep_.backward(x0_, dd, /*want_dx=*/true), 1.f, dx0);
    }
    cross_.backward(dxc, dx0);
  }
  concat_.backward(dx0);
  if (dcn_.n_dense > 0 && !bottom_.empty())
    bottom_.backward(dense_in(b), concat_.dpart(b, 0), /*want_dx=*/false);
}

std::vector<Parameter*> DcnModel::parameters() {
  std::vector<Parameter*> ps = bottom_.parameters();
  for (Parameter* p : cross_.parameters()) ps.push_back(p);
  for (Parameter* p : deep_.parameters()) ps.push_back(p);
  if (dcn_.parallel) {
    ps.push_back(&final_w_);
    ps.push_back(&final_b_);
  }
  return ps;
}

std::vector<std::pair<std::string, Shape>> DcnModel::weight_shapes(const DcnSpec& spec) {
  std::vector<std::pair<std::string, Shape>> out;
  if (spec.n_dense > 0 && !spec.bottom.empty()) out = DenseTower::weight_shapes(bottom_spec(spec));
  for (auto& s : CrossNetwork::weight_shapes(cross_spec(spec))) out.push_back(s);
  const DenseTowerSpec deep = deep_spec(spec);
  for (auto& s : DenseTower::weight_shapes(deep)) out.push_back(s);
  if (spec.parallel) {
    const int64_t in = spec.x0_width() + (deep.widths.empty() ? 0 : deep.widths.back());
    out.emplace_back("final.weight", Shape{in, 1});
    out.emplace_back("final.bias", Shape{1});
  }
  return out;
}

}  // namespace tessera
