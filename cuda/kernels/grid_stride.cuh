#pragma once
// The grid-stride loop of the element-wise kernels, written once:
//   for (const int64_t i : grid_stride_range(n)) ...
// visits i = global thread index, then steps by the number of threads in the grid, while i < n
// (64-bit indices: n may exceed 2^31). Same contract as a kernel file: only what
// cuda/kernel_prelude.cuh supplies (the emulation build runs it too). Include after the prelude.
#include <cstdint>

namespace tessera::cuda {

class GridStrideRange {
 public:
  class Iterator {
   public:
    __device__ Iterator(int64_t i, int64_t step) : i_(i), step_(step) {}
    __device__ int64_t operator*() const { return i_; }
    __device__ Iterator& operator++() {
      i_ += step_;
      return *this;
    }
    // "Not at the end" is i < end: the last step may jump past it.
    __device__ bool operator!=(const Iterator& end) const { return i_ < end.i_; }

   private:
    int64_t i_;
    int64_t step_;
  };

  __device__ explicit GridStrideRange(int64_t n)
      : first_(static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x),
        step_(static_cast<int64_t>(gridDim.x) * blockDim.x),
        n_(n) {}
  __device__ Iterator begin() const { return Iterator(first_, step_); }
  __device__ Iterator end() const { return Iterator(n_, step_); }

 private:
  int64_t first_;
  int64_t step_;
  int64_t n_;
};

// The indices [0, n) that this thread handles.
__device__ inline GridStrideRange grid_stride_range(int64_t n) {
  return GridStrideRange(n);
}

}  // namespace tessera::cuda
