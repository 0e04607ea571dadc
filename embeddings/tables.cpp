#include "embeddings/tables.h"

#include "embeddings/step_exchange.h"

namespace tessera::emb {
namespace {

bool on_host(const Backend& b) {
  return b.device().kind == DeviceKind::Host;
}

// One collection on the model's backend.
class LocalTables final : public EmbeddingTables {
 public:
  LocalTables(std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts)
      : backend_(&backend), emb_(std::move(specs), backend, opts) {}
  const TableLayout& layout() const override { return emb_.layout(); }
  // On a device the batch goes up through the ops' pinned ring: nothing waits for it.
  void forward(const Bags& host_bags, Tensor& out) override {
    last_bags_ = host_bags;
    have_last_bags_ = true;
    emb_.forward_host_bags(host_bags, out);
  }
  void backward_and_update(const Tensor& dout) override { emb_.backward_and_update(dout); }
  Tensor forward_host(const Bags& host_bags) override {
    Tensor out;
    forward(host_bags, out);
    return on_host(*backend_) ? out : backend_->to_host(out);
  }
  void backward_and_update_host(const Tensor& host_dout) override {
    emb_.backward_and_update(on_host(*backend_) ? host_dout : backend_->to_device(host_dout));
  }
  Tensor table_to_host(int64_t t) override { return emb_.table_to_host(t); }
  void set_table(int64_t t, const Tensor& host_rows_dim) override {
    emb_.set_table(t, host_rows_dim);
  }
  Tensor weights_to_host() override { return emb_.weights_to_host(); }
  void set_weights(const Tensor& host_flat) override { emb_.set_weights(host_flat); }
  int64_t steps() const override { return emb_.steps(); }
  void set_lr_scale(float scale) override { emb_.set_lr_scale(scale); }
  std::map<std::string, Tensor> training_state() override { return emb_.training_state(); }
  void restore_training_state(const std::map<std::string, Tensor>& s) override {
    emb_.restore_training_state(s);
  }
  std::string shard_plan() const override { return {}; }

 protected:
  Tensor host_copy(const Tensor& t) override { return backend_->to_host(t); }
  void update_with_batch(const Bags& host_bags, const Tensor& host_dout) override {
    emb_.stage_batch(host_bags);
    backward_and_update_host(host_dout);
  }

 private:
  Backend* backend_;
  EmbeddingCollection emb_;
};

// The tables over N shards; pooled rows and their gradients cross to and from the model's
// backend on the host (the shards speak host tensors).
class ShardedTables final : public EmbeddingTables {
 public:
  ShardedTables(std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts,
                int64_t shards, ShardPlacement placement)
      : backend_(&backend) {
    ShardDevices d =
        place_shards(specs, backend, shards, placement, opts.optimizer, opts.table_dtype);
    shard_backends_ = std::move(d.backends);
    sharded_ = std::make_unique<ShardedEmbeddingCollection>(std::move(specs), d.plan, d.raw, opts);
  }
  // Every shard in another process, through `make`.
  ShardedTables(std::vector<TableSpec> specs, Backend& backend, const CollectionOptions& opts,
                int64_t shards, ShardPlacement placement, const ShardFactory& make,
                std::string where)
      : backend_(&backend), where_(std::move(where)) {
    const std::vector<int64_t> capacity(static_cast<size_t>(shards),
                                        make_host_backend()->available_memory_bytes());
    PlannerOptions po = planner_options(placement);
    po.table_dtype = opts.table_dtype;
    const ShardPlan plan = plan_shards(specs, capacity, opts.optimizer, po);
    sharded_ = std::make_unique<ShardedEmbeddingCollection>(std::move(specs), plan, make, opts);
  }
  const TableLayout& layout() const override { return sharded_->layout(); }
  // Shards on devices of this process and a model on a device: the pooled rows and their
  // gradient stay on the devices (ShardedEmbeddingCollection::forward_device); otherwise they
  // cross on the host.
  void forward(const Bags& host_bags, Tensor& out) override {
    last_bags_ = host_bags;
    have_last_bags_ = true;
    if (sharded_->stays_on_device(*backend_)) {
      if (!out.defined()) out = backend_->empty({host_bags.batch, layout().out_dim()});
      sharded_->forward_device(*backend_, host_bags, out);
      return;
    }
    Tensor pooled;  // host [B, out_dim], combined from the shards
    sharded_->forward(host_bags, pooled);
    if (!out.defined())
      out = on_host(*backend_) ? pooled : backend_->to_device(pooled);
    else
      backend_->copy(pooled, out);
  }
  void backward_and_update(const Tensor& dout) override {
    if (!dout.is_host() && sharded_->stays_on_device(*backend_)) {
      sharded_->backward_and_update_device(*backend_, dout);
      return;
    }
    sharded_->backward_and_update(dout.is_host() ? dout : backend_->to_host(dout));
  }
  Tensor forward_host(const Bags& host_bags) override {
    last_bags_ = host_bags;
    have_last_bags_ = true;
    Tensor pooled;
    sharded_->forward(host_bags, pooled);
    return pooled;
  }
  void backward_and_update_host(const Tensor& host_dout) override {
    sharded_->backward_and_update(host_dout);
  }
  Tensor table_to_host(int64_t t) override { return sharded_->table_to_host(t); }
  void set_table(int64_t t, const Tensor& host_rows_dim) override {
    sharded_->set_table(t, host_rows_dim);
  }
  Tensor weights_to_host() override { return sharded_->weights_to_host(); }
  void set_weights(const Tensor& host_flat) override { sharded_->set_weights(host_flat); }
  int64_t steps() const override { return sharded_->steps(); }
  void set_lr_scale(float scale) override { sharded_->set_lr_scale(scale); }
  std::map<std::string, Tensor> training_state() override { return sharded_->training_state(); }
  void restore_training_state(const std::map<std::string, Tensor>& s) override {
    sharded_->restore_training_state(s);
  }
  std::string shard_plan() const override {
    const std::string plan = sharded_->plan().describe(sharded_->layout().specs());
    return where_.empty() ? plan : "shards in other processes (" + where_ + ")\n" + plan;
  }

