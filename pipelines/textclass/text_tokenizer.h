#pragma once
// Tokeniser and vocabulary of the text-classification pipeline.
//   tokenize   optional ASCII lowercasing and digit folding (every digit becomes '0', so phone
//              numbers and prices share statistics), then words are maximal runs of letters,
//              digits and bytes >= 0x80 (UTF-8 stays inside words); every other printable ASCII
//              byte (punctuation, apostrophe) is a token of its own; whitespace and control
//              bytes separate tokens.
//   Vocab      built from the TRAINING texts only: tokens seen at least min_count times, most
//              frequent first (ties in byte order, so the vocabulary is deterministic), at most
//              max_size entries; id 0 is <pad>, id 1 is <oov> (any token not in the vocabulary).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera::textclass {

struct TokenizerOptions {
  bool lowercase = true;
  bool fold_digits = false;
  int64_t max_tokens = 0;     // keep the first N tokens of a text; 0: all
  bool strip_markup = false;  // strip_markup() before tokenising
};

// The text without HTML/XML markup: each tag (from '<' to the next '>') becomes a space, then
// the entities &amp; &lt; &gt; &quot; &#39; become the characters they stand for (so "&lt;b&gt;"
// is text, not a tag). A '<' with no '>' after it is kept as text.
std::string strip_markup(const std::string& text);

std::vector<std::string> tokenize(const std::string& text, const TokenizerOptions& options);

class Vocab {
 public:
  static constexpr int32_t kPad = 0;
  static constexpr int32_t kOov = 1;
  static constexpr const char* kPadToken = "<pad>";
  static constexpr const char* kOovToken = "<oov>";

  // From tokenised training texts.
  static Vocab build(const std::vector<std::vector<std::string>>& texts, int64_t min_count,
                     int64_t max_size);
  // A saved token list (a model artefact's); entries 0 and 1 must be <pad> and <oov>.
  static Vocab from_tokens(std::vector<std::string> tokens);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  int32_t id_of(const std::string& token) const;  // kOov when absent
  // Ids of a tokenised text; an empty text becomes one <pad> (the LSTM needs a step; documented
  // in pipelines/textclass/README.md).
  std::vector<int32_t> encode(const std::vector<std::string>& tokens) const;

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace tessera::textclass
