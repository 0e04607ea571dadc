#include "pipelines/behaviour/dlrm_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "host/core/math.h"
#include "host/model/parameter_ops.h"

namespace tessera {

namespace {
uint64_t layer_seed(uint64_t seed, size_t layer) {
  return math::mix64(seed * 31 + layer + 1);
}
}  // namespace

DlrmModel::DlrmModel(Backend& backend, const DlrmSpec& spec, uint64_t seed, int64_t max_batch)
    : backend_(backend), spec_(spec), max_batch_(max_batch) {
  TESSERA_CHECK(max_batch > 0, "max_batch must be positive");
  TESSERA_CHECK(spec.n_dense >= 0, "n_dense " << spec.n_dense);
  if (spec.table_rows.empty())
    TESSERA_THROW(Config, "a dlrm model needs at least one categorical column; this data has none");
  const int64_t d = spec.embedding_dim;
  std::vector<int64_t> bottom = spec.bottom;
  bottom.push_back(d);
  if (spec.n_dense > 0)
    bottom_ = make_tower(spec.n_dense, bottom, spec.activation, /*dropout=*/false, "bottom",
                         math::mix64(seed ^ 0xB0770Aull));
  std::vector<int64_t> top = spec.top;
  top.push_back(1);
  top_ = make_tower(spec.interaction_width(), top, Activation::None, spec.dropout > 0.f, "top",
                    math::mix64(seed ^ 0x70Bull));

  std::vector<emb::TableSpec> tables;
  for (size_t t = 0; t < spec.table_rows.size(); ++t) {
    emb::TableSpec ts;
    ts.name = "c" + std::to_string(t);
    ts.rows = spec.table_rows[t];
    ts.dim = d;
    tables.push_back(ts);
  }
  emb::CollectionOptions co;
  co.optimizer = spec.sparse;
  co.table_dtype = spec.table_dtype;
  co.stochastic_rounding = spec.stochastic_rounding;
  co.seed = seed;
  make_tables(tables, co);
  // DLRM's initialisation: table t uniform in +-1/sqrt(rows_t), drawn on the host from the seed
  // (the same draws whatever the sharding), one table at a time.
  std::mt19937_64 rng(math::mix64(seed ^ 0xE3Bull));
  for (size_t t = 0; t < tables.size(); ++t) {
    const float bound = 1.f / std::sqrt(static_cast<float>(tables[t].rows));
    std::uniform_real_distribution<float> u(-bound, bound);
    Tensor w = Tensor::host({tables[t].rows, d});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = u(rng);
    tables_->set_table(static_cast<int64_t>(t), w);
  }
  const int64_t nt = static_cast<int64_t>(tables.size());
  if (spec.n_dense > 0) {
    dense_in_ = backend.empty({max_batch, spec.n_dense});
  } else if (nt > 1) {
    Tensor first = Tensor::host({nt * d, d}), rest = Tensor::host({nt * d, (nt - 1) * d});
    std::fill_n(first.data<float>(), first.numel(), 0.f);
    std::fill_n(rest.data<float>(), rest.numel(), 0.f);
    for (int64_t j = 0; j < d; ++j) first.data<float>()[j * d + j] = 1.f;
    for (int64_t j = d; j < nt * d; ++j) rest.data<float>()[j * (nt - 1) * d + (j - d)] = 1.f;
    pick_first_ = backend.to_device(first);
    pick_rest_ = backend.to_device(rest);
    e_first_ = backend.empty({max_batch, d});
    e_rest_ = backend.empty({max_batch, (nt - 1) * d});
    de_first_ = backend.empty({max_batch, d});
    de_rest_ = backend.empty({max_batch, (nt - 1) * d});
  }
  emb_out_ = backend.empty({max_batch, nt * d});
  demb_ = backend.empty({max_batch, nt * d});
  dz0_ = backend.empty({max_batch, d});
  inter_ = backend.empty({max_batch, spec.interaction_width()});
  dinter_ = backend.empty({max_batch, spec.interaction_width()});
}

DlrmModel::~DlrmModel() = default;

DlrmModel::Tower DlrmModel::make_tower(int64_t in, const std::vector<int64_t>& widths,
                                       Activation last_act, bool dropout, const std::string& prefix,
                                       uint64_t seed) {
  Tower t;
  std::mt19937_64 rng(seed);
  int64_t widest_in = in;
  for (size_t i = 0; i < widths.size(); ++i) {
    const int64_t out = widths[i];
    const bool last = i + 1 == widths.size();
    Layer l;
    l.act = last ? last_act : spec_.activation;
    l.dropout = dropout && !last;
    // He-uniform before relu, Xavier-uniform otherwise.
    const float bound = l.act == Activation::Relu ? std::sqrt(6.f / static_cast<float>(in))
                                                  : std::sqrt(6.f / static_cast<float>(in + out));
    std::uniform_real_distribution<float> u(-bound, bound);
    Tensor w = Tensor::host({in, out});
    for (int64_t k = 0; k < w.numel(); ++k) w.data<float>()[k] = u(rng);
    l.w.name = prefix + std::to_string(i) + ".weight";
    l.w.value = backend_.to_device(w);
    l.w.grad = backend_.empty({in, out});
    l.b.name = prefix + std::to_string(i) + ".bias";
    l.b.value = backend_.empty({out});
    l.b.grad = backend_.empty({out});
    l.h = backend_.empty({max_batch_, out});
    l.a = l.dropout ? backend_.empty({max_batch_, out}) : l.h;
    l.dh = backend_.empty({max_batch_, out});
    widest_in = std::max(widest_in, in);
    t.layers.push_back(std::move(l));
    in = out;
  }
  t.dx = backend_.empty({max_batch_ * widest_in});
  return t;
}

Tensor DlrmModel::tower_forward(Tower& t, const Tensor& x, Mode mode, uint64_t seed) {
  const int64_t b = x.dim(0);
  Tensor prev = x;
  for (size_t i = 0; i < t.layers.size(); ++i) {
    Layer& l = t.layers[i];
    Tensor h = l.h.rows(0, b);
    backend_.gemm(Transpose::No, Transpose::No, 1.f, prev, l.w.value, 0.f, h);
    backend_.bias_act_forward(l.act, h, l.b.value, h);
    Tensor a = l.a.rows(0, b);
    if (l.dropout) {
      if (mode == Mode::Train)
        backend_.dropout_forward({spec_.dropout, layer_seed(seed, i)}, h, a);
      else
        backend_.copy(h, a);
    }
    prev = a;
  }
  return prev;
}

Tensor DlrmModel::tower_backward(Tower& t, const Tensor& x, const Tensor& dy, uint64_t seed,
                                 bool want_dx) {
  const int64_t b = x.dim(0);
  Tensor da = dy;
  for (size_t idx = t.layers.size(); idx-- > 0;) {
    Layer& l = t.layers[idx];
    Tensor dh = l.dh.rows(0, b);
    Tensor h = l.h.rows(0, b);
    if (l.dropout) {
      backend_.dropout_backward({spec_.dropout, layer_seed(seed, idx)}, da, dh);
      backend_.bias_act_backward(l.act, h, dh, dh, l.b.grad);
    } else {
      backend_.bias_act_backward(l.act, h, da, dh, l.b.grad);
    }
    const Tensor in = idx > 0 ? t.layers[idx - 1].a.rows(0, b) : x;
    backend_.gemm(Transpose::Yes, Transpose::No, 1.f, in, dh, 0.f, l.w.grad);
    if (idx == 0 && !want_dx) return Tensor();
    // dx of this layer lives in the tower's scratch (the next layer down reads it as da).
    Tensor dprev = t.dx.rows(0, b * in.dim(1)).reshape({b, in.dim(1)});
    backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dh, l.w.value, 0.f, dprev);
    da = dprev;
  }
  return da;
}

