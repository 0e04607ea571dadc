#include "pipelines/textclass/text_tokenizer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "host/core/error.h"

namespace tessera::textclass {

namespace {
bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}
}  // namespace

std::string strip_markup(const std::string& text) {
  std::string plain;
  plain.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const size_t close = text[i] == '<' ? text.find('>', i + 1) : std::string::npos;
    if (close == std::string::npos) {
      plain.push_back(text[i]);
      continue;
    }
    plain.push_back(' ');
    i = close;
  }
  static const std::pair<const char*, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''}};
  std::string out;
  out.reserve(plain.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    bool replaced = false;
    if (plain[i] == '&') {
      for (const auto& [name, ch] : kEntities) {
        if (plain.compare(i, std::char_traits<char>::length(name), name) == 0) {
          out.push_back(ch);
          i += std::char_traits<char>::length(name) - 1;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(plain[i]);
  }
  return out;
}

std::vector<std::string> tokenize(const std::string& raw, const TokenizerOptions& o) {
  const std::string stripped = o.strip_markup ? strip_markup(raw) : std::string();
  const std::string& text = o.strip_markup ? stripped : raw;
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  };
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (o.lowercase && c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (o.fold_digits && c >= '0' && c <= '9') c = '0';
    if (is_word_byte(c)) {
      word.push_back(static_cast<char>(c));
    } else {
      flush();
      if (c > ' ' && c < 0x7f) out.emplace_back(1, static_cast<char>(c));  // punctuation
    }
    if (o.max_tokens > 0 && static_cast<int64_t>(out.size()) >= o.max_tokens) break;
  }
  flush();
  if (o.max_tokens > 0 && static_cast<int64_t>(out.size()) > o.max_tokens)
    out.resize(static_cast<size_t>(o.max_tokens));
  return out;
}

Vocab Vocab::build(const std::vector<std::vector<std::string>>& texts, int64_t min_count,
                   int64_t max_size) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (const auto& tok : t) ++counts[tok];
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [tok, n] : counts)
    if (n >= min_count && tok != kPadToken && tok != kOovToken) kept.emplace_back(tok, n);
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (max_size > 0 && static_cast<int64_t>(kept.size()) > max_size - 2)
    kept.resize(static_cast<size_t>(std::max<int64_t>(0, max_size - 2)));
  std::vector<std::string> tokens = {kPadToken, kOovToken};
  for (auto& [tok, n] : kept) tokens.push_back(tok);
  return from_tokens(std::move(tokens));
}

Vocab Vocab::from_tokens(std::vector<std::string> tokens) {
  if (tokens.size() < 2 || tokens[0] != kPadToken || tokens[1] != kOovToken)
    TESSERA_THROW(Data, "a text-classification vocabulary starts with \"" << kPadToken << "\", \""
                                                                          << kOovToken << "\"");
  Vocab v;
  v.tokens_ = std::move(tokens);
  for (size_t i = 0; i < v.tokens_.size(); ++i) {
    if (!v.ids_.emplace(v.tokens_[i], static_cast<int32_t>(i)).second)
      TESSERA_THROW(Data, "vocabulary token '" << v.tokens_[i] << "' appears twice");
  }
  return v;
}

int32_t Vocab::id_of(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() || it->second == kPad ? kOov : it->second;
}

std::vector<int32_t> Vocab::encode(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(std::max<size_t>(1, tokens.size()));
  for (const auto& t : tokens) ids.push_back(id_of(t));
  if (ids.empty()) ids.push_back(kPad);
  return ids;
}

}  // namespace tessera::textclass
