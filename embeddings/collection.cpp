#include "embeddings/collection.h"

#include <algorithm>
#include <cmath>

#include "embeddings/table_rows.h"

namespace tessera::emb {

EmbeddingCollection::EmbeddingCollection(std::vector<TableSpec> specs, Backend& backend,
                                         const CollectionOptions& opts)
    : backend_(&backend), layout_(std::move(specs)), opts_(opts) {
  TESSERA_CHECK(opts.optimizer.lr > 0.f,
                "sparse optimizer lr must be > 0, got " << opts.optimizer.lr);
  ops_ = make_bag_ops(backend);
  ops_->set_storage_format(opts.format());
  storage_ = std::make_unique<BackendStorage>(backend, layout_, opts.optimizer, opts.table_dtype);
  warn_.warned.assign(static_cast<size_t>(layout_.num_tables()), false);
  // Initial weights from a counter-based generator on the host, then copied: identical tables on
  // every backend for the same seed.
  Tensor init = Tensor::host({layout_.total_elements()});
  float* w = init.data<float>();
  const int64_t n = layout_.total_elements();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i)
    w[i] = (2.f * math::hash_uniform(opts.seed, static_cast<uint64_t>(i)) - 1.f) * opts.init_scale;
  set_weights(init);
}

void EmbeddingCollection::forward(const Bags& bags, Tensor& out) {
  last_ = ops_->resolve(layout_, bags, warn_);
  have_last_ = true;
  if (!out.defined()) out = backend_->empty({bags.batch, layout_.out_dim()});
  ops_->forward(layout_, storage_->weights(), last_, out);
}

void EmbeddingCollection::forward_host_bags(const Bags& host_bags, Tensor& out) {
  forward(ops_->stage(layout_, host_bags), out);
}

void EmbeddingCollection::stage_batch(const Bags& host_bags) {
  // The rank's own ids were counted (and warned about) at its forward: resolve the global batch
  // against a copy of the warnings' state, so they are not counted twice.
  IdWarnState quiet = warn_;
  last_ = ops_->resolve(layout_, ops_->stage(layout_, host_bags), quiet);
  have_last_ = true;
}

const ResolvedBags& EmbeddingCollection::last_batch() const {
  TESSERA_CHECK(have_last_, "embedding backward before any forward");
  return last_;
}

SparseGrad EmbeddingCollection::backward(const Tensor& dout) {
  return ops_->backward(layout_, last_batch(), dout);
}

Tensor EmbeddingCollection::weight_grad(const Tensor& dout) {
  return ops_->weight_grad(layout_, storage_->weights(), last_batch(), dout);
}

void EmbeddingCollection::set_lr_scale(float scale) {
  TESSERA_CHECK(std::isfinite(scale) && scale >= 0.f,
                "sparse optimizer lr scale must be finite and >= 0, got " << scale);
  lr_scale_ = scale;
}

SparseStepParams EmbeddingCollection::next_step_params() {
  ++step_;
  SparseStepParams p = step_params(opts_.optimizer, step_);
  if (opts_.stochastic_rounding)
    p.round_stream =
        math::mix64(opts_.seed ^ 0x5EED0F5709C4A571ull) ^ math::mix64(static_cast<uint64_t>(step_));
  p.lr *= lr_scale_;  // exact for a scale of 1: a constant schedule keeps today's updates
  return p;
}

void EmbeddingCollection::apply(const SparseGrad& g) {
  const SparseStepParams p = next_step_params();
  ops_->update(layout_, opts_.optimizer.kind, p, g, *storage_);
}

void EmbeddingCollection::backward_and_update(const Tensor& dout) {
  const ResolvedBags& r = last_batch();
  const SparseStepParams p = next_step_params();
  ops_->backward_update(layout_, r, dout, opts_.optimizer.kind, p, *storage_);
}

Tensor EmbeddingCollection::table_to_host(int64_t t) {
  const TableSpec& s = layout_.spec(t);
  const int64_t e0 = layout_.weight_offset(t);
  const int64_t n = s.rows * s.dim;
  if (opts_.table_dtype == TableDType::F32) {
    Tensor view = storage_->weights().rows(e0, e0 + n);
    return backend_->to_host(view).reshape({s.rows, s.dim});
  }
  // The words holding elements [e0, e0 + n): the first may start with the previous table's value.
  Tensor words = storage_->weights().rows(e0 / 2, packed_words(e0 + n));
  return unpack_table_values(backend_->to_host(words), e0 % 2, n, opts_.table_dtype)
      .reshape({s.rows, s.dim});
}

void EmbeddingCollection::set_table(int64_t t, const Tensor& host_rows_dim) {
  const TableSpec& s = layout_.spec(t);
  TESSERA_CHECK(host_rows_dim.dtype() == DType::F32 && host_rows_dim.numel() == s.rows * s.dim,
                layout_.table_label(t)
                    << " is [" << s.rows << ", " << s.dim << "], got " << host_rows_dim.describe());
  const int64_t e0 = layout_.weight_offset(t);
  const int64_t n = s.rows * s.dim;
  if (opts_.table_dtype == TableDType::F32) {
    Tensor view = storage_->weights().rows(e0, e0 + n);
    backend_->copy(host_rows_dim.reshape({n}), view);
    return;
  }
  // Read the words first: a word at either end may hold a neighbour table's value, kept as it is.
  Tensor view = storage_->weights().rows(e0 / 2, packed_words(e0 + n));
  Tensor words = backend_->to_host(view);
  Tensor host = host_rows_dim.is_host() ? host_rows_dim : backend_->to_host(host_rows_dim);
  narrow_row(opts_.table_dtype, host.data<float>(), half_data(words) + e0 % 2, n);
  backend_->copy(words, view);
}

