// The text-generation task's registration (pipelines/task.h): train a config; a model file's
// sampling, perplexity, evaluation (perplexity and bits per character of a text file) and
// prediction (each line's next token and greedy continuation); the pipeline's stage kinds.
#include <cstdio>

#include "pipelines/task_verbs.h"
#include "pipelines/textgen/stages.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/textgen/textgen_config.h"

namespace tessera::textgen {

namespace {

CommandResult generate_verb(const CliArgs& a) {
  GenerateOptions o;
  o.device = a.text("--device", "cpu");
  o.prompt = a.text("--prompt", "");
  o.length = a.count("--length", 200);
  o.top_k = a.count("--top-k", 0);
  o.seed = static_cast<uint64_t>(a.count("--seed", 0));
  o.temperature = a.number("--temperature", 1.0);
  CommandResult r = generate(a.positionals.at(0), o, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  return r;
}

std::string device_of(const CliArgs& a) {
  return a.text("--device", "cpu");
}

PredictOptions predict_options(const CliArgs& a) {
  PredictOptions o;
  o.device = device_of(a);
  o.length = a.count("--length", o.length);
  return o;
}

}  // namespace

void register_task(TaskRegistry& registry) {
  Task t = task_with_train("textgen", "content generation: a character or word LSTM language model",
                           train, register_stages, textgen_config_example, textgen_config_schema);
  t.model_verbs["generate"] = generate_verb;
  t.model_verbs["perplexity"] = model_data_verb(perplexity, device_of);
  // evaluate MODEL TEXT: perplexity and bits per character of a text file.
  t.model_verbs["evaluate"] = model_data_verb(evaluate, device_of);
  // predict MODEL INPUT OUTPUT: each line's most likely next token and greedy continuation.
  t.model_verbs["predict"] = model_input_output_verb(
      predict, predict_options, "usage: tessera predict MODEL INPUT OUTPUT (a textgen model)");
  registry.add(std::move(t));
}

}  // namespace tessera::textgen
