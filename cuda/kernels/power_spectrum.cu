// power_spectrum: the GEMM-based DFT's output [R, 2*bins] (real parts | imaginary parts) ->
// |X|^2 [R, bins]. One thread per output element (grid-stride), coalesced reads and writes.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"
#include "host/core/log_mel_math.h"

namespace tessera::cuda {
namespace {

__global__ void power_spectrum_kernel(const float* spectrum, float* power, int64_t rows,
                                      int64_t bins) {
  for (const int64_t e : grid_stride_range(rows * bins)) {
    const int64_t r = e / bins, k = e - r * bins;
    const float* s = spectrum + r * 2 * bins;
    power[e] = math::power_of(s[k], s[bins + k]);
  }
}

}  // namespace

void launch_power_spectrum(const float* spectrum, float* power, int64_t rows, int64_t bins,
                           cudaStream_t stream) {
  const int64_t total = rows * bins;
  if (total <= 0) return;
  TESSERA_LAUNCH(power_spectrum_kernel, dim3(grid_stride_blocks(total)), dim3(kElementwiseBlock), 0,
                 stream, spectrum, power, rows, bins);
}

}  // namespace tessera::cuda
