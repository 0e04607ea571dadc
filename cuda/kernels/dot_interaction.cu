// DLRM pairwise dot interaction, forward and backward (layout: host/core/interaction.h).
// One block per sample (grid-stride over samples): the sample's F + 1 vectors are staged in
// shared memory with an odd row stride (no bank conflicts when threads of a warp read the same
// column of different vectors); each thread then computes output elements from shared memory.
// The backward accumulates each dZ element in the host's order (j ascending), without atomics.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/launch.cuh"
#include "host/core/interaction.h"

namespace tessera::cuda {
namespace {

constexpr unsigned kInteractionBlock = 128;

TESSERA_HD int64_t padded_stride(int64_t d) {
  return d % 2 == 0 ? d + 1 : d;
}

// z [(f + 1) * ld] <- the sample's dense row then its f embeddings (contiguous in emb).
__device__ inline void stage_vectors(const float* dense, const float* emb, int64_t s, int64_t d,
                                     int64_t f, int64_t ld, float* z) {
  const int64_t n = (f + 1) * d;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    const int64_t v = e / d, k = e - v * d;
    z[v * ld + k] = v == 0 ? dense[s * d + k] : emb[(s * f + v - 1) * d + k];
  }
}

// dense [batch, d], emb [batch, f * d] -> y [batch, d + pairs].
__global__ void dot_interaction_forward_kernel(const float* dense, const float* emb, float* y,
                                               int64_t batch, int64_t d, int64_t f) {
  TESSERA_DYNAMIC_SHARED(float, z);
  const int64_t ld = padded_stride(d);
  const int64_t width = d + math::interaction_pairs(f + 1);
  for (int64_t s = blockIdx.x; s < batch; s += gridDim.x) {
    stage_vectors(dense, emb, s, d, f, ld, z);
    __syncthreads();
    float* ys = y + s * width;
    for (int64_t o = threadIdx.x; o < width; o += blockDim.x) {
      if (o < d) {
        ys[o] = z[o];
        continue;
      }
      int64_t i = 0, j = 0;
      math::interaction_pair_of(o - d, i, j);
      const float* zi = z + i * ld;
      const float* zj = z + j * ld;
      float acc = 0.f;
      for (int64_t k = 0; k < d; ++k) acc += zi[k] * zj[k];
      ys[o] = acc;
    }
    __syncthreads();  // z is restaged for the next sample
  }
}

// dy [batch, d + pairs] -> ddense [batch, d], demb [batch, f * d] (overwritten).
__global__ void dot_interaction_backward_kernel(const float* dense, const float* emb,
                                                const float* dy, float* ddense, float* demb,
                                                int64_t batch, int64_t d, int64_t f) {
  TESSERA_DYNAMIC_SHARED(float, smem);
  const int64_t ld = padded_stride(d);
  const int64_t v = f + 1;
  const int64_t pairs = math::interaction_pairs(v);
  const int64_t width = d + pairs;
  float* z = smem;           // [v * ld]
  float* g = smem + v * ld;  // [pairs]
  for (int64_t s = blockIdx.x; s < batch; s += gridDim.x) {
    stage_vectors(dense, emb, s, d, f, ld, z);
    const float* dys = dy + s * width;
    for (int64_t p = threadIdx.x; p < pairs; p += blockDim.x) g[p] = dys[d + p];
    __syncthreads();
    for (int64_t e = threadIdx.x; e < v * d; e += blockDim.x) {
      const int64_t i = e / d, k = e - i * d;
      float acc = i == 0 ? dys[k] : 0.f;
      for (int64_t j = 0; j < v; ++j) {
        if (j == i) continue;
        const float gij =
            g[i > j ? math::interaction_pair_index(i, j) : math::interaction_pair_index(j, i)];
        acc += gij * z[j * ld + k];
      }
      if (i == 0)
        ddense[s * d + k] = acc;
      else
        demb[(s * f + i - 1) * d + k] = acc;
    }
    __syncthreads();
  }
}

unsigned sample_blocks(int64_t batch) {
  return static_cast<unsigned>(batch < kMaxGridStrideBlocks ? batch : kMaxGridStrideBlocks);
}

}  // namespace

void launch_dot_interaction_forward(const float* dense, const float* emb, float* y, int64_t batch,
                                    int64_t d, int64_t f, cudaStream_t stream) {
  if (batch <= 0) return;
  const size_t smem = sizeof(float) * static_cast<size_t>((f + 1) * padded_stride(d));
  TESSERA_LAUNCH(dot_interaction_forward_kernel, dim3(sample_blocks(batch)),
                 dim3(kInteractionBlock), smem, stream, dense, emb, y, batch, d, f);
}

void launch_dot_interaction_backward(const float* dense, const float* emb, const float* dy,
                                     float* ddense, float* demb, int64_t batch, int64_t d,
                                     int64_t f, cudaStream_t stream) {
  if (batch <= 0) return;
  const size_t smem = sizeof(float) * static_cast<size_t>((f + 1) * padded_stride(d) +
                                                          math::interaction_pairs(f + 1));
  TESSERA_LAUNCH(dot_interaction_backward_kernel, dim3(sample_blocks(batch)),
                 dim3(kInteractionBlock), smem, stream, dense, emb, dy, ddense, demb, batch, d, f);
}

}  // namespace tessera::cuda
