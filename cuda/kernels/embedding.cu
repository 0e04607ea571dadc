// Single-table embedding lookup: id check, forward gather, backward scatter-add.
// The CUDA Backend queues the id check (launch_embedding_check_ids) and reads its flag later
// (Backend::check_deferred), so the gather and scatter run on a batch with a bad id before anyone
// knows. They therefore take the table's row count and never touch memory outside the table for
// an id outside [0, rows): the gather writes a zero row, the scatter skips the id. Valid ids give
// exactly the results of the unchecked kernels.
#include "cuda/kernel_prelude.cuh"
#include "cuda/kernels/grid_stride.cuh"
#include "cuda/kernels/kernels.h"
#include "cuda/kernels/reduce.cuh"
#include "cuda/launch.cuh"

namespace tessera::cuda {
namespace {

// ids [n]; rows = V. Records the smallest position holding an id outside [0, rows).
__global__ void embedding_check_ids_kernel(const int64_t* ids, int64_t n, int64_t rows,
                                           unsigned long long* first_bad) {
  for (const int64_t i : grid_stride_range(n)) {
    const int64_t id = ids[i];
    if (id < 0 || id >= rows) record_first_bad(first_bad, static_cast<unsigned long long>(i));
  }
}

__device__ inline bool id_in_table(int64_t id, int64_t rows) {
  return id >= 0 && id < rows;
}

// out [n, width] = table [rows, width] rows picked by ids [n]; one thread per output element.
// An id outside [0, rows) gives a zero row. Elem is float, or float4 for the vectorised kernel
// (width in float4s).
template <typename Elem>
__device__ inline void gather_rows(const Elem* table, int64_t rows, const int64_t* ids, Elem* out,
                                   int64_t n, int64_t width) {
  for (const int64_t i : grid_stride_range(n * width)) {
    const int64_t row = i / width;
    const int64_t col = i - row * width;
    const int64_t id = __ldg(ids + row);
    if (id_in_table(id, rows)) {
      out[i] = __ldg(table + id * width + col);
    } else {
      out[i] = Elem{};  // all-zero float or float4
    }
  }
}

__global__ void embedding_gather_kernel(const float* table, int64_t rows, const int64_t* ids,
                                        float* out, int64_t n, int64_t dim) {
  gather_rows(table, rows, ids, out, n, dim);
}

// The same with float4: dim4 = dim / 4, table and out 16-byte aligned (checked by the launcher).
__global__ void embedding_gather4_kernel(const float4* table, int64_t rows, const int64_t* ids,
                                         float4* out, int64_t n, int64_t dim4) {
  gather_rows(table, rows, ids, out, n, dim4);
}

// dtable [rows, dim] rows picked by ids [n] += dout [n, dim]; atomics because ids repeat. An id
// outside [0, rows) is skipped.
__global__ void embedding_scatter_add_kernel(const int64_t* ids, const float* dout, float* dtable,
                                             int64_t rows, int64_t n, int64_t dim) {
  for (const int64_t i : grid_stride_range(n * dim)) {
    const int64_t row = i / dim;
    const int64_t col = i - row * dim;
    const int64_t id = ids[row];
    if (id_in_table(id, rows)) atomicAdd(dtable + id * dim + col, dout[i]);
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void launch_embedding_check_ids(const int64_t* ids, int64_t n, int64_t rows,
                                unsigned long long* first_bad, cudaStream_t stream) {
  if (n <= 0) return;
  TESSERA_LAUNCH(embedding_check_ids_kernel, dim3(grid_stride_blocks(n)), dim3(kElementwiseBlock),
                 0, stream, ids, n, rows, first_bad);
}

void launch_embedding_forward(const float* table, int64_t rows, const int64_t* ids, float* out,
                              int64_t n, int64_t dim, cudaStream_t stream) {
  if (n <= 0 || dim <= 0) return;
  if (dim % 4 == 0 && aligned16(table) && aligned16(out)) {
    const int64_t dim4 = dim / 4;
    TESSERA_LAUNCH(embedding_gather4_kernel, dim3(grid_stride_blocks(n * dim4)),
                   dim3(kElementwiseBlock), 0, stream, reinterpret_cast<const float4*>(table), rows,
                   ids, reinterpret_cast<float4*>(out), n, dim4);
    return;
  }
  TESSERA_LAUNCH(embedding_gather_kernel, dim3(grid_stride_blocks(n * dim)),
                 dim3(kElementwiseBlock), 0, stream, table, rows, ids, out, n, dim);
}

void launch_embedding_backward(const int64_t* ids, const float* dout, float* dtable, int64_t rows,
                               int64_t n, int64_t dim, cudaStream_t stream) {
  if (n <= 0 || dim <= 0) return;
  TESSERA_LAUNCH(embedding_scatter_add_kernel, dim3(grid_stride_blocks(n * dim)),
                 dim3(kElementwiseBlock), 0, stream, ids, dout, dtable, rows, n, dim);
}

}  // namespace tessera::cuda
