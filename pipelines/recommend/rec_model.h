#pragma once
// The recommendation models over one EmbeddingCollection (user and item tables + bias tables),
// trained by the collection's sparse optimizer on the rows a batch touches:
//   mf         r_hat = mu + b_u + b_i + <p_u, q_i>, squared error on explicit ratings;
//   two_tower  s = <u, v_i> + b_i (the user tower is the user's embedding, the item tower the
//              item's embedding and bias; dot-product scoring so the item side can be exported to
//              a nearest-neighbour index), trained on positives + sampled negatives with BCE or
//              BPR.
// L2 is per occurrence (Funk-style): each time a row is in a batch its gradient gains l2 * w.
// The tables are an emb::EmbeddingTables: one collection, or with "embeddings.shards" > 1 a
// ShardedEmbeddingCollection (one shard per GPU, or N host shards); the results, the checkpoint
// (weights, optimizer state, step) and the exported tables equal one shard's.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "embeddings/alltoall_tables.h"
#include "embeddings/tables.h"
#include "host/model/optimizer.h"
#include "pipelines/recommend/recommend_config.h"

namespace tessera::recommend {

class RecModel {
 public:
  // where: under data-parallel training, the tables replicated on every rank or each on one rank
  // (embeddings/alltoall_tables.h; then made collectively, and with one shard, not remote).
  RecModel(const RecommendConfig& cfg, int64_t users, int64_t items, Backend& backend,
           emb::RankPlacement where = emb::RankPlacement::Replicated);
  RecModel(const RecModel&) = delete;  // sparse_group() refers to the model
  RecModel& operator=(const RecModel&) = delete;

  // A training step in two halves, so a batch can be checked (host/model/divergence.h) before
  // it changes any weight: *_step computes the loss and the gradient of the rows the batch looks
  // up, stage() hands it to sparse_group(), which the optimizer steps (or the batch is dropped);
  // apply() is both, at the configured lr.
  //
  // Everything runs on the model's backend (scores, losses and gradients with the Backend's
  // recommendation ops, the tables' forward and sparse update on the device): a step reads
  // nothing back. Its tensors are the model's own buffers, valid until the next *_step.
  struct Step {
    Tensor loss;  // f32 per-sample losses on the backend: mf [n] squared errors; two_tower [n *
                  // (1 + negs)] (bce, one per scored item) or [n] (bpr, summed over the pairs)
    Tensor dout;  // [rows, out width] on the backend: each looked-up row's gradient, tables side
                  // by side
  };
  // Explicit ratings: ratings f32 [n] on the backend (staged: BatchStager).
  Step mf_step(const int32_t* users, const int32_t* items, const Tensor& ratings, int64_t n);
  // The same with host ratings, uploaded here (a pageable copy: for tests and one-off steps).
  Step mf_step(const int32_t* users, const int32_t* items, const float* ratings, int64_t n);
  // Groups (user, positive, negatives...): items [n * (1 + negs)].
  Step two_tower_step(const int32_t* users, const int32_t* items, int64_t n, int64_t negs);
  // The sparse optimizer step of the rows of the last *_step, which `s` must be.
  void apply(const Step& s);
  void stage(const Step& s);
  // The tables as the optimizer's sparse group (host/model/optimizer.h): lr scale, the step of
  // the staged gradient, their state (EmbeddingTables::training_state()'s names).
  SparseGroup& sparse_group() { return group_; }
  // The table whose gradient is column `column` of a Step's dout.
  const std::string& table_of_column(int64_t column) const;

  float global_mean() const { return mu_; }
  void set_global_mean(float mu) { mu_ = mu; }
  int64_t steps() const { return tables_->steps(); }
  ModelKind kind() const { return kind_; }

  // The tables as host [rows, dim] tensors, by name ("user", "item", "user_bias", "item_bias").
  std::vector<std::pair<std::string, Tensor>> tables();
  // The shard plan ("" unsharded), printed when training starts.
  std::string shard_plan() const { return tables_->shard_plan(); }
  // Everything a checkpoint needs to continue exactly: weights, optimizer state, step, mu. Laid
  // out as the unsharded collection's, whatever the shard count (resume may change it).
  std::vector<std::pair<std::string, Tensor>> state_tensors();
  void restore_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t step);
  // What a checkpoint needs besides sparse_group()'s state: "global_mean"; its restore refuses
  // any other tensor (Error(Io)).
  std::vector<std::pair<std::string, Tensor>> mean_state() const;
  void restore_mean_state(const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  // The pooled rows of (users[s], items[s]) into out_ rows [0, S), returned as that view.
  Tensor forward(const std::vector<int32_t>& users, const std::vector<int32_t>& items);
  // The step buffers (out_, score_, dscore_, loss_, dout_) hold at least `rows` rows; they grow
  // (an allocation) only when a batch is larger than any before.
  void reserve(int64_t rows);
  // BCE labels on the backend, [rows]: 1 for each group's positive, 0 for its negatives.
  const Tensor& bce_labels(int64_t rows, int64_t group);

  const RecommendConfig cfg_;
  ModelKind kind_;
  Backend* backend_;
  std::unique_ptr<emb::EmbeddingTables> tables_;
  emb::AllToAllTables* split_ = nullptr;  // tables_ when split across the ranks
  const emb::TableLayout& layout() const { return tables_->layout(); }
  int64_t dim_;
  float mu_ = 0.f;
  Tensor out_, score_, dscore_, loss_, dout_;  // step buffers on the backend, [capacity, ...]
  Tensor labels_;                              // bce_labels' buffer
  int64_t labels_group_ = 0;
  class TableGroup final : public SparseGroup {
   public:
    explicit TableGroup(RecModel& m) : m_(m) {}
    void set_lr_scale(float scale) override { m_.tables_->set_lr_scale(scale); }
    void step() override;
    std::map<std::string, Tensor> training_state() override { return m_.tables_->training_state(); }
    void restore_training_state(const std::map<std::string, Tensor>& s) override {
      m_.tables_->restore_training_state(s);
    }
    // Data-parallel with the tables replicated (docs/distributed.md): the staged gradient and
    // the last lookup go out; the global batch's comes back for step().
    bool exchanges_steps() const override { return true; }
    // The steps' gradients are the batch's sums (per-occurrence losses, not means): a rank's part
    // goes out unscaled, and the concatenation is the global batch's sum.
    std::string export_step(float share) override {
      return m_.tables_->export_step(staged, share > 0.f ? 1.f : 0.f);
    }
    void import_steps(std::vector<std::string> steps) override {
      m_.tables_->import_steps(steps);
      imported = true;
    }
    // Tables split across the ranks: the staged gradient (unscaled, as above) goes to the
    // tables' owners only.
    void exchange_step(dist::ProcessGroup& group, float share) override {
      if (!m_.split_) return SparseGroup::exchange_step(group, share);
      m_.split_->exchange_step(group, staged, share > 0.f ? 1.f : 0.f);
      imported = true;
    }
    bool imported = false;
    Tensor staged;  // [rows, out width] on the backend: the gradient the next step applies

   private:
    RecModel& m_;
  };
  TableGroup group_{*this};
};

}  // namespace tessera::recommend
