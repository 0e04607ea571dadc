#include "embeddings/sharding.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <numeric>
#include <sstream>

#include "host/core/enum_table.h"

namespace tessera::emb {

const char* placement_name(Placement p) {
  static constexpr const char* kNames[] = {"table-wise", "row-wise", "column-wise"};
  return enum_entry<Placement::ColumnWise>(p, kNames, "?");
}

namespace {

int64_t table_bytes(const TableSpec& s, const SparseOptimizerConfig& opt, TableDType dtype) {
  int64_t state_per_element = 0;
  if (opt.kind == SparseOptimizer::Adagrad) state_per_element = 1;
  if (opt.kind == SparseOptimizer::LazyAdam) state_per_element = 2;
  int64_t bytes = s.rows * s.dim * (table_dtype_bytes(dtype) + 4 * state_per_element);
  if (opt.kind == SparseOptimizer::RowwiseAdagrad) bytes += s.rows * 4;
  return bytes;
}

std::string mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Columns split evenly over min(N, dim) shards, the first dim % n parts one column wider; the
// parts start at the shard with the most free memory and go round from there (narrow tables do
// not all land on shard 0). `free` and `shard_bytes` are per shard and updated.
void place_column_wise(const TableSpec& spec, TablePlacement& tp, std::vector<int64_t>& free,
                       std::vector<int64_t>& shard_bytes) {
  const int N = static_cast<int>(free.size());
  tp.placement = Placement::ColumnWise;
  const int64_t dim = spec.dim, rows = spec.rows;
  const int64_t n = std::min<int64_t>(N, dim);
  const int64_t elem_bytes = tp.bytes / (rows * dim);
  const int64_t first = std::max_element(free.begin(), free.end()) - free.begin();
  int64_t begin = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = (first + i) % N;
    const int64_t cols = dim / n + (i < dim % n ? 1 : 0);
    const int64_t bytes =
        elem_bytes * rows * cols + (i == 0 ? tp.bytes - elem_bytes * rows * dim : 0);
    if (bytes > free[static_cast<size_t>(k)])
      TESSERA_THROW(Config, "table '" << spec.name << "' does not fit column-wise: shard " << k
                                      << " would need " << mib(bytes) << " with "
                                      << mib(free[static_cast<size_t>(k)]) << " free");
    tp.parts.push_back({static_cast<int>(k), 0, rows, begin, begin + cols});
    free[static_cast<size_t>(k)] -= bytes;
    shard_bytes[static_cast<size_t>(k)] += bytes;
    begin += cols;
  }
}

// Rows in proportion to free memory; the last shard with room takes the remainder. `free` and
// `shard_bytes` are per shard and updated.
void place_row_wise(const TableSpec& spec, TablePlacement& tp, std::vector<int64_t>& free,
                    std::vector<int64_t>& shard_bytes) {
  const int N = static_cast<int>(free.size());
  tp.placement = Placement::RowWise;
  const int64_t rows = spec.rows;
  const int64_t row_bytes = tp.bytes / rows;
  int64_t free_sum = 0;
  for (int64_t f : free) free_sum += std::max<int64_t>(f, 0);
  int64_t begin = 0;
  for (int k = 0; k < N && begin < rows; ++k) {
    int64_t n = k == N - 1 ? rows - begin
                           : static_cast<int64_t>(static_cast<double>(rows) *
                                                  static_cast<double>(std::max<int64_t>(
                                                      free[static_cast<size_t>(k)], 0)) /
                                                  static_cast<double>(free_sum));
    n = std::min(n, rows - begin);
    if (n <= 0) continue;
    if (n * row_bytes > free[static_cast<size_t>(k)])
      TESSERA_THROW(Config, "table '" << spec.name << "' does not fit: shard " << k
                                      << " would need " << mib(n * row_bytes) << " with "
                                      << mib(free[static_cast<size_t>(k)]) << " free");
    tp.parts.push_back({k, begin, begin + n, 0, spec.dim});
    free[static_cast<size_t>(k)] -= n * row_bytes;
    shard_bytes[static_cast<size_t>(k)] += n * row_bytes;
    begin += n;
  }
}

}  // namespace

