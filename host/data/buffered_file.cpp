#include "host/data/buffered_file.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "host/core/error.h"

namespace tessera {

namespace {
constexpr uint64_t kSmallFileWindow = 64 * 1024;  // the least window a file starts with
}  // namespace

BufferedFile::BufferedFile(const std::string& path, BufferedFileOptions options)
    : path_(path), options_(options) {
  TESSERA_CHECK(options_.block_bytes > 0 && options_.max_window >= options_.block_bytes,
                "BufferedFile: bad window sizes");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) TESSERA_THROW(Io, "cannot read '" << path << "': not a regular file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  // A small file gets a window (and zlib buffer) its size, not a whole block: the window grows
  // by doubling when a record needs it, so only the first reads of a small gzip file are shorter.
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size) + 1;
  const size_t start = static_cast<size_t>(
      std::min<uint64_t>(options_.block_bytes, std::max<uint64_t>(kSmallFileWindow, file_bytes)));
  gzbuffer(f, static_cast<unsigned>(std::min<size_t>(start, 256 * 1024)));
  gz_ = f;
  buf_.resize(start);
}

BufferedFile::~BufferedFile() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
}

BufferedFile::Refill BufferedFile::refill() {
  if (eof_) return Refill::Eof;
  if (begin_ > 0) {  // slide the unconsumed bytes to the front
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) {
    if (buf_.size() >= options_.max_window) return Refill::Full;
    buf_.resize(std::min(buf_.size() * 2, options_.max_window));
  }
  size_t want = std::min(buf_.size() - end_, static_cast<size_t>(INT_MAX));
  if (limit_ >= 0) want = static_cast<size_t>(std::min<int64_t>(want, limit_ - read_));
  if (want == 0) {  // at restrict_to's end
    eof_ = true;
    return Refill::Eof;
  }
  const int got = gzread(static_cast<gzFile>(gz_), buf_.data() + end_, static_cast<unsigned>(want));
  if (got < 0) {
    int code = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &code);
    TESSERA_THROW(
        Io, "error reading '" << path_ << "': " << (code == Z_ERRNO ? std::strerror(errno) : msg));
  }
  if (got == 0) {
    eof_ = true;
    return Refill::Eof;
  }
  end_ += static_cast<size_t>(got);
  read_ += got;
  return Refill::Ok;
}

void BufferedFile::restrict_to(const ByteRange& range) {
  gzFile f = static_cast<gzFile>(gz_);
  const int64_t position = read_ - static_cast<int64_t>(end_ - begin_);  // of data()
  if (range.begin > position) {
    // gzdirect is known once a first read has looked at the file's start.
    if (read_ == 0 && !eof_) refill();
    if (!gzdirect(f))
      TESSERA_THROW(Io, "'" << path_ << "' is gzip-compressed: it cannot be read from byte "
                            << range.begin << " on (decompress it to split it)");
    if (gzseek(f, static_cast<z_off_t>(range.begin), SEEK_SET) < 0)
      TESSERA_THROW(Io, "cannot seek to byte " << range.begin << " of '" << path_ << "'");
    begin_ = end_ = 0;
    read_ = range.begin;
    eof_ = false;
  }
  limit_ = range.end;
  if (limit_ >= 0 && read_ > limit_) {  // the window already holds bytes past the end
    const auto over = static_cast<size_t>(read_ - limit_);
    end_ -= std::min(over, end_ - begin_);
    read_ = limit_;
  }
  if (limit_ >= 0 && read_ >= limit_) eof_ = true;
}

LineReader::LineReader(const std::string& path, int skip_lines, BufferedFileOptions options,
                       const ByteRange& range)
    : file_(path, options) {
  std::string_view ignored;
  int64_t n = 0;
  for (int i = 0; i < skip_lines; ++i) {
    if (!next(ignored, n)) break;
  }
  if (range.whole()) return;
  file_.consume(pending_);
  pending_ = 0;
  file_.restrict_to(range);
  if (range.begin > 0) line_ = range.first_line - 1;
}

bool LineReader::next(std::string_view& line, int64_t& line_number) {
  file_.consume(pending_);
  pending_ = 0;
  size_t scanned = 0;
  for (;;) {
    char* p = file_.data();
    const size_t n = file_.available();
    const void* nl = scanned < n ? std::memchr(p + scanned, '\n', n - scanned) : nullptr;
    if (nl != nullptr) {
      const size_t len = static_cast<const char*>(nl) - p;
      pending_ = len + 1;
      line = std::string_view(p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
      line_number = ++line_;
      return true;
    }
    scanned = n;
    const BufferedFile::Refill r = file_.refill();
    if (r == BufferedFile::Refill::Full) {
      TESSERA_THROW(Data, file_.path() << ":" << line_ + 1 << ": line longer than "
                                       << file_.max_window() << " bytes");
    }
    if (r == BufferedFile::Refill::Eof) {
      if (n == 0) return false;
      p = file_.data();
      pending_ = n;  // the last line has no terminator
      line = std::string_view(p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
      line_number = ++line_;
      return true;
    }
  }
}

}  // namespace tessera
