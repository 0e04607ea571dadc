#include "pipelines/behaviour/table_features.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

TableFeatures::TableFeatures(Backend& backend, const TableFeaturesSpec& spec, uint64_t seed)
    : specs_(spec.tables) {
  if (spec.tables.empty())
    TESSERA_THROW(Config, "this model needs at least one categorical column; the data has none");
  if (spec.shards < 1) TESSERA_THROW(Config, "shards must be >= 1, got " << spec.shards);
  std::vector<emb::TableSpec> tables;
  for (size_t t = 0; t < spec.tables.size(); ++t) {
    const FeatureTable& f = spec.tables[t];
    TESSERA_CHECK(f.column >= 0 && f.rows > 0 && f.dim > 0, "table " << t << ": column " << f.column
                                                                     << ", " << f.rows
                                                                     << " rows of dim " << f.dim);
    columns_ = std::max(columns_, f.column + 1);
    emb::TableSpec ts;
    ts.name = "t" + std::to_string(t);
    ts.rows = f.rows;
    ts.dim = f.dim;
    tables.push_back(ts);
  }
  emb::CollectionOptions co;
  co.optimizer = spec.sparse;
  co.table_dtype = spec.table_dtype;
  co.stochastic_rounding = spec.stochastic_rounding;
  co.seed = seed;
  if (spec.rank_placement == emb::RankPlacement::TableWise) {
    if (spec.shards != 1 || spec.remote_shards)
      TESSERA_THROW(Config, "tables split across ranks take neither shards nor remote_shards");
    auto split = std::make_unique<emb::AllToAllTables>(tables, backend, co);
    split_ = split.get();
    tables_ = std::move(split);
  } else {
    tables_ = emb::make_embedding_tables(tables, backend, co, spec.shards, spec.placement,
                                         spec.remote_shards);
  }
  // Drawn on the host from the seed (the same draws whatever the sharding), one table at a time.
  std::mt19937_64 rng(math::mix64(seed ^ 0xE3Bull));
  for (size_t t = 0; t < tables.size(); ++t) {
    Tensor w = Tensor::host({tables[t].rows, tables[t].dim});
    float* p = w.data<float>();
    if (spec.tables[t].zero_init) {
      std::fill(p, p + w.numel(), 0.f);
    } else {
      const float bound = 1.f / std::sqrt(static_cast<float>(tables[t].rows));
      std::uniform_real_distribution<float> u(-bound, bound);
      for (int64_t i = 0; i < w.numel(); ++i) p[i] = u(rng);
    }
    tables_->set_table(static_cast<int64_t>(t), w);
  }
}

void TableFeatures::forward(const Tensor& cat, Tensor& out) {
  const int64_t nt = static_cast<int64_t>(specs_.size());
  TESSERA_CHECK(
      cat.is_host() && cat.dtype() == DType::I64 && cat.rank() == 2 && cat.dim(1) == columns_,
      "categorical input " << cat.describe() << ", expected host i64 [B, " << columns_ << "]");
  const int64_t b = cat.dim(0);
  pending_ = false;  // the tables now hold this batch's lookup
  // One id per (table, sample): bag t * B + s holds the sample's id of table t's column.
  Tensor idx = Tensor::host({nt * b}, DType::I64), off = Tensor::host({nt * b + 1}, DType::I64);
  const int64_t* c = cat.data<int64_t>();
  int64_t* ip = idx.data<int64_t>();
  int64_t* op = off.data<int64_t>();
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t s = 0; s < b; ++s) ip[t * b + s] = c[s * columns_ + specs_[t].column];
  for (int64_t i = 0; i <= nt * b; ++i) op[i] = i;
  emb::Bags bags;
  bags.indices = idx;
  bags.offsets = off;
  bags.batch = b;
  tables_->forward(bags, out);
}

void TableFeatures::forward_bags(const emb::Bags& cb, Tensor& out) {
  const int64_t nt = static_cast<int64_t>(specs_.size()), b = cb.batch;
  TESSERA_CHECK(cb.offsets.is_host() && cb.indices.is_host() && cb.offsets.dtype() == DType::I64 &&
                    cb.offsets.numel() == columns_ * b + 1,
                "column bags with offsets " << cb.offsets.describe() << " for " << columns_
                                            << " columns of " << b << " samples");
  pending_ = false;
  bool identity = nt == columns_;
  for (int64_t t = 0; identity && t < nt; ++t) identity = specs_[t].column == t;
  if (identity) {
    tables_->forward(cb, out);
    return;
  }
  // Table t takes its column's bags: copy them table after table.
  const int64_t* co = cb.offsets.data<int64_t>();
  const bool weighted = cb.weights.defined();
  int64_t nnz = 0;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t c = specs_[t].column;
    nnz += co[(c + 1) * b] - co[c * b];
  }
  bags_ = emb::Bags();
  bags_.batch = b;
  bags_.offsets = Tensor::host({nt * b + 1}, DType::I64);
  bags_.indices = Tensor::host({nnz}, DType::I64);
  if (weighted) bags_.weights = Tensor::host({nnz});
  int64_t* op = bags_.offsets.data<int64_t>();
  op[0] = 0;
  int64_t at = 0;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t c = specs_[t].column, lo = co[c * b], hi = co[(c + 1) * b];
    std::copy(cb.indices.data<int64_t>() + lo, cb.indices.data<int64_t>() + hi,
              bags_.indices.data<int64_t>() + at);
    if (weighted)
      std::copy(cb.weights.data<float>() + lo, cb.weights.data<float>() + hi,
                bags_.weights.data<float>() + at);
    for (int64_t s = 0; s < b; ++s) op[t * b + s + 1] = at + co[c * b + s + 1] - lo;
    at += hi - lo;
  }
  tables_->forward(bags_, out);
}

void TableFeatures::set_gradient(const Tensor& dout) {
  dout_ = dout;
  pending_ = true;
}

void TableFeatures::step() {
  TESSERA_CHECK(pending_, "a sparse step without a backward whose step is pending");
  pending_ = false;
  if (tables_->step_imported()) return;            // the global batch's step (data-parallel)
  if (split_ && split_->step_exchanged()) return;  // tables split across the ranks
  tables_->backward_and_update(dout_);
}

int64_t TableFeatures::elements(const std::vector<FeatureTable>& tables) {
  int64_t n = 0;
  for (const FeatureTable& t : tables) n += t.rows * t.dim;
  return n;
}

}  // namespace tessera
