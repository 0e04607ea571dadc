#pragma once
// The text-classification config (pipelines/textclass/sst2.json, sms-spam.json), read with the
// project's validating JSON reader: every error names file:line:col, the JSON path, what was
// expected and the valid choices; unknown keys are errors. See README.md in this folder.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "pipelines/textclass/classifier.h"
#include "pipelines/textclass/text_tokenizer.h"

namespace tessera::textclass {

const json::Choices<Pooling>& pooling_choices();  // "mean", "max", "last"

struct DataConfig {
  // Files of a registered dataset (host/data/registry.h) when `dataset` is set, else paths.
  std::string dataset;
  std::string train;               // required
  std::string validation;          // empty: split from train (validation_fraction)
  std::string test;                // empty: split from train when test_fraction > 0, else none
  double validation_fraction = 0;  // seeded stratified split of the train file
  double test_fraction = 0;
  int64_t skip_lines = kAutoHeaderConfig;  // header lines of every file; -1: auto (README)
  int64_t max_rows = 0;                    // read at most N rows per file (0: all)
  std::vector<std::string> classes;        // empty: the sorted distinct training labels
  TokenizerOptions tokenizer;
  int64_t min_count = 1;
  int64_t max_vocab = 0;  // 0: no limit
  static constexpr int64_t kAutoHeaderConfig = -1;
};

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 64;
  int64_t patience = 3;  // epochs without a better validation score before stopping; 0: never
  double clip_norm = 5.0;
  double time_budget_s = 0;
  int64_t log_every = 200;
  std::string runs_dir = "runs";
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  // A NaN or Inf in the loss or a gradient: stop (default) or skip the batch (divergence.h).
  NonFinitePolicy on_nonfinite = NonFinitePolicy::Stop;
};

struct TextclassConfig {
  std::string name = "textclass";
  int64_t seed = 1;
  std::string device = "auto";
  DataConfig data;
  ClassifierShape model;  // vocab and classes come from the data
  TrainConfig train;
};

TextclassConfig read_textclass_config(const std::string& path);
// The resolved config (every default written out), pretty JSON.
std::string to_json(const TextclassConfig& c);
// Whether the JSON file at `path` has "task": "textclass".
bool is_textclass_config(const std::string& path);

}  // namespace tessera::textclass
