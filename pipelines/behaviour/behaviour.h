#pragma once
// The behaviour-prediction pipeline: train (prep -> fit -> evaluate -> save), evaluate a saved
// model on labelled data, and batch-score new rows. Each returns a human summary and one JSON
// object with the results (the CLI prints it as the last stdout line under --json).
#include <cstdint>
#include <string>

#include "host/core/command_result.h"
#include "host/train/run_options.h"

namespace tessera::behaviour {

struct CommonOptions {
  std::string device;  // empty: the config's (train) or "auto"
  bool json = false;
  bool quiet = false;    // no progress output
  int skip_lines = -1;   // evaluate/predict: leading lines of the input to skip (-1: 0)
  std::string on_error;  // evaluate/predict: "error" | "skip" (empty: the model's policy)
};

// Overlapped: the test file (needed only for the final evaluation) is encoded on a host thread
// while the model trains. BeforeTraining: every file is encoded before the first step (the
// reference bench/pipeline_overlap_bench compares against). The results are identical.
enum class TestPrep : uint8_t { Overlapped, BeforeTraining };

struct TrainOptions : train::RunOptions {
  // Without `resume` a behaviour run writes no checkpoint (the other tasks write one after every
  // epoch): a large model's tables are costly to write, and the benchmarks time plain runs.
  TestPrep test_prep = TestPrep::Overlapped;
};

struct PredictOptions : CommonOptions {
  int64_t batch_size = 4096;
};

using Result = CommandResult;

Result train(const std::string& config_path, const TrainOptions& options);
Result evaluate(const std::string& model_path, const std::string& data_path,
                const CommonOptions& options);
Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options);

}  // namespace tessera::behaviour
