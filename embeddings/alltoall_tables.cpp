#include "embeddings/alltoall_tables.h"

#include <cstring>
#include <sstream>

#include "host/core/error.h"
#include "host/core/math.h"
#include "host/dist/process_group.h"

namespace tessera::emb {
namespace {

constexpr int64_t kWeighted = 1;
constexpr int64_t kDropped = -1;

template <typename T>
void put(std::string& out, const T* p, int64_t n) {
  if (n > 0) out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n) * sizeof(T));
}

// Reads one rank's message section by section, each checked to fit.
class Reader {
 public:
  Reader(const std::string& s, size_t rank, const char* what) : s_(s), rank_(rank), what_(what) {}
  template <typename T>
  const char* take(int64_t n, const char* field) {
    const uint64_t bytes = static_cast<uint64_t>(n) * sizeof(T);
    if (n < 0 || bytes > s_.size() - at_)
      TESSERA_THROW(Internal, what_ << " from rank " << rank_ << " (" << s_.size()
                                    << " bytes) is cut short in its " << field << " at byte "
                                    << at_);
    const char* p = s_.data() + at_;
    at_ += static_cast<size_t>(bytes);
    return p;
  }
  int64_t i64(const char* field) {
    int64_t v;
    std::memcpy(&v, take<int64_t>(1, field), sizeof v);
    return v;
  }
  void done() const {
    if (at_ != s_.size())
      TESSERA_THROW(Internal, what_ << " from rank " << rank_ << " has " << s_.size() - at_
                                    << " bytes too many");
  }

 private:
  const std::string& s_;
  size_t rank_;
  const char* what_;
  size_t at_ = 0;
};

// One rank's bags of this rank's tables, parsed in place (memcpy'd out: unaligned).
struct IdPart {
  int64_t batch = 0, nnz = 0;
  bool weighted = false;
  const char *lengths = nullptr, *ids = nullptr, *weights = nullptr;
  int32_t length(int64_t bag) const {
    int32_t v;
    std::memcpy(&v, lengths + bag * sizeof v, sizeof v);
    return v;
  }
};

IdPart parse_ids(const std::string& s, size_t rank, int64_t tables) {
  Reader r(s, rank, "an embedding id message");
  IdPart p;
  p.batch = r.i64("batch");
  const int64_t flags = r.i64("flags");
  p.nnz = r.i64("nnz");
  if (p.batch < 0 || p.nnz < 0 || (flags & ~kWeighted) != 0)
    TESSERA_THROW(Internal, "an embedding id message from rank " << rank << " has batch " << p.batch
                                                                 << ", nnz " << p.nnz
                                                                 << " and flags " << flags);
  p.weighted = (flags & kWeighted) != 0;
  p.lengths = r.take<int32_t>(tables * p.batch, "bag lengths");
  p.ids = r.take<int64_t>(p.nnz, "ids");
  if (p.weighted) p.weights = r.take<float>(p.nnz, "weights");
  r.done();
  int64_t sum = 0;
  for (int64_t i = 0; i < tables * p.batch; ++i) {
    if (p.length(i) < 0)
      TESSERA_THROW(Internal, "an embedding id message from rank " << rank << ": bag " << i
                                                                   << " has a negative length");
    sum += p.length(i);
  }
  if (sum != p.nnz)
    TESSERA_THROW(Internal, "an embedding id message from rank " << rank << ": bag lengths sum to "
                                                                 << sum << ", nnz is " << p.nnz);
  return p;
}

// The bags of `keep`'s samples (table-major, `tables` tables over b.batch samples).
Bags keep_samples(const Bags& b, int64_t tables, const std::vector<bool>& keep) {
  const int64_t B = b.batch;
  int64_t kept = 0;
  for (bool k : keep) kept += k ? 1 : 0;
  const int64_t* off = b.offsets.data<int64_t>();
  std::vector<int64_t> offsets{0}, ids;
  std::vector<float> w;
  for (int64_t t = 0; t < tables; ++t)
    for (int64_t s = 0; s < B; ++s) {
      if (!keep[static_cast<size_t>(s)]) continue;
      for (int64_t i = off[t * B + s]; i < off[t * B + s + 1]; ++i) {
        ids.push_back(b.indices.data<int64_t>()[i]);
        if (b.weights.defined()) w.push_back(b.weights.data<float>()[i]);
      }
      offsets.push_back(static_cast<int64_t>(ids.size()));
    }
  Bags out;
  out.batch = kept;
  out.offsets = Tensor::host({static_cast<int64_t>(offsets.size())}, DType::I64);
  std::memcpy(out.offsets.data<int64_t>(), offsets.data(), offsets.size() * 8);
  out.indices = Tensor::host({static_cast<int64_t>(ids.size())}, DType::I64);
  if (!ids.empty()) std::memcpy(out.indices.data<int64_t>(), ids.data(), ids.size() * 8);
  if (b.weights.defined()) {
    out.weights = Tensor::host({static_cast<int64_t>(w.size())});
    if (!w.empty()) std::memcpy(out.weights.data<float>(), w.data(), w.size() * 4);
  }
  return out;
}

}  // namespace

