// What a full disk does to what tessera writes. Each case runs in a child process whose file size
// limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes a write fail with EFBIG part-way, as ENOSPC does on a
// full disk: the write is an Io error naming the file and the reason, what was there before is
// intact, and nothing half-written or temporary is left (model files and checkpoints are tensor
// archives, written atomically; metrics.jsonl and stages.jsonl are appended lines; predictions
// stream through AtomicFileWriter).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

std::string scratch_dir(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "full_disk_test." + std::to_string(::getpid()) + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs `write` in a child limited to `limit` bytes per file; returns the message of the Error it
// threw ("" when it returned normally, "other: ..." for anything else).
std::string error_under_limit(int64_t limit, const std::function<void()>& write,
                              const std::string& dir) {
  const std::string out = dir + "/.child-result";
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::string result;
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{};
    ::getrlimit(RLIMIT_FSIZE, &lim);
    const rlim_t unlimited = lim.rlim_cur;
    lim.rlim_cur = static_cast<rlim_t>(limit);  // the soft limit: raised again below
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      write();
    } catch (const Error& e) {
      result = std::string(error_kind_name(e.kind())) + ": " + e.what();
    } catch (const std::exception& e) {
      result = std::string("other: ") + e.what();
    }
    lim.rlim_cur = unlimited;
    ::setrlimit(RLIMIT_FSIZE, &lim);
    FILE* f = std::fopen(out.c_str(), "w");
    if (f) {
      std::fputs(result.c_str(), f);
      std::fclose(f);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const std::string r = read_file(out);
  fs::remove(out);
  return r;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST(FullDisk, AnAppendedLineIsWholeOrAbsent) {
  const std::string dir = scratch_dir("append");
  const std::string path = dir + "/metrics.jsonl";
  append_line(path, R"({"epoch":1})");
  append_line(path, R"({"epoch":2})");
  const std::string before = read_file(path);
  // Room for 10 more bytes: the 200-byte line is written part-way, then fails.
  const std::string msg = error_under_limit(
      static_cast<int64_t>(before.size()) + 10,
      [&] { append_line(path, R"({"epoch":3,"pad":")" + std::string(180, 'x') + "\"}"); }, dir);
  EXPECT_EQ(msg.rfind("I/O error: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("too large"), std::string::npos) << msg;  // strerror(EFBIG)
  EXPECT_EQ(read_file(path), before);  // the torn part was taken back
  append_line(path, R"({"epoch":3})");  // and the file goes on
  EXPECT_EQ(read_file(path), before + "{\"epoch\":3}\n");
}

TEST(FullDisk, TruncateLinesDropsATornLastLine) {
  const std::string dir = scratch_dir("truncate");
  const std::string path = dir + "/metrics.jsonl";
  write_file_atomic(path, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epo");
  truncate_lines(path, 5);
  EXPECT_EQ(read_file(path), "{\"epoch\":1}\n{\"epoch\":2}\n");
  truncate_lines(path, 1);
  EXPECT_EQ(read_file(path), "{\"epoch\":1}\n");
  truncate_lines(path, 0);
  EXPECT_EQ(read_file(path), "");
  fs::remove(path);
  truncate_lines(path, 1);  // a missing file: nothing to keep, no error
  EXPECT_FALSE(fs::exists(path));
}

TEST(FullDisk, AModelOrCheckpointArchiveIsWholeOrTheOldOne) {
  const std::string dir = scratch_dir("archive");
  const std::string path = dir + "/checkpoint.tsc";
  save_archive(path, R"({"epoch":1})", {{"w", Tensor::host_from<float>({4}, {1, 2, 3, 4})}});
  const std::string before = read_file(path);
  std::vector<float> big(1 << 16, 0.5f);  // 256 KiB of weights against a 64 KiB limit
  const std::string msg = error_under_limit(
      64 * 1024,
      [&] {
        save_archive(path, R"({"epoch":2})",
                     {{"w", Tensor::host_from<float>({static_cast<int64_t>(big.size())}, big)}});
      },
      dir);
  EXPECT_EQ(msg.rfind("I/O error: ", 0), 0u) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(load_archive(path).meta_json, R"({"epoch":1})");
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"checkpoint.tsc"});  // no temporary file
}

TEST(FullDisk, AStreamedOutputIsWholeOrAbsent) {
  const std::string dir = scratch_dir("stream");
  const std::string path = dir + "/scores.csv";
  const std::string msg = error_under_limit(
      64 * 1024,
      [&] {
        AtomicFileWriter w(path);
        const std::string row = "12345,0.987654321\n";
        for (int i = 0; i < 20000; ++i) w.write(row);  // 360 KB
        w.commit();
      },
      dir);
  EXPECT_EQ(msg.rfind("I/O error: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("scores.csv"), std::string::npos) << msg;
  EXPECT_TRUE(files_in(dir).empty());  // neither the output nor its temporary file
}

}  // namespace
