// The text-generation task's config: the tokenizer names, the language model's shape, and the
// entry points over the declarations in textgen_config.h.
#include "pipelines/textgen/textgen_config.h"

#include "host/core/atomic_file.h"

namespace tessera::textgen {

const json::Choices<TokenizerKind>& tokenizer_choices() {
  static const json::Choices<TokenizerKind> c = {{"char", TokenizerKind::Char},
                                                 {"word", TokenizerKind::Word}};
  return c;
}

LmShape lm_shape(const TextgenModel& m, int64_t vocab) {
  LmShape s;
  s.vocab = vocab;
  s.embedding_dim = m.embedding_dim;
  s.hidden_size = m.hidden_size;
  s.num_layers = m.num_layers;
  s.dropout = static_cast<float>(m.dropout);
  s.output_dropout = static_cast<float>(m.output_dropout);
  return s;
}

bool operator==(const TextgenConfig& a, const TextgenConfig& b) {
  return config::same_config(a, b);
}

TextgenConfig parse_textgen_config(const std::string& text, const std::string& source) {
  return config::read_config<TextgenConfig>(text, source);
}

TextgenConfig read_textgen_config(const std::string& path) {
  return parse_textgen_config(read_file(path), path);
}

std::string to_json(const TextgenConfig& c) {
  return config::write_config(c);
}

std::string textgen_config_example() {
  return config::example_config<TextgenConfig>(
      "A textgen config (tessera train CONFIG): an LSTM language model over the characters (or "
      "words) of a text, trained by truncated backpropagation through time with the state "
      "carried across segments; validation loss in nats per token and per character, and "
      "perplexity. The text is \"train\" of \"dataset\" (tinyshakespeare's input.txt by "
      "default) or, without \"dataset\", a local file; validation is a file or the last share "
      "of train; a \"test\" file is scored once after training. Every field is shown with its "
      "default and what it does; fields that do not apply to these settings are commented out, "
      "with the reason.");
}

std::string textgen_config_schema() {
  return config::schema_config<TextgenConfig>("textgen");
}

}  // namespace tessera::textgen
