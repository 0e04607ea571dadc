#include "host/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "host/core/error.h"

namespace tessera {

namespace {
std::string dir_of(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}
}  // namespace

void make_directories(const std::string& path) {
  if (path.empty()) return;
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      TESSERA_THROW(Io, "cannot create directory '" << cur << "': " << std::strerror(errno));
    cur += "/";
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    TESSERA_THROW(Io, "'" << path << "' is not a directory");
}

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    TESSERA_THROW(Io, "cannot write '" << path_ << "' (temporary '" << tmp_
                                       << "'): " << std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::flush_pending() {
  size_t off = 0;
  while (off < pending_.size()) {
    ssize_t w = ::write(fd_, pending_.data() + off, pending_.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      TESSERA_THROW(Io, "writing '" << path_ << "' failed: " << std::strerror(errno)
                                    << "; nothing was replaced");
    }
    off += static_cast<size_t>(w);
  }
  pending_.clear();
}

void AtomicFileWriter::write(const char* data, size_t n) {
  TESSERA_CHECK(fd_ >= 0, "write after commit to '" << path_ << "'");
  pending_.append(data, n);
  if (pending_.size() >= (1u << 20)) flush_pending();
}

void AtomicFileWriter::commit() {
  TESSERA_CHECK(fd_ >= 0, "double commit of '" << path_ << "'");
  flush_pending();
  if (::fsync(fd_) != 0)
    TESSERA_THROW(Io, "fsync of '" << tmp_ << "' failed: " << std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_.c_str());
    TESSERA_THROW(Io, "closing '" << tmp_ << "' failed: " << std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp_.c_str());
    TESSERA_THROW(Io,
                  "renaming '" << tmp_ << "' to '" << path_ << "' failed: " << std::strerror(e));
  }
  int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFileWriter w(path);
  w.write(bytes);
  w.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(ErrorKind::Io, "cannot open '" + path + "': " + std::strerror(errno),
                ErrorLocation{path, 0, 0, ""});
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  struct stat st;
  const off_t before = ::fstat(fd, &st) == 0 ? st.st_size : -1;
  const std::string text = line + "\n";
  size_t done = 0;
  int e = 0;
  while (done < text.size()) {  // a short write is followed by one that says why (ENOSPC, EFBIG)
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      e = w < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (e == 0 && ::fsync(fd) != 0) e = errno;
  // Part of the line may be in the file: take it back, so a reader never sees a torn line from
  // a run that is still going.
  if (e != 0 && done > 0 && before >= 0 && ::ftruncate(fd, before) == 0) ::fsync(fd);
  ::close(fd);
  if (e != 0) TESSERA_THROW(Io, "appending to '" << path << "' failed: " << std::strerror(e));
}

void truncate_lines(const std::string& path, int64_t lines) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  const std::string text = read_file(path);
  size_t pos = 0;
  for (int64_t i = 0; i < lines && pos < text.size(); ++i) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line is not kept
    pos = nl + 1;
  }
  if (pos < text.size()) write_file_atomic(path, text.substr(0, pos));  // (lines == 0: empties it)
}

}  // namespace tessera
