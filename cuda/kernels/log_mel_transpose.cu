// log_mel_transpose: mel power [B*F, n_mels] -> log(mel + floor) as [B, n_mels, F], the layout of
// a log-mel image (host/data/log_mel.h). One thread per output element in output order: writes
// are coalesced, reads stride by n_mels (tens of floats), which the L1/L2 absorb at these sizes;
// the op is a small fraction of the front end next to the DFT GEMM.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"
#include "host/core/log_mel_math.h"

namespace tessera::cuda {
namespace {

__global__ void log_mel_transpose_kernel(const float* mel, float* out, int64_t batch,
                                         int64_t n_mels, int64_t frames, float log_floor) {
  for (const int64_t e : grid_stride_range(batch * n_mels * frames)) {
    const int64_t t = e % frames, bm = e / frames;
    const int64_t j = bm % n_mels, b = bm / n_mels;
    out[e] = math::log_with_floor(mel[(b * frames + t) * n_mels + j], log_floor);
  }
}

}  // namespace

void launch_log_mel_transpose(const float* mel, float* out, int64_t batch, int64_t n_mels,
                              int64_t frames, float log_floor, cudaStream_t stream) {
  const int64_t total = batch * n_mels * frames;
  if (total <= 0) return;
  TESSERA_LAUNCH(log_mel_transpose_kernel, dim3(grid_stride_blocks(total)), dim3(kElementwiseBlock),
                 0, stream, mel, out, batch, n_mels, frames, log_floor);
}

}  // namespace tessera::cuda
