#pragma once
// When a test may skip, and how. A skip is not a result, so there are two kinds only:
//
//   TESSERA_GPU_SKIP(reason)       the case needs a usable CUDA device (or, for the few checks
//                                  of the no-GPU path, its absence). The message starts with
//                                  kGpuSkipPrefix, which tests/check_skips.sh accepts. Prefer the
//                                  two kinds in tests/support/gpu_skips.h: gpu-check.sh on a GPU
//                                  machine fails a plain TESSERA_GPU_SKIP (it cannot tell which
//                                  kind it is).
//   TESSERA_SKIP_OR_FAIL(reason)   a dataset or an outside tool is missing. A skip on a
//                                  developer's machine; a failure when TESSERA_REQUIRE_DATA=1
//                                  (CI), so nothing CI is meant to test can silently not run.
//
// Both work in TEST bodies and fixtures' SetUp (they return from the enclosing void function).
// Not in SetUpTestSuite: GoogleTest (1.12) runs the suite's tests as if nothing happened after a
// skip there, and prints them as "[  SKIPPED ]" after a failure there, which ctest then reports
// as skipped. Record what is missing there and call TESSERA_SKIP_OR_FAIL from SetUp; called
// outside a test, the macro ends the process with a failure (fail_outside_a_test).
//
// Whether a dataset is here is decided with a lookup that cannot fail for any other reason
// (missing_dataset: scheduler::find_local_dataset_file, which never downloads or verifies), so
// the code under test (resolve_dataset_file's checksum, the readers) runs outside any try/catch
// and its errors fail the test.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string>

#include "host/data/registry.h"
#include "host/scheduler/stage_helpers.h"
#include "tests/support/run_program.h"

namespace tessera::test {

// Every GPU skip's message starts with this (tests/check_skips.sh looks for it).
inline constexpr const char* kGpuSkipPrefix = "GPU skip: ";

// The switch CI sets: a missing dataset or tool fails instead of skipping.
inline constexpr const char* kRequireDataEnv = "TESSERA_REQUIRE_DATA";

inline bool data_required() {
  const char* v = std::getenv(kRequireDataEnv);
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

inline std::string require_data_failure(const std::string& reason) {
  return std::string(kRequireDataEnv) +
         " is set, so a missing dataset or tool is a failure: " + reason;
}

// TESSERA_SKIP_OR_FAIL outside a test (in SetUpTestSuite), where neither a skip nor a failure
// would be reported as what it is (see above): say why and end the process with a failure.
[[noreturn]] inline void fail_outside_a_test(const char* file, int line,
                                             const std::string& reason) {
  std::fprintf(stderr,
               "%s:%d: Failure\nTESSERA_SKIP_OR_FAIL called outside a test (in SetUpTestSuite?): "
               "record the reason there and call it from SetUp. The reason: %s\n",
               file, line, reason.c_str());
  std::fflush(nullptr);
  std::_Exit(1);
}

// "" when every file of `dataset` is on this machine (TESSERA_DATA, ../shared/datasets beside
// the working directory or the source tree, the cache: host/data/registry.h), else why not.
// Never downloads and never verifies: that is the code under test's job.
inline std::string missing_dataset(const std::string& dataset,
                                   std::initializer_list<const char*> files) {
  // ctest sets TESSERA_SOURCE_DIR; a direct run of the test binary may not.
  ::setenv("TESSERA_SOURCE_DIR", TESSERA_SOURCE_DIR, /*overwrite=*/0);
  for (const char* f : files) {
    if (scheduler::find_local_dataset_file(dataset, f).empty()) {
      std::string where;
      for (const SearchDir& d : dataset_search_dirs(dataset))
        where += (where.empty() ? "" : ", ") + d.path;
      return "dataset " + dataset + " is not on this machine (" + f + " not in " + where + ")";
    }
  }
  return "";
}

// "" when the folder holds every file, else which one is missing (datasets outside the registry,
// e.g. Debian's dataset-fashion-mnist).
inline std::string missing_files(const std::string& dir, std::initializer_list<const char*> files,
                                 const std::string& what) {
  for (const char* f : files) {
    struct stat st {};
    if (::stat((dir + "/" + f).c_str(), &st) != 0)
      return what + " is not on this machine (" + dir + "/" + f + " not found)";
  }
  return "";
}

// Whether `name` is an executable on PATH (what `command -v` answers, without a shell).
inline bool tool_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    const std::string dir = colon > start ? dirs.substr(start, colon - start) : ".";
    const std::string p = dir + "/" + name;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0)
      return true;
    start = colon + 1;
  }
  return false;
}

// "" when every tool is on PATH, else which are not.
inline std::string missing_tools(std::initializer_list<const char*> tools) {
  std::string missing;
  for (const char* t : tools)
    if (!tool_on_path(t)) missing += (missing.empty() ? "" : ", ") + std::string(t);
  return missing.empty() ? "" : "not installed: " + missing;
}

// "" when the tessera CLI was built beside the tests, else why not (building one test target
// alone does not build it).
inline std::string missing_cli(const std::string& binary) {
  struct stat st {};
  if (::stat(binary.c_str(), &st) == 0 && ::access(binary.c_str(), X_OK) == 0) return "";
  return "the tessera binary is not built (" + binary + "): cmake --build BUILD --target tessera";
}

// "" when a python3 with numpy runs here, and `python` names it (Debian's /usr/bin/python3
// first: python3-numpy installs for it, whatever python3 comes first on PATH); else why not.
inline std::string missing_numpy(std::string* python) {
  *python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  const ProgramResult r = run_program({*python, "-c", "import numpy"});
  if (r.status == 0) return "";
  return "no python3 with numpy (" + *python + " -c 'import numpy' exited " +
         std::to_string(r.status) + (r.err.empty() ? "" : ": " + r.err) + ")";
}

// Runs a fixture's shared set-up (SetUpTestSuite) and returns what it threw, "" when nothing.
// SetUp then fails every test with it: an exception or assertion failure inside SetUpTestSuite
// would show up in ctest as skipped tests.
inline std::string suite_setup_error(const std::function<void()>& setup) {
  try {
    setup();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
  return "";
}

}  // namespace tessera::test

// A dataset or tool is missing: skip, or fail under TESSERA_REQUIRE_DATA=1. `reason` is a
// std::string expression.
#define TESSERA_SKIP_OR_FAIL(reason)                                                  \
  do {                                                                                \
    const std::string tessera_skip_reason_ = (reason);                                \
    if (::testing::UnitTest::GetInstance()->current_test_info() == nullptr)           \
      ::tessera::test::fail_outside_a_test(__FILE__, __LINE__, tessera_skip_reason_); \
    if (::tessera::test::data_required())                                             \
      FAIL() << ::tessera::test::require_data_failure(tessera_skip_reason_);          \
    GTEST_SKIP() << tessera_skip_reason_;                                             \
  } while (0)

// The case depends on a GPU (see kGpuSkipPrefix).
#define TESSERA_GPU_SKIP(reason) GTEST_SKIP() << ::tessera::test::kGpuSkipPrefix << (reason)
