#pragma once
// Scoring a behaviour model on Arrow rows (host/data/arrow_stream.h), for Model.predict(data) and
// Model.evaluate(data) on a DataFrame, an Arrow table or a Parquet dataset: the rows are read
// from the stream batch by batch (never the whole input in memory, never copied whole), parsed
// and encoded with the model's fitted preprocessor as `tessera predict` encodes a file's rows,
// and scored in batches of `batch_size`.
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/command_result.h"
#include "host/data/arrow_stream.h"

namespace tessera::python {

struct ArrowScoreOptions {
  std::string device;    // empty: "auto"
  std::string on_error;  // "error" | "skip" | empty: the model's policy
  int64_t batch_size = 4096;
  bool labels = false;  // evaluate: the label column is required
};

struct ArrowScores {
  std::vector<double> probs;  // one per good row, in input order
  std::vector<float> labels;  // when the stream has the label column
  int64_t rows_read = 0, bad_rows = 0, unseen = 0;
  double seconds = 0;
  std::string device;
  std::string bad_summary;
};

// Takes over `stream`; `name` names the input in messages ("DataFrame", a file's path).
ArrowScores score_arrow(const std::string& model_path, ArrowArrayStream* stream,
                        const std::string& name, const ArrowScoreOptions& options);

// evaluate's result from scores with labels: the CLI's summary line and --json object's fields
// (command, model, data, device, rows, bad_rows_skipped, unseen_categories, rows_per_sec,
// metrics {count, positives, auc, logloss, accuracy, ece}).
CommandResult evaluate_result(const std::string& model_path, const std::string& name,
                              const ArrowScores& s);

}  // namespace tessera::python
