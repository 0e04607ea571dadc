#include "host/data/token_index.h"

#include <cstring>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

namespace {

uint64_t prefix_of(std::string_view token) {
  uint64_t p = 0;
  std::memcpy(&p, token.data(), token.size() < 8 ? token.size() : 8);
  return p;
}

uint32_t tag_of(std::string_view token, uint64_t hash) {
  const uint32_t len = token.size() < 255 ? static_cast<uint32_t>(token.size()) : 255u;
  return static_cast<uint32_t>(hash >> 40) << 8 | len;
}

}  // namespace

uint64_t table_hash(std::string_view token) {
  // The length enters first, so "ab" and "ab\0" (equal zero-padded words) differ.
  uint64_t h = 0x9E3779B97F4A7C15ull * (token.size() + 1);
  size_t i = 0;
  for (; i + 8 <= token.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, token.data() + i, 8);
    h = math::mix64(h ^ w);
  }
  if (i < token.size() || token.empty()) h = math::mix64(h ^ prefix_of(token.substr(i)));
  return h;
}

namespace detail {

template <typename Slot>
const Slot& TokenTable<Slot>::probe(std::string_view token, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  const uint64_t prefix = prefix_of(token);
  const uint32_t tag = tag_of(token, hash);
  for (size_t s = hash & mask;; s = (s + 1) & mask) {
    const Slot& slot = slots_[s];
    if (slot.id1 == 0) return slot;
    if (slot.tag != tag || slot.prefix != prefix) continue;
    // Equal length (<= 8, from the tag) and equal first 8 bytes: the same token.
    if (token.size() <= 8 || this->token(static_cast<int64_t>(slot.id1) - 1) == token) return slot;
  }
}

template <typename Slot>
Slot& TokenTable<Slot>::probe_insert(std::string_view token, uint64_t hash) {
  if ((size() + 1) * 2 > static_cast<int64_t>(slots_.size())) grow();
  Slot& slot = const_cast<Slot&>(probe(token, hash));
  if (slot.id1 != 0) return slot;
  const int64_t id = size();
  TESSERA_CHECK(id < int64_t{0xFFFFFFFE}, "TokenIndex: more than 4e9 distinct tokens");
  arena_.append(token.data(), token.size());
  starts_.push_back(arena_.size());
  hashes_.push_back(hash);
  slot.prefix = prefix_of(token);
  slot.id1 = static_cast<uint32_t>(id + 1);
  slot.tag = tag_of(token, hash);
  return slot;
}

template <typename Slot>
void TokenTable<Slot>::grow() {
  const size_t cap = slots_.empty() ? 16 : slots_.size() * 2;
  std::vector<Slot> slots(cap);
  const size_t mask = cap - 1;
  for (const Slot& old : slots_) {
    if (old.id1 == 0) continue;
    size_t s = hashes_[old.id1 - 1] & mask;
    while (slots[s].id1 != 0) s = (s + 1) & mask;
    slots[s] = old;
  }
  slots_.swap(slots);
}

template <typename Slot>
void TokenTable<Slot>::reserve(int64_t n_tokens) {
  while (static_cast<int64_t>(slots_.size()) < n_tokens * 2) grow();
  hashes_.reserve(n_tokens);
  starts_.reserve(n_tokens + 1);
}

template <typename Slot>
void TokenTable<Slot>::clear() {
  // Swapped with empty containers: clear() alone would keep the capacity.
  std::string().swap(arena_);
  std::vector<uint64_t>(1, 0).swap(starts_);
  std::vector<uint64_t>().swap(hashes_);
  std::vector<Slot>().swap(slots_);
}

template <typename Slot>
int64_t TokenTable<Slot>::bytes() const {
  return static_cast<int64_t>(arena_.capacity() + (starts_.capacity() + hashes_.capacity()) * 8 +
                              slots_.capacity() * sizeof(Slot));
}

namespace {

// Elements of a vector of capacity `cap` holding `need` (a push_back that reallocates holds the
// old buffer and one of at most twice `need` at once).
int64_t vector_bound(int64_t cap, int64_t need) {
  return need <= cap ? cap : cap + 2 * need;
}

}  // namespace

template <typename Slot>
int64_t TokenTable<Slot>::bytes_bound(int64_t more_tokens) const {
  const int64_t n = size() + more_tokens;
  // probe_insert grows while 2 * size > capacity: the smallest power of two (>= 16) >= 2n; the
  // last grow() holds the old half-size array beside the new one.
  const auto cap = static_cast<int64_t>(slots_.size());
  int64_t target = cap;
  while (target < 2 * n) target = target == 0 ? 16 : target * 2;
  const int64_t slots = target == cap ? cap : target + target / 2;
  const int64_t vectors = vector_bound(static_cast<int64_t>(starts_.capacity()), n + 1) +
                          vector_bound(static_cast<int64_t>(hashes_.capacity()), n);
  return slots * static_cast<int64_t>(sizeof(Slot)) + vectors * 8;
}

template class TokenTable<IndexSlot>;
template class TokenTable<CountSlot>;

}  // namespace detail

void TokenCounter::merge(const TokenCounter& other) {
  const std::vector<int64_t> n = other.counts();
  for (int64_t id = 0; id < other.size(); ++id)
    add(other.token(id), other.hash_of(id), static_cast<uint64_t>(n[id]));
}

std::vector<int64_t> TokenCounter::counts() const {
  std::vector<int64_t> n(static_cast<size_t>(size()), 0);
  for (const detail::CountSlot& s : slots_)
    if (s.id1 != 0) n[s.id1 - 1] = static_cast<int64_t>(s.count);
  return n;
}

}  // namespace tessera
