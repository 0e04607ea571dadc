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
//   evaluate  model + text file -> the same measure as `evaluate` reports it for every task:
//             nats and bits per character, nats per token, perplexity
//   predict   model + text file -> for each line, the most likely next token (with its
//             probability) and the greedy continuation of `length` tokens, into a TSV
#include <cstdint>
#include <functional>
#include <string>

#include "host/core/command_result.h"
#include "host/data/schema.h"
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
// A data file's text as train reads it: less its first `file.skip_lines` lines, cut to
// `max_chars` bytes when that is > 0. `path` is where the file is (resolved in its dataset).
std::string read_text(const std::string& path, const FileSpec& file, int64_t max_chars);

Result train(const std::string& config_path, const TrainOptions& options);
// Calls `emit` with each generated piece of text as soon as it is sampled.
Result generate(const std::string& model_path, const GenerateOptions& options,
                const std::function<void(const std::string&)>& emit);
Result perplexity(const std::string& model_path, const std::string& text_path,
                  const std::string& device);
Result evaluate(const std::string& model_path, const std::string& text_path,
                const std::string& device);

struct PredictOptions {
  std::string device = "cpu";
  int64_t length = 20;  // tokens of each line's greedy continuation (>= 1)
};
// Each line of `input_path` (without its newline; an empty line primes with a newline, as an
// empty --prompt does) primes the model; OUTPUT (TSV, written atomically) gets one row per line:
// line number, the most likely next token, its probability, and the greedy continuation of
// `length` tokens (the text `generate --top-k 1 --prompt LINE` gives). Tab, newline, carriage
// return and backslash in the tokens are written \t, \n, \r and \\. Data error naming
// file:line:column for a character the model's vocabulary lacks, file:line for a line over
// 1 MiB.
Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options);

}  // namespace tessera::textgen