Tensor DlrmModel::forward(const Tensor& dense, const Tensor& cat, Mode mode,
                          uint64_t dropout_seed) {
  const int64_t b = cat.rank() == 2 ? cat.dim(0) : -1;
  const int64_t nt = static_cast<int64_t>(spec_.table_rows.size());
  TESSERA_CHECK(cat.is_host() && cat.dtype() == DType::I64 && cat.rank() == 2 && cat.dim(1) == nt,
                "categorical input " << cat.describe() << ", expected host i64 [B, " << nt << "]");
  // One id per (table, sample): bag t * B + s holds cat[s, t] (table-major CSR).
  Tensor idx = Tensor::host({nt * b}, DType::I64), off = Tensor::host({nt * b + 1}, DType::I64);
  const int64_t* c = cat.data<int64_t>();
  int64_t* ip = idx.data<int64_t>();
  int64_t* op = off.data<int64_t>();
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t s = 0; s < b; ++s) ip[t * b + s] = c[s * nt + t];
  for (int64_t i = 0; i <= nt * b; ++i) op[i] = i;
  emb::Bags bags;
  bags.indices = idx;
  bags.offsets = off;
  bags.batch = b;
  return forward_bags(dense, bags, mode, dropout_seed);
}

Tensor DlrmModel::forward_bags(const Tensor& dense, const emb::Bags& bags, Mode mode,
                               uint64_t dropout_seed) {
  const int64_t b = bags.batch;
  TESSERA_CHECK(b >= 1 && b <= max_batch_,
                "batch of " << b << " rows for the model's max batch " << max_batch_);
  TESSERA_CHECK(
      spec_.n_dense == 0 ||
          (dense.rank() == 2 && dense.dim(0) == b && dense.dim(1) == spec_.n_dense),
      "dense input " << dense.describe() << ", expected [" << b << ", " << spec_.n_dense << "]");
  batch_ = b;
  sparse_pending_ = false;  // the tables now hold this batch's lookup
  mode_ = mode;
  dropout_seed_ = dropout_seed;
  Tensor e = emb_out_.rows(0, b);
  tables_->forward(bags, e);
  Tensor inter = interact(e, b);
  if (spec_.n_dense > 0) {
    Tensor xd = dense_in_.rows(0, b);
    backend_.copy(dense, xd);
    Tensor z0 = tower_forward(bottom_, xd, mode, 0);
    backend_.dot_interaction_forward(z0, e, inter);
  }
  return tower_forward(top_, inter, mode, dropout_seed);
}

