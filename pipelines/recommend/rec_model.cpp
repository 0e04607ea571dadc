#include "pipelines/recommend/rec_model.h"

#include <algorithm>
#include <map>

#include <omp.h>

#include "host/backend/backend.h"
#include "host/core/error.h"

namespace tessera::recommend {
namespace {

// Table order in the collection (and in pooled outputs): user, item, then the bias tables.
constexpr int64_t kUser = 0, kItem = 1;

std::vector<emb::TableSpec> specs_for(ModelKind kind, int64_t users, int64_t items, int64_t dim) {
  std::vector<emb::TableSpec> s = {{"user", users, dim}, {"item", items, dim}};
  if (kind == ModelKind::Mf) s.push_back({"user_bias", users, 1});
  s.push_back({"item_bias", items, 1});
  return s;
}

// The host bag ops fork OpenMP teams per call; a recommendation batch is a few hundred KiB of
// rows, where a team's barriers cost more than the work (60x slower on a loaded 2-core machine).
// Small batches therefore run on the calling thread; the results do not depend on the count.
class SmallBatchThreads {
 public:
  explicit SmallBatchThreads(int64_t elements) : saved_(omp_get_max_threads()) {
    if (elements < (int64_t{1} << 21)) omp_set_num_threads(1);
  }
  ~SmallBatchThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

RecModel::RecModel(const RecommendConfig& cfg, int64_t users, int64_t items, Backend& backend,
                   emb::RankPlacement where)
    : cfg_(cfg), kind_(cfg.model), backend_(&backend), dim_(cfg.embeddings.dim) {
  emb::CollectionOptions o;
  o.optimizer = cfg.embeddings.optimizer;
  o.init_scale = static_cast<float>(cfg.embeddings.init_scale);
  o.seed = static_cast<uint64_t>(cfg.seed);
  std::vector<emb::TableSpec> specs = specs_for(kind_, users, items, dim_);
  if (where == emb::RankPlacement::TableWise) {
    if (cfg.embeddings.shards != 1 || cfg.embeddings.remote_shards)
      TESSERA_THROW(Config, "tables split across ranks take neither shards nor remote_shards");
    auto split = std::make_unique<emb::AllToAllTables>(std::move(specs), backend, o);
    split_ = split.get();
    tables_ = std::move(split);
  } else {
    tables_ = emb::make_embedding_tables(std::move(specs), backend, o, cfg.embeddings.shards,
                                         cfg.embeddings.placement, cfg.embeddings.remote_shards);
  }
  // Biases start at zero (the global mean carries the offset).
  for (int64_t t = 2; t < layout().num_tables(); ++t)
    tables_->set_table(t, Tensor::host({layout().spec(t).rows, 1}));
}

void RecModel::reserve(int64_t rows) {
  if (out_.defined() && out_.dim(0) >= rows) return;
  const int64_t W = layout().out_dim();
  out_ = backend_->empty({rows, W});
  dout_ = backend_->empty({rows, W});
  score_ = backend_->empty({rows});
  dscore_ = backend_->empty({rows});
  loss_ = backend_->empty({rows});
}

const Tensor& RecModel::bce_labels(int64_t rows, int64_t group) {
  if (!labels_.defined() || labels_.dim(0) < rows || labels_group_ != group) {
    Tensor host = Tensor::host({rows});
    for (int64_t s = 0; s < rows; ++s) host.data<float>()[s] = s % group == 0 ? 1.f : 0.f;
    labels_ = backend_->to_device(host);
    labels_group_ = group;
  }
  return labels_;
}

Tensor RecModel::forward(const std::vector<int32_t>& users, const std::vector<int32_t>& items) {
  const int64_t B = static_cast<int64_t>(users.size());
  const int64_t T = layout().num_tables();
  emb::Bags bags;
  bags.batch = B;
  bags.indices = Tensor::host({T * B}, DType::I64);
  bags.offsets = Tensor::host({T * B + 1}, DType::I64);
  int64_t* idx = bags.indices.data<int64_t>();
  int64_t* off = bags.offsets.data<int64_t>();
  for (int64_t t = 0; t < T; ++t) {
    const bool user_table = layout().spec(t).name.rfind("user", 0) == 0;
    for (int64_t s = 0; s < B; ++s) idx[t * B + s] = user_table ? users[s] : items[s];
  }
  for (int64_t b = 0; b <= T * B; ++b) off[b] = b;
  reserve(B);
  Tensor out = out_.rows(0, B);
  const SmallBatchThreads threads(B * layout().out_dim());
  tables_->forward(bags, out);
  return out;
}

void RecModel::stage(const Step& s) {
  group_.staged = s.dout;
}

void RecModel::apply(const Step& s) {
  stage(s);
  group_.step();
}

void RecModel::TableGroup::step() {
  if (imported) {  // the global batch's step (data-parallel)
    imported = false;
    staged = Tensor();
    if (!(m_.split_ && m_.split_->step_exchanged())) m_.tables_->step_imported();
    return;
  }
  TESSERA_CHECK(staged.defined(), "a sparse step without a staged gradient");
  const Tensor dout = staged;
  staged = Tensor();
  const SmallBatchThreads threads(dout.numel());
  m_.tables_->backward_and_update(dout);
}

const std::string& RecModel::table_of_column(int64_t column) const {
  for (int64_t t = 0; t < layout().num_tables(); ++t) {
    column -= layout().spec(t).dim;
    if (column < 0) return layout().spec(t).name;
  }
  TESSERA_THROW(Internal, "column past the tables' width " << layout().out_dim());
}

// r_hat = mu + b_u + b_i + <p_u, q_i>; e = r_hat - r, loss e^2, de = e (unscaled: the optimizer's
// lr carries the scale); per-occurrence L2 on the rows.
RecModel::Step RecModel::mf_step(const int32_t* users, const int32_t* items, const Tensor& ratings,
                                 int64_t n) {
  TESSERA_CHECK(ratings.numel() == n,
                "mf_step: " << n << " ratings expected, got " << ratings.describe());
  std::vector<int32_t> u(users, users + n), it(items, items + n);
  const Tensor out = forward(u, it);  // [n, 2d + 2]: p_u | q_i | b_u | b_i
  Tensor score = score_.rows(0, n), dscore = dscore_.rows(0, n), loss = loss_.rows(0, n);
  Tensor dout = dout_.rows(0, n);
  backend_->rec_score_forward(out, dim_, mu_, score);
  backend_->squared_error(score, ratings, 1.f, loss, dscore);
  backend_->rec_score_backward(out, dscore, dim_, static_cast<float>(cfg_.train.l2),
                               static_cast<float>(cfg_.train.bias_l2), dout);
  return {loss, dout};
}

RecModel::Step RecModel::mf_step(const int32_t* users, const int32_t* items, const float* ratings,
                                 int64_t n) {
  Tensor host = Tensor::host({n});
  std::copy(ratings, ratings + n, host.data<float>());
  return mf_step(users, items, backend_->to_device(host), n);
}

// s = <u, v_i> + b_i for the positive and each negative of a group; BCE (positive 1, negatives
// 0) or BPR (the positive against each negative), unscaled.
RecModel::Step RecModel::two_tower_step(const int32_t* users, const int32_t* items, int64_t n,
                                        int64_t negs) {
  const int64_t G = 1 + negs, S = n * G;
  std::vector<int32_t> u(static_cast<size_t>(S)), it(items, items + S);
  for (int64_t s = 0; s < S; ++s) u[s] = users[s / G];
  const Tensor out = forward(u, it);  // [S, 2d + 1]: u | v_i | b_i
  Tensor score = score_.rows(0, S), dscore = dscore_.rows(0, S), dout = dout_.rows(0, S);
  backend_->rec_score_forward(out, dim_, 0.f, score);
  Tensor loss;
  if (cfg_.train.loss == Loss::Bce) {
    loss = loss_.rows(0, S);
    backend_->bce_with_logits(score, bce_labels(S, G).rows(0, S), 1.f, loss, dscore);
  } else {
    loss = loss_.rows(0, n);
    backend_->pairwise_logistic(score, G, 1.f, loss, dscore);
  }
  backend_->rec_score_backward(out, dscore, dim_, static_cast<float>(cfg_.train.l2),
                               static_cast<float>(cfg_.train.bias_l2), dout);
  return {loss, dout};
}

std::vector<std::pair<std::string, Tensor>> RecModel::tables() {
  std::vector<std::pair<std::string, Tensor>> t;
  for (int64_t i = 0; i < layout().num_tables(); ++i)
    t.emplace_back(layout().spec(i).name, tables_->table_to_host(i));
  return t;
}

std::vector<std::pair<std::string, Tensor>> RecModel::state_tensors() {
  std::vector<std::pair<std::string, Tensor>> t;
  for (auto& [name, tensor] : tables_->training_state())
    if (name != "step") t.emplace_back(name, tensor);  // the checkpoint's meta holds the step
  Tensor mu = Tensor::host({1});
  mu.data<float>()[0] = mu_;
  t.emplace_back("global_mean", mu);
  return t;
}

std::vector<std::pair<std::string, Tensor>> RecModel::mean_state() const {
  Tensor mu = Tensor::host({1});
  mu.data<float>()[0] = mu_;
  return {{"global_mean", mu}};
}

void RecModel::restore_mean_state(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const Tensor* mu = nullptr;
  for (const auto& [name, t] : tensors) {
    if (name != "global_mean")
      TESSERA_THROW(Io, "checkpoint tensor '" << name << "' belongs to no parameter group");
    mu = &t;
  }
  if (!mu) TESSERA_THROW(Io, "checkpoint has no global_mean");
  if (mu->dtype() != DType::F32 || mu->numel() != 1)
    TESSERA_THROW(Io, "checkpoint global_mean is " << mu->describe() << ", not one f32");
  mu_ = mu->data<float>()[0];
}

void RecModel::restore_state(const std::vector<std::pair<std::string, Tensor>>& tensors,
                             int64_t step) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : tensors) {
    if (name == "global_mean") {
      if (t.dtype() != DType::F32 || t.numel() != 1)
        TESSERA_THROW(Io, "checkpoint global_mean is " << t.describe() << ", not one f32");
      mu_ = t.data<float>()[0];
    } else {
      state[name] = t;  // weights, optimizer slots; anything else is refused by the tables
    }
  }
  state["step"] = Tensor::host_from<int64_t>({1}, {step});
  tables_->restore_training_state(state);
}

}  // namespace tessera::recommend
