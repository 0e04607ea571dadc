#include "embeddings/config_choices.h"

#include "host/config/choices.h"

namespace tessera::emb {

TESSERA_CHOICES(sparse_optimizer_choices, SparseOptimizer, {"sgd", SparseOptimizer::Sgd},
                {"adagrad", SparseOptimizer::Adagrad},
                {"rowwise_adagrad", SparseOptimizer::RowwiseAdagrad},
                {"lazy_adam", SparseOptimizer::LazyAdam});

TESSERA_CHOICES(shard_placement_choices, ShardPlacement, {"auto", ShardPlacement::Auto},
                {"table", ShardPlacement::Table}, {"row", ShardPlacement::Row},
                {"column", ShardPlacement::Column});

}  // namespace tessera::emb