ShardPlan plan_shards(const std::vector<TableSpec>& specs, const std::vector<int64_t>& capacity,
                      const SparseOptimizerConfig& opt, const PlannerOptions& options) {
  const TableLayout layout(specs);  // validates the specs
  const int N = static_cast<int>(capacity.size());
  if (N < 1) TESSERA_THROW(Config, "shard planning needs at least one shard");
  const bool columns = options.force_all && options.force == Placement::ColumnWise && N > 1;
  if (columns && opt.kind == SparseOptimizer::RowwiseAdagrad)
    TESSERA_THROW(Config,
                  "column-wise sharding cannot train with rowwise_adagrad: its per-row "
                  "state is a mean over all of a row's columns, which no column shard "
                  "holds (use table or row placement, or another sparse optimizer)");
  for (int k = 0; k < N; ++k)
    if (capacity[static_cast<size_t>(k)] <= 0)
      TESSERA_THROW(Config, "shard " << k << " has no memory (" << capacity[static_cast<size_t>(k)]
                                     << " bytes)");
  ShardPlan plan;
  plan.num_shards = N;
  plan.shard_capacity = capacity;
  plan.shard_bytes.assign(static_cast<size_t>(N), 0);
  plan.tables.resize(specs.size());
  int64_t total = 0;
  for (size_t t = 0; t < specs.size(); ++t)
    total += plan.tables[t].bytes = table_bytes(specs[t], opt, options.table_dtype);
  const int64_t cap_total = std::accumulate(capacity.begin(), capacity.end(), int64_t{0});
  if (total > cap_total)
    TESSERA_THROW(Config, "the embedding tables need "
                              << mib(total) << " (weights + " << sparse_optimizer_name(opt.kind)
                              << " state) but the " << N << " shards have " << mib(cap_total));
  const double average = static_cast<double>(total) / N;
  std::vector<size_t> order(specs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan.tables[a].bytes > plan.tables[b].bytes; });
  std::vector<int64_t> free = capacity;
  for (size_t t : order) {
    TablePlacement& tp = plan.tables[t];
    if (columns) {
      place_column_wise(specs[t], tp, free, plan.shard_bytes);
      continue;
    }
    const int best = static_cast<int>(std::max_element(free.begin(), free.end()) - free.begin());
    bool rowwise = options.force_all
                       ? options.force == Placement::RowWise
                       : static_cast<double>(tp.bytes) > options.rowwise_threshold * average;
    if (free[static_cast<size_t>(best)] < tp.bytes) rowwise = true;
    if (N == 1) rowwise = false;
    if (!rowwise) {
      tp.placement = Placement::TableWise;
      tp.parts.push_back({best, 0, specs[t].rows, 0, specs[t].dim});
      free[static_cast<size_t>(best)] -= tp.bytes;
      plan.shard_bytes[static_cast<size_t>(best)] += tp.bytes;
      continue;
    }
    place_row_wise(specs[t], tp, free, plan.shard_bytes);
  }
  return plan;
}

std::string ShardPlan::describe(const std::vector<TableSpec>& specs) const {
  std::ostringstream os;
  os << "embedding shard plan: " << tables.size() << " tables over " << num_shards << " shards\n";
  for (size_t t = 0; t < tables.size(); ++t) {
    const TablePlacement& tp = tables[t];
    os << "  table '" << specs[t].name << "' [" << specs[t].rows << " x " << specs[t].dim << "] "
       << mib(tp.bytes) << ", " << placement_name(tp.placement) << ":";
    for (const ShardPart& p : tp.parts) {
      if (tp.placement == Placement::ColumnWise)
        os << " shard " << p.shard << " cols [" << p.col_begin << ", " << p.col_end << ")";
      else
        os << " shard " << p.shard << " rows [" << p.row_begin << ", " << p.row_end << ")";
    }
    os << "\n";
  }
  for (int k = 0; k < num_shards; ++k)
    os << "  shard " << k << ": " << mib(shard_bytes[static_cast<size_t>(k)]) << " of "
       << mib(shard_capacity[static_cast<size_t>(k)]) << "\n";
  return os.str();
}

void EmbeddingShard::set_lr_scale(float scale) {
  if (scale != 1.f)
    TESSERA_THROW(Usage, "the embedding shard on "
                             << where() << " cannot scale its sparse optimizer's lr (by " << scale
                             << ")");
}

void EmbeddingShard::forward_device(const Bags&, Tensor&) {
  TESSERA_THROW(Usage, "the embedding shard on " << where() << " takes only host tensors");
}

void EmbeddingShard::backward_update_device(const Tensor&) {
  TESSERA_THROW(Usage, "the embedding shard on " << where() << " takes only host tensors");
}

