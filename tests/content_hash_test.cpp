// The stage cache's content hash: the same bytes give the same hash however they are split into
// update() calls, and any change of content or length changes it.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "host/core/content_hash.h"

namespace tessera {
namespace {

std::string bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(g());
  return s;
}

TEST(ContentHash, SplittingTheInputDoesNotChangeTheHash) {
  const std::string data = bytes(1000, 1);
  const std::string whole = content_hash_hex(data.data(), data.size());
  EXPECT_EQ(whole.size(), 32u);
  for (size_t chunk : {1, 3, 7, 31, 32, 33, 64, 999}) {
    ContentHash h;
    for (size_t at = 0; at < data.size(); at += chunk)
      h.update(data.data() + at, std::min(chunk, data.size() - at));
    EXPECT_EQ(h.hex_digest(), whole) << "chunk " << chunk;
  }
}

TEST(ContentHash, EveryBitFlipAndEveryLengthGivesAnotherHash) {
  std::string data = bytes(100, 2);
  std::set<std::string> seen{content_hash_hex(data.data(), data.size())};
  for (size_t i = 0; i < data.size(); ++i)
    for (int b = 0; b < 8; ++b) {
      data[i] = static_cast<char>(data[i] ^ (1 << b));
      EXPECT_TRUE(seen.insert(content_hash_hex(data.data(), data.size())).second)
          << "byte " << i << " bit " << b;
      data[i] = static_cast<char>(data[i] ^ (1 << b));
    }
  const std::string zeros(200, '\0');
  for (size_t n = 0; n <= zeros.size(); ++n)  // zero runs differ only in length
    EXPECT_TRUE(seen.insert(content_hash_hex(zeros.data(), n)).second) << n << " zero bytes";
}

}  // namespace
}  // namespace tessera
