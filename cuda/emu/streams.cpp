// The emulated runtime's stream model. For now every stream is synchronous: queued work runs
// before enqueue returns (as every emulated kernel launch does).
#include <utility>

#include "cuda/emu/standin.h"

namespace tessera::emu {

void enqueue(cudaStream_t stream, const std::string& what, std::function<void()> work) {
  (void)stream;
  (void)what;
  work();
}

}  // namespace tessera::emu