namespace {

class LocalShard final : public EmbeddingShard {
 public:
  LocalShard(std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts)
      : backend_(&backend), emb_(std::move(specs), backend, opts) {}
  const TableLayout& layout() const override { return emb_.layout(); }
  Tensor forward(const Bags& host_bags) override {
    Tensor out;
    emb_.forward_host_bags(host_bags, out);
    return backend_->to_host(out);
  }
  void backward_update(const Tensor& host_dout) override {
    emb_.backward_and_update(backend_->to_device(host_dout));
  }
  Tensor weight_grad(const Tensor& host_dout) override {
    return backend_->to_host(emb_.weight_grad(backend_->to_device(host_dout)));
  }
  Tensor table_to_host(int64_t t) override { return emb_.table_to_host(t); }
  void set_table(int64_t t, const Tensor& v) override { emb_.set_table(t, v); }
  int num_states() const override { return state_slots(emb_.options().optimizer.kind); }
  Tensor state_to_host(int slot) override { return emb_.state_to_host(slot); }
  void set_state(int slot, const Tensor& v) override {
    Tensor& dst = emb_.storage().state(slot);
    TESSERA_CHECK(v.dtype() == DType::F32 && v.numel() == dst.numel(),
                  "shard optimizer state " << slot << " has " << dst.numel() << " elements, got "
                                           << v.describe());
    backend_->copy(v.reshape(dst.shape()), dst);
  }
  void set_steps(int64_t steps) override { emb_.set_steps(steps); }
  void set_lr_scale(float scale) override { emb_.set_lr_scale(scale); }
  std::string where() const override { return backend_->name(); }
  Backend* local_backend() override { return backend_; }
  void forward_device(const Bags& host_bags, Tensor& out) override {
    emb_.forward_host_bags(host_bags, out);
  }
  void backward_update_device(const Tensor& dout) override { emb_.backward_and_update(dout); }

 private:
  Backend* backend_;
  EmbeddingCollection emb_;
};

}  // namespace

std::unique_ptr<EmbeddingShard> make_local_shard(std::vector<TableSpec> specs, Backend& backend,
                                                 const CollectionOptions& opts) {
  return std::make_unique<LocalShard>(std::move(specs), backend, opts);
}

namespace {

// The [rows, cols] block a part owns, out of / into a full [rows, dim] table (row-major).
void copy_block_out(const float* full, int64_t dim, int64_t r0, int64_t r1, int64_t c0, int64_t c1,
                    float* block) {
  const int64_t cols = c1 - c0;
  for (int64_t r = r0; r < r1; ++r)
    std::copy(full + r * dim + c0, full + r * dim + c1, block + (r - r0) * cols);
}
void copy_block_in(const float* block, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* full,
                   int64_t dim) {
  const int64_t cols = c1 - c0;
  for (int64_t r = r0; r < r1; ++r)
    std::copy(block + (r - r0) * cols, block + (r - r0 + 1) * cols, full + r * dim + c0);
}

}  // namespace

