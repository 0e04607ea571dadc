#pragma once
// The behaviour-prediction task's config: a binary classifier (will this user click, buy,
// churn?) on a table of numeric and categorical features, an MLP or a DLRM. Parsed and validated
// completely before anything is allocated; every error names the file, line:column and JSON path.
// The default config is pipelines/behaviour/uci-adult.json; to_json() of a parsed config shows
// every field with its default filled in. Required: "task": "behaviour", "data.train", and
// "data.columns" for csv (exactly one label column).
//
// Each section's fields are declared once, in the fields() functions below (host/config/
// declare.h): the reader, to_json, equality, `tessera config behaviour --example` and --schema
// all come from them.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "embeddings/alltoall_tables.h"
#include "embeddings/bag_math.h"
#include "embeddings/config_choices.h"
#include "embeddings/sharding.h"
#include "host/config/declare.h"
#include "host/config/entry_points.h"
#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "host/core/math.h"
#include "host/data/libsvm.h"
#include "host/data/schema.h"

namespace tessera {

// mlp; the table models (one embedding table per categorical column, sparse optimizer): dlrm,
// dcn_v2 (DCN-V2's cross network beside or under a deep tower), wide_deep (Wide & Deep).
enum class BehaviourModelType : uint8_t { Mlp, Dlrm, DcnV2, WideDeep };
// DCN-V2: the deep tower on the cross network's output, or both on x0 side by side.
enum class CrossStructure : uint8_t { Stacked, Parallel };
// Whether `t` has embedding tables of its own per categorical column (every type but mlp).
inline bool has_tables(BehaviourModelType t) {
  return t != BehaviourModelType::Mlp;
}
enum class EarlyStoppingMetric : uint8_t { Auc, Logloss };
// How training reads a prepared directory: all of it into memory, streamed from the shards, or
// chosen by size ("auto": streamed when the shards would not fit comfortably in memory).
enum class DataRead : uint8_t { Auto, Memory, Stream };
// How the embedding tables are stored (accumulation and optimizer math stay fp32).
enum class TableStorage : uint8_t { F32, BF16, F16 };

// "mlp", "dlrm", "dcn_v2", "wide_deep"
const json::Choices<BehaviourModelType>& behaviour_model_choices();
const json::Choices<CrossStructure>& cross_structure_choices();  // "stacked", "parallel"
const json::Choices<DataRead>& data_read_choices();              // "auto", "memory", "stream"
const json::Choices<TableStorage>& table_storage_choices();      // "f32", "bf16", "f16"
// "replicated", "split" (model.tables_across_ranks)
const json::Choices<emb::RankPlacement>& tables_across_ranks_choices();
const json::Choices<Activation>& activation_choices();  // "relu", "tanh", "sigmoid"
const json::Choices<EarlyStoppingMetric>& early_stopping_metric_choices();  // "auc", "logloss"
const json::Choices<TableFormat>& table_format_choices();  // "csv", "criteo", "libsvm"
// "numeric", "categorical", "label", "ignore"
const json::Choices<ColumnType>& column_type_choices();
const json::Choices<NumericTransform>& numeric_transform_choices();  // "none", "log1p"
const json::Choices<Normalization>& normalization_choices();         // "standard", "minmax", "none"
const json::Choices<BinEdges>& bin_edges_choices();  // "distinct_quantile", "quantile"

// The files (DataFiles: dataset, train, validation or validation_fraction, test), then how to
// read them.
struct BehaviourDataConfig : DataFiles {
  // Files derived from the dataset's raw files before reading (empty: none). "movielens_clicks"
  // (dataset "ml-latest-small"): clicks_train.csv / clicks_test.csv of
  // host/data/movielens_clicks.h, written to the cache; train/test name those files.
  std::string derive;
  // A directory `tessera prep` wrote from these files (docs/prepared-format.md; a path as
  // data.train's, empty: none). Training then reads the rows and the fitted preprocessor
  // from its column shards instead of parsing and encoding the text again.
  std::string prepared;
  // With `prepared` only: how training reads it, and the streamed reader's block shuffle (blocks
  // of block_rows rows in a seeded order) and shuffle buffer (rows).
  DataRead read = DataRead::Auto;
  int64_t block_rows = 4096;
  int64_t shuffle_buffer = 65536;
  TableSchema schema;  // format, delimiter, header, trim, missing tokens, bad rows, columns
  // libSVM input with fields (libFM "field:index:value"): the rows of each field's feature table
  // (empty: each field's largest index on train + 1; training writes what it read into the
  // model's config). Without fields, schema.libsvm_features is the one table's (sparse_input.h).
  std::vector<int> libsvm_field_features;
  CategoricalSpec categorical;
  NumericSpec numeric;
  // `tessera prep`: the most memory its vocabulary count may hold (MB, all threads together; 0:
  // a quarter of physical memory, at least 512); over it the count takes a sketch and a second
  // pass, with the same vocabulary (docs/prepared-format.md, "Counting in bounded memory").
  int64_t fit_memory_mb = 0;
};

struct SparseOptimizerSpec {
  emb::SparseOptimizer type = emb::SparseOptimizer::RowwiseAdagrad;
  double lr = 0.05;
  double eps = 1e-8;     // adagrad, rowwise_adagrad, lazy_adam
  double beta1 = 0.9;    // lazy_adam
  double beta2 = 0.999;  // lazy_adam
};

// dcn_v2 only: the cross network, x_{l+1} = x0 (.) (W_l x_l + b_l) + x_l over x0 = [dense part |
// embeddings] (pipelines/behaviour/README.md).
struct CrossConfig {
  int layers = 3;    // cross layers, [1, 16]
  int low_rank = 0;  // 0: full-rank W_l [D, D]; r > 0: W_l = U_l V_l^T with U_l, V_l [D, r]
  CrossStructure structure = CrossStructure::Stacked;
};

struct BehaviourModelConfig {
  BehaviourModelType type = BehaviourModelType::Mlp;
  int embedding_dim = 8;  // per categorical column, [1, 1024]
  // hidden layer widths (dlrm: the top MLP; dcn_v2 and wide_deep: the deep tower); empty = linear
  std::vector<int> hidden = {128, 64};
  double dropout = 0.2;  // [0, 0.95], after each hidden layer
  Activation activation = Activation::Relu;
  // dlrm and dcn_v2: the bottom MLP's hidden widths on the dense features (a last layer of width
  // embedding_dim is added; dcn_v2 with [] has no bottom MLP: the dense features join x0 as
  // they are). The DLRM's top MLP's input is the dot interaction [bottom output | pairwise dots
  // of the F + 1 vectors].
  std::vector<int> bottom = {64};
  CrossConfig cross;  // dcn_v2 only
  // The table models (absent from an mlp config): the tables' sparse optimizer.
  SparseOptimizerSpec sparse_optimizer;
  // The table models: the tables over this many shards (one per GPU, or host shards on the CPU),
  // placed by the planner ("auto") or all "table"- / "row"- / "column"-wise. Results equal one
  // shard's, so neither (nor remote_shards below) takes part in a checkpoint's configuration check.
  int shards = 1;  // [1, 64]
  emb::ShardPlacement placement = emb::ShardPlacement::Auto;
  // The table models: the shards (one or more) in other processes of an MPI job (tessera built with
  // MPI, run under mpirun -np N, N >= 2: rank 0 trains, the others hold the shards).
  bool remote_shards = false;
  // The table models under mpirun, every rank training (docs/distributed.md): every table on
  // every rank ("replicated"), or each table whole on one rank ("split", all-to-all lookups).
  // Checkpoints and the model file hold whole tables either way, so it is not compared on resume.
  emb::RankPlacement tables_across_ranks = emb::RankPlacement::Replicated;
  // The table models: the tables' storage type, and whether an update rounds to it
  // stochastically (bf16 / f16 only) rather than to nearest.
  TableStorage table_dtype = TableStorage::F32;
  bool stochastic_rounding = false;
};

struct EarlyStoppingConfig {
  EarlyStoppingMetric metric = EarlyStoppingMetric::Auc;
  int patience = 0;  // epochs without improvement on validation before stopping; 0 = off
};

// Besides TrainLoop's keys (optimizer, lr_schedule, runs_dir, on_nonfinite):
struct BehaviourTrainConfig : TrainLoop {
  int epochs = 10;
  int batch_size = 256;
  int eval_batch_size = 4096;
  EarlyStoppingConfig early_stopping;
  // Read so existing configs stay valid, and unused since the Trainer logs the epoch's mean
  // training loss over every step (this was the interval at which that loss was sampled).
  int log_every = 50;
  int prefetch = 2;  // batches prepared ahead of the trainer
  // Optimizer steps between checkpoints inside an epoch, for runs resumed with --resume (large
  // data: an epoch may take hours); 0: at epoch ends only. Not part of the resume check.
  int64_t checkpoint_every_steps = 0;
};

// RunSettings: name (default "behaviour"; names the run directory: letters, digits, '.', '_',
// '-'), seed (default 42), device.
struct BehaviourConfig : RunSettings {
  BehaviourConfig() : RunSettings("behaviour", 42) {}
  BehaviourDataConfig data;
  BehaviourModelConfig model;
  BehaviourTrainConfig train;
};

// parse_behaviour_config validates the text (`source_path` names it in messages) and throws one
// Error(ErrorKind::Config) listing every problem (syntax errors alone, as file:line:col);
// load_behaviour_config reads the file (Error(Io) when it cannot) and parses it. to_json: the
// resolved config as pretty JSON, every field that applies with defaults filled in, fields that
// do not apply (momentum for adam, columns for criteo) left out; parse(to_json(c)) == c for every
// config parse returns. Equality: of everything but the settings that do not change results
// (model.shards, placement, remote_shards).
TESSERA_DECLARE_CONFIG_IO(BehaviourConfig, parse_behaviour_config, load_behaviour_config);

// `tessera config behaviour --example`: a config with every field, its default and its
// documentation as // comments (the fields that do not apply commented out, with the reason);
// it reads back as the defaults with data.train "train.csv" and three columns (a numeric, a
// categorical and the label). `--schema`: the config's JSON Schema (draft 2020-12).
std::string behaviour_config_example();
std::string behaviour_config_schema();

// ---- declarations (host/config/declare.h) ----------------------------------------------------

namespace behaviour_detail {
// The checks across a csv's columns (their reader is `data`): unique names, then, when every
// column's type was read, exactly one label and at least one feature.
void check_columns(json::ObjectReader& data, const std::vector<ColumnSpec>& columns);
// A table model's tables take the categorical columns (a schema with none is refused at the
// config's model.type; `root` is the config's reader), and a DLRM's bottom MLP the numeric ones
// (dcn_v2 and wide_deep do without).
void check_table_model_inputs(json::ObjectReader& root, const TableSchema& schema,
                              BehaviourModelType type);
// Why "columns" is refused for `format` (criteo and libsvm imply them).
std::string columns_implied_message(TableFormat format);
}  // namespace behaviour_detail

template <typename V>
void fields(V& v, ColumnSpec& c) {
  using config::F;
  v.string(F("name", "the column's name, unique among the columns").required(), c.name,
           json::Text::NonEmpty);
  v.choice(F("type",
             "numeric (a number), categorical (a token, embedded), label (the target, exactly "
             "one column) or ignore")
               .required(),
           c.type, column_type_choices());
  const std::string this_one =
      std::string(" (this column is \"") + json::choice_name(c.type, column_type_choices()) + "\")";
  v.when(c.type == ColumnType::Numeric, "only applies to numeric columns" + this_one, [&] {
    v.choice(F("transform", "applied before normalisation"), c.transform,
             numeric_transform_choices());
  });
  v.when(c.type == ColumnType::Label, "only applies to the label column" + this_one, [&] {
    const bool tokens = !c.positive.empty();
    v.string_list(F("positive",
                    "raw tokens that mean 1 (with negative; neither: the label is a "
                    "number, positive when > 0.5)")
                      .written_if(tokens),
                  c.positive);
    v.string_list(F("negative", "raw tokens that mean 0").written_if(tokens), c.negative);
    v.check(c.positive.empty() == c.negative.empty(), c.positive.empty() ? "positive" : "negative",
            "give both \"positive\" and \"negative\" label tokens, or neither (then the label is "
            "read as a number, positive when > 0.5)");
    v.validate([&](json::ObjectReader& r) {
      for (const std::string& token : c.negative) {
        if (std::find(c.positive.begin(), c.positive.end(), token) != c.positive.end())
          r.error("negative", "token \"" + token + "\" is both positive and negative");
      }
    });
  });
}

template <typename V>
void fields(V& v, CategoricalSpec& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("min_count", "tokens seen fewer times on train share the out-of-vocabulary row"),
            c.min_count, IntBounds::closed(1, 1000000000));
  v.integer(
      F("hash_buckets", "> 0: hash tokens into this many rows instead of building a vocabulary"),
      c.hash_buckets, IntBounds::closed(0, int64_t{1} << 40));
  v.check(c.hash_buckets == 0 || c.min_count == 1, "hash_buckets",
          "hash_buckets > 0 and min_count > 1 exclude each other: hashing keeps every token, so "
          "there is no vocabulary to prune (set min_count to 1, or hash_buckets to 0)");
}

