#pragma once
// The behaviour pipeline's DCN-V2 ("dcn_v2") and Wide & Deep ("wide_deep") models behind the
// BehaviourNet interface (net.h), built from the config and the fitted preprocessor: one table per
// categorical column (and Wide & Deep's 1-wide ones), ids made local to each table.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pipelines/behaviour/net.h"

namespace tessera::behaviour {

// config.model.type is dcn_v2 or wide_deep (else Error(Internal)); spec.n_dense is the dense
// width. Error(Config) for input without categorical columns (libSVM).
std::unique_ptr<BehaviourNet> make_table_net(Backend& backend, const BehaviourConfig& config,
                                             const Preprocessor& pre, const MlpSpec& spec,
                                             uint64_t seed, int64_t max_batch);

// The weights make_table_net builds, by name and shape, "embedding.tables" included (the model
// artefact's check before anything is built). Error(Io) naming `path` when sizes overflow.
std::vector<std::pair<std::string, Shape>> table_net_weight_shapes(const BehaviourConfig& config,
                                                                   const Preprocessor& pre,
                                                                   int64_t n_dense,
                                                                   const std::string& path);

}  // namespace tessera::behaviour