namespace {

// start(k) for every shard, then finish(k) for every shard started, even when a start or a finish
// throws: a remote shard whose reply is never read leaves its server blocked on it, and with it
// every other shard that server holds. The first error is rethrown after all have finished.
template <typename Start, typename Finish>
void start_then_finish(const std::vector<std::unique_ptr<EmbeddingShard>>& shards, Start start,
                       Finish finish) {
  std::exception_ptr first;
  std::vector<int> started;
  for (int k = 0; k < static_cast<int>(shards.size()) && !first; ++k) {
    if (!shards[static_cast<size_t>(k)]) continue;
    try {
      start(k);
      started.push_back(k);
    } catch (...) {
      first = std::current_exception();
    }
  }
  for (int k : started) {
    try {
      finish(k);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

ShardFactory local_shards(const ShardPlan& plan, const std::vector<Backend*>& backends) {
  TESSERA_CHECK(
      static_cast<int>(backends.size()) == plan.num_shards,
      "shard plan for " << plan.num_shards << " shards, " << backends.size() << " backends given");
  return [backends](int k, std::vector<TableSpec> specs, const CollectionOptions& opts) {
    return make_local_shard(std::move(specs), *backends[static_cast<size_t>(k)], opts);
  };
}

}  // namespace

ShardedEmbeddingCollection::ShardedEmbeddingCollection(std::vector<TableSpec> specs,
                                                       const ShardPlan& plan,
                                                       const std::vector<Backend*>& backends,
                                                       const CollectionOptions& opts)
    : ShardedEmbeddingCollection(std::move(specs), plan, local_shards(plan, backends), opts) {}

ShardedEmbeddingCollection::ShardedEmbeddingCollection(std::vector<TableSpec> specs,
                                                       const ShardPlan& plan,
                                                       const ShardFactory& make,
                                                       const CollectionOptions& opts)
    : layout_(std::move(specs)), plan_(plan), opts_(opts), host_ops_(make_host_bag_ops()) {
  const int N = plan.num_shards;
  TESSERA_CHECK(static_cast<int64_t>(plan.tables.size()) == layout_.num_tables(),
                "shard plan for " << plan.tables.size() << " tables, collection has "
                                  << layout_.num_tables());
  std::vector<std::vector<TableSpec>> shard_specs(static_cast<size_t>(N));
  parts_.resize(static_cast<size_t>(layout_.num_tables()));
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {
    const TableSpec& s = layout_.spec(t);
    const bool by_cols = plan.tables[static_cast<size_t>(t)].placement == Placement::ColumnWise;
    TESSERA_CHECK(!by_cols || opts.optimizer.kind != SparseOptimizer::RowwiseAdagrad,
                  "table '" << s.name << "': column-wise parts cannot use rowwise_adagrad");
    int64_t covered = 0;  // rows (table/row-wise) or columns (column-wise) tiled so far
    for (const ShardPart& p : plan.tables[static_cast<size_t>(t)].parts) {
      const bool tiles = by_cols ? p.row_begin == 0 && p.row_end == s.rows &&
                                       p.col_begin == covered && p.col_end > p.col_begin
                                 : p.col_begin == 0 && p.col_end == s.dim &&
                                       p.row_begin == covered && p.row_end > p.row_begin;
      TESSERA_CHECK(p.shard >= 0 && p.shard < N && tiles, "shard plan for table '"
                                                              << s.name << "' does not tile its "
                                                              << (by_cols ? "columns" : "rows"));
      covered = by_cols ? p.col_end : p.row_end;
      auto& list = shard_specs[static_cast<size_t>(p.shard)];
      // Ids arrive resolved and routed: a local id out of range would be a routing bug (Error).
      TableSpec part{
          s.name + "@" + std::to_string(by_cols ? p.col_begin : p.row_begin) + (by_cols ? "c" : ""),
          p.row_end - p.row_begin,
          p.col_end - p.col_begin,
          Pooling::Sum,
          IdPolicy::Error,
          IdMapping::Direct};
      parts_[static_cast<size_t>(t)].push_back({p.shard, static_cast<int64_t>(list.size()),
                                                p.row_begin, p.row_end, p.col_begin, p.col_end});
      list.push_back(part);
    }
    TESSERA_CHECK(covered == (by_cols ? s.dim : s.rows), "shard plan for table '"
                                                             << s.name << "' covers " << covered
                                                             << " of " << (by_cols ? s.dim : s.rows)
                                                             << (by_cols ? " columns" : " rows"));
  }
  shards_.resize(static_cast<size_t>(N));
  for (int k = 0; k < N; ++k)
    if (!shard_specs[static_cast<size_t>(k)].empty())
      shards_[static_cast<size_t>(k)] = make(k, shard_specs[static_cast<size_t>(k)], opts);
  // The unsharded collection's initial weights (counter-based over the flat layout), part by part.
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {
    const TableSpec& s = layout_.spec(t);
    Tensor full = Tensor::host({s.rows, s.dim});
    float* w = full.data<float>();
    const int64_t e0 = layout_.weight_offset(t);
    for (int64_t i = 0; i < s.rows * s.dim; ++i)
      w[i] = (2.f * math::hash_uniform(opts.seed, static_cast<uint64_t>(e0 + i)) - 1.f) *
             opts.init_scale;
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      Tensor part = Tensor::host({p.row_end - p.row_begin, p.col_end - p.col_begin});
      copy_block_out(w, s.dim, p.row_begin, p.row_end, p.col_begin, p.col_end, part.data<float>());
      shards_[static_cast<size_t>(p.shard)]->set_table(p.local_table, part);
    }
  }
}

std::vector<Bags> ShardedEmbeddingCollection::route(const Bags& host_bags) {
  // Resolution and the id policy exactly as the unsharded host path (same checks and messages).
  const ResolvedBags r = host_ops_->resolve(layout_, host_bags, warn_);
  const int64_t B = host_bags.batch;
  const int64_t T = layout_.num_tables();
  const int N = plan_.num_shards;
  batch_ = B;
  const int64_t* off = host_bags.offsets.data<int64_t>();
  const int64_t* keys = r.keys.data<int64_t>();
  const float* psw = host_bags.weights.defined() ? host_bags.weights.data<float>() : nullptr;
  // Per shard: bags [local_T * B] of (local id, weight with the mean folded in, batch index), in
  // position order.
  std::vector<std::vector<std::vector<int64_t>>> ids(static_cast<size_t>(N));
  std::vector<std::vector<std::vector<float>>> wts(static_cast<size_t>(N));
  std::vector<std::vector<std::vector<int64_t>>> src(static_cast<size_t>(N));
  for (int k = 0; k < N; ++k)
    if (shards_[static_cast<size_t>(k)]) {
      const size_t n =
          static_cast<size_t>(shards_[static_cast<size_t>(k)]->layout().num_tables() * B);
      ids[static_cast<size_t>(k)].resize(n);
      wts[static_cast<size_t>(k)].resize(n);
      src[static_cast<size_t>(k)].resize(n);
    }
  offsets_ = host_bags.offsets;  // the bags' shape, for weight_grad's pooling scales
  for (int64_t t = 0; t < T; ++t) {
    const auto& parts = parts_[static_cast<size_t>(t)];
    const bool by_cols = plan_.tables[static_cast<size_t>(t)].placement == Placement::ColumnWise;
    const int64_t pooling = static_cast<int64_t>(layout_.spec(t).pooling);
    for (int64_t s = 0; s < B; ++s) {
      const int64_t b = t * B + s;
      const int64_t len = off[b + 1] - off[b];
      for (int64_t j = off[b]; j < off[b + 1]; ++j) {
        const int64_t row = keys[j] - r.key_origin(layout_.row_offset(t));
        const float w = bag_scale(pooling, len, psw ? psw[j] : 1.f);
        size_t p = 0, p_end = parts.size();  // column-wise: every part holds every row
        if (!by_cols) {
          while (row >= parts[p].row_end) ++p;
          p_end = p + 1;
        }
        for (; p < p_end; ++p) {
          const PartRef& part = parts[p];
          const size_t k = static_cast<size_t>(part.shard);
          const size_t lb = static_cast<size_t>(part.local_table * B + s);
          ids[k][lb].push_back(row - part.row_begin);
          wts[k][lb].push_back(w);
          src[k][lb].push_back(j);
        }
      }
    }
  }
  std::vector<Bags> routed(static_cast<size_t>(N));
  src_.assign(static_cast<size_t>(N), {});
  for (int k = 0; k < N; ++k) {
    if (!shards_[static_cast<size_t>(k)]) continue;
    const int64_t lt = shards_[static_cast<size_t>(k)]->layout().num_tables();
    std::vector<std::vector<std::vector<int64_t>>> nested(static_cast<size_t>(lt));
    std::vector<std::vector<std::vector<float>>> nested_w(static_cast<size_t>(lt));
    for (int64_t i = 0; i < lt; ++i) {
      nested[static_cast<size_t>(i)].assign(ids[static_cast<size_t>(k)].begin() + i * B,
                                            ids[static_cast<size_t>(k)].begin() + (i + 1) * B);
      nested_w[static_cast<size_t>(i)].assign(wts[static_cast<size_t>(k)].begin() + i * B,
                                              wts[static_cast<size_t>(k)].begin() + (i + 1) * B);
    }
    for (const auto& bag : src[static_cast<size_t>(k)])  // the shard's CSR order
      src_[static_cast<size_t>(k)].insert(src_[static_cast<size_t>(k)].end(), bag.begin(),
                                          bag.end());
    routed[static_cast<size_t>(k)] = make_host_bags(nested, nested_w);
  }
  return routed;
}

void ShardedEmbeddingCollection::forward(const Bags& host_bags, Tensor& out) {
  const std::vector<Bags> routed = route(host_bags);
  const int64_t B = host_bags.batch;
  const int64_t T = layout_.num_tables();
  const int N = plan_.num_shards;
  out = Tensor::host({B, layout_.out_dim()});
  float* o = out.data<float>();
  std::vector<Tensor> shard_out(static_cast<size_t>(N));
  start_then_finish(
      shards_,
      [&](int k) {
        shards_[static_cast<size_t>(k)]->start_forward(routed[static_cast<size_t>(k)]);
      },
      [&](int k) {
        shard_out[static_cast<size_t>(k)] = shards_[static_cast<size_t>(k)]->finish_forward();
      });
  // Combine: each part's columns of each sample; row-wise parts add up (in part order).
  const int64_t od = layout_.out_dim();
  for (int64_t t = 0; t < T; ++t) {
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      const EmbeddingShard& sh = *shards_[static_cast<size_t>(p.shard)];
      const int64_t sdim = sh.layout().out_dim();
      const int64_t soff = sh.layout().out_offset(p.local_table);
      const int64_t cols = p.col_end - p.col_begin;
      const int64_t dst = layout_.out_offset(t) + p.col_begin;
      const float* so = shard_out[static_cast<size_t>(p.shard)].data<float>();
      for (int64_t s = 0; s < B; ++s)
        for (int64_t c = 0; c < cols; ++c) o[s * od + dst + c] += so[s * sdim + soff + c];
    }
  }
}

Tensor ShardedEmbeddingCollection::shard_dout(int k, const Tensor& host_dout) const {
  const int64_t B = batch_;
  TESSERA_CHECK(host_dout.is_host() && host_dout.dtype() == DType::F32 && host_dout.rank() == 2 &&
                    host_dout.dim(0) == B && host_dout.dim(1) == layout_.out_dim(),
                "dout must be host f32 [" << B << ", " << layout_.out_dim() << "], got "
                                          << host_dout.describe());
  const EmbeddingShard& sh = *shards_[static_cast<size_t>(k)];
  const float* d = host_dout.data<float>();
  const int64_t od = layout_.out_dim(), sdim = sh.layout().out_dim();
  Tensor dk = Tensor::host({B, sdim});
  float* o = dk.data<float>();
  for (int64_t t = 0; t < layout_.num_tables(); ++t)
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      if (p.shard != k) continue;
      const int64_t cols = p.col_end - p.col_begin;
      const int64_t from = layout_.out_offset(t) + p.col_begin;
      const int64_t to = sh.layout().out_offset(p.local_table);
      for (int64_t s = 0; s < B; ++s)
        std::copy(d + s * od + from, d + s * od + from + cols, o + s * sdim + to);
    }
  return dk;
}

