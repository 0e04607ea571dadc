#pragma once
// TokenIndex: a string -> dense id map for categorical vocabularies, looked up by string_view
// without allocating (std::unordered_map<std::string> cannot do that in C++17). Tokens live in one
// byte arena; an open-addressing table (linear probing, power-of-two capacity, load <= 1/2) holds
// ids. Ids are assigned 0, 1, 2, ... in insertion order and never change.
// Tables of millions of tokens do not fit in cache, so each slot also carries a hash tag, the
// token's length and its first 8 bytes: a lookup of a token of <= 8 bytes (Criteo's hex ids) is
// decided by the slot alone, one cache miss instead of three.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

class TokenIndex {
 public:
  TokenIndex() = default;

  int64_t size() const { return static_cast<int64_t>(hashes_.size()); }
  std::string_view token(int64_t id) const {
    return std::string_view(arena_.data() + starts_[id], starts_[id + 1] - starts_[id]);
  }
  // The id of `token`, or -1.
  int64_t find(std::string_view token) const;
  // The id of `token`, adding it first when absent.
  int64_t insert(std::string_view token);
  void clear();
  void reserve(int64_t n_tokens);

 private:
  struct Slot {
    uint64_t prefix = 0;  // the token's first min(8, size) bytes, zero padded
    uint32_t id1 = 0;     // id + 1; 0 = empty
    uint32_t tag = 0;     // hash bits 40..63 << 8 | min(size, 255)
  };
  static Slot make_slot(int64_t id, std::string_view token, uint64_t hash);
  bool matches(const Slot& slot, std::string_view token, uint64_t hash) const;
  void grow();
  std::string arena_;
  std::vector<uint64_t> starts_ = {0};  // [size + 1] byte offsets into arena_
  std::vector<uint64_t> hashes_;        // [size] hash_token of each token (for rehashing)
  std::vector<Slot> slots_;             // [capacity]
};

}  // namespace tessera
