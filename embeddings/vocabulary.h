#pragma once
// Id vocabularies built from data, and hashing of raw ids into a fixed-size table.
//   - Vocabulary::build counts values and gives every value seen at least min_count times its own
//     row (most frequent first, ties by value, so the result does not depend on input order);
//     row 0 is the out-of-vocabulary row, shared by rare and unseen values.
//   - hash_row is the mapping of IdMapping::Hash (the same on every backend).
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "embeddings/bag_math.h"

namespace tessera::emb {

inline int64_t hash_row(int64_t raw_id, int64_t rows) {
  bool bad = false;
  return resolve_row(raw_id, rows, static_cast<int64_t>(IdMapping::Hash), &bad);
}

struct VocabularyOptions {
  int64_t min_count = 1;  // values seen fewer times map to the OOV row
  int64_t max_size = 0;   // rows including OOV; 0 = no limit (the most frequent are kept)
};

class Vocabulary {
 public:
  static constexpr int64_t kOovRow = 0;

  static Vocabulary build(const std::vector<std::string>& values, const VocabularyOptions& opts);
  static Vocabulary build(const std::vector<int64_t>& values, const VocabularyOptions& opts);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }  // rows, OOV included
  int64_t lookup(std::string_view value) const;                          // kOovRow when absent
  int64_t lookup(int64_t value) const { return lookup(std::to_string(value)); }
  const std::string& token(int64_t row) const;  // "<oov>" for row 0
  int64_t count(int64_t row) const;             // occurrences in the data (OOV: rare + dropped)
  // Rows of many values at once (for building bags).
  std::vector<int64_t> lookup_all(const std::vector<std::string>& values) const;

 private:
  std::vector<std::string> tokens_;
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int64_t> index_;
};

}  // namespace tessera::emb
