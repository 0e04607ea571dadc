#pragma once
// Labelled text files and length-bucketed batches for the text-classification pipeline.
//   File layout (TextLayout): rows of fields split at `delimiter` (default tab; no quoting), a
//   trailing CR dropped. With the default layout (neither column given) a row is
//   `label<TAB>text` and the text is everything after the first tab, further tabs included
//   (how GLUE-style files have always been read). With label_column / text_column given (a
//   0-based index, or a header name when `header` is true) the two named fields are taken and
//   any others ignored. Empty lines are skipped and counted. A row without the fields it needs,
//   or with an empty label, is a bad row "file:line: field N (label_column) ..." : an Error of
//   kind Data, or counted and skipped under on_error "skip".
//   Header: `skip_lines` leading lines are skipped; then `header` true takes the next line as
//   the column names, false reads it as data, and absent (auto) skips line 1 when its label
//   field is "label" (any case) and skip_lines is kAutoHeader, which is how GLUE-style exports
//   start.
//   Bucketing: a batch holds sentences of ONE length, so the LSTM runs on [T, B] with no
//   padding at all: no compute is spent on padding and no result depends on it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host/core/tensor.h"
#include "host/data/row_parser.h"
#include "host/data/schema.h"

namespace tessera::textclass {

struct LabelledText {
  std::string label;
  std::string text;
  int64_t line = 0;  // 1-based line in its file
};

constexpr int64_t kAutoHeader = -1;

// A column of a row: its 0-based index, or (name non-empty) the header field of that name.
struct ColumnRef {
  int64_t index = 0;
  std::string name;
  bool operator==(const ColumnRef& o) const { return index == o.index && name == o.name; }
};

// Where the label and the text are in a file's rows (the data options of a textclass config;
// a model keeps them, so evaluate reads files as training did).
struct TextLayout {
  char delimiter = '\t';
  std::optional<bool> header;             // absent: auto (see above)
  std::optional<ColumnRef> label_column;  // absent: 0
  std::optional<ColumnRef> text_column;   // absent: 1
  BadRowPolicy on_error = BadRowPolicy::Error;
  // Neither column given: the text is the rest of the row after the label's field.
  bool rest_is_text() const { return !label_column && !text_column; }
  bool operator==(const TextLayout& o) const {
    return delimiter == o.delimiter && header == o.header && label_column == o.label_column &&
           text_column == o.text_column && on_error == o.on_error;
  }
};

struct ReadStats {
  int64_t empty_lines = 0;
  bool header_skipped = false;
  BadRowReport bad_rows;  // under on_error "skip"
};

// Reads up to max_rows examples (0: all) of `path` laid out as `layout`.
std::vector<LabelledText> read_labelled_file(const std::string& path, const TextLayout& layout,
                                             int64_t skip_lines, int64_t max_rows,
                                             ReadStats* stats = nullptr);
// The default layout: `label<TAB>text`, auto header, bad rows are errors.
std::vector<LabelledText> read_labelled_file(const std::string& path, int64_t skip_lines,
                                             int64_t max_rows, ReadStats* stats = nullptr);

// Seeded stratified split: within each label (in sorted label order), rows are shuffled with
// the seed and the first round(n * test_fraction) go to test, the next round(n *
// validation_fraction) to validation, the rest to train (each keeps the file order).
struct Split {
  std::vector<LabelledText> train, validation, test;
};
Split stratified_split(std::vector<LabelledText> rows, double validation_fraction,
                       double test_fraction, uint64_t seed);

struct Example {
  std::vector<int32_t> ids;  // never empty (text_tokenizer.h)
  int32_t label = 0;         // class index; -1 when unlabelled
};

struct Batch {
  int64_t t = 0;              // steps (every row's length)
  std::vector<int64_t> rows;  // indices into the examples
};

// Groups examples by length and cuts each group into batches of at most batch_size rows. With
// shuffle_seed != 0, rows within a length and the order of the batches are shuffled (a new
// order per seed); with 0, batches follow increasing length and input order.
std::vector<Batch> make_batches(const std::vector<Example>& examples, int64_t batch_size,
                                uint64_t shuffle_seed);

// The batch's token ids, time-major i64 [T * B] (element t * B + j is row j's token t), and its
// labels i32 [B]; host tensors.
Tensor batch_ids(const std::vector<Example>& examples, const Batch& batch);
Tensor batch_labels(const std::vector<Example>& examples, const Batch& batch);

}  // namespace tessera::textclass
