// stft_frames: a batch of equal-length waveforms -> windowed, centred, zero-padded frames, the
// A operand of the GEMM-based DFT (host/data/log_mel_batch.h). One thread per frame element, in
// output order, so writes are coalesced and neighbouring threads read neighbouring samples.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"
#include "host/core/log_mel_math.h"

namespace tessera::cuda {
namespace {

__global__ void stft_frames_kernel(const float* waves, const float* window, float* frames,
                                   int64_t batch, int64_t n, int64_t n_fft, int64_t hop) {
  const int64_t f = math::stft_frame_count(n, hop);
  for (const int64_t e : grid_stride_range(batch * f * n_fft)) {
    const int64_t r = e / n_fft, i = e - r * n_fft;
    const int64_t b = r / f, t = r - b * f;
    frames[e] = math::stft_frame_value(waves + b * n, n, window, n_fft, hop, t, i);
  }
}

}  // namespace

void launch_stft_frames(const float* waves, const float* window, float* frames, int64_t batch,
                        int64_t n, int64_t n_fft, int64_t hop, cudaStream_t stream) {
  const int64_t total = batch * math::stft_frame_count(n, hop) * n_fft;
  if (total <= 0) return;
  TESSERA_LAUNCH(stft_frames_kernel, dim3(grid_stride_blocks(total)), dim3(kElementwiseBlock), 0,
                 stream, waves, window, frames, batch, n, n_fft, hop);
}

}  // namespace tessera::cuda
