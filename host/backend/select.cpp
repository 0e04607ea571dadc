// Run-time backend selection: CUDA when a GPU is present (or asked for), host otherwise.
#include <cstdlib>
#include <string>

#include "host/backend/backend.h"
#if TESSERA_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif
#if TESSERA_HAVE_CUDA_EMULATION
#include "cuda/emu/emu_backend.h"
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

std::unique_ptr<Backend> make_backend(const std::string& spec) {
  if (spec == "cpu" || spec == "host") return make_host_backend();
  if (spec == "auto") {
    if (cuda_available()) {
#if TESSERA_HAVE_CUDA
      return cuda_backend::create(0);
#endif
    }
    return make_host_backend();
  }
  if (spec == "cuda-emu") {
#if TESSERA_HAVE_CUDA_EMULATION
    return emu::create_backend();
#else
    TESSERA_THROW(Backend,
                  "device 'cuda-emu' (the CUDA kernels on the CPU emulator) needs a build "
                  "configured with -DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF");
#endif
  }
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec.size() >= 5) {  // "cuda:" with or without a number
      const std::string num = spec.substr(5);
      char* end = nullptr;
      long v = std::strtol(num.c_str(), &end, 10);
      if (num.empty() || *end != '\0' || v < 0)
        TESSERA_THROW(Usage, "device '" << spec << "': expected cuda:N with N a device index");
      index = static_cast<int>(v);
    }
    std::string why;
    if (!cuda_available(&why))
      TESSERA_THROW(Backend, "device '" << spec << "' was asked for, but CUDA cannot be used: "
                                        << why << ". Use --device cpu.");
#if TESSERA_HAVE_CUDA
    return cuda_backend::create(index);
#endif
  }
  TESSERA_THROW(Usage, "device '" << spec << "' is not one of: auto, cpu, cuda, cuda:N, cuda-emu");
}

}  // namespace tessera