const char* rank_placement_name(RankPlacement p) {
  return p == RankPlacement::TableWise ? "table" : "replicated";
}

AllToAllTables::AllToAllTables(std::vector<TableSpec> specs, Backend& backend,
                               const CollectionOptions& opts)
    : backend_(&backend), specs_(specs), opts_(opts), layout_(specs) {
  const dist::ProcessGroup& g = dist::process_group();
  world_ = g.world();
  rank_ = g.rank();
  PlannerOptions po;
  po.force = Placement::TableWise;
  po.force_all = true;
  po.table_dtype = opts.table_dtype;
  const std::vector<int64_t> capacity(static_cast<size_t>(world_),
                                      backend.available_memory_bytes());
  plan_ = plan_shards(specs, capacity, opts.optimizer, po);
  own_.assign(static_cast<size_t>(world_), {});
  std::vector<TableSpec> mine;
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {
    const int j = plan_.tables[static_cast<size_t>(t)].parts.at(0).shard;
    owner_.push_back(j);
    local_index_.push_back(static_cast<int64_t>(own_[static_cast<size_t>(j)].size()));
    own_[static_cast<size_t>(j)].push_back(t);
    if (j == rank_) mine.push_back(specs[static_cast<size_t>(t)]);
  }
  if (mine.empty()) return;
  local_ = std::make_unique<EmbeddingCollection>(std::move(mine), backend, opts);
  // One collection's initial weights are counter-based over its flat index: each owned table
  // starts as it would at its place in one process's collection (EmbeddingCollection's rule).
  for (int64_t t : own_[static_cast<size_t>(rank_)]) {
    Tensor w = Tensor::host({layout_.spec(t).rows, layout_.spec(t).dim});
    const int64_t at = layout_.weight_offset(t);
    for (int64_t i = 0; i < w.numel(); ++i)
      w.data<float>()[i] =
          (2.f * math::hash_uniform(opts.seed, static_cast<uint64_t>(at + i)) - 1.f) *
          opts.init_scale;
    local_->set_table(local_index_[static_cast<size_t>(t)], w);
  }
}

AllToAllTables::~AllToAllTables() = default;

dist::ProcessGroup& AllToAllTables::group() const {
  dist::ProcessGroup& g = dist::process_group();
  if (g.world() != world_ || g.rank() != rank_)
    TESSERA_THROW(Internal, "embedding tables split over " << world_ << " ranks (this rank "
                                                           << rank_ << ") used in a group of "
                                                           << g.world() << " (rank " << g.rank()
                                                           << ")");
  return g;
}

int64_t AllToAllTables::held_elements() const {
  return local_ ? local_->layout().total_elements() : 0;
}

Tensor AllToAllTables::host_copy(const Tensor& t) {
  return t.is_host() ? t : backend_->to_host(t);
}

std::string AllToAllTables::pack_ids(const Bags& b, int j) const {
  const std::vector<int64_t>& tables = own_[static_cast<size_t>(j)];
  const int64_t B = b.batch;
  const int64_t* off = b.offsets.data<int64_t>();
  std::vector<int32_t> lengths;
  int64_t nnz = 0;
  for (int64_t t : tables)
    for (int64_t s = 0; s < B; ++s) {
      lengths.push_back(static_cast<int32_t>(off[t * B + s + 1] - off[t * B + s]));
      nnz += lengths.back();
    }
  const int64_t head[3] = {B, b.weights.defined() ? kWeighted : 0, nnz};
  std::string out;
  put(out, head, 3);
  put(out, lengths.data(), static_cast<int64_t>(lengths.size()));
  for (int64_t t : tables)  // table t's ids are contiguous: the bags are table-major
    put(out, b.indices.data<int64_t>() + off[t * B], off[(t + 1) * B] - off[t * B]);
  if (b.weights.defined())
    for (int64_t t : tables)
      put(out, b.weights.data<float>() + off[t * B], off[(t + 1) * B] - off[t * B]);
  return out;
}