// Without dense features: [e_1 | dots of e_1..e_T] (the caller fills it when n_dense > 0).
Tensor DlrmModel::interact(const Tensor& e, int64_t b) {
  Tensor inter = inter_.rows(0, b);
  if (spec_.n_dense > 0) return inter;
  if (!pick_first_.defined()) {  // one table: e_1 alone
    backend_.copy(e, inter);
    return inter;
  }
  Tensor first = e_first_.rows(0, b), rest = e_rest_.rows(0, b);
  backend_.gemm(Transpose::No, Transpose::No, 1.f, e, pick_first_, 0.f, first);
  backend_.gemm(Transpose::No, Transpose::No, 1.f, e, pick_rest_, 0.f, rest);
  backend_.dot_interaction_forward(first, rest, inter);
  return inter;
}

void DlrmModel::interact_backward(const Tensor& dinter, int64_t b) {
  Tensor de = demb_.rows(0, b);
  if (!pick_first_.defined()) {
    backend_.copy(dinter, de);
    return;
  }
  Tensor df = de_first_.rows(0, b), dr = de_rest_.rows(0, b);
  backend_.dot_interaction_backward(e_first_.rows(0, b), e_rest_.rows(0, b), dinter, df, dr);
  backend_.gemm(Transpose::No, Transpose::Yes, 1.f, df, pick_first_, 0.f, de);
  backend_.gemm(Transpose::No, Transpose::Yes, 1.f, dr, pick_rest_, 1.f, de);
}

