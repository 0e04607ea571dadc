#pragma once
// The CUDA backend's StagingEngine (host/backend/batch_stager.h): each slot holds page-locked
// host tensors (cudaHostAlloc) and device tensors of the specs' largest shapes.
//   upload:        host memcpy of the caller's rows into the pinned slot, cudaMemcpyAsync to the
//                  slot's device tensors on a dedicated copy stream, an event recorded after it.
//   hand_over:     cudaStreamWaitEvent on the compute stream for that event when the stager hands
//                  the batch to the consumer (after the previous batch's release): its compute
//                  waits for its own copy on the GPU, the host does not, and the previous batch's
//                  compute (queued before) does not wait for it, so copy k+1 overlaps compute k.
//   mark_consumed: an event recorded on the compute stream after the batch's compute.
//   wait_consumed: cudaEventSynchronize on it before the slot's pinned memory is overwritten
//                  (the copy engine may still read it) or its device tensors are re-uploaded.
// Pageable memory would make cudaMemcpyAsync stage through a driver buffer and return only when
// the source has been read; pinned memory lets the DMA engine run beside the kernels.
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "host/backend/batch_stager.h"

namespace tessera::cuda {

// One cudaHostAlloc allocation, owned; a host-device Buffer (kernels never see it, cudaMemcpy
// does). Move-only; the destructor logs a failing cudaFreeHost instead of throwing.
class PinnedBuffer final : public HostMemoryBuffer {
 public:
  explicit PinnedBuffer(size_t bytes);  // throws Error(Backend) naming the size on failure
  ~PinnedBuffer() override;
};

struct EventDeleter {
  void operator()(CUevent_st* event) const noexcept;  // cudaEventDestroy, logged on failure
};
using EventHandle = std::unique_ptr<CUevent_st, EventDeleter>;
EventHandle make_event();  // timing disabled: a pure ordering and completion fence

// compute_stream: the backend's stream (not owned; must outlive the engine). Device tensors are
// left uninitialised: an upload writes every row it hands out. Use on the backend's thread.
std::unique_ptr<StagingEngine> make_pinned_staging_engine(
    int device_index, cudaStream_t compute_stream, int slots,
    const std::vector<StagedTensorSpec>& specs);

}  // namespace tessera::cuda
