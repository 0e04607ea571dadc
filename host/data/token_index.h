#pragma once
// TokenIndex: a string -> dense id map for categorical vocabularies, looked up by string_view
// without allocating (std::unordered_map<std::string> cannot do that in C++17). Tokens live in one
// byte arena; an open-addressing table (linear probing, power-of-two capacity, load <= 1/2) holds
// ids. Ids are assigned 0, 1, 2, ... in insertion order and never change.
// Tables of millions of tokens do not fit in cache, so each slot also carries a hash tag, the
// token's length and its first 8 bytes: a lookup of a token of <= 8 bytes (Criteo's hex ids) is
// decided by the slot alone, one cache miss instead of three.
// TokenCounter: the same table whose slots also hold a count (fitting counts every train token:
// the count in the slot saves the second miss a separate counts array costs). Counters of several
// threads merge exactly (counts add), so a vocabulary decided from the merged counts does not
// depend on how the rows were split.
//
// Slots are placed by table_hash(), a hash private to these tables (it may change between
// versions: nothing stored depends on it), not by hash_token() (part of saved models). Callers
// that look up many tokens may hash them first and prefetch() their slots, so that the cache
// misses of a row's columns overlap instead of following one another.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

// The slot hash: one multiply-xorshift round per 8 bytes (tokens are mostly <= 8 bytes).
uint64_t table_hash(std::string_view token);

namespace detail {

struct IndexSlot {
  uint64_t prefix = 0;  // the token's first min(8, size) bytes, zero padded
  uint32_t id1 = 0;     // id + 1; 0 = empty
  uint32_t tag = 0;     // hash bits 40..63 << 8 | min(size, 255)
};
struct CountSlot : IndexSlot {
  uint64_t count = 0;
};

// The table both share; Slot is IndexSlot or CountSlot.
template <typename Slot>
class TokenTable {
 public:
  int64_t size() const { return static_cast<int64_t>(hashes_.size()); }
  std::string_view token(int64_t id) const {
    return std::string_view(arena_.data() + starts_[id], starts_[id + 1] - starts_[id]);
  }
  uint64_t hash_of(int64_t id) const { return hashes_[id]; }
  // A hint that `hash` (table_hash of a token) will be looked up soon.
  void prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & (slots_.size() - 1)]);
  }
  void clear();  // releases the memory too
  void reserve(int64_t n_tokens);
  // The heap bytes held now (capacities, not sizes).
  int64_t bytes() const;
  // An upper bound on the heap bytes held at any moment while at most `more_tokens` tokens are
  // added (reallocations included: old and new buffers at once), the arena's bytes aside: those
  // depend on the tokens' lengths (arena_capacity(), and see CategoryCounts::bytes_bound).
  int64_t bytes_bound(int64_t more_tokens) const;
  int64_t arena_capacity() const { return static_cast<int64_t>(arena_.capacity()); }

 protected:
  // The slot holding `token`, or the empty slot where it would go (id1 == 0).
  const Slot& probe(std::string_view token, uint64_t hash) const;
  // The slot of `token`, added (with id size()) when absent.
  Slot& probe_insert(std::string_view token, uint64_t hash);
  void grow();

  std::string arena_;
  std::vector<uint64_t> starts_ = {0};  // [size + 1] byte offsets into arena_
  std::vector<uint64_t> hashes_;        // [size] table_hash of each token (for rehashing)
  std::vector<Slot> slots_;             // [capacity]
};

}  // namespace detail

class TokenIndex : public detail::TokenTable<detail::IndexSlot> {
 public:
  // The id of `token`, or -1. `hash` (optional) is table_hash(token).
  int64_t find(std::string_view token) const { return find(token, table_hash(token)); }
  int64_t find(std::string_view token, uint64_t hash) const {
    if (slots_.empty()) return -1;
    return static_cast<int64_t>(probe(token, hash).id1) - 1;
  }
  // The id of `token`, adding it first when absent.
  int64_t insert(std::string_view token) {
    return static_cast<int64_t>(probe_insert(token, table_hash(token)).id1) - 1;
  }
};

class TokenCounter : public detail::TokenTable<detail::CountSlot> {
 public:
  // Adds `n` to the count of `token` (`hash` = table_hash(token)).
  void add(std::string_view token, uint64_t hash, uint64_t n = 1) {
    probe_insert(token, hash).count += n;
  }
  // Adds every count of `other` (in other's id order, so the merged ids are deterministic).
  void merge(const TokenCounter& other);
  // counts()[id]: the count of token id.
  std::vector<int64_t> counts() const;
};

}  // namespace tessera
