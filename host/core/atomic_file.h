#pragma once
// Files that are never left half-written: content goes to "<path>.tmp.<pid>", is flushed and
// fsync'ed, then renamed over <path>. A failure (full disk, unwritable directory) is an Error of
// kind Io naming the path and the reason, and removes the temporary file.
#include <string>

namespace tessera {

void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
// mkdir -p; Io error naming the path on failure.
void make_directories(const std::string& path);

// Streams to a temporary file and renames it into place on commit(); the destructor removes the
// temporary file if commit() was never reached (an exception on the way).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();
  void write(const char* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  std::string pending_;
  void flush_pending();
};

}  // namespace tessera
