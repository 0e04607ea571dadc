#pragma once
// Files that are never left half-written: content goes to "<path>.tmp.<pid>", is flushed and
// fsync'ed, then renamed over <path>. A failure (full disk, unwritable directory) is an Error of
// kind Io naming the path and the reason, and removes the temporary file.
#include <cstdint>
#include <string>

namespace tessera {

void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
// mkdir -p; Io error naming the path on failure.
void make_directories(const std::string& path);

// Appends `line` and a newline to a JSON-lines file (created when missing) in one write, then
// fsyncs it: a crash keeps every line appended before it. A failed write or fsync (a full disk)
// is an Io error naming the file and the reason, and the file is cut back to its length before
// the call, so a line is in the file whole or not at all.
void append_line(const std::string& path, const std::string& line);
// Keeps the first `lines` lines of a JSON-lines file (rewritten atomically), so a torn last line
// goes too; a missing file is fine. Resuming drops the lines logged after its checkpoint.
void truncate_lines(const std::string& path, int64_t lines);

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
