#pragma once
// The text-classification pipeline (README.md in this folder):
//   train     config -> run directory (resolved config, metrics.jsonl, model.tsm, result.json):
//             tokenise, build the vocabulary on the training rows, length-bucketed batches,
//             early stopping on the validation accuracy, test accuracy / macro-F1 / confusion
//   evaluate  model + labelled `label<TAB>text` file -> accuracy, macro-F1, confusion matrix
//   predict   model + text file (one text per line) -> `line<TAB>label<TAB>p_class...` rows,
//             streamed in chunks, written atomically
#include <cstdint>
#include <string>

namespace tessera::textclass {

struct Result {
  std::string summary;  // human-readable lines
  std::string json;     // one JSON object, compact
};

struct TrainOptions {
  std::string device;         // empty: the config's
  std::string runs_dir;       // empty: the config's
  std::string run_dir;        // exact run directory (must not exist)
  int64_t epochs = -1;        // -1: the config's
  double time_budget_s = -1;  // -1: the config's
  // A run directory holding checkpoint.tsc (every run writes one after each epoch): continue it
  // exactly where it stopped (the same config, but for epochs, the time budget, runs_dir,
  // device and on_nonfinite).
  std::string resume;
  int64_t stop_after_epochs = -1;  // >= 0: stop as if killed after so many epochs (tests)
  bool quiet = false;
};

struct RunOptions {
  std::string device = "cpu";
  int64_t skip_lines = -1;    // evaluate: -1 = auto header (line 1 with label field "label")
  int64_t batch_size = 4096;  // predict: lines per chunk
  bool quiet = false;
};

bool is_textclass_config(const std::string& path);
// Whether `path` is a model artefact of this pipeline (task "textclass").
bool is_textclass_model(const std::string& path);

Result train(const std::string& config_path, const TrainOptions& options);
Result evaluate(const std::string& model_path, const std::string& data_path,
                const RunOptions& options);
Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const RunOptions& options);

}  // namespace tessera::textclass
