// Element-wise arithmetic: y = a (.) b + beta * y (mul_add) and y = alpha * x + beta * y (axpby).
// When every pointer is 16-byte aligned the kernels move float4s (one 128-bit load per operand
// per four elements, the tail of n % 4 elements done by the grid's first threads); otherwise
// (a row-slice view at an odd offset) one float per step. Grid-stride loops, 64-bit indices.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/elementwise.h"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// beta == 0 does not read y (the BLAS convention: a NaN in y does not survive).
__device__ inline float mul_add_one(float a, float b, float beta, float y) {
  return beta == 0.f ? a * b : a * b + beta * y;
}
__device__ inline float axpby_one(float alpha, float x, float beta, float y) {
  return beta == 0.f ? alpha * x : alpha * x + beta * y;
}

// The first (n % 4) threads of the grid do the elements after the last whole float4.
__device__ inline int64_t tail_index(int64_t n) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t whole = n / 4 * 4;
  return whole + t < n ? whole + t : -1;
}

__global__ void mul_add_kernel(const float* a, const float* b, float beta, float* y, int64_t n) {
  for (const int64_t i : grid_stride_range(n)) y[i] = mul_add_one(a[i], b[i], beta, y[i]);
}

// a, b, y 16-byte aligned; n floats (n / 4 float4s plus the tail).
__global__ void mul_add4_kernel(const float4* a, const float4* b, float beta, float4* y,
                                int64_t n) {
  for (const int64_t i : grid_stride_range(n / 4)) {
    const float4 va = a[i], vb = b[i];
    const float4 vy = beta == 0.f ? make_float4(0.f, 0.f, 0.f, 0.f) : y[i];
    y[i] = make_float4(mul_add_one(va.x, vb.x, beta, vy.x), mul_add_one(va.y, vb.y, beta, vy.y),
                       mul_add_one(va.z, vb.z, beta, vy.z), mul_add_one(va.w, vb.w, beta, vy.w));
  }
  const int64_t t = tail_index(n);
  if (t >= 0) {
    const float* af = reinterpret_cast<const float*>(a);
    const float* bf = reinterpret_cast<const float*>(b);
    float* yf = reinterpret_cast<float*>(y);
    yf[t] = mul_add_one(af[t], bf[t], beta, beta == 0.f ? 0.f : yf[t]);
  }
}

__global__ void axpby_kernel(float alpha, const float* x, float beta, float* y, int64_t n) {
  for (const int64_t i : grid_stride_range(n)) y[i] = axpby_one(alpha, x[i], beta, y[i]);
}

// x, y 16-byte aligned; n floats.
__global__ void axpby4_kernel(float alpha, const float4* x, float beta, float4* y, int64_t n) {
  for (const int64_t i : grid_stride_range(n / 4)) {
    const float4 vx = x[i];
    const float4 vy = beta == 0.f ? make_float4(0.f, 0.f, 0.f, 0.f) : y[i];
    y[i] = make_float4(axpby_one(alpha, vx.x, beta, vy.x), axpby_one(alpha, vx.y, beta, vy.y),
                       axpby_one(alpha, vx.z, beta, vy.z), axpby_one(alpha, vx.w, beta, vy.w));
  }
  const int64_t t = tail_index(n);
  if (t >= 0) {
    const float* xf = reinterpret_cast<const float*>(x);
    float* yf = reinterpret_cast<float*>(y);
    yf[t] = axpby_one(alpha, xf[t], beta, beta == 0.f ? 0.f : yf[t]);
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Blocks for the float4 kernels: the whole float4s, and at least enough threads for the tail.
unsigned vector_blocks(int64_t n) {
  return grid_stride_blocks(n / 4 > 0 ? n / 4 : 1);
}

}  // namespace

void launch_mul_add(const float* a, const float* b, float beta, float* y, int64_t n,
                    cudaStream_t stream) {
  if (n <= 0) return;
  if (aligned16(a) && aligned16(b) && aligned16(y)) {
    TESSERA_LAUNCH(mul_add4_kernel, dim3(vector_blocks(n)), dim3(kElementwiseBlock), 0, stream,
                   reinterpret_cast<const float4*>(a), reinterpret_cast<const float4*>(b), beta,
                   reinterpret_cast<float4*>(y), n);
    return;
  }
  TESSERA_LAUNCH(mul_add_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream, a,
                 b, beta, y, n);
}

void launch_axpby(float alpha, const float* x, float beta, float* y, int64_t n,
                  cudaStream_t stream) {
  if (n <= 0) return;
  if (aligned16(x) && aligned16(y)) {
    TESSERA_LAUNCH(axpby4_kernel, dim3(vector_blocks(n)), dim3(kElementwiseBlock), 0, stream, alpha,
                   reinterpret_cast<const float4*>(x), beta, reinterpret_cast<float4*>(y), n);
    return;
  }
  TESSERA_LAUNCH(axpby_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock), 0, stream,
                 alpha, x, beta, y, n);
}

}  // namespace tessera::cuda
