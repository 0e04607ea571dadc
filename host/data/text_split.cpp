#include "host/data/text_split.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "host/core/error.h"

namespace tessera {

namespace {

// A read-only file descriptor, closed on every path.
class ReadFd {
 public:
  explicit ReadFd(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY)) {
    if (fd_ < 0) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  }
  ~ReadFd() { ::close(fd_); }
  ReadFd(const ReadFd&) = delete;
  ReadFd& operator=(const ReadFd&) = delete;

  int64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
      TESSERA_THROW(Io, "cannot stat '" << path_ << "': " << std::strerror(errno));
    return static_cast<int64_t>(st.st_size);
  }
  // Up to `n` bytes from `offset`; fewer only at the end of the file.
  size_t read_at(char* buf, size_t n, int64_t offset) const {
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, buf + got, n - got, static_cast<off_t>(offset) + got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) TESSERA_THROW(Io, "error reading '" << path_ << "': " << std::strerror(errno));
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

 private:
  std::string path_;
  int fd_;
};

constexpr size_t kBlock = size_t{1} << 20;

// The offset just past the first '\n' at or after `pos` (the file's size when there is none).
int64_t after_newline(const ReadFd& f, int64_t pos, int64_t size) {
  // Most lines are short: a small read first, whole blocks only for a long line.
  std::vector<char> buf(static_cast<size_t>(std::clamp<int64_t>(size - pos, 1, 4096)));
  while (pos < size) {
    const size_t got = f.read_at(buf.data(), buf.size(), pos);
    if (got == 0) break;
    const void* nl = std::memchr(buf.data(), '\n', got);
    if (nl != nullptr) return pos + (static_cast<const char*>(nl) - buf.data()) + 1;
    pos += static_cast<int64_t>(got);
    if (buf.size() < kBlock) buf.resize(kBlock);
  }
  return size;
}

bool blank_line(const ReadFd& f, int64_t begin, int64_t end) {
  std::vector<char> buf(static_cast<size_t>(std::min<int64_t>(end - begin, 4096)));
  for (int64_t at = begin; at < end;) {
    const size_t n = f.read_at(buf.data(), std::min<size_t>(buf.size(), end - at), at);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i)
      if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') return false;
    at += static_cast<int64_t>(n);
  }
  return true;
}

// The first line start at or after `pos` (>= d, a line start itself).
int64_t line_start_from(const ReadFd& f, int64_t pos, int64_t d, int64_t size) {
  if (pos <= d) return d;
  if (pos >= size) return size;
  return after_newline(f, pos - 1, size);
}

}  // namespace

bool is_gzip_file(const std::string& path) {
  const ReadFd f(path);
  unsigned char magic[2] = {0, 0};
  return f.read_at(reinterpret_cast<char*>(magic), 2, 0) == 2 && magic[0] == 0x1f &&
         magic[1] == 0x8b;
}

int64_t data_start(const std::string& path, int skip_lines, bool header) {
  const ReadFd f(path);
  const int64_t size = f.size();
  // The byte-order mark belongs to the first line (the record reader drops it; a line reader
  // keeps it), so it moves no line start; only the header's blankness is judged without it.
  char bom[3] = {0, 0, 0};
  const int64_t bom_bytes =
      f.read_at(bom, 3, 0) == 3 && std::memcmp(bom, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  int64_t pos = 0;
  for (int i = 0; i < skip_lines && pos < size; ++i) pos = after_newline(f, pos, size);
  while (header && pos < size) {  // the header is the first non-blank line
    const int64_t next = after_newline(f, pos, size);
    const bool blank = blank_line(f, std::max(pos, bom_bytes), next);
    pos = next;
    if (!blank) break;
  }
  return pos;
}

ByteRange text_part(const std::string& path, int skip_lines, bool header, int rank, int world) {
  TESSERA_CHECK(world >= 1 && rank >= 0 && rank < world,
                "text_part: rank " << rank << " of " << world);
  const int64_t d = data_start(path, skip_lines, header);
  const ReadFd f(path);
  const int64_t size = f.size();
  // r (S - D) / N without overflow for any file size.
  auto cut = [&](int r) {
    if (r == 0) return int64_t{0};
    if (r == world) return size;
    const auto share = static_cast<int64_t>((static_cast<__int128>(size - d) * r) / world);
    return line_start_from(f, d + share, d, size);
  };
  ByteRange part;
  part.begin = cut(rank);
  part.end = std::max(part.begin, cut(rank + 1));
  return part;
}

int64_t count_newlines(const std::string& path, int64_t begin, int64_t end) {
  const ReadFd f(path);
  if (end < 0) end = f.size();
  std::vector<char> buf(static_cast<size_t>(std::clamp<int64_t>(end - begin, 1, kBlock)));
  int64_t lines = 0;
  for (int64_t at = begin; at < end;) {
    const size_t got =
        f.read_at(buf.data(), static_cast<size_t>(std::min<int64_t>(kBlock, end - at)), at);
    if (got == 0) break;
    lines += std::count(buf.data(), buf.data() + got, '\n');
    at += static_cast<int64_t>(got);
  }
  return lines;
}

}  // namespace tessera
