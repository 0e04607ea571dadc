#pragma once
// The behaviour-prediction task's config: a binary classifier (will this user click, buy,
// churn?) on a table of numeric and categorical features. Parsed and validated completely
// before anything is allocated; every error names the file, line:column and JSON path.
// The default config is pipelines/behaviour/uci-adult.json; to_json() of a parsed config shows
// every field with its default filled in. Required: "task": "behaviour", "data.train", and
// "data.columns" for csv (exactly one label column).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "host/core/math.h"
#include "host/data/schema.h"

namespace tessera {

enum class BehaviourModelType : uint8_t { Mlp, Dlrm };  // wide_deep joins when implemented
// The embedding tables' optimizer of a DLRM (embeddings/: updates only the rows a batch used).
enum class SparseOptimizerType : uint8_t { Sgd, Adagrad, RowwiseAdagrad, LazyAdam };
// Where a sharded DLRM's tables go: the planner chooses per table, or all table- / row- /
// column-wise.
enum class TablePlacement : uint8_t { Auto, Table, Row, Column };
enum class EarlyStoppingMetric : uint8_t { Auc, Logloss };

const json::Choices<TablePlacement>& table_placement_choices();  // "auto", "table", "row", "column"
const json::Choices<BehaviourModelType>& behaviour_model_choices();  // "mlp", "dlrm"
// "sgd", "adagrad", "rowwise_adagrad", "lazy_adam"
const json::Choices<SparseOptimizerType>& sparse_optimizer_choices();
const json::Choices<Activation>& activation_choices();  // "relu", "tanh", "sigmoid"
const json::Choices<EarlyStoppingMetric>& early_stopping_metric_choices();  // "auc", "logloss"
const json::Choices<TableFormat>& table_format_choices();  // "csv", "criteo", "libsvm"
const json::Choices<ColumnType>&
column_type_choices();  // "numeric", "categorical", "label", "ignore"
const json::Choices<NumericTransform>& numeric_transform_choices();  // "none", "log1p"
const json::Choices<Normalization>& normalization_choices();
const json::Choices<BinEdges>&
bin_edges_choices();  // "distinct_quantile", "quantile"         // "standard", "minmax", "none"
const json::Choices<BadRowPolicy>& bad_row_policy_choices();  // "error", "skip"

struct BehaviourDataConfig {
  // A data registry name ("uci-adult"). When set, relative file paths are resolved by the
  // registry at run time (its cache / mirror directory); when empty they are used as given.
  std::string dataset;
  // Files derived from the dataset's raw files before reading (empty: none). "movielens_clicks"
  // (dataset "ml-latest-small"): clicks_train.csv / clicks_test.csv of
  // host/data/movielens_clicks.h, written to the cache; train/test name those files.
  std::string derive;
  FileSpec train;
  std::optional<FileSpec> test;
  std::optional<FileSpec> validation;
  // Fraction of train held out for validation when no validation file is given, in [0, 0.9];
  // 0 when a validation file is given.
  double validation_fraction = 0.1;
  TableSchema schema;  // format, delimiter, header, trim, missing tokens, bad rows, columns
  CategoricalSpec categorical;
  NumericSpec numeric;
};

struct SparseOptimizerSpec {
  SparseOptimizerType type = SparseOptimizerType::RowwiseAdagrad;
  double lr = 0.05;
  double eps = 1e-8;     // adagrad, rowwise_adagrad, lazy_adam
  double beta1 = 0.9;    // lazy_adam
  double beta2 = 0.999;  // lazy_adam
};

struct BehaviourModelConfig {
  BehaviourModelType type = BehaviourModelType::Mlp;
  int embedding_dim = 8;                // per categorical column, [1, 1024]
  std::vector<int> hidden = {128, 64};  // hidden layer widths (dlrm: the top MLP); empty = linear
  double dropout = 0.2;                 // [0, 0.95], after each hidden layer
  Activation activation = Activation::Relu;
  // dlrm only (absent from an mlp config): the bottom MLP's hidden widths on the dense features
  // (a last layer of width embedding_dim is added), and the tables' sparse optimizer. The top
  // MLP's input is the dot interaction [bottom output | pairwise dots of the F + 1 vectors].
  std::vector<int> bottom = {64};
  SparseOptimizerSpec sparse_optimizer;
  // dlrm only: the tables over this many shards (one per GPU, or host shards on the CPU),
  // placed by the planner ("auto") or all "table"- / "row"- / "column"-wise. Results equal one
  // shard's, so neither (nor remote_shards below) takes part in a checkpoint's configuration check.
  int shards = 1;  // [1, 64]
  TablePlacement placement = TablePlacement::Auto;
  // dlrm only: the shards (one or more) in other processes of an MPI job (tessera built with
  // MPI, run under mpirun -np N, N >= 2: rank 0 trains, the others hold the shards).
  bool remote_shards = false;
};

struct EarlyStoppingConfig {
  EarlyStoppingMetric metric = EarlyStoppingMetric::Auc;
  int patience = 0;  // epochs without improvement on validation before stopping; 0 = off
};

struct BehaviourTrainConfig {
  int epochs = 10;
  int batch_size = 256;
  int eval_batch_size = 4096;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  EarlyStoppingConfig early_stopping;
  // Read so existing configs stay valid, and unused since the Trainer logs the epoch's mean
  // training loss over every step (this was the interval at which that loss was sampled).
  int log_every = 50;
  std::string runs_dir = "runs";
  int prefetch = 2;  // batches prepared ahead of the trainer
  // A NaN or Inf in the loss or a gradient: stop (default) or skip the batch (divergence.h).
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
};

struct BehaviourConfig {
  std::string name = "behaviour";  // names the run directory: letters, digits, '.', '_', '-'
  int64_t seed = 42;
  std::string device = "auto";  // "auto" | "cpu" | "cuda" | "cuda:N"
  BehaviourDataConfig data;
  BehaviourModelConfig model;
  BehaviourTrainConfig train;
};

bool operator==(const BehaviourConfig& a, const BehaviourConfig& b);
inline bool operator!=(const BehaviourConfig& a, const BehaviourConfig& b) {
  return !(a == b);
}

// Parses and validates `json_text`; `source_path` names it in messages. Throws one
// Error(ErrorKind::Config) listing every problem (syntax errors alone, as file:line:col).
BehaviourConfig parse_behaviour_config(const std::string& json_text,
                                       const std::string& source_path);
// Reads the file (Error(Io) when it cannot) and parses it.
BehaviourConfig load_behaviour_config(const std::string& path);

// The resolved config as pretty JSON: every field that applies, defaults filled in; fields that
// do not apply (momentum for adam, columns for criteo) are left out. parse(to_json(c)) == c for
// every config parse returns.
std::string to_json(const BehaviourConfig& config);

}  // namespace tessera
