#pragma once
// What the table models besides the DLRM (DCN-V2: dcn_model.h, Wide & Deep: wide_deep_model.h)
// share: the embedding tables of the categorical columns (TableFeatures, their sparse step deferred
// to the optimizer's sparse group), the column concatenation that builds their input from the
// dense part and the pooled embeddings (ColumnConcat), the batch's bookkeeping, and the weights by
// name (the dense parameters and "embedding.tables", the flat table buffer).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/model/mlp.h"
#include "host/model/parameter.h"
#include "pipelines/behaviour/column_concat.h"
#include "pipelines/behaviour/table_features.h"

namespace tessera {

// The fields both models read (the rest is each model's spec).
struct TableModelSpec {
  int64_t n_dense = 0;
  std::vector<int64_t> table_rows;  // one table of embedding_dim per categorical column
  int64_t embedding_dim = 16;
  std::vector<int64_t> top = {64, 32};  // the deep tower's hidden widths
  float dropout = 0.f;                  // the deep tower's hidden layers
  Activation activation = Activation::Relu;
  emb::SparseOptimizerConfig sparse;
  emb::TableDType table_dtype = emb::TableDType::F32;  // model.table_dtype
  bool stochastic_rounding = false;                    // model.stochastic_rounding
  int64_t shards = 1;
  emb::ShardPlacement placement = emb::ShardPlacement::Auto;
  bool remote_shards = false;
  emb::RankPlacement rank_placement = emb::RankPlacement::Replicated;  // TableFeaturesSpec's
  // The feature tables: one of embedding_dim per column, then (Wide & Deep) `extra`.
  TableFeaturesSpec features(const std::vector<FeatureTable>& extra = {}) const;
};

class TableModel {
 public:
  virtual ~TableModel() = default;
  // dense f32 [B, n_dense] (host or backend; ignored when n_dense == 0), cat i64 [B, T] HOST
  // tensor of per-table rows. Returns logits [B, 1] on the backend (valid until the next forward).
  Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t dropout_seed);
  // The same with each (column, sample) a bag of ids (TableFeatures::forward_bags).
  Tensor forward_bags(const Tensor& dense, const emb::Bags& column_bags, Mode mode,
                      uint64_t dropout_seed);
  // Dense gradients into parameters()' .grad; the tables' gradient is kept for the sparse
  // group's step (sparse_group()), so every gradient can be looked at before a weight changes.
  void backward(const Tensor& dlogits);
  SparseGroup& sparse_group() { return tables_; }
  TableFeatures& tables() { return tables_; }
  // The last backward's gradient of the pooled embeddings [B, tables().out_dim()].
  Tensor sparse_gradient() { return concat_.dpart(batch_, pooled_part_); }

  virtual std::vector<Parameter*> parameters() = 0;
  std::map<std::string, Tensor> snapshot();
  void restore(const std::map<std::string, Tensor>& weights);
  int64_t parameter_count();
  Backend& backend() { return backend_; }

 protected:
  // `parts`/`picks`: the concatenation; part `pooled_part` is the tables' output, part 0 the
  // dense part when n_dense > 0.
  TableModel(Backend& backend, const TableModelSpec& spec, const TableFeaturesSpec& features,
             std::vector<int64_t> parts, std::vector<ColumnPick> picks, int64_t pooled_part,
             uint64_t seed, int64_t max_batch);
  // After the dense input is in dense_in() and the pooled embeddings in the concatenation's part:
  // the model's own layers.
  virtual Tensor forward_layers(int64_t b, Mode mode, uint64_t dropout_seed) = 0;
  // dl [b, 1]: the layers' gradients, ending with concat_.backward() of the input's gradient.
  virtual void backward_layers(const Tensor& dl) = 0;
  Tensor dense_in(int64_t b) { return dense_in_.rows(0, b); }

  Backend& backend_;
  TableModelSpec spec_;
  int64_t max_batch_;
  TableFeatures tables_;
  ColumnConcat concat_;
  int64_t pooled_part_;
  int64_t batch_ = 0;
  Mode mode_ = Mode::Eval;

 private:
  // Checks the batch and copies the dense part in; returns the pooled embeddings' part.
  Tensor begin_forward(const Tensor& dense, int64_t b, Mode mode);
  Tensor dense_in_;  // [max_batch, n_dense]
};

}  // namespace tessera
