#pragma once
// The behaviour pipeline's model, whichever the config picks ("model.type"): the MLP
// (host/model/mlp.h) or DLRM (dlrm_model.h), behind one interface so train / evaluate / predict
// and the checkpoints do not care which.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/data/preprocessor.h"
#include "host/model/divergence.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "pipelines/behaviour/behaviour_config.h"

namespace tessera::emb {
class AllToAllTables;
}

namespace tessera::behaviour {

class BehaviourNet {
 public:
  virtual ~BehaviourNet() = default;
  // dense f32 [B, n_dense], cat i64 [B, n_cat] global embedding rows (host tensors, as the
  // batcher makes them). Returns logits [B, 1] on the backend.
  virtual Tensor forward(const Tensor& dense, const Tensor& cat, Mode mode, uint64_t seed) = 0;
  // Gradients only, so a batch can be checked before it changes any weight: dense ones into
  // parameters()' .grad; a DLRM keeps its tables' gradient for step_sparse().
  virtual void backward(const Tensor& dlogits) = 0;
  // The parameters the optimizer's sparse group "tables" holds (a DLRM's tables, stepped with
  // the last backward()'s gradient at model.sparse_optimizer.lr times the schedule's
  // multiplier, their state in checkpoints), or nullptr (the MLP's table is a dense parameter).
  virtual SparseGroup* sparse_group() { return nullptr; }
  // The gradients that are not in parameters(), as host tensors named by what they update (a
  // DLRM: each table's rows of the batch, "embedding table 'occupation'").
  virtual NamedTensors sparse_gradients() { return {}; }
  // The weights that are not in parameters(), named the same way, handed to `f` one at a time as
  // host tensors (a DLRM's tables: one table's copy at a time, however many there are).
  virtual void visit_tables(const std::function<void(const std::string&, const Tensor&)>& f) {}
  // What the optimizer's dense group steps (and checkpoints hold with its state).
  virtual std::vector<Parameter*> parameters() = 0;
  // Every weight by name, as host tensors (the model artefact's tensors).
  virtual std::map<std::string, Tensor> snapshot() = 0;
  virtual void restore(const std::map<std::string, Tensor>& weights) = 0;
  virtual int64_t parameter_count() const = 0;
  virtual Backend& backend() = 0;
  // How the model's tables are placed over shards, as a table ("" when not sharded).
  virtual std::string shard_plan() const { return {}; }
  // The tables when split across the ranks of an MPI job (model.tables_across_ranks "split"),
  // else nullptr: the training task gathers them for what rank 0 does alone.
  virtual emb::AllToAllTables* split_tables() { return nullptr; }
};

// The model of `config.model.type` for data encoded by `pre` (spec: the MLP's shape, which also
// gives n_dense for libSVM input). A DLRM gets one table per categorical column.
// model.sparse_optimizer as the embedding tables take it.
emb::SparseOptimizerConfig sparse_config(const SparseOptimizerSpec& s);
// model.table_dtype as the embeddings' storage type.
emb::TableDType table_dtype_of(TableStorage s);

// The batch's global embedding rows cat [B, n] (host or backend) as each table's local rows:
// cat[s, t] - offsets[t], in `scratch` (a host buffer grown as needed), as a host [B, n] tensor.
Tensor table_local_rows(Backend& backend, const Tensor& cat, const std::vector<int64_t>& offsets,
                        Tensor& scratch);

std::unique_ptr<BehaviourNet> make_net(Backend& backend, const BehaviourConfig& config,
                                       const Preprocessor& pre, const MlpSpec& spec, uint64_t seed,
                                       int64_t max_batch);

}  // namespace tessera::behaviour
