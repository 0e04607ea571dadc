#pragma once
// The text-generation pipeline: an LSTM language model over characters (default) or words
// (data.tokenizer "word", pipelines/textgen/tokenizer.h).
//   train     config -> run directory (resolved config, metrics.jsonl, checkpoint.tsc,
//             model.tsm, result.json; the loop is host/train/trainer.h's): truncated BPTT with the
//             state carried across the segments of an epoch, global-norm gradient clipping, the
//             optimizer's LR schedule, validation loss in nats/token, nats/char and perplexity
//   generate  model + prompt -> text streamed to `out` as it is sampled (temperature, top-k,
//             seeded: the same seed gives the same text)
//   perplexity  model + text file -> nats/char and perplexity
#include <cstdint>
#include <functional>
#include <string>

#include "host/core/command_result.h"
#include "host/train/run_options.h"

namespace tessera::textgen {

using Result = CommandResult;

using TrainOptions = train::RunOptions;

struct GenerateOptions {
  std::string device = "cpu";
  std::string prompt;
  int64_t length = 200;
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 0;
};

// Whether the JSON config at `path` names "task": "textgen" (other tasks have their own train).
bool is_textgen_config(const std::string& path);
// Validates a config's text as train does (Error(Config) naming `source`, line:column and the
// JSON path of every problem) and returns it resolved, every default written out, as the run
// directory's config.json holds it.
std::string resolved_config(const std::string& json_text, const std::string& source);

Result train(const std::string& config_path, const TrainOptions& options);
// Calls `emit` with each generated piece of text as soon as it is sampled.
Result generate(const std::string& model_path, const GenerateOptions& options,
                const std::function<void(const std::string&)>& emit);
Result perplexity(const std::string& model_path, const std::string& text_path,
                  const std::string& device);

}  // namespace tessera::textgen
