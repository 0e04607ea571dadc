#pragma once
// The text-generation task's config: an LSTM language model over the characters (or words) of a
// text file, trained by truncated backpropagation through time. The default is
// pipelines/textgen/tinyshakespeare.json. Required: "task": "textgen", and the "data" and "train"
// sections (either may be empty: every key has a default).
//
// Data (DataFiles, host/config/sections.h): "train" is the text, a file of "dataset" (default
// input.txt of tinyshakespeare) or, without "dataset", a local path; the validation text is a
// "validation" file or the last "validation_fraction" of train; a "test" file is scored once
// after training with the best epoch's weights (as `tessera perplexity` scores a file). The
// older spellings still read: "file" (a file of the dataset) and "path" (a local file, whatever
// the dataset).
//
// Each section's fields are declared once, in the fields() functions below (host/config/
// declare.h): the reader, to_json, equality, `tessera config textgen --example` and --schema all
// come from them.
#include <cstdint>
#include <string>

#include "host/config/declare.h"
#include "host/config/entry_points.h"
#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "pipelines/textgen/lm_model.h"
#include "pipelines/textgen/tokenizer.h"

namespace tessera::textgen {

const json::Choices<TokenizerKind>& tokenizer_choices();  // "char", "word"

struct TextgenData : DataFiles {
  TextgenData() {
    dataset = "tinyshakespeare";
    train.path = "input.txt";
  }
  // Older spellings of "train", read and never written: "path" a local file (overriding the
  // dataset), "file" a file of the dataset.
  std::string path;
  std::string file;
  int64_t max_chars = 0;  // > 0: only the first this many bytes of each file (tests use a prefix)
  TokenizerKind tokenizer = TokenizerKind::Char;
  int64_t min_count = 2;  // word tokenizer: rarer words become <unk>
};

struct TextgenModel {
  int64_t embedding_dim = 64;
  int64_t hidden_size = 256;
  int64_t num_layers = 2;
  double dropout = 0.0;         // between LSTM layers, training only
  double output_dropout = 0.0;  // on the top layer's output before the softmax, training only
};
// The model's shape for a vocabulary of `vocab` tokens.
LmShape lm_shape(const TextgenModel& m, int64_t vocab);

// Besides TrainLoop's keys (runs_dir, optimizer, lr_schedule, on_nonfinite):
struct TextgenTrain : TrainLoop {
  int64_t epochs = 10;
  int64_t batch_size = 32;
  int64_t seq_len = 64;
  double clip_norm = 5.0;    // 0: no clipping
  double time_budget_s = 0;  // 0: none; else stop after the step that crosses it
  int64_t log_every = 100;
};

// RunSettings: name (default "textgen"), seed (default 1), device.
struct TextgenConfig : RunSettings {
  TextgenConfig() : RunSettings("textgen", 1) {}
  TextgenData data;
  TextgenModel model;
  TextgenTrain train;
};

// parse_textgen_config validates `text` (`source_path` names it in messages): one Error(Config)
// listing every problem with file:line:column and JSON path; read_textgen_config: Error(Io) when
// the file is unreadable. to_json: the resolved config, every default written out, as the run
// directory's config.json holds it. Equality: of the resolved configs.
TESSERA_DECLARE_CONFIG_IO(TextgenConfig, parse_textgen_config, read_textgen_config);

// `tessera config textgen --example`: every field with its default and documentation (reads
// back as the defaults); `--schema`: the config's JSON Schema (draft 2020-12).
std::string textgen_config_example();
std::string textgen_config_schema();

// ---- declarations (host/config/declare.h) ----------------------------------------------------

template <typename V>
void fields(V& v, TextgenData& c) {
  using config::F;
  data_source_fields(v, c, /*train_required=*/false);
  older_train_fields(v, c, c.path, c.file);
  data_validation_fields(v, c);
  v.check(c.validation || c.validation_fraction > 0, "validation_fraction",
          "every epoch is measured on validation text: give a share of train > 0 or a "
          "\"validation\" file");
  data_test_field(v, c);
  v.integer(F("max_chars", "> 0: only the first this many bytes of each file (0: all)"),
            c.max_chars, json::IntBounds::at_least(0));
  v.choice(F("tokenizer", "characters, or words (split at spaces and punctuation)"), c.tokenizer,
           tokenizer_choices());
  v.when(c.tokenizer == TokenizerKind::Word, "applies to the word tokenizer only", [&] {
    v.integer(F("min_count", "words seen fewer times in train become <unk>"), c.min_count,
              json::IntBounds::at_least(1));
  });
}

template <typename V>
void fields(V& v, TextgenModel& c) {
  using config::F;
  using json::Bounds;
  config::lstm_stack_fields(v, c.embedding_dim, c.hidden_size, c.num_layers,
                            "each LSTM layer's width");
  v.number(F("dropout", "between the LSTM layers (training only)"), c.dropout,
           Bounds::closed_open(0, 1));
  v.number(F("output_dropout", "on the top layer's output, before the softmax (training only)"),
           c.output_dropout, Bounds::closed_open(0, 1));
}

template <typename V>
void fields(V& v, TextgenTrain& c) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  v.integer(F("epochs", "passes over the training text (the lr schedule spans them)"), c.epochs,
            IntBounds::closed(1, 100000));
  v.integer(F("batch_size", "contiguous streams the text is cut into"), c.batch_size,
            IntBounds::closed(1, 65536));
  v.integer(F("seq_len", "tokens per truncated-BPTT segment"), c.seq_len,
            IntBounds::closed(1, 100000));
  v.number(F("clip_norm", "the gradients' global-norm clip (0: none)"), c.clip_norm,
           Bounds::at_least(0));
  v.number(F("time_budget_s", "> 0: stop after the step that crosses this many seconds"),
           c.time_budget_s, Bounds::at_least(0));
  v.integer(F("log_every", "steps between progress lines"), c.log_every,
            IntBounds::closed(1, 1000000000));
  config::lstm_train_loop_fields(
      v, c, "a NaN or Inf in the loss or a gradient: stop, or skip the segment");
}

template <typename V>
void fields(V& v, TextgenConfig& c) {
  config::root_fields(
      v, "textgen", c,
      {"seeds the initial weights and dropout", "the text and how it is split and tokenised",
       "the language model", config::Presence::Required});
}

}  // namespace tessera::textgen