Tensor EmbeddingCollection::weights_to_host() {
  Tensor w = backend_->to_host(storage_->weights());
  if (opts_.table_dtype == TableDType::F32) return w;
  return unpack_table_values(w, 0, layout_.total_elements(), opts_.table_dtype);
}

void EmbeddingCollection::set_weights(const Tensor& host_flat) {
  Tensor& w = storage_->weights();
  const int64_t n = layout_.total_elements();
  TESSERA_CHECK(
      host_flat.dtype() == DType::F32 && host_flat.numel() == n,
      "embedding weights must be f32 with " << n << " elements, got " << host_flat.describe());
  if (opts_.table_dtype == TableDType::F32) {
    backend_->copy(host_flat.reshape(w.shape()), w);
    return;
  }
  const Tensor host = host_flat.is_host() ? host_flat : backend_->to_host(host_flat);
  backend_->copy(pack_table_values(host.reshape({n}), opts_.table_dtype), w);
}

std::map<std::string, Tensor> EmbeddingCollection::training_state() {
  std::map<std::string, Tensor> s;
  s["weights"] = weights_to_host();
  for (int k = 0; k < storage_->num_states(); ++k)
    s["state" + std::to_string(k)] = state_to_host(k);
  s["step"] = Tensor::host_from<int64_t>({1}, {step_});
  return s;
}

int64_t check_training_state(const std::map<std::string, Tensor>& state, SparseOptimizer kind,
                             int64_t weights_numel, const std::vector<int64_t>& state_numels) {
  std::vector<std::string> known;
  auto need = [&](const std::string& name, DType dtype, int64_t numel) -> const Tensor& {
    known.push_back(name);
    auto it = state.find(name);
    if (it == state.end())
      TESSERA_THROW(Io, "embedding state lacks '" << name << "' (the "
                                                  << sparse_optimizer_name(kind)
                                                  << " optimizer needs it)");
    if (it->second.dtype() != dtype || it->second.numel() != numel)
      TESSERA_THROW(Io, "embedding state '" << name << "' is " << it->second.describe()
                                            << ", the collection needs " << numel << " "
                                            << dtype_name(dtype) << " elements");
    return it->second;
  };
  need("weights", DType::F32, weights_numel);
  for (size_t k = 0; k < state_numels.size(); ++k)
    need("state" + std::to_string(k), DType::F32, state_numels[k]);
  const Tensor& step = need("step", DType::I64, 1);
  if (step.data<int64_t>()[0] < 0)
    TESSERA_THROW(Io, "embedding state 'step' is " << step.data<int64_t>()[0] << ", not a count");
  // Slots of another optimizer mean the state belongs to another configuration.
  for (const auto& [name, t] : state)
    if (std::find(known.begin(), known.end(), name) == known.end())
      TESSERA_THROW(Io, "embedding state holds '" << name << "', which the "
                                                  << sparse_optimizer_name(kind)
                                                  << " optimizer does not have");
  return step.data<int64_t>()[0];
}

void EmbeddingCollection::restore_training_state(const std::map<std::string, Tensor>& state) {
  std::vector<int64_t> state_numels;
  for (int k = 0; k < storage_->num_states(); ++k)
    state_numels.push_back(storage_->state(k).numel());
  const int64_t step =
      check_training_state(state, opts_.optimizer.kind, layout_.total_elements(), state_numels);
  set_weights(state.at("weights"));
  for (int k = 0; k < storage_->num_states(); ++k) {
    Tensor& sk = storage_->state(k);
    backend_->copy(state.at("state" + std::to_string(k)).reshape(sk.shape()), sk);
  }
  step_ = step;
}

Bags make_host_bags(const std::vector<std::vector<std::vector<int64_t>>>& ids,
                    const std::vector<std::vector<std::vector<float>>>& weights) {
  const int64_t T = static_cast<int64_t>(ids.size());
  TESSERA_CHECK(T > 0, "make_host_bags: no tables");
  const int64_t B = static_cast<int64_t>(ids[0].size());
  std::vector<int64_t> flat, offsets{0};
  std::vector<float> wflat;
  for (int64_t t = 0; t < T; ++t) {
    TESSERA_CHECK(static_cast<int64_t>(ids[t].size()) == B, "make_host_bags: table "
                                                                << t << " has " << ids[t].size()
                                                                << " samples, table 0 has " << B);
    for (int64_t s = 0; s < B; ++s) {
      flat.insert(flat.end(), ids[t][s].begin(), ids[t][s].end());
      offsets.push_back(static_cast<int64_t>(flat.size()));
      if (!weights.empty()) {
        TESSERA_CHECK(weights[t][s].size() == ids[t][s].size(), "make_host_bags: weights of table "
                                                                    << t << " sample " << s
                                                                    << " do not match its ids");
        wflat.insert(wflat.end(), weights[t][s].begin(), weights[t][s].end());
      }
    }
  }
  Bags b;
  b.batch = B;
  b.indices = Tensor::host_from<int64_t>({static_cast<int64_t>(flat.size())}, flat);
  b.offsets = Tensor::host_from<int64_t>({static_cast<int64_t>(offsets.size())}, offsets);
  if (!weights.empty())
    b.weights = Tensor::host_from<float>({static_cast<int64_t>(wflat.size())}, wflat);
  return b;
}

Bags bags_to(Backend& backend, const Bags& h) {
  Bags b;
  b.batch = h.batch;
  b.indices = backend.to_device(h.indices);
  b.offsets = backend.to_device(h.offsets);
  if (h.weights.defined()) b.weights = backend.to_device(h.weights);
  return b;
}

}  // namespace tessera::emb
