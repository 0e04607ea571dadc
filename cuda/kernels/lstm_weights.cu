// LSTM weight conversion between tessera's canonical layout (host/backend/lstm_types.h) and
// cuDNN's weight space: every contiguous block of a plan's table copied in one launch, instead of
// one cudaMemcpyAsync per block (16 per layer and direction).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// Blocks of the grid along y share one table entry (blockIdx.x); their threads stride over its
// floats, so consecutive threads touch consecutive floats on both sides.
__global__ void lstm_weights_convert_kernel(const int64_t* table, float* canonical, float* space,
                                            bool to_cudnn) {
  const int64_t* entry = table + 3 * static_cast<int64_t>(blockIdx.x);
  const int64_t canonical_at = entry[0], space_at = entry[1], count = entry[2];
  const float* src = to_cudnn ? canonical + canonical_at : space + space_at;
  float* dst = to_cudnn ? space + space_at : canonical + canonical_at;
  const int64_t step = static_cast<int64_t>(gridDim.y) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; i < count;
       i += step)
    dst[i] = src[i];
}

// Blocks along y per table entry: enough for the largest entry, at most this many (larger entries
// loop in the kernel).
constexpr int64_t kMaxBlocksPerEntry = 64;

}  // namespace

void launch_lstm_weights_convert(const int64_t* table, int64_t entries, int64_t max_count,
                                 float* canonical, float* space, bool to_cudnn,
                                 cudaStream_t stream) {
  if (entries <= 0 || max_count <= 0) return;
  int64_t per_entry = (max_count + kElementwiseBlock - 1) / kElementwiseBlock;
  if (per_entry > kMaxBlocksPerEntry) per_entry = kMaxBlocksPerEntry;
  TESSERA_LAUNCH(lstm_weights_convert_kernel,
                 dim3(static_cast<unsigned>(entries), static_cast<unsigned>(per_entry)),
                 dim3(kElementwiseBlock), 0, stream, table, canonical, space, to_cudnn);
}

}  // namespace tessera::cuda
