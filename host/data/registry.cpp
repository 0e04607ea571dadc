#include "host/data/registry.h"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/sha256.h"

extern char** environ;

namespace tessera {

namespace {

// ---- the registry -----------------------------------------------------------------------------

DatasetFile direct(std::string name, std::string sha, std::string url) {
  return DatasetFile{std::move(name), std::move(sha), std::move(url), FetchKind::Direct, ""};
}
DatasetFile zipped(std::string name, std::string sha, std::string url, std::string member) {
  return DatasetFile{std::move(name), std::move(sha), std::move(url), FetchKind::ZipMember,
                     std::move(member)};
}
DatasetFile manual(std::string name, std::string sha, std::string url) {
  return DatasetFile{std::move(name), std::move(sha), std::move(url), FetchKind::Manual, ""};
}

struct FsddEntry {
  const char* name;
  const char* sha256;
};
constexpr FsddEntry kFsdd[] = {
#include "host/data/registry_fsdd.inc"
};

// Tables: census rows, click logs, ratings.
void add_tabular_datasets(std::vector<DatasetInfo>& r) {
  {
    const std::string base = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/";
    r.push_back(
        {"uci-adult",
         "UCI Census Income (Adult): 32,561 train / 16,281 test rows",
         "CC BY 4.0",
         {direct("adult.data", "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
                 base + "adult.data"),
          direct("adult.test", "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
                 base + "adult.test"),
          direct("adult.names", "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
                 base + "adult.names")}});
  }
  {
    const std::string base =
        "https://raw.githubusercontent.com/shenweichen/DeepCTR/master/examples/";
    r.push_back({"ctr-format-samples",
                 "Criteo (200 rows) and Avazu (100 rows) format samples",
                 "Apache-2.0 (DeepCTR)",
                 {direct("criteo_sample.txt",
                         "08b84f12a22438fb534e989a5e4fa245726b2bda001983556bc2aea2f094f724",
                         base + "criteo_sample.txt"),
                  direct("avazu_sample.txt",
                         "43daa44dde764bf2c0dacf80002a73da4441088a53d40a3629094d3a2b1592f3",
                         base + "avazu_sample.txt")}});
  }
  {
    const std::string zip = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip";
    r.push_back(
        {"ml-latest-small",
         "MovieLens latest-small: 100,836 ratings, 610 users, 9,742 movies",
         "GroupLens terms (README.txt)",
         {zipped("ratings.csv", "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
                 zip, "ml-latest-small/ratings.csv"),
          zipped("movies.csv", "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
                 zip, "ml-latest-small/movies.csv"),
          zipped("tags.csv", "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
                 zip, "ml-latest-small/tags.csv"),
          zipped("links.csv", "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
                 zip, "ml-latest-small/links.csv"),
          zipped("README.txt", "e165937702ae1fac9237b6bd377f03d027f7ef97175d4a04a203e8b12d5516ea",
                 zip, "ml-latest-small/README.txt")}});
  }
}

// Text: characters and labelled sentences.
void add_text_datasets(std::vector<DatasetInfo>& r) {
  r.push_back(
      {"tinyshakespeare",
       "Tiny Shakespeare: 1,115,394 characters",
       "public domain",
       {direct("input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
               "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"
               "input.txt")}});
  {
    // The mirror holds a label-first re-export of GLUE SST-2 (with a labelled test split), which
    // no public URL serves byte for byte: fetch by hand.
    const std::string glue = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip";
    r.push_back(
        {"sst2",
         "SST-2 sentiment: 67,349 train / 872 dev / 1,821 test, label<TAB>sentence",
         "none stated",
         {manual("train.tsv", "e981ceb4fe6c9acd1c79851d0d091b9e78103f1f2a399ca83dda27915d41c56c",
                 glue),
          manual("dev.tsv", "84207e6be5873fb18db798cc6faec86871f5a426554650ff64a1c34e87665f6f",
                 glue),
          manual("test.tsv", "fcd46f967b7b8efd8b5398481dadf873886298d092195167af907fd532e81e1c",
                 glue)}});
  }
  {
    const std::string zip =
        "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip";
    r.push_back(
        {"sms-spam",
         "SMS Spam Collection: 5,574 messages, label<TAB>text",
         "free, attribution requested",
         {zipped("SMSSpamCollection",
                 "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", zip,
                 "SMSSpamCollection"),
          zipped("readme", "656da9ff765ddeb69841ef429e3ad65f2207a9f410892a6f04f06542426fb75c", zip,
                 "readme")}});
  }
}

// Audio and images.
void add_media_datasets(std::vector<DatasetInfo>& r) {
  {
    DatasetInfo fsdd{
        "fsdd", "Free Spoken Digit Dataset: 3,000 8 kHz WAV recordings", "CC BY-SA 4.0", {}};
    const std::string base =
        "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/master/recordings/";
    for (const FsddEntry& e : kFsdd)
      fsdd.files.push_back(direct(std::string("recordings/") + e.name, e.sha256, base + e.name));
    r.push_back(std::move(fsdd));
  }
  {
    const std::string base =
        "https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/";
    r.push_back(
        {"sklearn-digits",
         "scikit-learn digits: 1,797 8x8 images (UCI optdigits)",
         "BSD-3-Clause",
         {direct("digits.csv.gz",
                 "46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a",
                 base + "data/digits.csv.gz"),
          direct("digits.rst", "0169c12ec98069ddd16fcff040019018d8dc1549f06c9cad1cc1350df61d3b82",
                 base + "descr/digits.rst")}});
  }
}

std::vector<DatasetInfo> build_registry() {
  std::vector<DatasetInfo> r;
  add_tabular_datasets(r);
  add_text_datasets(r);
  add_media_datasets(r);
  return r;
}

// ---- filesystem and processes -----------------------------------------------------------------

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string read_tail(const std::string& path, size_t max_bytes = 400) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > max_bytes) s = "..." + s.substr(s.size() - max_bytes);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Runs argv (searched on PATH) with stdout to `stdout_path` (or inherited when empty) and stderr
// captured; returns the exit status (127 when it could not start) and the stderr tail.
// `scratch` is a unique path prefix for the captured stderr.
int run_process(const std::vector<std::string>& argv, const std::string& stdout_path,
                const std::string& scratch, std::string& err) {
  const std::string err_path = scratch + ".stderr";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    err = argv[0] + ": " + std::strerror(rc);
    ::unlink(err_path.c_str());
    return 127;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  err = read_tail(err_path);
  ::unlink(err_path.c_str());
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127 && err.empty()) err = argv[0] + ": not found";
    return WEXITSTATUS(status);
  }
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// ---- verification cache -----------------------------------------------------------------------

