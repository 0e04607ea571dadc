#pragma once
// Labelled text files and length-bucketed batches for the text-classification pipeline.
//   File layout: one example per line, `label<TAB>text` (the text may hold further tabs; a
//   trailing CR is dropped). Empty lines are skipped and counted; a line without a tab, or with
//   an empty label, is an Error of kind Data naming file:line.
//   Header: `skip_lines` leading lines are skipped; kAutoHeader skips line 1 when its label
//   field is "label" (any case), which is how GLUE-style exports start.
//   Bucketing: a batch holds sentences of ONE length, so the LSTM runs on [T, B] with no
//   padding at all: no compute is spent on padding and no result depends on it.
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/tensor.h"

namespace tessera::textclass {

struct LabelledText {
  std::string label;
  std::string text;
  int64_t line = 0;  // 1-based line in its file
};

constexpr int64_t kAutoHeader = -1;

struct ReadStats {
  int64_t empty_lines = 0;
  bool header_skipped = false;
};

// Reads up to max_rows examples (0: all).
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
