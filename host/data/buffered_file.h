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

// A part of a plain (uncompressed) file: bytes [begin, end) (end < 0: to the end of the file),
// `begin` a line start whose physical line number is `first_line`. Distributed scoring reads one
// part per rank (pipelines/behaviour/distributed_scoring.h); the default is the whole file.
struct ByteRange {
  int64_t begin = 0;
  int64_t end = -1;
  int64_t first_line = 1;
  bool whole() const { return begin == 0 && end < 0; }
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
  // From now on the unconsumed bytes are the file's bytes [begin, end) of `range` (end < 0: to
  // the end): the window is dropped and the file repositioned when `begin` is past the first
  // unconsumed byte, otherwise reading goes on from there; nothing at or after `end` is returned.
  // A plain file only (a gzip stream has no byte offsets to seek to): an Io error otherwise.
  void restrict_to(const ByteRange& range);
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
  int64_t read_ = 0;    // file bytes read into the window so far (the offset of buf_[end_])
  int64_t limit_ = -1;  // restrict_to's end: no byte at or past it is read (< 0: none)
};

// Physical lines of a file, without their "\n" / "\r\n" terminators. 1-based line numbers.
class LineReader {
 public:
  // `range`: after the skipped lines, only the lines of that part (numbered from its first_line).
  explicit LineReader(const std::string& path, int skip_lines = 0, BufferedFileOptions options = {},
                      const ByteRange& range = {});
  // The next line (valid until the next call) and its number; false at the end of the file.
  bool next(std::string_view& line, int64_t& line_number);
  const std::string& path() const { return file_.path(); }

 private:
  BufferedFile file_;
  size_t pending_ = 0;  // bytes of the previous line to consume on the next call
  int64_t line_ = 0;
};

}  // namespace tessera
