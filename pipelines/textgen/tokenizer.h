#pragma once
// Tokenisers of the text-generation pipeline: characters (bytes) or words.
//   Char  one token per byte; the vocabulary is every byte of the training text. A byte outside
//         it is an error naming where (a character model has no unknown token).
//   Word  maximal runs of word bytes (letters, digits, apostrophe, and bytes >= 0x80 so UTF-8
//         sequences stay inside words) are tokens, and every other byte (space, newline,
//         punctuation) is a token of its own, so concatenating the tokens gives the text back.
//         Tokens seen fewer than min_count times in the training text become "<unk>" (id 0).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessera::textgen {

enum class TokenizerKind : uint8_t { Char = 0, Word = 1 };

// The text split into word-level pieces (see above); their concatenation is `text`.
std::vector<std::string> split_words(const std::string& text);

class Tokenizer {
 public:
  static constexpr const char* kUnknown = "<unk>";

  // The vocabulary of `text` (the training text).
  static Tokenizer build(TokenizerKind kind, const std::string& text, int64_t min_count = 1);
  // A saved vocabulary (a model artefact's).
  static Tokenizer from_tokens(TokenizerKind kind, std::vector<std::string> tokens);

  TokenizerKind kind() const { return kind_; }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::string& token(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  int32_t id_of(const std::string& token) const;  // -1 when absent

  // Ids of `text`; `what` names the source in errors (a file path, "--prompt").
  std::vector<int32_t> encode(const std::string& text, const std::string& what) const;

 private:
  TokenizerKind kind_ = TokenizerKind::Char;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace tessera::textgen
