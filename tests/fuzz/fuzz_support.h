#pragma once
// Shared by the fuzz targets (tests/fuzz/fuzz_<name>.cpp; see README.md there). Header-only:
// every fuzz_*.cpp in this folder is a target of its own, so helpers cannot live in a .cpp here.
//
//   expect_input_errors(fn)  runs fn; a tessera::Error of an input kind (Config, Data, Io, Usage)
//                            is what bad bytes are meant to produce and is swallowed. Anything
//                            else is a finding and aborts with its message: an Error of kind
//                            Shape or Internal (a check meant for programming errors, reached
//                            from file bytes: the reader did not validate), Backend, or any other
//                            exception (std::bad_alloc, std::length_error, std::out_of_range...).
//   ByteReader               takes option bytes off the front of an input (to pick a schema,
//                            a task, a delimiter) and hands out the rest as the file's bytes.
//   TempFile                 one file per process per target for readers that only take paths,
//                            rewritten on each input, removed at exit ($TMPDIR, else /dev/shm).
//   check(cond, what)        an invariant the reader promises; aborts with `what` when false.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "host/core/error.h"

namespace tessera::fuzz {

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n*** fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// The message is built only on failure: checks run per element in hot loops.
inline void check(bool cond, const char* what) {
  if (!cond) finding(std::string("invariant broken: ") + what);
}
inline void check(bool cond, const std::string& what) {
  if (!cond) finding("invariant broken: " + what);
}

inline bool is_input_error(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Config:
    case ErrorKind::Data:
    case ErrorKind::Io:
    case ErrorKind::Usage:
      return true;
    case ErrorKind::Backend:
    case ErrorKind::Shape:
    case ErrorKind::Internal:
      return false;
  }
  return false;
}

// Returns true when fn returned normally, false when it threw an input error.
template <typename Fn>
bool expect_input_errors(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    if (!is_input_error(e.kind())) {
      finding(std::string("tessera::Error of kind ") + error_kind_name(e.kind()) +
              " from input bytes: " + e.what());
    }
    return false;
  } catch (const std::exception& e) {
    finding(std::string("exception other than tessera::Error: ") + e.what());
  } catch (...) {
    finding("a non-std exception escaped");
  }
}

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  // The next byte, or 0 once the input is used up.
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  bool flag() { return (byte() & 1) != 0; }
  // A value in [0, n) (n > 0) from one byte.
  size_t pick(size_t n) { return byte() % n; }
  // Everything not taken yet.
  std::string_view rest() const { return {reinterpret_cast<const char*>(p_), n_}; }

 private:
  const uint8_t* p_;
  size_t n_;
};

class TempFile {
 public:
  // `tag` names the target, so two targets run side by side never share a file.
  explicit TempFile(const std::string& tag) {
    // $TMPDIR when set, else /dev/shm (memory: no disk traffic per input), else /tmp.
    std::error_code ec;
    const char* env = std::getenv("TMPDIR");
    std::filesystem::path dir = env != nullptr && *env != '\0' ? env : "/dev/shm";
    if (!std::filesystem::is_directory(dir, ec)) dir = "/tmp";
    path_ = (dir / ("tessera-fuzz-" + tag + "-" + std::to_string(::getpid()))).string();
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Replaces the file's bytes; returns its path.
  const std::string& write(std::string_view bytes) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) finding("cannot create the temporary file " + path_);
    const size_t put = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    if (std::fclose(f) != 0 || put != bytes.size()) finding("cannot write " + path_);
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace tessera::fuzz
