#include "cuda/pinned_stager.h"

#include <cstring>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/device_guard.h"

namespace tessera::cuda {

PinnedBuffer::PinnedBuffer(size_t bytes) : HostMemoryBuffer(bytes) {
  const cudaError_t st = cudaHostAlloc(&ptr_, bytes ? bytes : 1, cudaHostAllocDefault);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    ptr_ = nullptr;
    TESSERA_THROW(Backend,
                  "cudaHostAlloc of " << bytes << " pinned bytes failed: " << describe_status(st));
  }
}

PinnedBuffer::~PinnedBuffer() {
  if (!ptr_) return;
  const cudaError_t st = cudaFreeHost(ptr_);
  if (st != cudaErrorCudartUnloading)
    log_status(st, cudaSuccess, "cudaFreeHost", __FILE__, __LINE__);
}

void EventDeleter::operator()(CUevent_st* event) const noexcept {
  if (!event) return;
  const cudaError_t st = cudaEventDestroy(event);
  if (st != cudaErrorCudartUnloading)
    log_status(st, cudaSuccess, "cudaEventDestroy", __FILE__, __LINE__);
}

EventHandle make_event() {
  cudaEvent_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming));
  return EventHandle(raw);
}

namespace {

Tensor pinned_tensor(const StagedTensorSpec& s) {
  const size_t bytes = static_cast<size_t>(shape_numel(s.max_shape)) * dtype_size(s.dtype);
  return Tensor(std::make_shared<PinnedBuffer>(bytes), s.max_shape, s.dtype);
}

Tensor device_tensor(const StagedTensorSpec& s, int device_index) {
  const size_t bytes = static_cast<size_t>(shape_numel(s.max_shape)) * dtype_size(s.dtype);
  return Tensor(std::make_shared<DeviceBuffer>(bytes, device_index), s.max_shape, s.dtype);
}

class PinnedStagingEngine final : public StagingEngine {
 public:
  PinnedStagingEngine(int device_index, cudaStream_t compute, int slots,
                      const std::vector<StagedTensorSpec>& specs)
      : device_index_(device_index), compute_(compute) {
    DeviceGuard guard(device_index_);
    cudaStream_t raw = nullptr;
    // Non-blocking: the copy stream must not serialise with the legacy default stream.
    TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&raw, cudaStreamNonBlocking));
    copy_stream_.reset(raw);
    slots_.resize(static_cast<size_t>(slots));
    for (Slot& s : slots_) {
      for (const StagedTensorSpec& spec : specs) {
        s.host.push_back(pinned_tensor(spec));
        s.device.push_back(device_tensor(spec, device_index_));
      }
      s.copied = make_event();
      s.consumed = make_event();
    }
  }

  ~PinnedStagingEngine() override {
    // Device and pinned memory are freed after this: let the copy stream drain first.
    if (copy_stream_) {
      const cudaError_t st = cudaStreamSynchronize(copy_stream_.get());
      if (st != cudaErrorCudartUnloading)
        log_status(st, cudaSuccess, "cudaStreamSynchronize(copy stream)", __FILE__, __LINE__);
    }
  }

  std::vector<Tensor> upload(int slot, const std::vector<Tensor>& src, int64_t rows) override {
    DeviceGuard guard(device_index_);
    Slot& s = slots_[static_cast<size_t>(slot)];
    std::vector<Tensor> out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      Tensor h = s.host[i].rows(0, rows);
      Tensor d = s.device[i].rows(0, rows);
      const size_t bytes = h.bytes();
      // The stager waited for this slot's last compute (wait_consumed), so nothing reads it now.
      if (bytes) {
        std::memcpy(h.raw(), src[i].raw(), bytes);
        TESSERA_CUDA_CHECK(
            cudaMemcpyAsync(d.raw(), h.raw(), bytes, cudaMemcpyHostToDevice, copy_stream_.get()));
      }
      out.push_back(d);
    }
    // The compute stream waits for it only when the batch is handed over (hand_over): the
    // compute of the batch before, queued after this upload, must not wait for this copy.
    TESSERA_CUDA_CHECK(cudaEventRecord(s.copied.get(), copy_stream_.get()));
    return out;
  }

  void hand_over(int slot) override {
    DeviceGuard guard(device_index_);
    // Everything queued on the compute stream from now on runs after this slot's copy (the
    // event's latest record: this batch's upload, the stager's order guarantees it).
    TESSERA_CUDA_CHECK(
        cudaStreamWaitEvent(compute_, slots_[static_cast<size_t>(slot)].copied.get(), 0));
  }

  void mark_consumed(int slot) override {
    DeviceGuard guard(device_index_);
    TESSERA_CUDA_CHECK(cudaEventRecord(slots_[static_cast<size_t>(slot)].consumed.get(), compute_));
  }

  void wait_consumed(int slot) override {
    DeviceGuard guard(device_index_);
    TESSERA_CUDA_CHECK(cudaEventSynchronize(slots_[static_cast<size_t>(slot)].consumed.get()));
  }

 private:
  struct Slot {
    std::vector<Tensor> host;    // pinned, max shapes
    std::vector<Tensor> device;  // max shapes
    EventHandle copied;          // recorded on the copy stream after the slot's upload
    EventHandle consumed;        // recorded on the compute stream after the batch's compute
  };
  int device_index_;
  cudaStream_t compute_;
  // The destructor drains it before the slots' memory goes (the stager has already waited for
  // the compute that read them).
  StreamHandle copy_stream_;
  std::vector<Slot> slots_;
};

}  // namespace

std::unique_ptr<StagingEngine> make_pinned_staging_engine(
    int device_index, cudaStream_t compute_stream, int slots,
    const std::vector<StagedTensorSpec>& specs) {
  return std::make_unique<PinnedStagingEngine>(device_index, compute_stream, slots, specs);
}

std::unique_ptr<StagingEngine> CudaBackend::make_staging_engine_impl(
    int slots, const std::vector<StagedTensorSpec>& specs) {
  return make_pinned_staging_engine(device_index_, stream(), slots, specs);
}

}  // namespace tessera::cuda
