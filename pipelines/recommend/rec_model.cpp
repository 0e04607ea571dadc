#include "pipelines/recommend/rec_model.h"

#include <cmath>
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

double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace

RecModel::RecModel(const RecommendConfig& cfg, int64_t users, int64_t items, Backend& backend)
    : cfg_(cfg), kind_(cfg.model), backend_(&backend), dim_(cfg.embeddings.dim) {
  emb::CollectionOptions o;
  o.optimizer = cfg.embeddings.optimizer;
  o.init_scale = static_cast<float>(cfg.embeddings.init_scale);
  o.seed = static_cast<uint64_t>(cfg.seed);
  std::vector<emb::TableSpec> specs = specs_for(kind_, users, items, dim_);
  tables_ = emb::make_embedding_tables(std::move(specs), backend, o, cfg.embeddings.shards,
                                       cfg.embeddings.placement, cfg.embeddings.remote_shards);
  // Biases start at zero (the global mean carries the offset).
  for (int64_t t = 2; t < layout().num_tables(); ++t)
    tables_->set_table(t, Tensor::host({layout().spec(t).rows, 1}));
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
  const SmallBatchThreads threads(B * layout().out_dim());
  return tables_->forward_host(bags);
}

void RecModel::stage(const Step& s) {
  group_.staged = s.dout;
}

void RecModel::apply(const Step& s) {
  stage(s);
  group_.step();
}

void RecModel::TableGroup::step() {
  TESSERA_CHECK(staged.defined(), "a sparse step without a staged gradient");
  const Tensor dout = staged;
  staged = Tensor();
  const SmallBatchThreads threads(dout.numel());
  m_.tables_->backward_and_update_host(dout);
}

const std::string& RecModel::table_of_column(int64_t column) const {
  for (int64_t t = 0; t < layout().num_tables(); ++t) {
    column -= layout().spec(t).dim;
    if (column < 0) return layout().spec(t).name;
  }
  TESSERA_THROW(Internal, "column past the tables' width " << layout().out_dim());
}

RecModel::Step RecModel::mf_step(const int32_t* users, const int32_t* items, const float* ratings,
                                 int64_t n) {
  std::vector<int32_t> u(users, users + n), it(items, items + n);
  const Tensor out = forward(u, it);  // [n, 2d + 2]: p_u | q_i | b_u | b_i
  const int64_t W = out.dim(1), d = dim_;
  const float* o = out.data<float>();
  Tensor dout = Tensor::host({n, W});
  float* g = dout.data<float>();
  const auto l2 = static_cast<float>(cfg_.train.l2), bl2 = static_cast<float>(cfg_.train.bias_l2);
  double sse = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float* p = o + s * W;
    const float* q = p + d;
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(p[k]) * q[k];
    const double pred = mu_ + p[2 * d] + p[2 * d + 1] + dot;
    const auto e = static_cast<float>(pred - ratings[s]);
    sse += static_cast<double>(e) * e;
    float* gs = g + s * W;
    for (int64_t k = 0; k < d; ++k) {
      gs[k] = e * q[k] + l2 * p[k];
      gs[d + k] = e * p[k] + l2 * q[k];
    }
    gs[2 * d] = e + bl2 * p[2 * d];
    gs[2 * d + 1] = e + bl2 * p[2 * d + 1];
  }
  return {sse, dout};
}

RecModel::Step RecModel::two_tower_step(const int32_t* users, const int32_t* items, int64_t n,
                                        int64_t negs) {
  const int64_t G = 1 + negs, S = n * G;
  std::vector<int32_t> u(static_cast<size_t>(S)), it(items, items + S);
  for (int64_t s = 0; s < S; ++s) u[s] = users[s / G];
  const Tensor out = forward(u, it);  // [S, 2d + 1]: u | v_i | b_i
  const int64_t W = out.dim(1), d = dim_;
  const float* o = out.data<float>();
  std::vector<double> score(static_cast<size_t>(S)), dscore(static_cast<size_t>(S), 0.0);
  for (int64_t s = 0; s < S; ++s) {
    const float* p = o + s * W;
    double dot = 0;
    for (int64_t k = 0; k < d; ++k) dot += static_cast<double>(p[k]) * p[d + k];
    score[s] = dot + p[2 * d];
  }
  double loss = 0;
  for (int64_t gi = 0; gi < n; ++gi) {
    const int64_t pos = gi * G;
    if (cfg_.train.loss == Loss::Bce) {
      loss += softplus(-score[pos]);
      dscore[pos] = sigmoid(score[pos]) - 1.0;
      for (int64_t j = 1; j < G; ++j) {
        loss += softplus(score[pos + j]);
        dscore[pos + j] = sigmoid(score[pos + j]);
      }
    } else {
      for (int64_t j = 1; j < G; ++j) {
        const double x = score[pos] - score[pos + j];
        loss += softplus(-x);
        const double dx = -sigmoid(-x);
        dscore[pos] += dx;
        dscore[pos + j] -= dx;
      }
    }
  }
  Tensor dout = Tensor::host({S, W});
  float* g = dout.data<float>();
  const auto l2 = static_cast<float>(cfg_.train.l2), bl2 = static_cast<float>(cfg_.train.bias_l2);
  for (int64_t s = 0; s < S; ++s) {
    const float* p = o + s * W;
    float* gs = g + s * W;
    const auto ds = static_cast<float>(dscore[s]);
    for (int64_t k = 0; k < d; ++k) {
      gs[k] = ds * p[d + k] + l2 * p[k];
      gs[d + k] = ds * p[k] + l2 * p[d + k];
    }
    gs[2 * d] = ds + bl2 * p[2 * d];
  }
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
