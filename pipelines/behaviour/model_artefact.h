#pragma once
// The behaviour model artefact: one self-contained file (host/core/archive.h) with the resolved
// config, the fitted preprocessor (vocabularies, normalisers), the model's shape and weights, and
// the metrics it was trained to. Written atomically; evaluate and predict load it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/core/tensor.h"
#include "host/data/preprocessor.h"
#include "host/model/mlp.h"
#include "pipelines/behaviour/behaviour_config.h"

namespace tessera::behaviour {

struct ModelArtefact {
  BehaviourConfig config;
  // CSV / Criteo input: the fitted encoding. libSVM input needs none (features are used as
  // written, densified to spec.n_dense columns) and stores null.
  Preprocessor preprocessor;
  MlpSpec spec;
  std::map<std::string, Tensor> weights;  // host tensors by parameter name
  std::string metrics_json = "{}";        // the training run's final metrics
};

// A model file's parts by reference: training writes its own preprocessor and weights without
// copying them into a ModelArtefact first (a large model's vocabularies are hundreds of MB, and
// the copy came on top of the weights' snapshot at the end of the run).
struct ModelArtefactRef {
  const BehaviourConfig& config;
  const Preprocessor& preprocessor;
  const MlpSpec& spec;
  const std::map<std::string, Tensor>& weights;
  const std::string& metrics_json;
};

bool is_libsvm(const BehaviourConfig& config);
void save_model(const std::string& path, const ModelArtefactRef& artefact);
void save_model(const std::string& path, const ModelArtefact& artefact);
ModelArtefact load_model(const std::string& path);

// One embedding table of a behaviour model, as a view into one of its weights: `rows` x `dim` f32
// elements, row-major, from element `offset` of the host tensor weights[weight].
struct TableView {
  std::string name;    // the categorical column (libSVM rows: "field <t>" or "features"); a
                       // Wide & Deep model's wide (dim 1) table of column c is "wide:<c>"
  std::string weight;  // "embedding.tables" (DLRM, DCN-v2, Wide & Deep: the flat buffer),
                       // "embedding.table" (MLP), "dense0.weight" (MLP on libSVM rows)
  int64_t offset = 0;
  int64_t rows = 0, dim = 0;
};

// The embedding tables of a loaded model (load_model checked the weights' shapes), in the
// model's table order; empty for an MLP without categorical columns. Rows are the encoded ids'
// rows (vocabulary mode: row 0 is the column's out-of-vocabulary row, token i row i + 1). An Io
// error when a view would leave its weight or two tables share a name.
std::vector<TableView> table_views(const ModelArtefact& artefact);

// Copies between a model's parameters (on its backend) and host weights by name.
std::map<std::string, Tensor> snapshot_weights(MlpModel& model);
void restore_weights(MlpModel& model, const std::map<std::string, Tensor>& weights);

}  // namespace tessera::behaviour
