// The recommendation models' scores and losses (rec.h): the dot-product score with its bias
// columns (a warp per row), its gradient, squared error and the pairwise logistic (BPR) loss.
#include "cuda/kernels/rec.h"

#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

constexpr unsigned kRowBlock = 256;  // 8 warps, one row each at a time
constexpr int64_t kWarpsPerBlock = kRowBlock / kWarpSize;

// out [rows, width], score [rows]. Each warp strides over rows (the loop bound is the same for
// all of its lanes, so every lane reaches each warp_sum); lane l reads columns l, l + 32, ...
__global__ void rec_score_forward_kernel(const float* out, int64_t rows, int64_t width, int64_t dim,
                                         float offset, float* score) {
  const int64_t lane = threadIdx.x % kWarpSize;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t row = first; row < rows; row += stride) {
    const float* p = out + row * width;
    float acc = 0.f;
    for (int64_t k = lane; k < dim; k += kWarpSize) acc += p[k] * p[dim + k];
    for (int64_t j = 2 * dim + lane; j < width; j += kWarpSize) acc += p[j];
    acc = warp_sum(acc);
    if (lane == 0) score[row] = offset + acc;
  }
}

// out, dout [rows, width]; dscore [rows].
__global__ void rec_score_backward_kernel(const float* out, const float* dscore, int64_t rows,
                                          int64_t width, int64_t dim, float l2, float bias_l2,
                                          float* dout) {
  for (const int64_t i : grid_stride_range(rows * width)) {
    const int64_t row = i / width, col = i - row * width;
    const float* p = out + row * width;
    const float ds = dscore[row];
    float g;
    if (col < dim)
      g = ds * p[dim + col] + l2 * p[col];
    else if (col < 2 * dim)
      g = ds * p[col - dim] + l2 * p[col];
    else
      g = ds + bias_l2 * p[col];
    dout[i] = g;
  }
}

__global__ void squared_error_kernel(const float* pred, const float* target, float grad_scale,
                                     float* loss, float* dpred, int64_t n) {
  for (const int64_t i : grid_stride_range(n)) {
    const float e = pred[i] - target[i];
    loss[i] = e * e;
    dpred[i] = grad_scale * e;
  }
}

// softplus(-x) is BCE on logit x with label 1, and its derivative sigmoid(x) - 1 (math.h).
__global__ void pairwise_logistic_kernel(const float* scores, int64_t groups, int64_t group,
                                         float grad_scale, float* loss, float* dscores) {
  for (const int64_t i : grid_stride_range(groups)) {
    const float* s = scores + i * group;
    float* g = dscores + i * group;
    float sum = 0.f, dpos = 0.f;
    for (int64_t j = 1; j < group; ++j) {
      const float x = s[0] - s[j];
      sum += math::bce_with_logits_loss(x, 1.f);
      const float dx = math::bce_with_logits_grad(x, 1.f);
      dpos += dx;
      g[j] = grad_scale * -dx;
    }
    g[0] = grad_scale * dpos;
    loss[i] = sum;
  }
}

}  // namespace

void launch_rec_score_forward(const float* out, int64_t rows, int64_t width, int64_t dim,
                              float offset, float* score, cudaStream_t stream) {
  if (rows <= 0) return;
  TESSERA_LAUNCH(rec_score_forward_kernel, dim3(grid_stride_blocks(rows * kWarpSize, kRowBlock)),
                 dim3(kRowBlock), 0, stream, out, rows, width, dim, offset, score);
}

void launch_rec_score_backward(const float* out, const float* dscore, int64_t rows, int64_t width,
                               int64_t dim, float l2, float bias_l2, float* dout,
                               cudaStream_t stream) {
  if (rows <= 0 || width <= 0) return;
  TESSERA_LAUNCH(rec_score_backward_kernel, dim3(grid_stride_blocks(rows * width)),
                 dim3(kElementwiseBlock), 0, stream, out, dscore, rows, width, dim, l2, bias_l2,
                 dout);
}

void launch_squared_error(const float* pred, const float* target, float grad_scale, float* loss,
                          float* dpred, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(squared_error_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, pred, target, grad_scale, loss, dpred, n);
}

void launch_pairwise_logistic(const float* scores, int64_t groups, int64_t group, float grad_scale,
                              float* loss, float* dscores, cudaStream_t stream) {
  if (groups <= 0) return;
  TESSERA_LAUNCH(pairwise_logistic_kernel, dim3(grid_stride_blocks(groups)),
                 dim3(kElementwiseBlock), 0, stream, scores, groups, group, grad_scale, loss,
                 dscores);
}

}  // namespace tessera::cuda
