// Replays inputs through one fuzz target without libFuzzer: linked with each
// tests/fuzz/fuzz_<name>.cpp into fuzz_replay_<name> in every build with tests (gcc, and the
// ASan+UBSan build), and run by ctest as Fuzz.<name> over the target's seed corpus and its
// regression inputs, so every CI run replays them all.
//
//   fuzz_replay_<name> [--optional] PATH...
// Each PATH is a file or a folder (its regular files, recursively, in sorted order). A missing
// PATH is an error unless --optional came before it. Fails when no input at all was found (an
// empty corpus is a mistake, not a pass). A finding aborts inside the target, as under libFuzzer.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

bool read_bytes(const fs::path& path, std::vector<uint8_t>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

// The regular files under `root` (or `root` itself), sorted so runs are reproducible.
std::vector<fs::path> inputs_of(const fs::path& root) {
  std::vector<fs::path> files;
  if (fs::is_regular_file(root)) {
    files.push_back(root);
  } else {
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  size_t replayed = 0;
  bool optional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--optional") {
      optional = true;
      continue;
    }
    const fs::path root(arg);
    if (!fs::exists(root)) {
      if (optional) continue;
      std::fprintf(stderr, "%s: no such file or folder\n", arg.c_str());
      return 2;
    }
    size_t here = 0;
    for (const fs::path& file : inputs_of(root)) {
      std::vector<uint8_t> bytes;
      if (!read_bytes(file, bytes)) {
        std::fprintf(stderr, "%s: cannot read\n", file.c_str());
        return 2;
      }
      std::fprintf(stderr, "replay %s (%zu bytes)\n", file.c_str(), bytes.size());
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++here;
    }
    std::printf("%s: %zu inputs replayed\n", arg.c_str(), here);
    replayed += here;
  }
  if (replayed == 0) {
    std::fprintf(stderr, "no inputs found: a fuzz target's corpus must not be empty\n");
    return 1;
  }
  std::printf("%zu inputs replayed, no finding\n", replayed);
  return 0;
}
