#pragma once
// The behaviour-prediction pipeline: train (prep -> fit -> evaluate -> save), evaluate a saved
// model on labelled data, and batch-score new rows. Each returns a human summary and one JSON
// object with the results (the CLI prints it as the last stdout line under --json).
#include <cstdint>
#include <string>

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

struct TrainOptions : CommonOptions {
  std::string runs_dir;  // empty: the config's train.runs_dir
  std::string run_dir;   // exact run directory (must not exist); empty: a fresh one
  int64_t epochs = -1;   // -1: the config's
  // A run directory to train in resumably (the Trainer's, host/train/trainer.h): after each
  // epoch <resume>/checkpoint.tsc (weights, dense optimizer state, a DLRM's tables with their
  // sparse optimizer state, step, early-stopping state) is written atomically, and a directory
  // that already holds one continues from it, ending with the same metrics and model as an
  // uninterrupted run (the same config, but for runs_dir and the tables' shards). Empty: no
  // checkpoints.
  std::string resume;
  // With resume: stop once this call has trained this many epochs, leaving the checkpoint for a
  // later call to resume (as an interruption would: no model file, no final evaluation; the
  // result has "stopped_after_epoch"). -1: train to the end.
  int64_t stop_after_epochs = -1;
  TestPrep test_prep = TestPrep::Overlapped;
};

struct PredictOptions : CommonOptions {
  int64_t batch_size = 4096;
};

struct Result {
  std::string summary;  // human-readable lines
  std::string json;     // one JSON object, compact
};

Result train(const std::string& config_path, const TrainOptions& options);
Result evaluate(const std::string& model_path, const std::string& data_path,
                const CommonOptions& options);
Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options);

}  // namespace tessera::behaviour
