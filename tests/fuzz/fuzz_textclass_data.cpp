// Fuzz target: the text-classification TSV reader (pipelines/textclass/text_data.h) and what the
// pipeline does next with a file's text: `label<TAB>text` rows (header skipping, CR, empty
// lines), the stratified split, the tokenizer (pipelines/textclass/text_tokenizer.h), the
// training vocabulary, and the length-bucketed batches and their id tensors.
//
// Input: 2 option bytes, then the file's bytes.
//   byte 1 bits 0-1  skip_lines: auto header (-1), 0, 1, 2
//          bit 2     lowercase; bit 3 fold digits; bit 4 keep at most 5 tokens per text
//          bit 5     min_count 2; bit 6 a vocabulary of at most 4 tokens; bit 7 strip_markup
//   byte 2 (the layout) bits 0-1 delimiter: tab, ',', ';', '|'; bits 2-3 header: auto, true,
//          false, auto; bit 4 columns given (label 0-1 from bit 5, text 2, or by the header
//          names "label" / "text" when bit 6 and the header is true); bit 7 on_error "skip"
// Invariants checked: token ids inside the vocabulary, every example in exactly one batch, a
// batch's rows all of its length, the split keeps every row.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "pipelines/textclass/text_data.h"
#include "pipelines/textclass/text_tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;
using namespace tessera::textclass;

TextLayout layout_of(uint8_t b) {
  static const char kDelimiters[] = {'\t', ',', ';', '|'};
  TextLayout l;
  l.delimiter = kDelimiters[b & 3];
  const int header = (b >> 2) & 3;
  if (header == 1) l.header = true;
  if (header == 2) l.header = false;
  if ((b & 16) != 0) {
    const bool by_name = (b & 64) != 0 && header == 1;
    l.label_column = by_name ? ColumnRef{0, "label"} : ColumnRef{(b & 32) != 0 ? 1 : 0, ""};
    l.text_column = by_name ? ColumnRef{0, "text"} : ColumnRef{2, ""};
  }
  if ((b & 128) != 0) l.on_error = BadRowPolicy::Skip;
  return l;
}

void run(const std::string& path, uint8_t flags, uint8_t layout_byte) {
  static const int64_t kSkip[] = {kAutoHeader, 0, 1, 2};
  TokenizerOptions tok;
  tok.lowercase = (flags & 4) != 0;
  tok.fold_digits = (flags & 8) != 0;
  tok.max_tokens = (flags & 16) != 0 ? 5 : 0;
  tok.strip_markup = (flags & 128) != 0;
  const int64_t min_count = (flags & 32) != 0 ? 2 : 1;
  const int64_t max_vocab = (flags & 64) != 0 ? 4 : 0;

  const TextLayout layout = layout_of(layout_byte);
  ReadStats stats;
  std::vector<LabelledText> rows = read_labelled_file(path, layout, kSkip[flags & 3], 0, &stats);
  const size_t n_rows = rows.size();
  fuzz::check(layout.on_error == BadRowPolicy::Skip || stats.bad_rows.skipped == 0,
              "rows skipped under on_error \"error\"");
  for (const LabelledText& r : rows) {
    fuzz::check(!layout.text_column || r.text.find(layout.delimiter) == std::string::npos,
                "a named text column holding a delimiter");
    if (tok.strip_markup) {
      const std::string plain = strip_markup(r.text);
      fuzz::check(plain.size() <= r.text.size(), "strip_markup made a text longer");
    }
  }
  Split split = stratified_split(std::move(rows), 0.2, 0.1, 5);
  fuzz::check(split.train.size() + split.validation.size() + split.test.size() == n_rows,
              "the split keeps every row");
  std::set<std::string> labels;
  std::vector<std::vector<std::string>> tokens;
  for (const LabelledText& r : split.train) {
    fuzz::check(!r.label.empty() && r.line >= 1, "a row without label or line");
    labels.insert(r.label);
    tokens.push_back(tokenize(r.text, tok));
    fuzz::check(tok.max_tokens == 0 || static_cast<int64_t>(tokens.back().size()) <= 5,
                "max_tokens not applied");
  }
  const Vocab vocab = Vocab::build(tokens, min_count, max_vocab);
  fuzz::check(
      vocab.size() >= 2 && (max_vocab == 0 || vocab.size() <= std::max<int64_t>(max_vocab, 2)),
      "vocabulary size: <pad>, <oov> and at most max_vocab entries in all");
  std::map<std::string, int32_t> class_ids;
  for (const std::string& l : labels) class_ids.emplace(l, static_cast<int32_t>(class_ids.size()));
  std::vector<Example> examples;
  for (const std::vector<LabelledText>* part : {&split.train, &split.validation, &split.test}) {
    for (const LabelledText& r : *part) {
      auto it = class_ids.find(r.label);
      examples.push_back(
          {vocab.encode(tokenize(r.text, tok)), it == class_ids.end() ? -1 : it->second});
      fuzz::check(!examples.back().ids.empty(), "an example without tokens");
      for (int32_t id : examples.back().ids) {
        fuzz::check(id >= 0 && id < vocab.size(), "a token id outside the vocabulary");
      }
    }
  }
  size_t batched = 0;
  for (const Batch& b : make_batches(examples, 3, 9)) {
    batched += b.rows.size();
    const Tensor ids = batch_ids(examples, b);
    fuzz::check(ids.numel() == b.t * static_cast<int64_t>(b.rows.size()), "batch ids size");
    batch_labels(examples, b);
  }
  fuzz::check(batched == examples.size(), "every example in one batch");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile tmp("textclass_data");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const uint8_t layout = in.byte();
  const std::string& path = tmp.write(in.rest());
  fuzz::expect_input_errors([&] { run(path, flags, layout); });
  return 0;
}
