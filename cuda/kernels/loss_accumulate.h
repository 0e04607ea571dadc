#pragma once
// Launcher of the Trainer's loss accumulator kernel (cuda/kernels/loss_accumulate.cu), the CUDA
// side of Backend::loss_accumulate. Same conventions as cuda/kernels/kernels.h: raw device
// pointers, 64-bit sizes, an explicit stream, nothing checked that the Backend edge checked.
#include <cstdint>

#if defined(TESSERA_CUDA_EMULATION)
#include "cuda/emu/emulator.h"
#else
#include <cuda_runtime_api.h>
#endif

namespace tessera::cuda {

// loss [n], acc [3]: acc[0] += sum(loss) (summed in double, added to acc[0] in double and rounded
// once), acc[1] += the count of NaN/Inf in loss, acc[2] = step when acc[2] == 0 and that count is
// not 0. One block, so the sum's order is fixed: the same inputs give the same bits every run.
// Nothing is read back and the host does not wait.
void launch_loss_accumulate(const float* loss, int64_t n, float step, float* acc,
                            cudaStream_t stream);

}  // namespace tessera::cuda