template <typename V>
void fields(V& v, NumericSpec& c) {
  using config::F;
  v.choice(F("normalization", "fitted on train only"), c.normalization, normalization_choices());
  v.integer(F("bins",
              "> 0: besides the normalised value, a piecewise-linear encoding over this many "
              "quantile bins"),
            c.bins, json::IntBounds::closed(0, 1024));
  v.choice(F("bin_edges", "where the bins' edges go (used when bins > 0)").written_if(c.bins > 0),
           c.bin_edges, bin_edges_choices());
}

template <typename V>
void fields(V& v, BehaviourDataConfig& c) {
  using config::F;
  data_file_fields(v, c);
  v.string(F("derive",
             "files derived from the dataset's before reading: \"movielens_clicks\" (dataset "
             "\"ml-latest-small\")")
               .written_if(!c.derive.empty())
               .pattern("^movielens_clicks$"),
           c.derive, json::Text::NonEmpty);
  v.check(c.derive.empty() || c.derive == "movielens_clicks", "derive",
          "expected one of: movielens_clicks");
  v.check(c.derive != "movielens_clicks" || c.dataset == "ml-latest-small", "derive",
          "\"movielens_clicks\" derives from the dataset \"ml-latest-small\"");
  v.string(F("prepared",
             "a directory `tessera prep` wrote from these files: training reads its column shards "
             "instead of the text")
               .written_if(!c.prepared.empty()),
           c.prepared, json::Text::NonEmpty);
  v.check(c.prepared.empty() || c.derive.empty(), "prepared",
          "a prepared directory holds rows already read: it cannot be combined with \"derive\"");
  v.when(!c.prepared.empty(), "only applies with \"prepared\"", [&] {
    v.choice(F("read",
               "memory (every row loaded), stream (read from the shards as training goes) or "
               "auto (stream when the shards are large)")
                 .written_if(c.read != DataRead::Auto),
             c.read, data_read_choices());
    v.integer(F("block_rows", "streamed: rows per block of the seeded block shuffle")
                  .written_if(c.block_rows != 4096),
              c.block_rows, json::IntBounds::closed(1, int64_t{1} << 30));
    v.integer(F("shuffle_buffer", "streamed: rows of the shuffle buffer (<= 1: none)")
                  .written_if(c.shuffle_buffer != 65536),
              c.shuffle_buffer, json::IntBounds::closed(0, int64_t{1} << 32));
  });
  v.integer(F("fit_memory_mb",
              "prep: memory (MB) the vocabulary count may hold (0: a quarter of physical memory, "
              "at least 512); over it, a sketch and a second pass give the same vocabulary")
                .written_if(c.fit_memory_mb != 0),
            c.fit_memory_mb, json::IntBounds::closed(0, int64_t{1} << 30));
  TableSchema& s = c.schema;
  size_t errors_before = 0;
  bool format_read = true;  // false: a misspelt format, so "columns" may not be required
  v.validate([&](json::ObjectReader& r) { errors_before = r.errors().size(); });
  v.choice(F("format", "csv (columns below), criteo or libsvm (columns implied)"), s.format,
           table_format_choices());
  v.validate([&](json::ObjectReader& r) { format_read = r.errors().size() == errors_before; });
  v.when(s.format != TableFormat::LibSvm,
         "libsvm data is whitespace separated; remove \"delimiter\"", [&] {
           v.custom(F("delimiter", "the field separator: one character, \"\\t\" for a tab"),
                    s.delimiter, config::delimiter_codec(',', config::Quote::Refused));
         });
  v.boolean(F("header", "the first (non-skipped) line names the columns"), s.header);
  v.boolean(F("trim", "trim spaces around fields"), s.trim);
  v.string_list(F("missing", "tokens that mean a missing value"), s.missing_tokens);
  v.choice(F("on_error", "a malformed row: stop with an error, or skip it"), s.on_error,
           bad_row_policy_choices());
  v.when(s.format == TableFormat::LibSvm,
         std::string("only applies to the \"libsvm\" format (this data is \"") +
             json::choice_name(s.format, table_format_choices()) + "\")",
         [&] {
           v.integer(F("libsvm_features",
                       "rows without fields: the features (0: the largest index on train + 1)"),
                     s.libsvm_features,
                     json::IntBounds::closed(0, static_cast<int64_t>(kLibSvmMaxFeatures)));
           v.integer_list(F("libsvm_field_features",
                            "rows with fields (field:index:value): each field's features "
                            "([]: each field's largest index on train + 1)")
                              .written_if(!c.libsvm_field_features.empty()),
                          c.libsvm_field_features,
                          json::IntBounds::closed(1, static_cast<int64_t>(kLibSvmMaxSparseIndex)),
                          json::IntBounds::closed(0, kLibFmMaxFields));
         });
  v.when(s.format == TableFormat::Csv, behaviour_detail::columns_implied_message(s.format), [&] {
    F columns("columns", "one per field of a row, in order");
    if (format_read) columns.required();
    v.section_list(columns, s.columns, json::IntBounds::at_least(1));
    v.validate([&](json::ObjectReader& r) { behaviour_detail::check_columns(r, s.columns); });
  });
  v.section(F("categorical", "the categorical columns' vocabularies"), c.categorical);
  v.section(F("numeric", "the numeric columns' encoding"), c.numeric);
}