struct FileStamp {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const { return size == o.size && mtime_ns == o.mtime_ns; }
};

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    TESSERA_THROW(Io, "cannot stat '" << path << "': " << std::strerror(errno));
  return FileStamp{static_cast<int64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

std::string absolute_path(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (r == nullptr) return path;
  std::string s(r);
  std::free(r);
  return s;
}

struct VerifiedEntry {
  FileStamp stamp;
  std::string sha256;
};

std::mutex g_verify_mu;

std::string verify_cache_path() {
  return tessera_cache_dir() + "/verified-sha256.tsv";
}

// The cache file holds one line per verification, appended (later lines win):
//   size <TAB> mtime_ns <TAB> sha256 <TAB> absolute path
// It is read once per process (per cache location) into memory.
std::map<std::string, VerifiedEntry>& verify_memo() {
  static std::map<std::string, VerifiedEntry> memo;
  static std::string loaded_from;
  const std::string path = verify_cache_path();
  if (loaded_from != path) {
    memo.clear();
    loaded_from = path;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      VerifiedEntry e;
      std::string file;
      if (ls >> e.stamp.size >> e.stamp.mtime_ns >> e.sha256 && std::getline(ls >> std::ws, file)) {
        memo[file] = e;
      }
    }
  }
  return memo;
}

