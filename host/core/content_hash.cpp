#include "host/core/content_hash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera {

namespace {

// Odd multipliers with well-spread bits (the golden ratio's and splitmix64's constants).
constexpr uint64_t kM1 = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kM2 = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kM3 = 0x94d049bb133111ebULL;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A full-avalanche 64-bit finaliser.
inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * kM2;
  z = (z ^ (z >> 27)) * kM3;
  return z ^ (z >> 31);
}

inline uint64_t step(uint64_t acc, uint64_t word) { return rotl(acc + word * kM2, 31) * kM1; }

}  // namespace

void ContentHash::block(const uint8_t* p) {
  for (int i = 0; i < 4; ++i) lanes_[i] = step(lanes_[i], load64(p + 8 * i));
}

void ContentHash::update(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_ += size;
  if (buf_len_ > 0) {
    const size_t take = std::min(size, sizeof buf_ - buf_len_);
    std::memcpy(buf_ + buf_len_, p, take);
    buf_len_ += take;
    p += take;
    size -= take;
    if (buf_len_ < sizeof buf_) return;
    block(buf_);
    buf_len_ = 0;
  }
  for (; size >= 32; p += 32, size -= 32) block(p);
  std::memcpy(buf_, p, size);
  buf_len_ = size;
}

std::string ContentHash::hex_digest() const {
  uint64_t a = rotl(lanes_[0], 1) + rotl(lanes_[1], 7) + rotl(lanes_[2], 12) + rotl(lanes_[3], 18);
  uint64_t b = lanes_[0] ^ rotl(lanes_[1], 13) ^ rotl(lanes_[2], 29) ^ rotl(lanes_[3], 43);
  a ^= total_ * kM1;
  for (size_t i = 0; i < buf_len_; ++i) {  // the tail, byte by byte (< 32 bytes)
    a = rotl(a ^ (buf_[i] * kM3), 11) * kM1;
    b = rotl(b + buf_[i] + 1, 23) * kM2;
  }
  const uint64_t h1 = mix(a ^ mix(b));
  const uint64_t h2 = mix(b + h1 * kM3 + total_);
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h1),
                static_cast<unsigned long long>(h2));
  return out;
}

std::string content_hash_hex(const void* data, size_t size) {
  ContentHash h;
  h.update(data, size);
  return h.hex_digest();
}

namespace {

struct StatKey {
  uint64_t dev, ino, size;
  int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
  std::string text() const {
    std::ostringstream s;
    s << "size=" << size << " mtime=" << mtime_s << "." << mtime_ns << " ctime=" << ctime_s << "."
      << ctime_ns;
    return s.str();
  }
};

StatKey stat_key(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev),   static_cast<uint64_t>(st.st_ino),
          static_cast<uint64_t>(st.st_size),  st.st_mtim.tv_sec,
          st.st_mtim.tv_nsec,                 st.st_ctim.tv_sec,
          st.st_ctim.tv_nsec};
}

std::string hash_fd(int fd, const std::string& path) {
  ContentHash h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      TESSERA_THROW(Io, "stage input '" << path << "' cannot be read: " << std::strerror(errno));
    }
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.hex_digest();
}

}  // namespace

FileFingerprint file_content_fingerprint(const std::string& path, const std::string& memo_dir) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    TESSERA_THROW(Io, "stage input '" << path << "' cannot be read: " << std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat before;
  if (::fstat(fd, &before) != 0)
    TESSERA_THROW(Io, "stage input '" << path << "' cannot be read: " << std::strerror(errno));
  const StatKey key = stat_key(before);
  FileFingerprint f;
  const std::string memo_file =
      memo_dir.empty() ? ""
                       : memo_dir + "/" + std::to_string(key.dev) + "-" + std::to_string(key.ino);
  if (!memo_file.empty()) {
    std::ifstream in(memo_file);
    std::string stat_line, hash;
    if (std::getline(in, stat_line) && std::getline(in, hash) && stat_line == key.text() &&
        hash.size() == 32) {
      f.text = "size=" + std::to_string(key.size) + " content=" + hash;
      return f;
    }
  }
  const std::string hash = hash_fd(fd, path);
  f.text = "size=" + std::to_string(key.size) + " content=" + hash;
  struct stat after;
  if (::fstat(fd, &after) != 0)
    TESSERA_THROW(Io, "stage input '" << path << "' cannot be read: " << std::strerror(errno));
  // Remembered only when nothing changed while it was read, and when the last change is at least
  // two seconds old: a write within the file system's timestamp granularity after this read would
  // otherwise leave every stat field as it was (the "racy" case), so such files are re-read.
  const bool settled = std::time(nullptr) - std::max(key.mtime_s, key.ctime_s) >= 2;
  if (!memo_file.empty() && settled && stat_key(after).text() == key.text()) {
    f.memo_file = memo_file;
    f.memo_text = key.text() + "\n" + hash + "\n";
  }
  return f;
}

// A memo entry is a cache of a hash: written to a temporary file and renamed into place (never
// half-written), but not fsync'ed, since an entry lost in a crash costs one re-read, while an
// fsync per entry costs seconds for a pipeline with thousands of input files (fsdd: 3,000).
void remember_fingerprint(const FileFingerprint& f) {
  if (f.memo_file.empty()) return;
  make_directories(f.memo_file.substr(0, f.memo_file.find_last_of('/')));
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      f.memo_file + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << f.memo_text;
    out.flush();
    if (!out) {
      ::unlink(tmp.c_str());
      TESSERA_THROW(Io, "cannot write '" << tmp << "'");
    }
  }
  if (::rename(tmp.c_str(), f.memo_file.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    TESSERA_THROW(Io, "cannot rename '" << tmp << "' to '" << f.memo_file
                                        << "': " << std::strerror(e));
  }
}

}  // namespace tessera
