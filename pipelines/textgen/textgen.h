#pragma once
// The text-generation pipeline: an LSTM language model over characters (default) or words
// (data.tokenizer "word", pipelines/textgen/tokenizer.h).
//   train     config -> run directory (resolved config, metrics.jsonl, model.tsm, result.json);
//             truncated BPTT with the state carried across batches, global-norm gradient
//             clipping, the optimizer's LR schedule, validation loss in nats/char + perplexity
//   generate  model + prompt -> text streamed to `out` as it is sampled (temperature, top-k,
//             seeded: the same seed gives the same text)
//   perplexity  model + text file -> nats/char and perplexity
#include <cstdint>
#include <functional>
#include <string>

namespace tessera::textgen {

struct Result {
  std::string summary;  // human-readable lines
  std::string json;     // one JSON object, compact
};

struct TrainOptions {
  std::string device;     // empty: the config's
  std::string runs_dir;   // empty: the config's
  std::string run_dir;    // exact run directory (must not exist)
  int64_t epochs = -1;    // -1: the config's
  double time_budget_s = -1;  // -1: the config's train.time_budget_s (0 = none)
  bool quiet = false;
};

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

Result train(const std::string& config_path, const TrainOptions& options);
// Calls `emit` with each generated piece of text as soon as it is sampled.
Result generate(const std::string& model_path, const GenerateOptions& options,
                const std::function<void(const std::string&)>& emit);
Result perplexity(const std::string& model_path, const std::string& text_path,
                  const std::string& device);

}  // namespace tessera::textgen