void ShardedEmbeddingCollection::backward_and_update(const Tensor& host_dout) {
  TESSERA_CHECK(batch_ >= 0, "sharded embedding backward before any forward");
  start_then_finish(
      shards_,
      [&](int k) {
        shards_[static_cast<size_t>(k)]->start_backward_update(shard_dout(k, host_dout));
      },
      [&](int k) { shards_[static_cast<size_t>(k)]->finish_backward_update(); });
  ++step_;
}

void ShardedEmbeddingCollection::set_lr_scale(float scale) {
  for (auto& sh : shards_)
    if (sh) sh->set_lr_scale(scale);
}

Tensor ShardedEmbeddingCollection::weight_grad(const Tensor& host_dout) {
  TESSERA_CHECK(batch_ >= 0, "sharded embedding weight gradient before any forward");
  // Each shard pools by plain sum with the parent's scaled weights, so its gradient is
  // <row part, dout part> per index; the parts of an index add up and take the pooling's scale.
  const int64_t T = layout_.num_tables(), B = batch_;
  const int64_t* off = offsets_.data<int64_t>();
  Tensor g = Tensor::host({off[T * B]});
  float* gp = g.data<float>();
  for (int k = 0; k < plan_.num_shards; ++k) {
    if (!shards_[static_cast<size_t>(k)]) continue;
    const Tensor gk = shards_[static_cast<size_t>(k)]->weight_grad(shard_dout(k, host_dout));
    const std::vector<int64_t>& src = src_[static_cast<size_t>(k)];
    TESSERA_CHECK(gk.numel() == static_cast<int64_t>(src.size()),
                  "shard " << k << " returned " << gk.numel() << " weight gradients for "
                           << src.size() << " indices");
    const float* gkp = gk.data<float>();
    for (size_t i = 0; i < src.size(); ++i) gp[src[i]] += gkp[i];
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pooling = static_cast<int64_t>(layout_.spec(t).pooling);
    for (int64_t b = t * B; b < (t + 1) * B; ++b)
      for (int64_t j = off[b]; j < off[b + 1]; ++j)
        gp[j] *= bag_scale(pooling, off[b + 1] - off[b], 1.f);
  }
  return g;
}

