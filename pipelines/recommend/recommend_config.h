#pragma once
// The recommendation pipeline's config ("task": "recommend"): biased matrix factorisation on
// explicit ratings ("model": "mf") or a two-tower model on implicit feedback trained with
// negative sampling ("model": "two_tower"). See pipelines/recommend/movielens-*.json; every key
// with its default is in pipelines/recommend/README.md.
#include <cstdint>
#include <string>

#include "embeddings/bag_math.h"
#include "embeddings/sharding.h"
#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "host/data/ratings_data.h"

namespace tessera::recommend {

enum class ModelKind : uint8_t { Mf = 0, TwoTower = 1 };
// Two-tower losses: "bce" (sigmoid cross-entropy, positive vs each sampled negative) or "bpr"
// (-log sigmoid(s_pos - s_neg) per sampled negative).
enum class Loss : uint8_t { Bce = 0, Bpr = 1 };
// Where the tables go when "shards" > 1 (embeddings/sharding.h).
using emb::ShardPlacement;

const json::Choices<ModelKind>& model_choices();
const json::Choices<Loss>& loss_choices();
const json::Choices<ShardPlacement>& placement_choices();
const json::Choices<emb::SparseOptimizer>& sparse_optimizer_choices();
const json::Choices<data::RatingsOnError>& on_error_choices();

struct RecommendConfig {
  std::string name = "recommend";
  ModelKind model = ModelKind::Mf;
  int64_t seed = 42;
  std::string device = "cpu";
  std::string runs_dir = "runs";
  struct {
    std::string dataset = "ml-latest-small";
    std::string file = "ratings.csv";
    std::string path;      // overrides dataset/file when set
    int64_t max_rows = 0;  // > 0: only the first N rows (smoke runs, tests)
    data::RatingsOnError on_error = data::RatingsOnError::Error;
    double test_fraction = 0.1;  // mf: the random split
    // mf: a ratings file in the layout of `path` to measure on; training then uses every row of
    // the training file (no random split, so test_fraction may not be given beside it).
    std::string test;
  } data;
  struct {
    int64_t dim = 64;
    double init_scale = 0.1;
    emb::SparseOptimizerConfig optimizer;
    // > 1: the tables are split over this many shards (one per GPU on a CUDA device, host
    // shards on the CPU) by the planner in embeddings/sharding.h; results equal one shard's.
    int64_t shards = 1;
    ShardPlacement placement = ShardPlacement::Auto;
    // The shards (one or more) in other processes of an MPI job (tessera built with MPI, run
    // under mpirun -np N, N >= 2: rank 0 trains, the others hold the shards).
    bool remote_shards = false;
  } embeddings;
  struct {
    int64_t epochs = 20;
    int64_t batch_size = 1024;
    double l2 = 0.05;        // per-occurrence L2 on the factor rows a batch touches
    double bias_l2 = 0.005;  // the same on bias rows
    int64_t negatives = 4;   // two_tower: sampled negatives per positive
    Loss loss = Loss::Bce;   // two_tower
    // A NaN or Inf in the loss or a gradient: stop (default) or skip the batch (divergence.h).
    NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
    // The tables' lr over the steps (embeddings.optimizer.lr times the schedule's multiplier;
    // cosine's min_lr is in that lr's units). Default: constant.
    LrScheduleConfig lr_schedule;
  } train;
  struct {
    int64_t k = 10;
    int64_t negatives = 99;  // NCF protocol
    bool full_ranking = true;
  } evaluate;
};

bool is_recommend_config(const std::string& path);
RecommendConfig read_recommend_config(const std::string& path);
RecommendConfig parse_recommend_config(const std::string& text, const std::string& source);
std::string to_json(const RecommendConfig& cfg);  // resolved, pretty

}  // namespace tessera::recommend