// The ranks' parts of this rank's tables, concatenated in rank order (bag k * B + s over the
// global batch's samples s), looked up: host [B, D_me] (undefined without tables or samples).
Tensor AllToAllTables::lookup_global(const std::vector<std::string>& parts) {
  const int64_t T = static_cast<int64_t>(own_[static_cast<size_t>(rank_)].size());
  std::vector<IdPart> ps;
  int64_t B = 0, nnz = 0;
  parts_.clear();
  for (size_t r = 0; r < parts.size(); ++r) {
    ps.push_back(parse_ids(parts[r], r, T));
    parts_.push_back(ps.back().batch);
    B += ps.back().batch;
    nnz += ps.back().nnz;
  }
  const bool weighted = !ps.empty() && ps[0].weighted;
  auto g = std::make_unique<Bags>();
  g->batch = B;
  g->offsets = Tensor::host({T * B + 1}, DType::I64);
  g->indices = Tensor::host({nnz}, DType::I64);
  if (weighted) g->weights = Tensor::host({nnz});
  int64_t* off = g->offsets.data<int64_t>();
  off[0] = 0;
  int64_t bag = 0;
  std::vector<int64_t> read(ps.size(), 0);
  for (int64_t k = 0; k < T; ++k)
    for (size_t r = 0; r < ps.size(); ++r) {
      const IdPart& p = ps[r];
      if (p.weighted != weighted)
        TESSERA_THROW(Internal, "embedding id messages: rank " << r << "'s per-id weights differ");
      const int64_t start = off[bag];
      for (int64_t s = 0; s < p.batch; ++s, ++bag)
        off[bag + 1] = off[bag] + p.length(k * p.batch + s);
      const int64_t n = off[bag] - start;
      if (n == 0) continue;
      std::memcpy(g->indices.data<int64_t>() + start, p.ids + read[r] * 8,
                  static_cast<size_t>(n) * 8);
      if (weighted)
        std::memcpy(g->weights.data<float>() + start, p.weights + read[r] * 4,
                    static_cast<size_t>(n) * 4);
      read[r] += n;
    }
  global_bags_ = std::move(g);
  if (!local_ || B == 0) return Tensor();
  Tensor pooled;
  local_->forward_host_bags(*global_bags_, pooled);
  return host_copy(pooled);
}

// Rank j's pooled rows [batch, D_j] into their tables' columns of host [batch, out_dim].
Tensor AllToAllTables::assemble(const std::vector<std::string>& rows, int64_t batch) const {
  Tensor out = Tensor::host({batch, layout_.out_dim()});
  for (size_t j = 0; j < rows.size(); ++j) {
    int64_t Dj = 0;
    for (int64_t t : own_[j]) Dj += layout_.spec(t).dim;
    if (static_cast<int64_t>(rows[j].size()) != batch * Dj * 4)
      TESSERA_THROW(Internal, "pooled rows from rank " << j << ": " << rows[j].size()
                                                       << " bytes, expected " << batch * Dj * 4);
    const char* p = rows[j].data();
    for (int64_t s = 0; s < batch; ++s)
      for (int64_t t : own_[j]) {
        const size_t n = static_cast<size_t>(layout_.spec(t).dim) * 4;
        std::memcpy(out.data<float>() + s * layout_.out_dim() + layout_.out_offset(t), p, n);
        p += n;
      }
  }
  return out;
}

void AllToAllTables::gather_whole_copy(int lead) {
  whole_.reset();
  const Tensor flat = weights_to_host();  // collective: every table from its owner
  if (rank_ != lead) return;
  // Lookups only: plain SGD keeps no optimizer state beside the weights. The storage type stays,
  // so a 16-bit table's values (widened exactly by its owner) are stored back unchanged.
  CollectionOptions o = opts_;
  o.optimizer = SparseOptimizerConfig{};
  auto whole = std::make_unique<EmbeddingCollection>(specs_, *backend_, o);
  whole->set_weights(flat);
  whole_ = std::move(whole);
}