template <typename V>
void fields(V& v, SparseOptimizerSpec& c) {
  using config::F;
  using json::Bounds;
  v.choice(F("type", "the tables' update rule (only the rows a batch used are updated)"), c.type,
           emb::sparse_optimizer_choices());
  v.number(F("lr", "the tables' learning rate (the dense lr schedule scales it)"), c.lr,
           Bounds::open_closed(0, 1e3));
  const std::string this_one = std::string(" (this optimizer is \"") +
                               json::choice_name(c.type, emb::sparse_optimizer_choices()) + "\")";
  v.when(c.type != emb::SparseOptimizer::Sgd,
         "only applies to \"adagrad\", \"rowwise_adagrad\" and \"lazy_adam\"" + this_one, [&] {
           v.number(F("eps", "added to the second moment's square root"), c.eps,
                    Bounds::open_closed(0, 1));
         });
  v.when(c.type == emb::SparseOptimizer::LazyAdam, "only applies to \"lazy_adam\"" + this_one, [&] {
    v.number(F("beta1", "first-moment decay"), c.beta1, Bounds::closed_open(0, 1));
    v.number(F("beta2", "second-moment decay"), c.beta2, Bounds::closed_open(0, 1));
  });
}

template <typename V>
void fields(V& v, CrossConfig& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("layers", "cross layers x_{l+1} = x0 (.) (W_l x_l + b_l) + x_l"), c.layers,
            IntBounds::closed(1, 16));
  v.integer(F("low_rank", "0: full-rank W_l [D, D]; r > 0: W_l = U_l V_l^T of rank r"), c.low_rank,
            IntBounds::closed(0, 65536));
  v.choice(F("structure",
             "stacked (the deep tower on the cross network's output) or parallel (both on x0, "
             "concatenated before the final linear)"),
           c.structure, cross_structure_choices());
}

