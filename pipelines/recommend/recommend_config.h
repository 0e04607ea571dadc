#pragma once
// The recommendation pipeline's config ("task": "recommend"): biased matrix factorisation on
// explicit ratings ("model": "mf") or a two-tower model on implicit feedback trained with
// negative sampling ("model": "two_tower"). See pipelines/recommend/movielens-*.json; every key
// with its default is in pipelines/recommend/README.md.
//
// Each section's fields are declared once, in the fields() functions below (host/config/
// declare.h): the reader, to_json, equality, `tessera config recommend --example` and --schema
// all come from them.
#include <cstdint>
#include <string>

#include "embeddings/bag_math.h"
#include "embeddings/config_choices.h"
#include "embeddings/sharding.h"
#include "host/config/declare.h"
#include "host/config/entry_points.h"
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
const json::Choices<data::RatingsOnError>& on_error_choices();

// The ratings (DataFiles: dataset, train and a test file; no validation data). By default
// ratings.csv of the registered dataset ml-latest-small; "train" (or its older spelling "path")
// without "dataset" is a local file, as is "test" then. With a test file training uses every row
// of train: mf measures RMSE on the test file's rows, two_tower holds out each test user's latest
// interaction in it.
struct RecommendData : DataFiles {
  RecommendData() {
    dataset = "ml-latest-small";
    train.path = "ratings.csv";
    validation_fraction = 0;
  }
  // Older spellings of "train", read and never written: "path" a local file (overriding the
  // dataset), "file" a file of the dataset. Models trained before "train" store both, "path"
  // empty when unused.
  std::string path;
  std::string file;
  int64_t max_rows = 0;  // > 0: only the first N rows (smoke runs, tests)
  data::RatingsOnError on_error = data::RatingsOnError::Error;
  // mf without a test file: the random split (a test file replaces it, so test_fraction may not
  // be given beside it).
  double test_fraction = 0.1;
};

struct RecommendEmbeddings {
  int64_t dim = 64;
  double init_scale = 0.1;
  emb::SparseOptimizerConfig optimizer{emb::SparseOptimizer::Adagrad, 0.05f};
  // > 1: the tables are split over this many shards (one per GPU on a CUDA device, host
  // shards on the CPU) by the planner in embeddings/sharding.h; results equal one shard's.
  int64_t shards = 1;
  ShardPlacement placement = ShardPlacement::Auto;
  // The shards (one or more) in other processes of an MPI job (tessera built with MPI, run
  // under mpirun -np N, N >= 2: rank 0 trains, the others hold the shards).
  bool remote_shards = false;
};

struct RecommendTrain {
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
};

struct RecommendEvaluate {  // two_tower
  int64_t k = 10;
  int64_t negatives = 99;  // NCF protocol
  bool full_ranking = true;
};

struct RecommendConfig {
  std::string name = "recommend";
  ModelKind model = ModelKind::Mf;
  int64_t seed = 42;
  std::string device = "cpu";
  std::string runs_dir = "runs";
  RecommendData data;
  RecommendEmbeddings embeddings;
  RecommendTrain train;
  RecommendEvaluate evaluate;
};

// to_json: the resolved config, pretty. Equality: of everything but the settings that do not
// change results (shards, placement, remote_shards).
TESSERA_DECLARE_CONFIG_IO(RecommendConfig, parse_recommend_config, read_recommend_config);

// `tessera config recommend --example` (reads back as the defaults) and `--schema`.
std::string recommend_config_example();
std::string recommend_config_schema();

// ---- declarations (host/config/declare.h) ----------------------------------------------------

// A section whose keys depend on the model kind (and, for train, the tables' lr).
template <typename S>
struct ForModel {
  ModelKind model;
  S& s;
  double lr = 0;  // train: the tables' lr (the lr schedule's min_lr may not exceed it)
};
// The embedding tables' optimizer (floats, read and written as today's files have them).
struct SparseOptimizerFields {
  emb::SparseOptimizerConfig& o;
};

