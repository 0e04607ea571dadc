// Losses: binary cross-entropy on logits (element-wise) and softmax cross-entropy (one block per
// row, block reductions for the row max and the sum of exponentials).
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// The bits of a quiet float NaN: the loss of a row whose label is outside [0, classes).
constexpr int kQuietNanBits = 0x7fc00000;

// logits, labels, loss, dlogits [n].
__global__ void bce_with_logits_kernel(const float* logits, const float* labels, float grad_scale,
                                       float* loss, float* dlogits, int64_t n) {
  for (const int64_t i : grid_stride_range(n)) {
    const float z = logits[i];
    const float y = labels[i];
    loss[i] = math::bce_with_logits_loss(z, y);
    dlogits[i] = grad_scale * math::bce_with_logits_grad(z, y);
  }
}

// labels [n]. Records the smallest row whose label is outside [0, classes).
__global__ void check_class_labels_kernel(const int32_t* labels, int64_t n, int64_t classes,
                                          unsigned long long* first_bad) {
  for (const int64_t i : grid_stride_range(n)) {
    const int64_t y = labels[i];
    if (y < 0 || y >= classes) record_first_bad(first_bad, static_cast<unsigned long long>(i));
  }
}

// logits, dlogits [n, classes]; labels, loss [n]. One block (a multiple of 32 threads) per row,
// grid-striding over rows. dlogits may alias logits: every read of a row's logits happens before
// the barrier that precedes the row's gradient writes, except z[j] read and written by one thread.
// The labels may not have been checked yet (the Backend's check is deferred): a label outside
// [0, classes) reads nothing at the label and gives loss NaN and a zero gradient row.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* labels, float grad_scale,
                                    float* loss, float* dlogits, int64_t n, int64_t classes) {
  __shared__ float scratch[kWarpSize];
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float* z = logits + row * classes;
    float* g = dlogits + row * classes;
    float mx = z[0];
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) mx = fmaxf(mx, z[j]);
    mx = block_max(mx, scratch);
    float sum = 0.f;
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x) sum += expf(z[j] - mx);
    sum = block_sum(sum, scratch);
    const float lse = mx + logf(sum);
    const int64_t label = labels[row];
    const bool valid = label >= 0 && label < classes;
    const float z_label = valid ? z[label] : 0.f;
    __syncthreads();  // z_label is read by all before anyone overwrites an aliased logit
    if (threadIdx.x == 0) loss[row] = valid ? lse - z_label : __int_as_float(kQuietNanBits);
    for (int64_t j = threadIdx.x; j < classes; j += blockDim.x)
      g[j] = valid ? grad_scale * (expf(z[j] - lse) - (j == label ? 1.f : 0.f)) : 0.f;
    __syncthreads();  // the next row's reductions reuse scratch
  }
}

}  // namespace

void launch_bce_with_logits(const float* logits, const float* labels, float grad_scale, float* loss,
                            float* dlogits, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(bce_with_logits_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, logits, labels, grad_scale, loss, dlogits, n);
}

void launch_check_class_labels(const int32_t* labels, int64_t n, int64_t classes,
                               unsigned long long* first_bad, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(check_class_labels_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0,
                 stream, labels, n, classes, first_bad);
}

void launch_softmax_xent(const float* logits, const int32_t* labels, float grad_scale, float* loss,
                         float* dlogits, int64_t n, int64_t classes, cudaStream_t stream) {
  if (n <= 0 || classes <= 0) return;
  // The smallest power-of-two block in [32, 256] covering the row, so narrow rows (a handful of
  // classes) do not leave most of a 256-thread block idle.
  unsigned block = kWarpSize;
  while (block < 256 && block < classes) block *= 2;
  const unsigned blocks =
      static_cast<unsigned>(n < kMaxGridStrideBlocks ? n : kMaxGridStrideBlocks);
  TESSERA_LAUNCH(softmax_xent_kernel, dim3(blocks), dim3(block), 0, stream, logits, labels,
                 grad_scale, loss, dlogits, n, classes);
}

}  // namespace tessera::cuda