template <typename V>
void fields(V& v, BehaviourModelConfig& c) {
  using config::F;
  using json::IntBounds;
  v.choice(F("type",
             "mlp, dlrm (embedding tables, a bottom MLP and a dot interaction), dcn_v2 (tables, a "
             "cross network and a deep tower) or wide_deep (a wide linear part plus a deep tower)"),
           c.type, behaviour_model_choices());
  v.integer(F("embedding_dim", "the width of each categorical column's embedding"), c.embedding_dim,
            IntBounds::closed(1, 1024));
  v.integer_list(F("hidden",
                   "hidden layer widths (dlrm: the top MLP's; dcn_v2, wide_deep: the deep "
                   "tower's); [] is linear"),
                 c.hidden, IntBounds::closed(1, 65536), IntBounds::closed(0, 64));
  v.number(F("dropout", "after each hidden layer"), c.dropout, json::Bounds::closed(0, 0.95));
  v.choice(F("activation", "of the hidden layers"), c.activation, activation_choices());
  const std::string this_one = std::string(" (model.type is \"") +
                               json::choice_name(c.type, behaviour_model_choices()) + "\")";
  v.when(c.type == BehaviourModelType::Dlrm || c.type == BehaviourModelType::DcnV2,
         "only a \"dlrm\" or \"dcn_v2\" model has this key" + this_one, [&] {
           v.integer_list(F("bottom",
                            "the bottom MLP's hidden widths on the numeric features (a last layer "
                            "of embedding_dim is added; dcn_v2: [] is no bottom MLP)"),
                          c.bottom, IntBounds::closed(1, 65536), IntBounds::closed(0, 64));
         });
  v.when(c.type == BehaviourModelType::DcnV2, "only a \"dcn_v2\" model has this key" + this_one,
         [&] { v.section(F("cross", "the DCN-V2 cross network"), c.cross); });
  v.when(has_tables(c.type),
         "only a \"dlrm\", \"dcn_v2\" or \"wide_deep\" model (one with embedding tables) has "
         "this key" +
             this_one,
         [&] {
           v.integer(F("shards", "the tables over this many shards (one per GPU, or host shards)")
                         .not_compared(),
                     c.shards, IntBounds::closed(1, 64));
           v.choice(F("placement", "how the tables are split over the shards").not_compared(),
                    c.placement, emb::shard_placement_choices());
           v.boolean(F("remote_shards",
                       "the shards in the other processes of an MPI job (mpirun -np N, N >= 2)")
                         .not_compared()
                         .written_if(c.remote_shards),
                     c.remote_shards);
           v.choice(F("tables_across_ranks",
                      "under mpirun -np N with every rank training: every table on every rank "
                      "(replicated) or each table on one rank (split)")
                        .not_compared()
                        .written_if(c.tables_across_ranks != emb::RankPlacement::Replicated),
                    c.tables_across_ranks, tables_across_ranks_choices());
           v.check(c.tables_across_ranks == emb::RankPlacement::Replicated ||
                       (c.shards == 1 && !c.remote_shards),
                   "tables_across_ranks",
                   "\"split\" places whole tables on the ranks: it takes neither model.shards > 1 "
                   "nor remote_shards");
           v.section(F("sparse_optimizer", "the embedding tables' optimizer"), c.sparse_optimizer);
           v.choice(
               F("table_dtype", "the tables' storage: f32, bf16 or f16 (updates computed in fp32)")
                   .written_if(c.table_dtype != TableStorage::F32),
               c.table_dtype, table_storage_choices());
           v.boolean(F("stochastic_rounding",
                       "round each updated table value to table_dtype stochastically")
                         .written_if(c.stochastic_rounding),
                     c.stochastic_rounding);
           v.check(!c.stochastic_rounding || c.table_dtype != TableStorage::F32,
                   "stochastic_rounding", "only applies to a bf16 or f16 table_dtype");
           v.check(!(c.shards > 1 && c.placement == emb::ShardPlacement::Column &&
                     c.sparse_optimizer.type == emb::SparseOptimizer::RowwiseAdagrad),
                   "placement",
                   "column-wise sharding cannot train with rowwise_adagrad (its per-row state is a "
                   "mean over all of a row's columns); use \"table\" or \"row\", or another sparse "
                   "optimizer");
         });
}