void AllToAllTables::refuse_while_whole(const char* what) const {
  if (whole_)
    TESSERA_THROW(Internal, "embedding tables split across ranks: "
                                << what << " while rank " << rank_
                                << " holds the whole copy of a lead section");
}

void AllToAllTables::forward(const Bags& host_bags, Tensor& out) {
  if (whole_) {  // rank 0 alone (a lead section): the whole copy, no collective
    whole_->forward_host_bags(host_bags, out);
    pending_ = false;
    return;
  }
  dist::ProcessGroup& g = group();
  TESSERA_CHECK(
      host_bags.offsets.is_host() && host_bags.indices.is_host() &&
          host_bags.offsets.numel() == layout_.num_tables() * host_bags.batch + 1,
      "tables split across ranks take host bags of " << layout_.num_tables() << " tables");
  std::vector<std::string> send;
  for (int j = 0; j < world_; ++j) send.push_back(pack_ids(host_bags, j));
  const Tensor pooled = lookup_global(g.alltoallv(send));
  const int64_t Dme = local_ ? local_->layout().out_dim() : 0;
  std::vector<std::string> back(static_cast<size_t>(world_));
  int64_t row = 0;
  for (int r = 0; r < world_; ++r) {
    const int64_t n = parts_[static_cast<size_t>(r)];
    if (Dme > 0) put(back[static_cast<size_t>(r)], pooled.data<float>() + row * Dme, n * Dme);
    row += n;
  }
  const Tensor host_out = assemble(g.alltoallv(back), host_bags.batch);
  pending_ = false;
  if (!out.defined())
    out = backend_->device().kind == DeviceKind::Host ? host_out : backend_->to_device(host_out);
  else
    backend_->copy(host_out, out);
}

Tensor AllToAllTables::forward_host(const Bags& host_bags) {
  Tensor out;
  forward(host_bags, out);
  return host_copy(out);
}

void AllToAllTables::exchange_step(dist::ProcessGroup& g, const Tensor& dout, float share) {
  TESSERA_CHECK(g.world() == world_ && g.rank() == rank_,
                "exchange_step in a group of " << g.world() << " for tables split over " << world_);
  refuse_while_whole("a training step");
  const bool dropped = !dout.defined() || share == 0.f;
  const Tensor h = dropped ? Tensor() : host_copy(dout);
  const int64_t B = dropped ? 0 : h.dim(0);
  TESSERA_CHECK(
      dropped || (B == parts_.at(static_cast<size_t>(rank_)) && h.numel() == B * layout_.out_dim()),
      "exchange_step: gradient " << h.describe() << " for a forward of "
                                 << parts_.at(static_cast<size_t>(rank_)) << " rows");
  std::vector<std::string> send(static_cast<size_t>(world_));
  for (int j = 0; j < world_; ++j) {
    std::string& m = send[static_cast<size_t>(j)];
    const int64_t head = dropped ? kDropped : B;
    put(m, &head, 1);
    if (dropped) continue;
    std::vector<float> cols;
    for (int64_t s = 0; s < B; ++s)
      for (int64_t t : own_[static_cast<size_t>(j)]) {
        const float* src = h.data<float>() + s * layout_.out_dim() + layout_.out_offset(t);
        for (int64_t c = 0; c < layout_.spec(t).dim; ++c) cols.push_back(src[c] * share);
      }
    put(m, cols.data(), static_cast<int64_t>(cols.size()));
  }
  import_gradients(g.alltoallv(send));
}