 protected:
  Tensor host_copy(const Tensor& t) override { return backend_->to_host(t); }

 private:
  Backend* backend_;
  std::vector<std::unique_ptr<Backend>> shard_backends_;  // before sharded_: it uses them
  std::string where_;                                     // remote shards: what the factory reaches
  std::unique_ptr<ShardedEmbeddingCollection> sharded_;
};

struct RemoteRegistry {
  ShardFactory factory;
  std::string where;
};
RemoteRegistry& remote_registry() {
  static RemoteRegistry r;
  return r;
}

}  // namespace

std::string EmbeddingTables::export_step(const Tensor& dout, float scale) {
  const int64_t T = layout().num_tables(), D = layout().out_dim();
  if (!dout.defined() || scale == 0.f) return pack_empty_step(T, D);
  TESSERA_CHECK(have_last_bags_, "export_step without a forward");
  TESSERA_CHECK(last_bags_.indices.is_host() && last_bags_.offsets.is_host(),
                "export_step: the last forward's bags are not on the host");
  const Tensor host = dout.is_host() ? dout : host_copy(dout);
  return pack_step(last_bags_, host, scale, T, D);
}

void EmbeddingTables::import_steps(const std::vector<std::string>& packs) {
  GlobalStep g = concat_steps(packs, layout().num_tables(), layout().out_dim());
  imported_bags_ = std::make_unique<Bags>(std::move(g.bags));
  imported_dout_ = std::move(g.dout);
}

bool EmbeddingTables::step_imported() {
  if (!imported_bags_) return false;
  const std::unique_ptr<Bags> bags = std::move(imported_bags_);
  const Tensor dout = std::move(imported_dout_);
  imported_dout_ = Tensor();
  if (bags->batch > 0) update_with_batch(*bags, dout);
  return true;
}

void set_remote_shard_factory(ShardFactory factory, std::string where) {
  remote_registry() = {std::move(factory), std::move(where)};
}

std::unique_ptr<EmbeddingTables> make_embedding_tables(std::vector<TableSpec> specs,
                                                       Backend& backend,
                                                       const CollectionOptions& opts,
                                                       int64_t shards, ShardPlacement placement,
                                                       bool remote) {
  TESSERA_CHECK(shards >= 1, "shards must be >= 1, got " << shards);
  if (remote) {
    const RemoteRegistry& r = remote_registry();
    if (!r.factory)
      TESSERA_THROW(Usage,
                    "the config puts embedding shards in other processes "
                    "(remote_shards), but this process has none to put them in: run "
                    "tessera under mpirun with 2 or more ranks (a tessera built with MPI)"
                        << (r.where.empty() ? "" : "; " + r.where));
    return std::make_unique<ShardedTables>(std::move(specs), backend, opts, shards, placement,
                                           r.factory, r.where);
  }
  if (shards == 1) return std::make_unique<LocalTables>(std::move(specs), backend, opts);
  return std::make_unique<ShardedTables>(std::move(specs), backend, opts, shards, placement);
}

}  // namespace tessera::emb
