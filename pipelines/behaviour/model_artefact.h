#pragma once
// The behaviour model artefact: one self-contained file (host/core/archive.h) with the resolved
// config, the fitted preprocessor (vocabularies, normalisers), the model's shape and weights, and
// the metrics it was trained to. Written atomically; evaluate and predict load it.
#include <map>
#include <string>

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

bool is_libsvm(const BehaviourConfig& config);
void save_model(const std::string& path, const ModelArtefact& artefact);
ModelArtefact load_model(const std::string& path);

// Copies between a model's parameters (on its backend) and host weights by name.
std::map<std::string, Tensor> snapshot_weights(MlpModel& model);
void restore_weights(MlpModel& model, const std::map<std::string, Tensor>& weights);

}  // namespace tessera::behaviour
