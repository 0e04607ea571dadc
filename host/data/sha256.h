#pragma once
// SHA-256 (FIPS 180-4), for verifying dataset files against their published checksums.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; the object must be reset() before reuse
  std::string hex_digest();          // 64 lowercase hex digits
  void reset();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
};

std::string sha256_hex(std::string_view data);
// Streams the file (plain bytes, no decompression). Throws ErrorKind::Io if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace tessera
