#pragma once
// Stable 64-bit hashing of categorical tokens. The value of hash_token() is part of every model
// artefact that uses hash buckets, so it must never change: FNV-1a over the bytes, then the
// splitmix64 finaliser (math::mix64) so that the low bits (used by `% buckets`) are well mixed.
// It depends only on the bytes, never on std::hash, the platform or the process.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "host/core/hd.h"
#include "host/core/math.h"

namespace tessera {

inline constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ull;

TESSERA_HD uint64_t fnv1a64(const char* data, size_t size, uint64_t h = kFnv1a64Offset) {
  for (size_t i = 0; i < size; ++i) {
    h ^= static_cast<uint8_t>(data[i]);
    h *= kFnv1a64Prime;
  }
  return h;
}

// `seed` lets callers derive independent hash families (0 = the artefact default).
inline uint64_t hash_token(std::string_view token, uint64_t seed = 0) {
  return math::mix64(fnv1a64(token.data(), token.size()) ^ seed);
}

}  // namespace tessera