namespace recommend_detail {
// A number read into a float, written back as that float's double.
config::Codec<float> float_codec(json::Bounds bounds);
// After the data keys are read: the older "path" (a local file) or "file" (of the dataset) moves
// into train, and "train" without a dataset names a local file.
void settle_data_files(json::ObjectReader& r, RecommendData& c);
}  // namespace recommend_detail

template <typename V>
void fields(V& v, ForModel<RecommendData>& m) {
  using config::F;
  RecommendData& c = m.s;
  data_source_fields(v, c, /*train_required=*/false);
  v.string(F("path", "older spelling of \"train\": a local file (the dataset is ignored)")
               .written_if(false),
           c.path);
  v.string(F("file", "older spelling of \"train\": a file of the dataset").written_if(false),
           c.file, json::Text::NonEmpty);
  v.validate([&](json::ObjectReader& r) { recommend_detail::settle_data_files(r, c); });
  v.check(c.train.skip_lines == 0, "train.skip_lines",
          "a ratings file's header is found by itself: remove \"skip_lines\"");
  v.integer(F("max_rows", "> 0: only the first N rows of train (smoke runs, tests)"), c.max_rows,
            json::IntBounds::at_least(0));
  v.choice(F("on_error", "a malformed row: stop with an error naming file:line, or skip it"),
           c.on_error, on_error_choices());
  data_test_field(v, c);
  v.check(!c.test || c.test->skip_lines == 0, "test.skip_lines",
          "a ratings file's header is found by itself: remove \"skip_lines\"");
  v.when(m.model == ModelKind::Mf,
         "only applies to \"model\": \"mf\" (two_tower holds out each user's latest interaction, "
         "of the test file when there is one)",
         [&] {
           v.number(F("test_fraction",
                      "without a test file: the share of train held out at random for RMSE")
                        .written_if(!c.test),
                    c.test_fraction, json::Bounds::open_closed(0, 0.5));
           v.validate([&](json::ObjectReader& r) {
             if (r.has("test") && r.has("test_fraction"))
               r.error("test_fraction",
                       "give either \"test\" (a ratings file to measure on; training then uses "
                       "every row of the training file) or \"test_fraction\" (a random split of "
                       "it), not both");
           });
         });
}

template <typename V>
void fields(V& v, SparseOptimizerFields& s) {
  using config::F;
  using json::Bounds;
  using recommend_detail::float_codec;
  emb::SparseOptimizerConfig& o = s.o;
  v.choice(F("kind", "the tables' update rule (only the rows a batch used are updated)"), o.kind,
           emb::sparse_optimizer_choices());
  v.custom(F("lr", "the tables' learning rate (train.lr_schedule scales it)"), o.lr,
           float_codec(Bounds::positive()));
  v.custom(F("eps", "added to the second moment's square root"), o.eps,
           float_codec(Bounds::positive()));
  v.when(o.kind == emb::SparseOptimizer::LazyAdam, "only applies to \"kind\": \"lazy_adam\"", [&] {
    v.custom(F("beta1", "first-moment decay"), o.beta1, float_codec(Bounds::closed_open(0, 1)));
    v.custom(F("beta2", "second-moment decay"), o.beta2, float_codec(Bounds::closed_open(0, 1)));
  });
  v.when(o.kind == emb::SparseOptimizer::Adagrad || o.kind == emb::SparseOptimizer::RowwiseAdagrad,
         "only applies to \"kind\": \"adagrad\" or \"rowwise_adagrad\"", [&] {
           v.custom(F("initial_accumulator", "the squared-gradient sum's start"),
                    o.initial_accumulator, float_codec(Bounds::at_least(0)));
         });
}

