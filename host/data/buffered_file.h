#pragma once
// BufferedFile: a sliding window over a file, read in large blocks, for the streaming readers.
// Plain and gzip-compressed files are read alike (zlib's gzread passes plain files through), so
// `digits.csv.gz` needs no special casing. Memory is bounded: the window grows only to hold the
// longest record, up to `max_window` bytes; refill() reports Full beyond that, and the caller
// turns it into an error naming the record's file and line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

struct BufferedFileOptions {
  // Initial window and read size; a file smaller than a block starts with a window of its size
  // (at least 64 KiB), so opening a small file does not cost a whole block.
  size_t block_bytes = size_t{1} << 20;
  size_t max_window = size_t{64} << 20;  // longest record the window may hold
};

class BufferedFile {
 public:
  enum class Refill : uint8_t { Ok, Eof, Full };

  explicit BufferedFile(const std::string& path, BufferedFileOptions options = {});
  ~BufferedFile();
  BufferedFile(const BufferedFile&) = delete;
  BufferedFile& operator=(const BufferedFile&) = delete;

  // The unconsumed bytes: [data(), data() + available()). Offsets from data() stay valid across
  // refill() (the bytes may move, their offsets from data() do not); pointers do not.
  char* data() { return buf_.data() + begin_; }
  size_t available() const { return end_ - begin_; }
  // Appends more bytes after the unconsumed ones. Eof: nothing more to read (no bytes added).
  // Full: the window already holds max_window unconsumed bytes.
  Refill refill();
  void consume(size_t n) { begin_ += n; }
  const std::string& path() const { return path_; }
  size_t max_window() const { return options_.max_window; }

 private:
  std::string path_;
  BufferedFileOptions options_;
  void* gz_ = nullptr;  // gzFile
  std::vector<char> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
};

// Physical lines of a file, without their "\n" / "\r\n" terminators. 1-based line numbers.
class LineReader {
 public:
  explicit LineReader(const std::string& path, int skip_lines = 0,
                      BufferedFileOptions options = {});
  // The next line (valid until the next call) and its number; false at the end of the file.
  bool next(std::string_view& line, int64_t& line_number);
  const std::string& path() const { return file_.path(); }

 private:
  BufferedFile file_;
  size_t pending_ = 0;  // bytes of the previous line to consume on the next call
  int64_t line_ = 0;
};

}  // namespace tessera
