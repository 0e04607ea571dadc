#include "embeddings/vocabulary.h"

#include <algorithm>

#include "host/core/error.h"

namespace tessera::emb {

Vocabulary Vocabulary::build(const std::vector<std::string>& values,
                             const VocabularyOptions& opts) {
  if (opts.min_count < 1)
    TESSERA_THROW(Config, "vocabulary min_count must be >= 1, got " << opts.min_count);
  if (opts.max_size < 0 || opts.max_size == 1)
    TESSERA_THROW(Config, "vocabulary max_size must be 0 (no limit) or >= 2 (OOV + one value), got "
                              << opts.max_size);
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string& v : values) ++counts[v];
  std::vector<std::pair<std::string, int64_t>> kept;
  int64_t oov = 0;
  for (auto& kv : counts) {
    if (kv.second >= opts.min_count)
      kept.emplace_back(kv.first, kv.second);
    else
      oov += kv.second;
  }
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (opts.max_size > 0 && static_cast<int64_t>(kept.size()) > opts.max_size - 1) {
    for (size_t i = static_cast<size_t>(opts.max_size - 1); i < kept.size(); ++i)
      oov += kept[i].second;
    kept.resize(static_cast<size_t>(opts.max_size - 1));
  }
  Vocabulary v;
  v.tokens_.push_back("<oov>");
  v.counts_.push_back(oov);
  for (auto& kv : kept) {
    v.index_.emplace(kv.first, static_cast<int64_t>(v.tokens_.size()));
    v.tokens_.push_back(kv.first);
    v.counts_.push_back(kv.second);
  }
  return v;
}

Vocabulary Vocabulary::build(const std::vector<int64_t>& values, const VocabularyOptions& opts) {
  std::vector<std::string> s;
  s.reserve(values.size());
  for (int64_t x : values) s.push_back(std::to_string(x));
  return build(s, opts);
}

int64_t Vocabulary::lookup(std::string_view value) const {
  auto it = index_.find(std::string(value));
  return it == index_.end() ? kOovRow : it->second;
}

const std::string& Vocabulary::token(int64_t row) const {
  TESSERA_CHECK(row >= 0 && row < size(),
                "vocabulary row " << row << " outside [0, " << size() << ")");
  return tokens_[static_cast<size_t>(row)];
}

int64_t Vocabulary::count(int64_t row) const {
  TESSERA_CHECK(row >= 0 && row < size(),
                "vocabulary row " << row << " outside [0, " << size() << ")");
  return counts_[static_cast<size_t>(row)];
}

std::vector<int64_t> Vocabulary::lookup_all(const std::vector<std::string>& values) const {
  std::vector<int64_t> rows;
  rows.reserve(values.size());
  for (const std::string& v : values) rows.push_back(lookup(v));
  return rows;
}

}  // namespace tessera::emb
