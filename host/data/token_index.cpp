#include "host/data/token_index.h"

#include <cstring>

#include "host/core/error.h"
#include "host/data/hash.h"

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

TokenIndex::Slot TokenIndex::make_slot(int64_t id, std::string_view token, uint64_t hash) {
  Slot s;
  s.prefix = prefix_of(token);
  s.id1 = static_cast<uint32_t>(id + 1);
  s.tag = tag_of(token, hash);
  return s;
}

bool TokenIndex::matches(const Slot& slot, std::string_view token, uint64_t hash) const {
  if (slot.tag != tag_of(token, hash) || slot.prefix != prefix_of(token)) return false;
  // Equal length (<= 8, from the tag) and equal first 8 bytes: the same token.
  if (token.size() <= 8) return true;
  return this->token(static_cast<int64_t>(slot.id1) - 1) == token;
}

int64_t TokenIndex::find(std::string_view token) const {
  if (slots_.empty()) return -1;
  const uint64_t h = hash_token(token);
  const size_t mask = slots_.size() - 1;
  for (size_t s = h & mask;; s = (s + 1) & mask) {
    const Slot& slot = slots_[s];
    if (slot.id1 == 0) return -1;
    if (matches(slot, token, h)) return static_cast<int64_t>(slot.id1) - 1;
  }
}

int64_t TokenIndex::insert(std::string_view token) {
  if ((size() + 1) * 2 > static_cast<int64_t>(slots_.size())) grow();
  const uint64_t h = hash_token(token);
  const size_t mask = slots_.size() - 1;
  size_t s = h & mask;
  for (;; s = (s + 1) & mask) {
    const Slot& slot = slots_[s];
    if (slot.id1 == 0) break;
    if (matches(slot, token, h)) return static_cast<int64_t>(slot.id1) - 1;
  }
  const int64_t id = size();
  TESSERA_CHECK(id < int64_t{0xFFFFFFFE}, "TokenIndex: more than 4e9 distinct tokens");
  arena_.append(token.data(), token.size());
  starts_.push_back(arena_.size());
  hashes_.push_back(h);
  slots_[s] = make_slot(id, token, h);
  return id;
}

void TokenIndex::grow() {
  const size_t cap = slots_.empty() ? 16 : slots_.size() * 2;
  std::vector<Slot> slots(cap);
  const size_t mask = cap - 1;
  for (int64_t id = 0; id < size(); ++id) {
    size_t s = hashes_[id] & mask;
    while (slots[s].id1 != 0) s = (s + 1) & mask;
    slots[s] = make_slot(id, token(id), hashes_[id]);
  }
  slots_.swap(slots);
}

void TokenIndex::reserve(int64_t n_tokens) {
  while (static_cast<int64_t>(slots_.size()) < n_tokens * 2) grow();
  hashes_.reserve(n_tokens);
  starts_.reserve(n_tokens + 1);
}

void TokenIndex::clear() {
  arena_.clear();
  starts_.assign(1, 0);
  hashes_.clear();
  slots_.clear();
}

}  // namespace tessera