// The kept ranks' gradients in rank order: host [B kept, D_me]; a dropped part's samples leave
// the staged global batch.
void AllToAllTables::import_gradients(const std::vector<std::string>& parts) {
  const int64_t Dme = local_ ? local_->layout().out_dim() : 0;
  std::vector<bool> keep;
  std::vector<float> rows;
  bool any_dropped = false;
  for (size_t r = 0; r < parts.size(); ++r) {
    Reader rd(parts[r], r, "an embedding gradient message");
    const int64_t B = rd.i64("batch");
    const bool dropped = B == kDropped;
    if (!dropped && B != parts_.at(r))
      TESSERA_THROW(Internal, "an embedding gradient message from rank "
                                  << r << " has " << B << " rows; its forward had " << parts_[r]);
    any_dropped = any_dropped || dropped;
    keep.insert(keep.end(), static_cast<size_t>(parts_[r]), !dropped);
    if (dropped) continue;
    const char* p = rd.take<float>(B * Dme, "gradient");
    rd.done();
    const size_t at = rows.size();
    rows.resize(at + static_cast<size_t>(B * Dme));
    if (B * Dme > 0) std::memcpy(rows.data() + at, p, static_cast<size_t>(B * Dme) * 4);
  }
  const int64_t kept = Dme > 0 ? static_cast<int64_t>(rows.size()) / Dme : 0;
  pending_dout_ = Tensor::host({kept, Dme});
  if (!rows.empty()) std::memcpy(pending_dout_.data<float>(), rows.data(), rows.size() * 4);
  if (any_dropped && local_ && kept > 0)
    local_->stage_batch(keep_samples(*global_bags_, local_->layout().num_tables(), keep));
  pending_ = true;
}

bool AllToAllTables::step_exchanged() {
  if (!pending_) return false;
  pending_ = false;
  const Tensor d = std::move(pending_dout_);
  pending_dout_ = Tensor();
  if (local_ && d.dim(0) > 0)
    local_->backward_and_update(
        backend_->device().kind == DeviceKind::Host ? d : backend_->to_device(d));
  ++steps_;
  return true;
}

void AllToAllTables::backward_and_update(const Tensor& dout) {
  exchange_step(group(), dout, 1.f);
  step_exchanged();
}

void AllToAllTables::backward_and_update_host(const Tensor& host_dout) {
  backward_and_update(host_dout);
}

Tensor AllToAllTables::table_to_host(int64_t t) {
  if (whole_) return whole_->table_to_host(t);
  dist::ProcessGroup& g = group();
  const int j = owner(t);
  Tensor w = j == rank_ ? local_->table_to_host(local_index_[static_cast<size_t>(t)])
                        : Tensor::host({layout_.spec(t).rows, layout_.spec(t).dim});
  if (world_ > 1) g.broadcast(w.data<float>(), w.numel() * 4, j);
  return w;
}

void AllToAllTables::set_table(int64_t t, const Tensor& host_rows_dim) {
  if (whole_) whole_->set_table(t, host_rows_dim);
  if (owner(t) == rank_) local_->set_table(local_index_[static_cast<size_t>(t)], host_rows_dim);
}

Tensor AllToAllTables::weights_to_host() {
  Tensor flat = Tensor::host({layout_.total_elements()});
  for (int64_t t = 0; t < layout_.num_tables(); ++t) {  // one table at a time
    const Tensor w = table_to_host(t);
    std::memcpy(flat.data<float>() + layout_.weight_offset(t), w.data<float>(),
                static_cast<size_t>(w.numel()) * 4);
  }
  return flat;
}

void AllToAllTables::set_weights(const Tensor& host_flat) {
  TESSERA_CHECK(host_flat.numel() == layout_.total_elements(),
                "set_weights: " << host_flat.describe() << " for " << layout_.total_elements()
                                << " table elements");
  if (whole_) whole_->set_weights(host_flat);
  for (int64_t t : own_[static_cast<size_t>(rank_)]) {
    Tensor w = Tensor::host({layout_.spec(t).rows, layout_.spec(t).dim});
    std::memcpy(w.data<float>(), host_flat.data<float>() + layout_.weight_offset(t),
                static_cast<size_t>(w.numel()) * 4);
    local_->set_table(local_index_[static_cast<size_t>(t)], w);
  }
}

void AllToAllTables::set_lr_scale(float scale) {
  if (local_) local_->set_lr_scale(scale);
}

// A state slot of rank j's collection holds, per table, one value per element (weights, Adagrad,
// lazy Adam) or one per row (row-wise Adagrad): which, from its size against j's tables.
struct SlotUnit {
  bool per_row = false;
  int64_t size(const TableSpec& t) const { return per_row ? t.rows : t.rows * t.dim; }
};

SlotUnit slot_unit(int64_t numel, const std::vector<TableSpec>& tables, const std::string& name) {
  int64_t elements = 0, rows = 0;
  for (const TableSpec& t : tables) {
    elements += t.rows * t.dim;
    rows += t.rows;
  }
  if (numel == elements) return {false};
  if (numel == rows) return {true};
  TESSERA_THROW(Io, "embedding state '" << name << "' has " << numel
                                        << " elements; the tables have " << elements
                                        << " elements in " << rows << " rows");
}

