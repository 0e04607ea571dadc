#include "cuda/cudnn_staging.h"

#include "cuda/cuda_check.h"
#include "cuda/cudnn_plans.h"

namespace tessera::cuda {

void* CudnnScratch::slot(size_t slot, size_t bytes) {
  if (slots_.size() <= slot) slots_.resize(slot + 1);
  std::unique_ptr<DeviceBuffer>& buf = slots_[slot];
  if (!buf || buf->bytes() < bytes) {
    if (buf) TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream_));  // queued calls may read it
    buf.reset();
    buf = std::make_unique<DeviceBuffer>(bytes, device_index_);
  }
  return buf->data();
}

void* CudnnAligned::stage(const Tensor& t, bool copy_in, bool copy_back) {
  if (!t.defined()) return nullptr;
  void* own = t.raw();
  const size_t bytes = t.bytes();
  if (cudnn_aligned(own) || bytes == 0) return own;
  void* s = scratch_.slot(next_slot_++, bytes);
  if (copy_in)
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(s, own, bytes, cudaMemcpyDeviceToDevice, scratch_.stream()));
  if (copy_back) back_.push_back({own, s, bytes});
  return s;
}

void CudnnAligned::finish() {
  for (const Back& b : back_)
    TESSERA_CUDA_CHECK(
        cudaMemcpyAsync(b.dst, b.src, b.bytes, cudaMemcpyDeviceToDevice, scratch_.stream()));
  back_.clear();
}

}  // namespace tessera::cuda