void DlrmModel::backward(const Tensor& dlogits, SparseStep sparse) {
  TESSERA_CHECK(mode_ == Mode::Train, "backward after an evaluation-mode forward");
  const int64_t b = batch_;
  TESSERA_CHECK(dlogits.numel() == b, "dlogits " << dlogits.describe() << " for batch " << b);
  Tensor dinter = tower_backward(top_, inter_.rows(0, b), dlogits.reshape({b, 1}), dropout_seed_,
                                 /*want_dx=*/true);
  if (spec_.n_dense > 0) {
    Tensor z0 = bottom_.layers.back().a.rows(0, b);
    Tensor dz0 = dz0_.rows(0, b), de = demb_.rows(0, b);
    backend_.dot_interaction_backward(z0, emb_out_.rows(0, b), dinter, dz0, de);
    tower_backward(bottom_, dense_in_.rows(0, b), dz0, 0, /*want_dx=*/false);
  } else {
    interact_backward(dinter, b);
  }
  sparse_pending_ = true;
  if (sparse == SparseStep::InBackward) step_sparse();
}

// One collection, shards (in this process or others), or split across the ranks.
void DlrmModel::make_tables(const std::vector<emb::TableSpec>& tables,
                            const emb::CollectionOptions& co) {
  const DlrmSpec& spec = spec_;
  if (spec.shards < 1) TESSERA_THROW(Config, "shards must be >= 1, got " << spec.shards);
  if (spec.rank_placement != emb::RankPlacement::TableWise) {
    tables_ = emb::make_embedding_tables(tables, backend_, co, spec.shards, spec.placement,
                                         spec.remote_shards);
    return;
  }
  if (spec.shards != 1 || spec.remote_shards)
    TESSERA_THROW(Config, "tables split across ranks take neither shards nor remote_shards");
  auto split = std::make_unique<emb::AllToAllTables>(tables, backend_, co);
  split_ = split.get();
  tables_ = std::move(split);
}

void DlrmModel::step_sparse() {
  TESSERA_CHECK(sparse_pending_, "step_sparse without a backward whose step is pending");
  sparse_pending_ = false;
  if (tables_->step_imported()) return;            // the global batch's step (data-parallel)
  if (split_ && split_->step_exchanged()) return;  // tables split across the ranks
  tables_->backward_and_update(demb_.rows(0, batch_));
}

std::vector<Parameter*> DlrmModel::parameters() {
  std::vector<Parameter*> ps;
  for (Tower* t : {&bottom_, &top_})
    for (Layer& l : t->layers) {
      ps.push_back(&l.w);
      ps.push_back(&l.b);
    }
  return ps;
}

std::map<std::string, Tensor> DlrmModel::snapshot() {
  std::map<std::string, Tensor> w;
  for (Parameter* p : parameters()) w[p->name] = backend_.to_host(p->value);
  w["embedding.tables"] = tables_->weights_to_host();
  return w;
}

void DlrmModel::restore(const std::map<std::string, Tensor>& weights) {
  auto get = [&](const std::string& name, const Shape& shape) -> const Tensor& {
    return named_f32_weight(weights, name, shape);
  };
  for (Parameter* p : parameters()) backend_.copy(get(p->name, p->value.shape()), p->value);
  tables_->set_weights(get("embedding.tables", Shape{table_layout().total_elements()}));
}

int64_t DlrmModel::parameter_count() const {
  int64_t n = table_layout().total_elements();
  for (const Tower* t : {&bottom_, &top_})
    for (const Layer& l : t->layers) n += l.w.value.numel() + l.b.value.numel();
  return n;
}

}  // namespace tessera
