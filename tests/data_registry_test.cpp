// SHA-256, the dataset registry's lookup order, verification, download and its messages.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "tests/data_test_util.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// The names in `dir`, sorted, one a line (what `ls -A` prints).
std::string list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += n + "\n";
  return out;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjkl"
                       "mnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  Sha256 h;  // one million 'a', fed in uneven pieces
  const std::string chunk(999, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Every length around the padding boundaries.
  for (size_t n : {55, 56, 57, 63, 64, 65, 119, 120, 121}) {
    Sha256 a, b;
    const std::string s(n, 'x');
    a.update(s);
    for (char c : s) b.update(&c, 1);
    EXPECT_EQ(a.hex_digest(), b.hex_digest()) << n;
  }
}

TEST(Sha256, MatchesSha256sumOnRealFiles) {
  if (const std::string missing = test::missing_tools({"sha256sum"}); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  if (const std::string missing = test::missing_dataset("uci-adult", {"adult.names"});
      !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  TempDir dir;
  std::string bytes;
  for (int i = 0; i < 300000; ++i) bytes += static_cast<char>((i * 7919) & 0xFF);
  const std::string p = write_file(dir.file("bytes.bin"), bytes);
  const std::string ref = scheduler::find_local_dataset_file("uci-adult", "adult.names");
  for (const std::string& f : {p, ref}) {
    const std::string out = test::run_program({"sha256sum", f}).out;
    ASSERT_GE(out.size(), 64u) << f;
    EXPECT_EQ(sha256_file(f), out.substr(0, 64)) << f;
  }
}

// Saves, sets and restores the registry's environment variables and working directory.
class RegistryEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : kVars) {
      const char* v = std::getenv(n);
      saved_.emplace_back(n, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
    char buf[4096];
    cwd_ = ::getcwd(buf, sizeof(buf)) ? buf : ".";
    // A working directory inside the temporary one, so that ../shared/datasets cannot exist
    // (the temporary directory's own parent, e.g. /tmp, may well hold a shared/ folder).
    ASSERT_EQ(::mkdir((dir_.path() + "/wd").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_.path() + "/wd/cwd").c_str(), 0755), 0);
    ASSERT_EQ(::chdir((dir_.path() + "/wd/cwd").c_str()), 0);
    ::setenv("TESSERA_CACHE_DIR", (dir_.path() + "/cache").c_str(), 1);
  }
  void TearDown() override {
    (void)::chdir(cwd_.c_str());
    for (auto& [n, v] : saved_) {
      if (v) {
        ::setenv(n.c_str(), v->c_str(), 1);
      } else {
        ::unsetenv(n.c_str());
      }
    }
  }
  static constexpr const char* kVars[] = {"TESSERA_DATA", "TESSERA_SOURCE_DIR", "TESSERA_CACHE_DIR",
                                          "TESSERA_OFFLINE", "XDG_CACHE_HOME"};
  TempDir dir_;
  std::string cwd_;
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

void make_dir(const std::string& p) {
  ::mkdir(p.c_str(), 0755);
}

TEST_F(RegistryEnv, KnownDatasetsAreRegistered) {
  for (const char* name : {"uci-adult", "ctr-format-samples", "ml-latest-small", "tinyshakespeare",
                           "sst2", "sms-spam", "fsdd", "sklearn-digits"}) {
    const DatasetInfo& d = find_dataset(name);
    EXPECT_FALSE(d.files.empty()) << name;
    for (const DatasetFile& f : d.files) {
      EXPECT_EQ(f.sha256.size(), 64u) << name << "/" << f.name;
      EXPECT_EQ(f.url.rfind("https://", 0), 0u) << f.url;
    }
  }
  const DatasetInfo& adult = find_dataset("uci-adult");
  ASSERT_NE(adult.find_file("adult.data"), nullptr);
  EXPECT_EQ(adult.find_file("adult.data")->url,
            "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data");
  EXPECT_EQ(find_dataset("fsdd").files.size(), 3000u);
  try {
    find_dataset("imagenet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known datasets: uci-adult"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(resolve_dataset_file("uci-adult", "adult.zip"), Error);
}

TEST_F(RegistryEnv, EveryRegisteredChecksumMatchesTheSharedMirror) {
  // The registry's checksums against the mirror's SHA256SUMS file (not the files: fast).
  std::ifstream sums(testing::shared_datasets_dir() + "/SHA256SUMS");
  ASSERT_TRUE(sums.good());
  std::map<std::string, std::string> ref;
  std::string sha, path;
  while (sums >> sha >> path) ref[path.substr(2)] = sha;  // "./uci-adult/adult.data"
  int64_t checked = 0;
  for (const DatasetInfo& d : known_datasets()) {
    for (const DatasetFile& f : d.files) {
      auto it = ref.find(d.name + "/" + f.name);
      ASSERT_NE(it, ref.end()) << d.name << "/" << f.name;
      EXPECT_EQ(f.sha256, it->second) << d.name << "/" << f.name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 3000);
}

TEST_F(RegistryEnv, LookupOrderAndVerification) {
  const std::string content = "hello tessera\n";
  DatasetInfo d{"toy",
                "",
                "",
                {DatasetFile{"a.txt", sha256_hex(content), "file:///nonexistent/a.txt",
                             FetchKind::Direct, ""}}};
  const std::string data = dir_.path() + "/data";
  const std::string src = dir_.path() + "/src";
  const std::string shared = dir_.path() + "/shared/datasets/toy";
  const std::string cache = dir_.path() + "/cache/toy";
  for (const std::string& p :
       {data, data + "/toy", src, dir_.path() + "/shared", dir_.path() + "/shared/datasets", shared,
        dir_.path() + "/cache", cache}) {
    make_dir(p);
  }
  ::setenv("TESSERA_DATA", data.c_str(), 1);
  ::setenv("TESSERA_SOURCE_DIR", src.c_str(), 1);  // src/../shared/datasets = shared
  ResolveOptions offline;
  offline.download = DownloadPolicy::Never;

  write_file(cache + "/a.txt", content);
  EXPECT_EQ(resolve_dataset_file(d, "a.txt", offline), cache + "/a.txt");
  write_file(shared + "/a.txt", content);
  EXPECT_EQ(resolve_dataset_file(d, "a.txt", offline), src + "/../shared/datasets/toy/a.txt");
  write_file(data + "/toy/a.txt", content);
  EXPECT_EQ(resolve_dataset_file(d, "a.txt", offline), data + "/toy/a.txt");

  // The working directory's ../shared/datasets comes before $TESSERA_SOURCE_DIR's.
  ::unsetenv("TESSERA_DATA");
  make_dir(dir_.path() + "/work");
  ASSERT_EQ(::chdir((dir_.path() + "/work").c_str()), 0);
  EXPECT_EQ(resolve_dataset_file(d, "a.txt", offline), "../shared/datasets/toy/a.txt");

  // A corrupt file is an error naming both checksums; the verified result is cached on disk.
  write_file(shared + "/a.txt", "tampered\n");
  try {
    resolve_dataset_file(d, "a.txt", offline);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(sha256_hex(content)), std::string::npos);
  }
  std::ifstream cache_file(dir_.path() + "/cache/verified-sha256.tsv");
  std::string cached((std::istreambuf_iterator<char>(cache_file)),
                     std::istreambuf_iterator<char>());
  EXPECT_NE(cached.find(sha256_hex(content)), std::string::npos);
  EXPECT_NE(cached.find("/cache/toy/a.txt"), std::string::npos);
}

TEST_F(RegistryEnv, NotFoundListsEveryPlace) {
  ::setenv("TESSERA_DATA", (dir_.path() + "/data").c_str(), 1);
  ::setenv("TESSERA_SOURCE_DIR", (dir_.path() + "/src").c_str(), 1);
  ResolveOptions offline;
  offline.download = DownloadPolicy::Never;
  try {
    resolve_dataset_file("uci-adult", "adult.data", offline);
    FAIL();
  } catch (const Error& e) {
    const std::string c = dir_.path() + "/cache";
    const std::string expected =
        "dataset 'uci-adult' file 'adult.data' not found; looked in:\n"
        "  " +
        dir_.path() +
        "/data/uci-adult/adult.data ($TESSERA_DATA)\n"
        "  ../shared/datasets/uci-adult/adult.data (working directory)\n"
        "  " +
        dir_.path() +
        "/src/../shared/datasets/uci-adult/adult.data ($TESSERA_SOURCE_DIR)\n"
        "  " +
        c +
        "/uci-adult/adult.data (cache)\n"
        "not downloaded: downloads are disabled for this lookup\n"
        "get it from https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data "
        "and place it at " +
        c + "/uci-adult/adult.data or under $TESSERA_DATA/uci-adult/";
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()), expected);
  }
  ::setenv("TESSERA_OFFLINE", "1", 1);
  try {
    resolve_dataset_file("uci-adult", "adult.data");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("$TESSERA_OFFLINE is set"), std::string::npos);
  }
  ::unsetenv("TESSERA_OFFLINE");
  try {
    resolve_dataset_file("sst2", "train.tsv");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not downloaded automatically"), std::string::npos);
  }
}

