#pragma once
// The names a config gives the embedding tables' enums (behaviour's DLRM and recommend's tables
// read them alike), with the valid choices for the reader's messages.
#include "embeddings/bag_math.h"
#include "embeddings/sharding.h"
#include "host/config/json_reader.h"

namespace tessera::emb {

// "sgd", "adagrad", "rowwise_adagrad", "lazy_adam"
const json::Choices<SparseOptimizer>& sparse_optimizer_choices();
// "auto" (the planner chooses per table), "table", "row", "column"
const json::Choices<ShardPlacement>& shard_placement_choices();

}  // namespace tessera::emb
