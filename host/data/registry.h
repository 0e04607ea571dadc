#pragma once
// The dataset registry: every public dataset tessera knows, where it comes from (canonical URL)
// and what its files must hash to (SHA-256), and resolve_dataset_file(), which finds a file
// locally or downloads it.
//
// Lookup order for dataset D, file F (the first existing file wins):
//   1. $TESSERA_DATA/D/F                          (a user's mirror)
//   2. ./../shared/datasets/D/F                   (relative to the working directory)
//   3. $TESSERA_SOURCE_DIR/../shared/datasets/D/F (relative to the source tree, when set)
//   4. <cache>/D/F, <cache> = $TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera, else
//      ~/.cache/tessera
// Not found: download into <cache>/D/F with `curl -fsSL` (a Direct file, or a member of a zip
// archive extracted with `unzip -p`): written to a temporary file, checked against its SHA-256,
// then renamed into place, so a failed or interrupted download never leaves a partial file.
// Downloads are off when $TESSERA_OFFLINE is set (to anything but "0") or with
// DownloadPolicy::Never. When everything fails, the ErrorKind::Data error lists every place
// looked and why the download did not happen.
//
// Verification: a downloaded file is always verified. A found file is verified once per
// (absolute path, size, mtime): the result is appended to <cache>/verified-sha256.tsv (one
// O_APPEND line, safe with concurrent runs) and kept in memory, so later runs do not rehash
// unchanged files (VerifyPolicy::Cached; Always rehashes; Never skips). A mismatch is an
// ErrorKind::Data error naming both checksums.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

enum class FetchKind : uint8_t {
  Direct,     // `url` is the file itself
  ZipMember,  // `url` is a zip archive holding the file at `member`
  Manual,     // no automatic download (`url` says where to get it)
};

struct DatasetFile {
  std::string name;    // path inside the dataset folder: "adult.data", "recordings/0_george_0.wav"
  std::string sha256;  // lowercase hex; empty = not verified
  std::string url;
  FetchKind fetch = FetchKind::Direct;
  std::string member;  // ZipMember: path inside the archive
};

struct DatasetInfo {
  std::string name;  // folder name, e.g. "uci-adult"
  std::string description;
  std::string license;
  std::vector<DatasetFile> files;

  const DatasetFile* find_file(const std::string& file) const;  // null when not registered
};

const std::vector<DatasetInfo>& known_datasets();
// Throws ErrorKind::Config listing the known names.
const DatasetInfo& find_dataset(const std::string& name);

enum class DownloadPolicy : uint8_t { Allow, Never };
enum class VerifyPolicy : uint8_t { Cached, Always, Never };

struct ResolveOptions {
  DownloadPolicy download = DownloadPolicy::Allow;
  VerifyPolicy verify = VerifyPolicy::Cached;
};

// The local path of `file` of a registered dataset (see the lookup order above).
std::string resolve_dataset_file(const std::string& dataset, const std::string& file,
                                 const ResolveOptions& options = {});
// The same for a dataset described by the caller (tests, user-registered data).
std::string resolve_dataset_file(const DatasetInfo& dataset, const std::string& file,
                                 const ResolveOptions& options = {});

// The folders searched for `dataset`, in order, each with where it came from
// ("$TESSERA_DATA", "working directory", "$TESSERA_SOURCE_DIR", "cache").
struct SearchDir {
  std::string path;
  std::string origin;
};
std::vector<SearchDir> dataset_search_dirs(const std::string& dataset);
std::string tessera_cache_dir();

// Checks `path` against `expected_sha256` under `policy`; throws ErrorKind::Data on mismatch.
void verify_file(const std::string& path, const std::string& expected_sha256,
                 VerifyPolicy policy = VerifyPolicy::Cached);

}  // namespace tessera
