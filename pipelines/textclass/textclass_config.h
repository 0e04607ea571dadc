#pragma once
// The text-classification config (pipelines/textclass/sst2.json, sms-spam.json), read with the
// project's validating JSON reader: every error names file:line:col, the JSON path, what was
// expected and the valid choices; unknown keys are errors. See README.md in this folder.
//
// Each section's fields are declared once, in the fields() functions below (host/config/
// declare.h): the reader, to_json, equality, `tessera config textclass --example` and --schema
// all come from them.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/declare.h"
#include "host/config/entry_points.h"
#include "host/config/json_reader.h"
#include "host/config/on_nonfinite.h"
#include "host/config/sections.h"
#include "pipelines/textclass/classifier.h"
#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/text_tokenizer.h"

namespace tessera::textclass {

const json::Choices<Pooling>& pooling_choices();  // "mean", "max", "last"

// The files (DataFiles: dataset, train, validation or validation_fraction, test; the paths are
// files of the registered dataset when `dataset` is set), how to read their rows and how to
// tokenise the text. A validation file or validation_fraction > 0 is required (early stopping).
struct DataConfig : DataFiles {
  DataConfig() { validation_fraction = 0; }
  double test_fraction = 0;                // no test file: this share of train is the test set
  int64_t skip_lines = kAutoHeaderConfig;  // header lines of every file; -1: auto (README)
  int64_t max_rows = 0;                    // read at most N rows per file (0: all)
  TextLayout layout;                       // delimiter, header, columns, on_error
  std::vector<std::string> classes;        // empty: the sorted distinct training labels
  TokenizerOptions tokenizer;              // lowercase, fold_digits, max_tokens, strip_markup
  int64_t min_count = 1;
  int64_t max_vocab = 0;  // 0: no limit
  static constexpr int64_t kAutoHeaderConfig = -1;
};

// Besides TrainLoop's keys (runs_dir, optimizer, lr_schedule, on_nonfinite):
struct TrainConfig : TrainLoop {
  int64_t epochs = 10;
  int64_t batch_size = 64;
  int64_t patience = 3;  // epochs without a better validation score before stopping; 0: never
  double clip_norm = 5.0;
  double time_budget_s = 0;
  int64_t log_every = 200;
};

// RunSettings: name (default "textclass"), seed (default 1), device.
struct TextclassConfig : RunSettings {
  TextclassConfig() : RunSettings("textclass", 1) {}
  DataConfig data;
  ClassifierShape model;  // vocab and classes come from the data
  TrainConfig train;
};

// to_json: the resolved config (every default written out; the data layout keys only when set),
// pretty JSON.
TESSERA_DECLARE_CONFIG_IO(TextclassConfig, parse_textclass_config, read_textclass_config);

// `tessera config textclass --example`: every field with its default and documentation (it
// reads back as the defaults with data.train "train.tsv" and validation_fraction 0.1);
// `--schema`: the config's JSON Schema.
std::string textclass_config_example();
std::string textclass_config_schema();

// The file's path of an optional file ("" when absent).
inline std::string path_or_empty(const std::optional<FileSpec>& f) {
  return f ? f->path : std::string();
}

// ---- declarations (host/config/declare.h) ----------------------------------------------------

namespace textclass_detail {
// A column: a 0-based index or a header name.
const config::Codec<ColumnRef>& column_codec();
const config::Codec<bool>& bool_codec();
// A number read into a float, written back as the short decimal it came from.
config::Codec<float> float_codec(json::Bounds bounds);
bool is_named(const std::optional<ColumnRef>& c);
// Whether the label and the text columns are one column (by index, or by name).
bool same_column(const TextLayout& c);
}  // namespace textclass_detail

// The rows' layout, in the data section (and in a model file, so evaluate reads as training
// did). Each key is written only when set: configs from before the keys resolve as they did.
template <typename V>
void layout_fields(V& v, TextLayout& c) {
  using config::F;
  using namespace textclass_detail;
  v.custom(F("delimiter", "the field separator: one character, \"\\t\" for a tab")
               .written_if(c.delimiter != '\t'),
           c.delimiter, config::delimiter_codec('\t', config::Quote::Allowed));
  v.custom(F("header",
             "true: the first line after skip_lines names the columns; false: there is none; "
             "absent: line 1 is a header when its label field is \"label\" (skip_lines -1)"),
           c.header, bool_codec());
  v.custom(F("label_column", "the label's column: a 0-based index, or a header name (default 0)"),
           c.label_column, column_codec());
  v.custom(F("text_column",
             "the text's column: a 0-based index, or a header name (default 1). With neither "
             "column given the text is the rest of the row after the label (further delimiters "
             "included); with either, only the named fields are read"),
           c.text_column, column_codec());
  v.check(!(is_named(c.label_column) || is_named(c.text_column)) || c.header.value_or(false),
          is_named(c.label_column) ? "label_column" : "text_column",
          "a column named by the header needs \"header\": true");
  v.check(!same_column(c), "text_column", "the label and the text are the same column");
  v.choice(F("on_error",
             "a bad row (too few fields, an empty label): stop with an error naming file:line, "
             "or skip it (the count is reported)")
               .written_if(c.on_error != BadRowPolicy::Error),
           c.on_error, bad_row_policy_choices());
}

template <typename V>
void fields(V& v, DataConfig& c) {
  using config::F;
  using json::IntBounds;
  data_source_fields(v, c);
  data_validation_fields(v, c);
  v.check(c.validation_fraction < 0.5, "validation_fraction", "expected a number in [0, 0.5)");
  v.check(c.validation || c.validation_fraction > 0, "",
          "needs \"validation\" (a file) or \"validation_fraction\" > 0 (early stopping)");
  data_test_field(v, c);
  v.number(F("test_fraction",
             "no test file: this share of train (stratified, seeded) is the test "
             "set; 0: none")
               .written_if(!c.test),
           c.test_fraction, json::Bounds::closed_open(0, 0.5));
  v.validate([&](json::ObjectReader& r) {
    if (r.has("test") && r.has("test_fraction"))
      r.error("test_fraction", "give either a test file or test_fraction");
  });
  v.integer(F("skip_lines",
              "leading lines skipped in every file (a file's own skip_lines adds to it); -1: "
              "auto (line 1 when its label field is \"label\")"),
            c.skip_lines, IntBounds::closed(-1, 1000000));
  v.integer(F("max_rows", "read at most this many rows per file; 0: all"), c.max_rows,
            IntBounds::at_least(0));
  layout_fields(v, c.layout);
  v.string_list(F("classes", "the class names in order; empty: the sorted distinct training labels")
                    .written_if(!c.classes.empty()),
                c.classes, json::Text::NonEmpty, IntBounds::closed(2, 100000));
  v.validate([&](json::ObjectReader& r) {
    for (size_t i = 0; i < c.classes.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (c.classes[i] == c.classes[j])
          r.error("classes", "class '" + c.classes[i] + "' is listed twice");
  });
  v.boolean(F("lowercase", "lowercase ASCII letters before tokenising"), c.tokenizer.lowercase);
  v.boolean(F("fold_digits", "every digit becomes 0"), c.tokenizer.fold_digits);
  v.boolean(F("strip_markup",
              "remove HTML/XML tags and decode &amp; &lt; &gt; &quot; &#39; before tokenising "
              "(also when the model evaluates and predicts)")
                .written_if(c.tokenizer.strip_markup),
            c.tokenizer.strip_markup);
  v.integer(F("max_tokens", "keep a text's first N tokens; 0: all"), c.tokenizer.max_tokens,
            IntBounds::closed(0, 100000));
  v.integer(F("min_count", "tokens seen fewer times on train are out of vocabulary"), c.min_count,
            IntBounds::at_least(1));
  v.integer(F("max_vocab", "the most frequent N tokens (with <pad> and <oov>); 0: no limit"),
            c.max_vocab, IntBounds::closed(0, 100000000));
  v.check(c.max_vocab == 0 || c.max_vocab >= 3, "max_vocab", "expected 0 (no limit) or >= 3");
}

template <typename V>
void fields(V& v, ClassifierShape& s) {
  using config::F;
  using json::Bounds;
  using textclass_detail::float_codec;
  config::lstm_stack_fields(v, s.embedding_dim, s.hidden_size, s.num_layers,
                            "the LSTM's hidden width (per direction)");
  v.boolean(F("bidirectional", "a second LSTM reads each text backwards"), s.bidirectional);
  v.choice(F("pooling", "how the LSTM's outputs become one vector"), s.pooling, pooling_choices());
  v.custom(F("embedding_dropout", "dropout on the embedded tokens, training only"),
           s.embedding_dropout, float_codec(Bounds::closed_open(0, 1)));
  v.when(s.num_layers > 1, "applies between LSTM layers: needs num_layers >= 2", [&] {
    v.custom(F("lstm_dropout", "dropout between LSTM layers, training only"), s.lstm_dropout,
             float_codec(Bounds::closed_open(0, 1)));
  });
  v.custom(F("dropout", "dropout on the pooled vector, training only"), s.dropout,
           float_codec(Bounds::closed_open(0, 1)));
}

template <typename V>
void fields(V& v, TrainConfig& t) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  v.integer(F("epochs", "passes over the training rows"), t.epochs, IntBounds::closed(1, 100000));
  v.integer(F("batch_size", "rows per step (one length per batch)"), t.batch_size,
            IntBounds::closed(1, 65536));
  v.integer(F("patience", "epochs without a better validation score before stopping; 0: never"),
            t.patience, IntBounds::closed(0, 100000));
  v.number(F("clip_norm", "global gradient norm clipping; 0: off"), t.clip_norm,
           Bounds::at_least(0));
  v.number(F("time_budget_s", "stop after the epoch that passes this many seconds; 0: none"),
           t.time_budget_s, Bounds::at_least(0));
  v.integer(F("log_every", "steps between loss lines"), t.log_every,
            IntBounds::closed(1, 1000000000));
  config::lstm_train_loop_fields(v, t);
}

template <typename V>
void fields(V& v, TextclassConfig& c) {
  config::root_fields(v, "textclass", c,
                      {"seeds the split, the initial weights, dropout and the batch order",
                       "where the labelled texts are and how to read them",
                       "the (bi)LSTM classifier", config::Presence::Required});
}

}  // namespace tessera::textclass
