// Fused bias + activation: forward y = act(x + bias), backward dx = dy * act'(y) and the bias
// gradient as column sums of dx. Element-wise math from host/core/math.h (the host backend's).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// x, y [rows, cols] flattened to n = rows * cols; bias [cols] or nullptr. y may alias x.
__global__ void bias_act_forward_kernel(Activation act, const float* x, const float* bias, float* y,
                                        int64_t n, int64_t cols) {
  for (const int64_t i : grid_stride_range(n)) {
    const float b = bias ? __ldg(bias + i % cols) : 0.f;
    y[i] = math::activate(act, x[i] + b);
  }
}

// dx = dy * act'(y), n elements; dx may alias dy.
__global__ void bias_act_backward_kernel(Activation act, const float* y, const float* dy, float* dx,
                                         int64_t n) {
  for (const int64_t i : grid_stride_range(n))
    dx[i] = dy[i] * math::activation_grad_from_output(act, y[i]);
}

// Column sums of dx [rows, cols] into dbias [cols]. Block (32, 32): threadIdx.x walks 32
// adjacent columns (coalesced reads), threadIdx.y one of 32 row groups (rows ty, ty + 32, ...).
// Each thread accumulates its row group in double; the 32 partials of a column are then summed by
// one warp with shuffles (warp ty sums column ty of the tile). The order is fixed: deterministic.
constexpr int kColumnTile = 32;
constexpr int kRowGroups = 32;

__global__ void column_sum_kernel(const float* dx, float* dbias, int64_t rows, int64_t cols) {
  __shared__ double partial[kRowGroups][kColumnTile + 1];  // +1: no bank conflicts on the transpose
  const int tx = static_cast<int>(threadIdx.x);
  const int ty = static_cast<int>(threadIdx.y);
  for (int64_t col0 = static_cast<int64_t>(blockIdx.x) * kColumnTile; col0 < cols;
       col0 += static_cast<int64_t>(gridDim.x) * kColumnTile) {  // uniform across the block
    const int64_t col = col0 + tx;
    double acc = 0.0;
    if (col < cols)
      for (int64_t r = ty; r < rows; r += kRowGroups) acc += dx[r * cols + col];
    partial[ty][tx] = acc;
    __syncthreads();
    // Warp ty: lane tx holds row group tx's partial of tile column ty.
    const double total = warp_sum(partial[tx][ty]);
    if (tx == 0 && col0 + ty < cols) dbias[col0 + ty] = static_cast<float>(total);
    __syncthreads();  // the next tile overwrites partial
  }
}

}  // namespace

void launch_bias_act_forward(Activation act, const float* x, const float* bias, float* y,
                             int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  TESSERA_LAUNCH(bias_act_forward_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, act, x, bias, y, n, cols);
}

void launch_bias_act_backward(Activation act, const float* y, const float* dy, float* dx,
                              float* dbias, int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  TESSERA_LAUNCH(bias_act_backward_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, act, y, dy, dx, n);
  if (dbias == nullptr) return;
  const int64_t tiles = (cols + kColumnTile - 1) / kColumnTile;
  const unsigned blocks =
      static_cast<unsigned>(tiles < kMaxGridStrideBlocks ? tiles : kMaxGridStrideBlocks);
  TESSERA_LAUNCH(column_sum_kernel, dim3(blocks), dim3(kColumnTile, kRowGroups), 0, stream, dx,
                 dbias, rows, cols);
}

}  // namespace tessera::cuda