// Best effort: an unwritable cache only costs a rehash next time. One short O_APPEND write per
// entry, so concurrent processes do not clobber each other's lines.
void append_verify_cache(const std::string& abs, const VerifiedEntry& e) {
  try {
    make_directories(tessera_cache_dir());
  } catch (const Error&) {
    return;
  }
  std::ostringstream line;
  line << e.stamp.size << '\t' << e.stamp.mtime_ns << '\t' << e.sha256 << '\t' << abs << '\n';
  const std::string text = line.str();
  const int fd = ::open(verify_cache_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  const ssize_t n = ::write(fd, text.data(), text.size());
  (void)n;
  ::close(fd);
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------

const DatasetFile* DatasetInfo::find_file(const std::string& file) const {
  for (const DatasetFile& f : files) {
    if (f.name == file) return &f;
  }
  return nullptr;
}

const std::vector<DatasetInfo>& known_datasets() {
  static const std::vector<DatasetInfo> registry = build_registry();
  return registry;
}

const DatasetInfo& find_dataset(const std::string& name) {
  std::string names;
  for (const DatasetInfo& d : known_datasets()) {
    if (d.name == name) return d;
    names += (names.empty() ? "" : ", ") + d.name;
  }
  TESSERA_THROW(Config, "unknown dataset '" << name << "'; known datasets: " << names);
}

std::string tessera_cache_dir() {
  std::string dir = env_or_empty("TESSERA_CACHE_DIR");
  if (!dir.empty()) return dir;
  dir = env_or_empty("XDG_CACHE_HOME");
  if (!dir.empty()) return dir + "/tessera";
  std::string home = env_or_empty("HOME");
  if (home.empty()) {
    const passwd* pw = ::getpwuid(::getuid());
    if (pw != nullptr && pw->pw_dir != nullptr) home = pw->pw_dir;
  }
  return (home.empty() ? std::string(".") : home) + "/.cache/tessera";
}

std::vector<SearchDir> dataset_search_dirs(const std::string& dataset) {
  std::vector<SearchDir> dirs;
  const std::string data = env_or_empty("TESSERA_DATA");
  if (!data.empty()) dirs.push_back({data + "/" + dataset, "$TESSERA_DATA"});
  dirs.push_back({"../shared/datasets/" + dataset, "working directory"});
  const std::string src = env_or_empty("TESSERA_SOURCE_DIR");
  if (!src.empty()) dirs.push_back({src + "/../shared/datasets/" + dataset, "$TESSERA_SOURCE_DIR"});
  dirs.push_back({tessera_cache_dir() + "/" + dataset, "cache"});
  return dirs;
}

void verify_file(const std::string& path, const std::string& expected, VerifyPolicy policy) {
  if (policy == VerifyPolicy::Never || expected.empty()) return;
  const std::string abs = absolute_path(path);
  const FileStamp stamp = stamp_of(path);
  if (policy == VerifyPolicy::Cached) {
    std::lock_guard<std::mutex> lock(g_verify_mu);
    const std::map<std::string, VerifiedEntry>& memo = verify_memo();
    auto it = memo.find(abs);
    if (it != memo.end() && it->second.stamp == stamp && it->second.sha256 == expected) return;
  }
  const std::string actual = sha256_file(path);
  if (actual != expected) {
    TESSERA_THROW(Data, "checksum mismatch for '" << path << "': SHA-256 is " << actual
                                                  << ", expected " << expected
                                                  << " (corrupt or a different version)");
  }
  std::lock_guard<std::mutex> lock(g_verify_mu);
  const VerifiedEntry entry{stamp, actual};
  verify_memo()[abs] = entry;
  append_verify_cache(abs, entry);
}

std::string resolve_dataset_file(const std::string& dataset, const std::string& file,
                                 const ResolveOptions& options) {
  return resolve_dataset_file(find_dataset(dataset), file, options);
}

namespace {

// "exit N", with curl's or unzip's message when it printed one.
std::string exit_and_error(int rc, const std::string& err) {
  return "exit " + std::to_string(rc) + (err.empty() ? "" : ": " + err);
}

// Fetches `url` into the file `out` with curl. Returns "" on success, else why not (and `out`
// is removed).
std::string curl_download(const std::string& url, const std::string& out) {
  std::string err;
  const int rc = run_process(
      {"curl", "-fsSL", "--retry", "2", "--connect-timeout", "30", "-o", out, url}, "", out, err);
  if (rc == 0) return std::string();
  ::unlink(out.c_str());
  return "curl " + url + " failed (" + exit_and_error(rc, err) + ")";
}

// Downloads `f` into `dest` (temp file, verify, rename). Returns "" on success, else why not.
std::string download(const DatasetFile& f, const std::string& dest) {
  try {
    make_directories(parent_dir(dest));
  } catch (const Error& e) {
    return e.what();
  }
  // Unique per process and per call, so concurrent downloads never share a temporary file.
  static std::atomic<int> counter{0};
  const std::string pid = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const std::string tmp = dest + ".part." + pid;
  if (f.fetch == FetchKind::Direct) {
    const std::string why = curl_download(f.url, tmp);
    if (!why.empty()) return why;
  } else {
    const std::string zip = parent_dir(dest) + "/.download." + pid + ".zip";
    const std::string why = curl_download(f.url, zip);
    if (!why.empty()) return why;
    std::string err;
    const int rc = run_process({"unzip", "-p", zip, f.member}, tmp, zip, err);
    ::unlink(zip.c_str());
    if (rc != 0) {
      ::unlink(tmp.c_str());
      return "unzip -p " + f.url + " " + f.member + " failed (" + exit_and_error(rc, err) + ")";
    }
  }
  if (!f.sha256.empty()) {
    const std::string actual = sha256_file(tmp);
    if (actual != f.sha256) {
      ::unlink(tmp.c_str());
      return "downloaded " + f.url + " but its SHA-256 is " + actual + ", expected " + f.sha256;
    }
  }
  if (std::rename(tmp.c_str(), dest.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return "cannot move the download into '" + dest + "': " + why;
  }
  return std::string();
}

bool offline_env() {
  const std::string v = env_or_empty("TESSERA_OFFLINE");
  return !v.empty() && v != "0";
}

}  // namespace

std::string resolve_dataset_file(const DatasetInfo& dataset, const std::string& file,
                                 const ResolveOptions& options) {
  const DatasetFile* f = dataset.find_file(file);
  if (f == nullptr) {
    std::ostringstream os;
    os << "dataset '" << dataset.name << "' has no file '" << file << "'; its files: ";
    for (size_t i = 0; i < dataset.files.size() && i < 8; ++i)
      os << (i ? ", " : "") << dataset.files[i].name;
    if (dataset.files.size() > 8) os << ", ... (" << dataset.files.size() << " in all)";
    TESSERA_THROW(Config, os.str());
  }
  const std::vector<SearchDir> dirs = dataset_search_dirs(dataset.name);
  for (const SearchDir& d : dirs) {
    const std::string path = d.path + "/" + file;
    if (is_regular_file(path)) {
      verify_file(path, f->sha256, options.verify);
      return path;
    }
  }
  const std::string dest = tessera_cache_dir() + "/" + dataset.name + "/" + file;
  std::string why;
  if (options.download == DownloadPolicy::Never) {
    why = "downloads are disabled for this lookup";
  } else if (offline_env()) {
    why = "downloads are disabled ($TESSERA_OFFLINE is set)";
  } else if (f->fetch == FetchKind::Manual) {
    why = "this file is not downloaded automatically";
  } else {
    why = download(*f, dest);
    if (why.empty()) return dest;
    ::rmdir(parent_dir(dest).c_str());  // leave no empty folder behind (fails if not empty)
  }
  std::ostringstream os;
  os << "dataset '" << dataset.name << "' file '" << file << "' not found; looked in:";
  for (const SearchDir& d : dirs) os << "\n  " << d.path << "/" << file << " (" << d.origin << ")";
  os << "\nnot downloaded: " << why << "\nget it from " << f->url
     << (f->fetch == FetchKind::ZipMember ? " (member " + f->member + ")" : std::string())
     << " and place it at " << dest << " or under $TESSERA_DATA/" << dataset.name << "/";
  TESSERA_THROW(Data, os.str());
}

}  // namespace tessera
