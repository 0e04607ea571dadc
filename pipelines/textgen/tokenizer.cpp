#include "pipelines/textgen/tokenizer.h"

#include <algorithm>
#include <map>

#include "host/core/error.h"

namespace tessera::textgen {

namespace {
bool is_word_byte(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '\'' || ch >= 0x80;
}
}  // namespace

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && is_word_byte(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i) j = i + 1;  // a non-word byte is a token of its own
    out.emplace_back(text, i, j - i);
    i = j;
  }
  return out;
}

Tokenizer Tokenizer::from_tokens(TokenizerKind kind, std::vector<std::string> tokens) {
  Tokenizer t;
  t.kind_ = kind;
  t.tokens_ = std::move(tokens);
  for (size_t i = 0; i < t.tokens_.size(); ++i) {
    if (kind == TokenizerKind::Char && t.tokens_[i].size() != 1)
      TESSERA_THROW(
          Data, "character vocabulary entry " << i << " has " << t.tokens_[i].size() << " bytes");
    if (!t.ids_.emplace(t.tokens_[i], static_cast<int32_t>(i)).second)
      TESSERA_THROW(Data, "vocabulary entry " << i << " repeats token '" << t.tokens_[i] << "'");
  }
  if (kind == TokenizerKind::Word && (t.tokens_.empty() || t.tokens_[0] != kUnknown))
    TESSERA_THROW(Data, "a word vocabulary starts with " << kUnknown);
  return t;
}

Tokenizer Tokenizer::build(TokenizerKind kind, const std::string& text, int64_t min_count) {
  std::vector<std::string> tokens;
  if (kind == TokenizerKind::Char) {
    bool seen[256] = {};
    for (unsigned char ch : text) seen[ch] = true;
    for (int ch = 0; ch < 256; ++ch)
      if (seen[ch]) tokens.emplace_back(1, static_cast<char>(ch));
  } else {
    std::map<std::string, int64_t> counts;  // sorted: a deterministic vocabulary order
    for (std::string& w : split_words(text)) ++counts[std::move(w)];
    tokens.emplace_back(kUnknown);
    for (const auto& [w, n] : counts)
      if (n >= min_count && w != kUnknown) tokens.push_back(w);
  }
  return from_tokens(kind, std::move(tokens));
}

int32_t Tokenizer::id_of(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, const std::string& what) const {
  std::vector<int32_t> ids;
  if (kind_ == TokenizerKind::Word) {
    for (const std::string& w : split_words(text)) {
      const int32_t id = id_of(w);
      ids.push_back(id < 0 ? 0 : id);
    }
    return ids;
  }
  ids.reserve(text.size());
  int64_t line = 1, col = 1;
  for (char ch : text) {
    const int32_t id = id_of(std::string(1, ch));
    if (id < 0)
      TESSERA_THROW(Data, what << ":" << line << ":" << col << ": character 0x" << std::hex
                               << static_cast<int>(static_cast<unsigned char>(ch)) << std::dec
                               << " is not in the model's vocabulary of " << tokens_.size()
                               << " characters");
    ids.push_back(id);
    if (ch == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return ids;
}

}  // namespace tessera::textgen