Tensor ShardedEmbeddingCollection::table_to_host(int64_t t) {
  const TableSpec& s = layout_.spec(t);
  Tensor full = Tensor::host({s.rows, s.dim});
  for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
    const Tensor part = shards_[static_cast<size_t>(p.shard)]->table_to_host(p.local_table);
    copy_block_in(part.data<float>(), p.row_begin, p.row_end, p.col_begin, p.col_end,
                  full.data<float>(), s.dim);
  }
  return full;
}

void ShardedEmbeddingCollection::set_table(int64_t t, const Tensor& host_rows_dim) {
  const TableSpec& s = layout_.spec(t);
  TESSERA_CHECK(host_rows_dim.is_host() && host_rows_dim.dtype() == DType::F32 &&
                    host_rows_dim.numel() == s.rows * s.dim,
                layout_.table_label(t)
                    << " is [" << s.rows << ", " << s.dim << "], got " << host_rows_dim.describe());
  for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
    Tensor part = Tensor::host({p.row_end - p.row_begin, p.col_end - p.col_begin});
    copy_block_out(host_rows_dim.data<float>(), s.dim, p.row_begin, p.row_end, p.col_begin,
                   p.col_end, part.data<float>());
    shards_[static_cast<size_t>(p.shard)]->set_table(p.local_table, part);
  }
}

