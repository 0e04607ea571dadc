#pragma once
// Helpers shared by the data-layer tests: a temporary directory removed on exit, file writing.
#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace tessera::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tessera_data_test_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    path_ = p != nullptr ? p : "/tmp";
  }
  ~TempDir() {
    ::nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return path;
}

// The shared datasets folder (../shared/datasets next to the source tree).
inline std::string shared_datasets_dir() {
  return std::string(TESSERA_SOURCE_DIR) + "/../shared/datasets";
}

}  // namespace tessera::testing