TEST_F(RegistryEnv, DownloadVerifiesAndRenames) {
  if (const std::string missing = test::missing_tools({"curl"}); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  // A file:// URL exercises the real download path without a network.
  const std::string content = "downloaded bytes\n";
  const std::string origin = write_file(dir_.path() + "/origin.txt", content);
  DatasetInfo d{
      "toy",
      "",
      "",
      {DatasetFile{"sub/a.txt", sha256_hex(content), "file://" + origin, FetchKind::Direct, ""},
       DatasetFile{"bad.txt", sha256_hex("something else"), "file://" + origin, FetchKind::Direct,
                   ""},
       DatasetFile{"gone.txt", "", "file://" + dir_.path() + "/nope.txt", FetchKind::Direct, ""}}};
  const std::string got = resolve_dataset_file(d, "sub/a.txt");
  EXPECT_EQ(got, dir_.path() + "/cache/toy/sub/a.txt");
  std::ifstream in(got);
  std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, content);
  // Second time: found in the cache.
  EXPECT_EQ(resolve_dataset_file(d, "sub/a.txt"), got);

  try {
    resolve_dataset_file(d, "bad.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("its SHA-256 is " + sha256_hex(content)),
              std::string::npos)
        << e.what();
  }
  EXPECT_NE(::access((dir_.path() + "/cache/toy/bad.txt").c_str(), F_OK),
            0);  // nothing left behind
  try {
    resolve_dataset_file(d, "gone.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("curl file://"), std::string::npos) << e.what();
  }
  // No temporary files remain in the cache folder.
  const std::string left = list_dir(dir_.path() + "/cache/toy");
  EXPECT_EQ(left, "sub\n");
}

TEST_F(RegistryEnv, ZipMemberDownload) {
  if (const std::string missing = test::missing_tools({"curl", "zip", "unzip"}); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  const std::string content = "member bytes\n";
  make_dir(dir_.path() + "/z");
  make_dir(dir_.path() + "/z/inner");
  write_file(dir_.path() + "/z/inner/m.csv", content);
  test::ProgramOptions in_z;
  in_z.cwd = dir_.path() + "/z";
  const test::ProgramResult zip =
      test::run_program({"zip", "-q", "-r", "../arch.zip", "inner"}, in_z);
  ASSERT_EQ(zip.status, 0) << zip.err;
  DatasetInfo d{"toy",
                "",
                "",
                {DatasetFile{"m.csv", sha256_hex(content), "file://" + dir_.path() + "/arch.zip",
                             FetchKind::ZipMember, "inner/m.csv"}}};
  const std::string got = resolve_dataset_file(d, "m.csv");
  std::ifstream in(got);
  std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, content);
  EXPECT_EQ(list_dir(dir_.path() + "/cache/toy"), "m.csv\n");
}

TEST_F(RegistryEnv, RealMirrorIsFoundAndVerified) {
  ::setenv("TESSERA_SOURCE_DIR", TESSERA_SOURCE_DIR, 1);
  ResolveOptions o;
  o.download = DownloadPolicy::Never;
  o.verify = VerifyPolicy::Always;
  const std::string p = resolve_dataset_file("uci-adult", "adult.test", o);
  EXPECT_EQ(p, std::string(TESSERA_SOURCE_DIR) + "/../shared/datasets/uci-adult/adult.test");
  o.verify = VerifyPolicy::Cached;
  EXPECT_EQ(
      resolve_dataset_file("ctr-format-samples", "criteo_sample.txt", o),
      std::string(TESSERA_SOURCE_DIR) + "/../shared/datasets/ctr-format-samples/criteo_sample.txt");
}

}  // namespace
}  // namespace tessera
