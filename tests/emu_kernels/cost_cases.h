#pragma once
// Kernels with known memory behaviour for the cost model's tests (tests/emu_cost_model_test.cpp):
// one 32-thread block each unless said otherwise.
#include "cuda/emu/runtime_api.h"

namespace tessera::emu_test {
// y[i] = x[i], i < 32: every request reads / writes 128 contiguous bytes (4 sectors).
void launch_cost_copy(const float* x, float* y, cudaStream_t s);
// y[i] = x[i * stride], i < 32: each lane's load in its own sector when stride >= 8.
void launch_cost_strided(const float* x, float* y, int stride, cudaStream_t s);
// Through shared memory: lane i writes and reads word i * stride of a 32 x 32 float array
// (stride 32: all lanes in bank 0; stride 1: one word per bank). y[i] = i.
void launch_cost_shared(float* y, int stride, cudaStream_t s);
// Lane 0 sums x[0..heavy), the other lanes read x[lane]: y[lane] = their result.
void launch_cost_imbalance(const float* x, float* y, int heavy, cudaStream_t s);
}  // namespace tessera::emu_test
