#include "embeddings/config_choices.h"

namespace tessera::emb {

const json::Choices<SparseOptimizer>& sparse_optimizer_choices() {
  static const json::Choices<SparseOptimizer> c = {
      {"sgd", SparseOptimizer::Sgd},
      {"adagrad", SparseOptimizer::Adagrad},
      {"rowwise_adagrad", SparseOptimizer::RowwiseAdagrad},
      {"lazy_adam", SparseOptimizer::LazyAdam}};
  return c;
}

const json::Choices<ShardPlacement>& shard_placement_choices() {
  static const json::Choices<ShardPlacement> c = {{"auto", ShardPlacement::Auto},
                                                  {"table", ShardPlacement::Table},
                                                  {"row", ShardPlacement::Row},
                                                  {"column", ShardPlacement::Column}};
  return c;
}

}  // namespace tessera::emb
