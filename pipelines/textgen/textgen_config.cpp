// The text-generation task's config: the tokenizer names, the language model's shape, and the
// entry points over the declarations in textgen_config.h.
#include "pipelines/textgen/textgen_config.h"

#include "host/config/choices.h"
#include "host/config/entry_points.h"
#include "host/core/atomic_file.h"

namespace tessera::textgen {

TESSERA_CHOICES(tokenizer_choices, TokenizerKind, {"char", TokenizerKind::Char},
                {"word", TokenizerKind::Word});

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

TESSERA_CONFIG_IO(TextgenConfig, parse_textgen_config, read_textgen_config, read_file);

TESSERA_CONFIG_DOCS(
    textgen_config_example, textgen_config_schema, "textgen",
    "A textgen config (tessera train CONFIG): an LSTM language model over the characters (or "
    "words) of a text, trained by truncated backpropagation through time with the state "
    "carried across segments; validation loss in nats per token and per character, and "
    "perplexity. The text is \"train\" of \"dataset\" (tinyshakespeare's input.txt by "
    "default) or, without \"dataset\", a local file; validation is a file or the last share "
    "of train; a \"test\" file is scored once after training. Every field is shown with its "
    "default and what it does; fields that do not apply to these settings are commented out, "
    "with the reason.",
    TextgenConfig{}, TextgenConfig{});

}  // namespace tessera::textgen