template <typename V>
void fields(V& v, RecommendEmbeddings& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("dim", "the factor width"), c.dim, IntBounds::closed(1, 4096));
  v.number(F("init_scale", "the initial factors' scale"), c.init_scale,
           json::Bounds::closed(0, 10));
  v.integer(
      F("shards", "the tables over this many shards (one per GPU, or host shards)").not_compared(),
      c.shards, IntBounds::closed(1, 64));
  v.choice(F("placement", "how the tables are split over the shards").not_compared(), c.placement,
           emb::shard_placement_choices());
  v.boolean(
      F("remote_shards", "the shards in the other processes of an MPI job (mpirun -np N, N >= 2)")
          .not_compared()
          .written_if(c.remote_shards),
      c.remote_shards);
  SparseOptimizerFields o{c.optimizer};
  v.section(F("optimizer", "the tables' optimizer"), o);
  v.check(!(c.shards > 1 && c.placement == ShardPlacement::Column &&
            c.optimizer.kind == emb::SparseOptimizer::RowwiseAdagrad),
          "placement",
          "column-wise sharding cannot train with rowwise_adagrad (its per-row state is a "
          "mean over all of a row's columns); use \"table\" or \"row\", or another sparse "
          "optimizer");
}

template <typename V>
void fields(V& v, ForModel<RecommendTrain>& m) {
  using config::F;
  using json::IntBounds;
  RecommendTrain& c = m.s;
  v.integer(F("epochs", "passes over the training ratings"), c.epochs,
            IntBounds::closed(1, 100000));
  v.integer(F("batch_size", "ratings per step"), c.batch_size, IntBounds::closed(1, 1 << 22));
  v.number(F("l2", "per-occurrence L2 on the factor rows a batch touches"), c.l2,
           json::Bounds::at_least(0));
  v.number(F("bias_l2", "the same on bias rows"), c.bias_l2, json::Bounds::at_least(0));
  v.when(m.model == ModelKind::TwoTower, "only applies to \"model\": \"two_tower\"", [&] {
    v.integer(F("negatives", "sampled negatives per positive"), c.negatives,
              IntBounds::closed(1, 1000));
    v.choice(F("loss", "bce (sigmoid cross-entropy) or bpr (pairwise)"), c.loss, loss_choices());
  });
  config::on_nonfinite_field(v, c.on_nonfinite);
  v.section(
      F("lr_schedule", "the tables' lr over the steps (a multiplier of embeddings.optimizer.lr)")
          .written_if(c.lr_schedule != LrScheduleConfig{}),
      c.lr_schedule);
  OptimizerConfig tables;
  tables.lr = m.lr;
  v.check(config::schedule_fits(c.lr_schedule, tables), "lr_schedule.min_lr",
          config::schedule_misfit_message(tables));
}

template <typename V>
void fields(V& v, ForModel<RecommendEvaluate>& m) {
  using config::F;
  using json::IntBounds;
  RecommendEvaluate& c = m.s;
  v.when(m.model == ModelKind::TwoTower,
         "only applies to \"model\": \"two_tower\" (mf reports RMSE)", [&] {
           v.integer(F("k", "the cut-off of HR@K and NDCG@K"), c.k, IntBounds::closed(1, 1000));
           v.integer(F("negatives", "sampled negatives per held-out positive (NCF protocol)"),
                     c.negatives, IntBounds::closed(1, 100000));
           v.boolean(F("full_ranking", "also rank every item for each user"), c.full_ranking);
         });
}

template <typename V>
void fields(V& v, RecommendConfig& c) {
  using config::F;
  v.constant(F("task", "what this config is for").required(), "recommend");
  config::run_name_field(v, c.name);
  v.choice(F("model", "mf (explicit ratings, RMSE) or two_tower (implicit feedback, HR/NDCG)")
               .required(),
           c.model, model_choices());
  v.integer(F("seed", "seeds the split, the initial factors and the batch order"), c.seed,
            json::IntBounds::at_least(0));
  config::device_field(v, c.device);
  config::runs_dir_field(v, c.runs_dir);
  ForModel<RecommendData> data{c.model, c.data};
  v.section(F("data", "the ratings"), data);
  v.section(F("embeddings", "the user and item tables"), c.embeddings);
  ForModel<RecommendTrain> train{c.model, c.train, static_cast<double>(c.embeddings.optimizer.lr)};
  v.section(F("train", "the training loop"), train);
  ForModel<RecommendEvaluate> evaluate{c.model, c.evaluate};
  v.section(
      F("evaluate", "two_tower: the ranking measures").written_if(c.model == ModelKind::TwoTower),
      evaluate);
}

}  // namespace tessera::recommend