void ShardedEmbeddingCollection::gather_flat(Flat kind, int slot, Tensor& full) {
  float* f = full.data<float>();
  std::vector<Tensor> local(shards_.size());
  for (size_t k = 0; k < shards_.size(); ++k)
    if (shards_[k]) local[k] = slot < 0 ? Tensor() : shards_[k]->state_to_host(slot);
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {
    const int64_t dim = layout_.spec(t).dim;
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      EmbeddingShard& sh = *shards_[static_cast<size_t>(p.shard)];
      float* table = f + layout_.weight_offset(t);
      if (slot < 0) {
        const Tensor part = sh.table_to_host(p.local_table);
        copy_block_in(part.data<float>(), p.row_begin, p.row_end, p.col_begin, p.col_end, table,
                      dim);
        continue;
      }
      const float* src = local[static_cast<size_t>(p.shard)].data<float>();
      if (kind == Flat::Elements) {
        copy_block_in(src + sh.layout().weight_offset(p.local_table), p.row_begin, p.row_end,
                      p.col_begin, p.col_end, table, dim);
      } else {  // per-row state: table- and row-wise parts only (checked at construction)
        std::copy(src + sh.layout().row_offset(p.local_table),
                  src + sh.layout().row_offset(p.local_table) + (p.row_end - p.row_begin),
                  f + layout_.row_offset(t) + p.row_begin);
      }
    }
  }
}

void ShardedEmbeddingCollection::scatter_flat(Flat kind, int slot, const Tensor& full) {
  const float* f = full.data<float>();
  std::vector<Tensor> local(shards_.size());
  if (slot >= 0)
    for (size_t k = 0; k < shards_.size(); ++k)
      if (shards_[k]) local[k] = shards_[k]->state_to_host(slot);  // right size, overwritten
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {
    const int64_t dim = layout_.spec(t).dim;
    for (const PartRef& p : parts_[static_cast<size_t>(t)]) {
      EmbeddingShard& sh = *shards_[static_cast<size_t>(p.shard)];
      const float* table = f + layout_.weight_offset(t);
      if (slot < 0) {
        Tensor part = Tensor::host({p.row_end - p.row_begin, p.col_end - p.col_begin});
        copy_block_out(table, dim, p.row_begin, p.row_end, p.col_begin, p.col_end,
                       part.data<float>());
        sh.set_table(p.local_table, part);
        continue;
      }
      float* dst = local[static_cast<size_t>(p.shard)].data<float>();
      if (kind == Flat::Elements) {
        copy_block_out(table, dim, p.row_begin, p.row_end, p.col_begin, p.col_end,
                       dst + sh.layout().weight_offset(p.local_table));
      } else {
        const float* src = f + layout_.row_offset(t) + p.row_begin;
        std::copy(src, src + (p.row_end - p.row_begin),
                  dst + sh.layout().row_offset(p.local_table));
      }
    }
  }
  if (slot >= 0)
    for (size_t k = 0; k < shards_.size(); ++k)
      if (shards_[k]) shards_[k]->set_state(slot, local[k]);
}

namespace {
bool rowwise_state(SparseOptimizer kind) {
  return kind == SparseOptimizer::RowwiseAdagrad;
}
}  // namespace

Tensor ShardedEmbeddingCollection::weights_to_host() {
  Tensor full = Tensor::host({layout_.total_elements()});
  gather_flat(Flat::Elements, -1, full);
  return full;
}

