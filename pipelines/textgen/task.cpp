// The text-generation task's registration (pipelines/task.h): train a config; a model file's
// sampling and perplexity; the pipeline's stage kinds.
#include <cstdio>

#include "host/core/error.h"
#include "pipelines/task.h"
#include "pipelines/textgen/stages.h"
#include "pipelines/textgen/textgen.h"

namespace tessera::textgen {

void register_task(TaskRegistry& registry) {
  Task t;
  t.name = "textgen";
  t.about = "content generation: a character or word LSTM language model";
  t.train = [](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.model_verbs["generate"] = [](const CliArgs& a) {
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
  };
  t.model_verbs["perplexity"] = [](const CliArgs& a) {
    return perplexity(a.positionals.at(0), a.positionals.at(1), a.text("--device", "cpu"));
  };
  t.stages = register_stages;
  registry.add(std::move(t));
}

}  // namespace tessera::textgen
