// tests/check_skips.sh, the judge of skipped tests in CI and (with --on-gpu) in
// tools/gpu-check.sh, fed the JUnit fixtures in tests/fixtures/check_skips/. The defect it guards
// against: gpu-check once failed every run on a GPU machine because it counted any skipped test
// whose *name* mentions cuda or gpu, including a check of the no-GPU path that skips because a GPU
// is usable and a case that exists for the emulation build only. Skips are judged by their
// message instead (tests/support/gpu_skips.h).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/gpu_skips.h"
#include "tests/support/run_program.h"

namespace tessera::test {
namespace {

const std::string kScript = std::string(TESSERA_SOURCE_DIR) + "/tests/check_skips.sh";
const std::string kFixtures = std::string(TESSERA_SOURCE_DIR) + "/tests/fixtures/check_skips/";

struct Judged {
  int status = -1;
  std::string out;
  std::map<std::string, std::string> kind;  // test label -> kind
  std::map<std::string, bool> allowed;      // test label -> allowed
  int not_allowed = -1;
};

// Runs check_skips.sh [--on-gpu] --json TMP FIXTURE and reads the JSON it wrote.
Judged judge(const std::string& fixture, bool on_gpu) {
  char tmpl[] = "/tmp/check-skips-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  if (fd >= 0) ::close(fd);
  std::vector<std::string> argv{"bash", kScript};
  if (on_gpu) argv.push_back("--on-gpu");
  argv.insert(argv.end(), {"--json", tmpl, kFixtures + fixture});
  const ProgramResult r = run_program(argv);
  Judged j;
  j.status = r.status;
  j.out = r.out + r.err;
  std::ifstream f(tmpl);
  std::stringstream text;
  text << f.rdbuf();
  std::remove(tmpl);
  rapidjson::Document d;
  d.Parse(text.str().c_str());
  EXPECT_FALSE(d.HasParseError()) << "no JSON from check_skips.sh: " << j.out;
  if (d.HasParseError() || !d.IsObject()) return j;
  EXPECT_EQ(d["on_gpu"].GetBool(), on_gpu);
  j.not_allowed = d["not_allowed"].GetInt();
  for (const auto& s : d["skips"].GetArray()) {
    j.kind[s["test"].GetString()] = s["kind"].GetString();
    j.allowed[s["test"].GetString()] = s["allowed"].GetBool();
  }
  return j;
}

TEST(CheckSkips, OnAGpuMachineSkipsForTheGpuBeingThereOrAnotherBuildDoNotCount) {
  const Judged j = judge("gpu_machine_clean.xml", /*on_gpu=*/true);
  EXPECT_EQ(j.status, 0) << j.out;
  EXPECT_EQ(j.not_allowed, 0) << j.out;
  ASSERT_EQ(j.kind.size(), 3u) << j.out;
  const std::string present = "BackendSelection.CudaWithoutAGpuIsABackendErrorThatSaysWhy";
  const std::string emu_only = "CnnFrames.EmulatedCudaBackendMatchesTheHostBackend";
  EXPECT_EQ(j.kind.at(present), "gpu-present");
  EXPECT_TRUE(j.allowed.at(present));
  EXPECT_EQ(j.kind.at(emu_only), "other");
  EXPECT_TRUE(j.allowed.at(emu_only));
  EXPECT_EQ(j.kind.at("TextclassCuda.TrainsOnTheGpuLikeTheHost"), "other");
}

TEST(CheckSkips, OnAGpuMachineACaseThatNeedsADeviceMustNotSkip) {
  const Judged j = judge("gpu_machine_cuda_skipped.xml", /*on_gpu=*/true);
  EXPECT_EQ(j.status, 1) << j.out;
  EXPECT_EQ(j.not_allowed, 4) << j.out;
  const std::string in_process =
      "lstm_parity_cuda > Lstm/LstmCase.ParityWithTheHost/unidirectional_1layer";
  ASSERT_EQ(j.kind.count("Backends/EmbeddingParity.Forward/cuda"), 1u) << j.out;
  ASSERT_EQ(j.kind.count(in_process), 1u) << j.out;
  EXPECT_EQ(j.kind.at("Backends/EmbeddingParity.Forward/cuda"), "needs-gpu");
  EXPECT_FALSE(j.allowed.at("Backends/EmbeddingParity.Forward/cuda"));
  EXPECT_EQ(j.kind.at(in_process), "needs-gpu");
  EXPECT_FALSE(j.allowed.at(in_process));
  // In the same process, a check of the no-GPU path skipped: allowed.
  EXPECT_TRUE(j.allowed.at("lstm_parity_cuda > BackendSelection.AutoFallsBackToTheHostBackend"));
  // A GPU skip that does not say which kind it is cannot be told apart: it fails, naming the fix.
  EXPECT_EQ(j.kind.at("OldStyle.GpuSkipWithoutAKind"), "gpu-unclassified");
  EXPECT_FALSE(j.allowed.at("OldStyle.GpuSkipWithoutAKind"));
  EXPECT_NE(j.out.find("TESSERA_NEEDS_GPU_SKIP"), std::string::npos) << j.out;
  EXPECT_EQ(j.kind.at("CudaFixture.Trains"), "setup-failed");
  EXPECT_FALSE(j.allowed.at("CudaFixture.Trains"));
  EXPECT_TRUE(j.allowed.at("DigitsCuda.Evaluates"));
}

TEST(CheckSkips, WithoutAGpuEveryGpuSkipIsAllowedAndNothingElse) {
  const Judged j = judge("gpu_machine_cuda_skipped.xml", /*on_gpu=*/false);
  EXPECT_EQ(j.status, 1) << j.out;
  EXPECT_EQ(j.not_allowed, 2) << j.out;
  for (const auto& [test, kind] : j.kind) {
    const bool gpu = kind == "needs-gpu" || kind == "gpu-present" || kind == "gpu-unclassified";
    EXPECT_EQ(j.allowed.at(test), gpu) << test << " (" << kind << ")";
  }
  EXPECT_EQ(j.kind.at("DigitsCuda.Evaluates"), "other");
  EXPECT_EQ(j.kind.at("CudaFixture.Trains"), "setup-failed");
  // The emulation-only skip has no GPU phrase: CI (no GPU) refuses it as it refuses a missing
  // dataset.
  const Judged clean = judge("gpu_machine_clean.xml", /*on_gpu=*/false);
  EXPECT_EQ(clean.status, 1) << clean.out;
  EXPECT_FALSE(clean.allowed.at("CnnFrames.EmulatedCudaBackendMatchesTheHostBackend"));
}

// The phrases the script matches are the ones the helpers write.
TEST(CheckSkips, TheHelpersWriteThePhrasesTheScriptMatches) {
  std::ifstream f(kScript);
  std::stringstream text;
  text << f.rdbuf();
  const std::string script = text.str();
  EXPECT_NE(script.find(std::string("GPU_PREFIX = \"") + kGpuSkipPrefix + "\""), std::string::npos);
  EXPECT_NE(script.find(std::string("GPU_PREFIX + \"") + kNeedsGpuPhrase + "\""),
            std::string::npos);
  EXPECT_NE(script.find(std::string("GPU_PREFIX + \"") + kGpuPresentPhrase + "\""),
            std::string::npos);
}

TEST(CheckSkips, AnUnreadableFileOrUnknownOptionIsAUsageError) {
  EXPECT_EQ(run_program({"bash", kScript, kFixtures + "no-such.xml"}).status, 2);
  EXPECT_EQ(
      run_program({"bash", kScript, "--on-the-moon", kFixtures + "gpu_machine_clean.xml"}).status,
      2);
  EXPECT_EQ(run_program({"bash", kScript}).status, 2);
}

}  // namespace
}  // namespace tessera::test