// Each rank's f32 tensors ("weights", "state0"..) as [name '\0', i64 numel, f32 x numel]...
std::string pack_state(const std::map<std::string, Tensor>& state) {
  std::string out;
  for (const auto& [name, t] : state) {
    if (t.dtype() != DType::F32) continue;  // "step": the same on every rank
    out += name;
    out.push_back('\0');
    const int64_t n = t.numel();
    put(out, &n, 1);
    put(out, t.data<float>(), n);
  }
  return out;
}

// Collective: every rank's tables, as one process's collection names them (the unsharded flat
// layout), gathered (allgatherv) onto every rank. Every rank holds the whole state meanwhile.
std::map<std::string, Tensor> AllToAllTables::training_state() {
  refuse_while_whole("a checkpoint's state");
  const std::vector<std::string> all =
      group().allgatherv(local_ ? pack_state(local_->training_state()) : std::string());
  std::map<std::string, Tensor> out;
  for (size_t j = 0; j < all.size(); ++j) {
    std::vector<TableSpec> specs;
    for (int64_t t : own_[j]) specs.push_back(layout_.spec(t));
    Reader rd(all[j], j, "an embedding state message");
    for (size_t at = 0; at < all[j].size();) {
      const size_t end = all[j].find('\0', at);
      if (end == std::string::npos)
        TESSERA_THROW(Internal, "embedding state of rank " << j << " cut");
      const std::string name = all[j].substr(at, end - at);
      rd.take<char>(static_cast<int64_t>(end - at + 1), "name");
      const int64_t n = rd.i64("size");
      const char* p = rd.take<float>(n, "values");
      at = end + 1 + 8 + static_cast<size_t>(n) * 4;
      const SlotUnit u = slot_unit(n, specs, name);
      Tensor& g = out[name];
      if (!g.defined())
        g = Tensor::host({u.per_row ? layout_.total_rows() : layout_.total_elements()});
      for (int64_t t : own_[j]) {
        const int64_t to = u.per_row ? layout_.row_offset(t) : layout_.weight_offset(t);
        std::memcpy(g.data<float>() + to, p, static_cast<size_t>(u.size(layout_.spec(t))) * 4);
        p += u.size(layout_.spec(t)) * 4;
      }
    }
  }
  out["step"] = Tensor::host_from<int64_t>({1}, {steps_});
  return out;
}

// Not collective: every rank reads the whole (unsharded) state and keeps its own tables' slices,
// so a state taken at any world size (or by one process) restores at any other.
void AllToAllTables::restore_training_state(const std::map<std::string, Tensor>& s) {
  auto step = s.find("step");
  if (step == s.end() || step->second.dtype() != DType::I64 || step->second.numel() != 1)
    TESSERA_THROW(Io, "embedding state lacks an i64 'step'");
  std::map<std::string, Tensor> mine;
  for (const auto& [name, t] : s) {
    if (name == "step") continue;
    if (t.dtype() != DType::F32)
      TESSERA_THROW(Io, "embedding state '" << name << "' is " << t.describe() << ", not f32");
    const SlotUnit u = slot_unit(t.numel(), layout_.specs(), name);
    int64_t n = 0;
    for (int64_t k : own_[static_cast<size_t>(rank_)]) n += u.size(layout_.spec(k));
    Tensor m = Tensor::host({n});
    float* p = m.data<float>();
    for (int64_t k : own_[static_cast<size_t>(rank_)]) {
      const int64_t from = u.per_row ? layout_.row_offset(k) : layout_.weight_offset(k);
      std::memcpy(p, t.data<float>() + from, static_cast<size_t>(u.size(layout_.spec(k))) * 4);
      p += u.size(layout_.spec(k));
    }
    mine[name] = m;
  }
  if (local_) {
    mine["step"] = step->second;
    local_->restore_training_state(mine);  // checks every name and size against its optimizer
  }
  steps_ = step->second.data<int64_t>()[0];
}

std::string AllToAllTables::shard_plan() const {
  std::ostringstream s;
  s << "tables split across " << world_ << " ranks (table-wise; shard k is rank k)\n"
    << plan_.describe(layout_.specs());
  return s.str();
}

}  // namespace tessera::emb
