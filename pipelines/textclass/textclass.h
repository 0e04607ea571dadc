#pragma once
// The text-classification pipeline (README.md in this folder):
//   train     config -> run directory (resolved config, metrics.jsonl, model.tsm, result.json):
//             tokenise, build the vocabulary on the training rows, length-bucketed batches,
//             early stopping on the validation accuracy, test accuracy / macro-F1 / confusion
//   evaluate  model + labelled file, read with the layout the model was trained on (default
//             `label<TAB>text`) -> accuracy, macro-F1, confusion matrix
//   predict   model + text file (one text per line; markup stripped when the model was trained
//             with strip_markup) -> `line<TAB>label<TAB>p_class...` rows,
//             streamed in chunks, written atomically
#include <cstdint>
#include <string>

#include "host/core/command_result.h"
#include "host/train/run_options.h"

namespace tessera::textclass {

using Result = CommandResult;

using TrainOptions = train::RunOptions;

struct RunOptions {
  std::string device = "cpu";
  int64_t skip_lines = -1;  // evaluate: -1 = auto header (line 1 with label field "label")
  // evaluate: the file is plain label<TAB>text rows (as a pipeline's prep stage writes them),
  // not in the layout the model was trained on.
  bool plain_rows = false;
  int64_t batch_size = 4096;  // predict: lines per chunk
  bool quiet = false;
};

// Whether `path` is a model artefact of this pipeline (task "textclass").
bool is_textclass_model(const std::string& path);

Result train(const std::string& config_path, const TrainOptions& options);
Result evaluate(const std::string& model_path, const std::string& data_path,
                const RunOptions& options);
Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const RunOptions& options);

}  // namespace tessera::textclass
