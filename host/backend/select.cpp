// Run-time backend selection: CUDA when a GPU is present (or asked for), host otherwise.
#include <cstdlib>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#if TESSERA_HAVE_CUDA || TESSERA_HAVE_CUDA_EMULATION
// In the emulation build this is the same CudaBackend, compiled against the emulated runtime and
// the vendor stand-ins (cuda/emu/README.md).
#include "cuda/cuda_backend.h"
#endif

namespace tessera {

bool cuda_available(std::string* why_not) {
#if TESSERA_HAVE_CUDA
  std::string why;
  int n = cuda_backend::device_count(&why);
  if (n > 0) return true;
  if (why_not) *why_not = why.empty() ? "no CUDA device found" : why;
  return false;
#else
  if (why_not)
    *why_not =
        "this build of tessera has no CUDA backend (configured with TESSERA_WITH_CUDA=OFF or "
        "without nvcc)";
  return false;
#endif
}

int cuda_device_count() {
#if TESSERA_HAVE_CUDA
  std::string why;
  return cuda_backend::device_count(&why);
#else
  return 0;
#endif
}

namespace {

// N of "<prefix>N" (the spec starts with prefix); `form` names the expected spelling.
int device_index(const std::string& spec, size_t prefix, const char* form) {
  const std::string num = spec.substr(prefix);
  char* end = nullptr;
  const long v = std::strtol(num.c_str(), &end, 10);
  if (num.empty() || *end != '\0' || v < 0 || v > 1024)
    TESSERA_THROW(Usage, "device '" << spec << "': expected " << form << " with N a device index");
  return static_cast<int>(v);
}

}  // namespace

std::vector<std::string> cuda_device_specs() {
  std::vector<std::string> specs;
#if TESSERA_HAVE_CUDA
  for (int i = 0; i < cuda_device_count(); ++i) specs.push_back("cuda:" + std::to_string(i));
#elif TESSERA_HAVE_CUDA_EMULATION
  std::string why;
  for (int i = 0; i < cuda_backend::device_count(&why); ++i)
    specs.push_back("cuda-emu:" + std::to_string(i));
#endif
  return specs;
}

std::unique_ptr<Backend> make_backend(const std::string& spec) {
  if (spec == "cpu" || spec == "host") return make_host_backend();
  if (spec == "auto") {
    if (cuda_available()) {
#if TESSERA_HAVE_CUDA
      return cuda_backend::create(cuda_backend::current_device());
#endif
    }
    return make_host_backend();
  }
  if (spec == "cuda-emu" || spec.rfind("cuda-emu:", 0) == 0) {
    // No index: the current device (0 unless this process picked another: one GPU per rank).
    const int index = spec.size() > 8 ? device_index(spec, 9, "cuda-emu:N") : -1;
#if TESSERA_HAVE_CUDA_EMULATION
    // The CUDA backend on emulated device N (TESSERA_EMU_DEVICE_COUNT devices, default 2).
    return cuda_backend::create(index >= 0 ? index : cuda_backend::current_device());
#else
    (void)index;
    TESSERA_THROW(
        Backend,
        "device '" << spec
                   << "' (the CUDA backend on the CPU emulator) needs a build "
                      "configured with -DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF");
#endif
  }
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    // "cuda:" with or without a number; none: the current device (0 unless this process picked
    // another: one GPU per rank)
    const int index = spec.size() >= 5 ? device_index(spec, 5, "cuda:N") : -1;
    std::string why;
    if (!cuda_available(&why))
      TESSERA_THROW(Backend, "device '" << spec << "' was asked for, but CUDA cannot be used: "
                                        << why << ". Use --device cpu.");
#if TESSERA_HAVE_CUDA
    return cuda_backend::create(index >= 0 ? index : cuda_backend::current_device());
#else
    (void)index;
#endif
  }
  TESSERA_THROW(
      Usage,
      "device '" << spec << "' is not one of: auto, cpu, cuda, cuda:N, cuda-emu, cuda-emu:N");
}

}  // namespace tessera
