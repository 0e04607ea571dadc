#pragma once
// Content fingerprints for the stage cache: a fast non-cryptographic 128-bit hash of a file's
// bytes (several GB/s on one core, so a multi-GB input costs about a second to read), memoised per
// file by (device, inode, size, mtime, ctime) so an unchanged file is not read again. ctime cannot
// be set from user space, so an in-place edit that restores the size and mtime (touch -r) still
// changes ctime and is re-read: the cache never reuses a stage whose inputs changed.
#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera {

// Streaming hash: four independent 64-bit lanes over 32-byte blocks, then a mixed tail.
class ContentHash {
 public:
  void update(const void* data, size_t size);
  std::string hex_digest() const;  // 32 lowercase hex digits; does not change the state

 private:
  void block(const uint8_t* p);
  uint64_t lanes_[4] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL, 0xa4093822299f31d0ULL,
                        0x082efa98ec4e6c89ULL};
  uint8_t buf_[32];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string content_hash_hex(const void* data, size_t size);

// A file's fingerprint, "size=<bytes> content=<hash>", and what to remember of it.
struct FileFingerprint {
  std::string text;
  // When the file was read (not answered from the memo): the memo entry to write, so that the
  // next call is answered without reading. Empty otherwise, or when the file changed too recently
  // for its stat fields to be trusted.
  std::string memo_file, memo_text;
};

// The fingerprint of the file at `path` (Io error naming it when unreadable). `memo_dir` ("" =
// none) holds one small file per (device, inode) with the stat fields the hash was taken under;
// an entry whose fields all match answers without reading the file. Writes nothing: pass the
// result to remember_fingerprint to keep it.
FileFingerprint file_content_fingerprint(const std::string& path, const std::string& memo_dir);
// Writes `f`'s memo entry (atomically, creating the memo directory), if it has one.
void remember_fingerprint(const FileFingerprint& f);

}  // namespace tessera