void ShardedEmbeddingCollection::set_weights(const Tensor& host_flat) {
  TESSERA_CHECK(host_flat.is_host() && host_flat.dtype() == DType::F32 &&
                    host_flat.numel() == layout_.total_elements(),
                "embedding weights must be host f32 with "
                    << layout_.total_elements() << " elements, got " << host_flat.describe());
  scatter_flat(Flat::Elements, -1, host_flat);
}

Tensor ShardedEmbeddingCollection::state_to_host(int slot) {
  TESSERA_CHECK(slot >= 0 && slot < num_states(),
                "optimizer state slot " << slot << " of " << num_states());
  Tensor full = Tensor::host({state_size(opts_.optimizer.kind, layout_)});
  gather_flat(rowwise_state(opts_.optimizer.kind) ? Flat::Rows : Flat::Elements, slot, full);
  return full;
}

void ShardedEmbeddingCollection::set_state(int slot, const Tensor& host_flat) {
  TESSERA_CHECK(slot >= 0 && slot < num_states(),
                "optimizer state slot " << slot << " of " << num_states());
  const int64_t n = state_size(opts_.optimizer.kind, layout_);
  TESSERA_CHECK(host_flat.is_host() && host_flat.dtype() == DType::F32 && host_flat.numel() == n,
                "optimizer state " << slot << " must be host f32 with " << n << " elements, got "
                                   << host_flat.describe());
  scatter_flat(rowwise_state(opts_.optimizer.kind) ? Flat::Rows : Flat::Elements, slot, host_flat);
}

void ShardedEmbeddingCollection::set_steps(int64_t steps) {
  for (auto& sh : shards_)
    if (sh) sh->set_steps(steps);
  step_ = steps;
}

std::map<std::string, Tensor> ShardedEmbeddingCollection::training_state() {
  std::map<std::string, Tensor> s;
  s["weights"] = weights_to_host();
  for (int k = 0; k < num_states(); ++k) s["state" + std::to_string(k)] = state_to_host(k);
  s["step"] = Tensor::host_from<int64_t>({1}, {step_});
  return s;
}

void ShardedEmbeddingCollection::restore_training_state(
    const std::map<std::string, Tensor>& state) {
  std::vector<int64_t> state_numels(static_cast<size_t>(num_states()),
                                    state_size(opts_.optimizer.kind, layout_));
  const int64_t step =
      check_training_state(state, opts_.optimizer.kind, layout_.total_elements(), state_numels);
  set_weights(state.at("weights").reshape({layout_.total_elements()}));
  for (int k = 0; k < num_states(); ++k)
    set_state(k, state.at("state" + std::to_string(k)).reshape({state_numels[0]}));
  set_steps(step);
}

ShardDevices place_shards(const std::vector<TableSpec>& specs, const Backend& like, int64_t n,
                          ShardPlacement placement, const SparseOptimizerConfig& optimizer,
                          TableDType table_dtype) {
  TESSERA_CHECK(n >= 1, "shards must be >= 1, got " << n);
  const bool host = like.device().kind == DeviceKind::Host;
  // Distinct devices the shards go round: one for the host; the GPUs (or, in the emulation build,
  // the emulated devices) otherwise.
  const std::vector<std::string> gpus = host ? std::vector<std::string>{} : cuda_device_specs();
  TESSERA_CHECK(host || !gpus.empty(), "no CUDA device for the shards of " << like.name());
  const int64_t devices = host ? 1 : std::min<int64_t>(n, static_cast<int64_t>(gpus.size()));
  ShardDevices d;
  std::vector<int64_t> capacity;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t sharing = n / devices + (k % devices < n % devices ? 1 : 0);
    d.backends.push_back(host ? make_host_backend()
                              : make_backend(gpus[static_cast<size_t>(k % devices)]));
    d.raw.push_back(d.backends.back().get());
    capacity.push_back(d.raw.back()->available_memory_bytes() / sharing);
  }
  PlannerOptions po = planner_options(placement);
  po.table_dtype = table_dtype;
  d.plan = plan_shards(specs, capacity, optimizer, po);
  return d;
}

PlannerOptions planner_options(ShardPlacement placement) {
  PlannerOptions po;
  if (placement != ShardPlacement::Auto) {
    po.force_all = true;
    po.force = placement == ShardPlacement::Row      ? Placement::RowWise
               : placement == ShardPlacement::Column ? Placement::ColumnWise
                                                     : Placement::TableWise;
  }
  return po;
}

}  // namespace tessera::emb