template <typename V>
void fields(V& v, EarlyStoppingConfig& c) {
  using config::F;
  v.choice(F("metric", "the validation metric watched"), c.metric, early_stopping_metric_choices());
  v.integer(F("patience", "epochs without improvement on validation before stopping; 0: off"),
            c.patience, json::IntBounds::closed(0, 100000));
}

template <typename V>
void fields(V& v, BehaviourTrainConfig& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("epochs", "passes over the training data"), c.epochs, IntBounds::closed(1, 100000));
  v.integer(F("batch_size", "examples per step"), c.batch_size, IntBounds::closed(1, 1 << 20));
  v.integer(F("eval_batch_size", "examples per batch when scoring"), c.eval_batch_size,
            IntBounds::closed(1, 1 << 22));
  config::optimizer_fields(v, c.optimizer, c.lr_schedule, "the dense weights' optimizer");
  v.section(F("early_stopping", "stop when validation stops improving"), c.early_stopping);
  v.integer(F("log_every", "unused (read so older configs stay valid)"), c.log_every,
            IntBounds::closed(1, 1000000000));
  v.integer(F("checkpoint_every_steps",
              "optimizer steps between checkpoints inside an epoch, for runs resumed with "
              "--resume (large data: an epoch may take hours); 0: at epoch ends only")
                .written_if(c.checkpoint_every_steps != 0),
            c.checkpoint_every_steps, IntBounds::at_least(0));
  config::runs_dir_field(v, c.runs_dir);
  v.integer(F("prefetch", "batches prepared ahead of the trainer"), c.prefetch,
            IntBounds::closed(0, 64));
  config::on_nonfinite_field(v, c.on_nonfinite);
}

template <typename V>
void fields(V& v, BehaviourConfig& c) {
  config::root_fields(
      v, "behaviour", c,
      {"seeds the split, the initial weights, dropout and the batch order",
       "where the data is and how to read it", "the classifier", config::Presence::Optional});
  // Across sections.
  if (has_tables(c.model.type)) {
    v.validate([&](json::ObjectReader& r) {
      behaviour_detail::check_table_model_inputs(r, c.data.schema, c.model.type);
    });
  }
  v.check(
      c.train.early_stopping.patience == 0 || c.data.validation || c.data.validation_fraction > 0.0,
      "train.early_stopping.patience",
      "early stopping needs validation data: set \"data.validation\" or "
      "\"data.validation_fraction\" > 0");
}

}  // namespace tessera
