#pragma once
// BatchStager: moves training batches from host memory to the backend's device so that batch
// k+1's upload runs while batch k computes, through a bounded ring of slots.
//
//   BatchStager::Staged s = stager.stage({dense, cat, labels}, rows);  // waits for a free slot
//   ... queue the compute that reads s.tensors on the backend ...
//   stager.release(s);  // after the last op reading s.tensors is queued (not finished)
//
// The compute reading a batch must be queued after release() of the batch before it (the
// pattern above: stage k+1, queue k's compute, release k). That is when the stager hands batch k
// to the consumer (StagingEngine::hand_over): compute queued from then on is ordered after k's
// upload, and compute queued before it (batch k-1's) does not wait for it.
//
// A slot is handed out again only after the compute queued before its release() has finished
// (the host waits for it), so neither its host staging memory nor its device tensors are
// overwritten while the device may still read them. Slots go round in order; at most slots()
// batches are staged and not yet released (one more stage() is an error, not a deadlock).
//
// The copy itself is a StagingEngine's:
//   - host backend: none; the caller's tensors are used as they are (nothing changes);
//   - CUDA (cuda/pinned_stager.*): pinned host slots, cudaMemcpyAsync on a copy stream, events
//     that order the compute stream after a batch's own copy when it is handed over and tell the
//     host when a slot is free;
//   - any other backend: a synchronous Backend::copy into per-slot device tensors.
#include <cstdint>
#include <memory>
#include <vector>

#include "host/core/tensor.h"

namespace tessera {

class Backend;

// One tensor of a staged batch: its largest shape (dim 0 = the most rows) and dtype.
struct StagedTensorSpec {
  Shape max_shape;
  DType dtype = DType::F32;
};

// The copy machinery behind a BatchStager. The stager checks arguments and slot states; an
// engine trusts them.
class StagingEngine {
 public:
  virtual ~StagingEngine() = default;
  // Queue the copy of the first `rows` rows of each src tensor (host, shaped like the specs
  // beyond dim 0) into slot `slot`, and return the tensors ([rows, ...] views, on the backend's
  // device) the compute reads once the slot is handed over.
  virtual std::vector<Tensor> upload(int slot, const std::vector<Tensor>& src, int64_t rows) = 0;
  // Slot `slot`'s batch goes to the consumer: any op the backend queues after this call sees its
  // uploaded data; ops queued before need not wait for it. Called once per upload, after it, in
  // upload order. Engines whose upload is complete on return (host, copying) do nothing.
  virtual void hand_over(int slot) { (void)slot; }
  // The compute queued so far is the last to read slot `slot`.
  virtual void mark_consumed(int slot) = 0;
  // Wait until the compute marked for `slot` has finished.
  virtual void wait_consumed(int slot) = 0;
};

class BatchStager {
 public:
  struct Staged {
    int slot = -1;
    int64_t sequence = -1;        // 0, 1, 2, ... in stage() order
    std::vector<Tensor> tensors;  // in the order of the specs, [rows, ...], on the device
  };

  BatchStager(int slots, std::vector<StagedTensorSpec> specs,
              std::unique_ptr<StagingEngine> engine);
  ~BatchStager();
  BatchStager(const BatchStager&) = delete;
  BatchStager& operator=(const BatchStager&) = delete;

  int slots() const { return static_cast<int>(state_.size()); }
  const std::vector<StagedTensorSpec>& specs() const { return specs_; }

  // src: host tensors, one per spec, each with `rows` rows (1 <= rows <= the spec's max) and the
  // spec's other dims and dtype. Takes the next slot in ring order, waiting for the compute that
  // last used it; throws Error(Usage) when that slot is still staged and not released.
  Staged stage(const std::vector<Tensor>& src, int64_t rows);
  // Release the oldest staged batch (releases come in stage() order; anything else throws).
  void release(const Staged& s);

 private:
  enum class SlotState : uint8_t { Free, Staged, Released };
  std::vector<StagedTensorSpec> specs_;
  std::unique_ptr<StagingEngine> engine_;
  std::vector<SlotState> state_;
  int next_slot_ = 0;
  int64_t next_sequence_ = 0;
  int64_t next_release_ = 0;  // sequence number release() expects
};

// Engines for backends without one of their own (Backend::make_staging_engine_impl's default).
// Host: the src tensors are returned as they are (rows views). Other devices: synchronous
// backend.copy into per-slot tensors made with backend.empty.
std::unique_ptr<StagingEngine> make_passthrough_staging_engine();
std::unique_ptr<StagingEngine> make_copying_staging_engine(
    Backend& backend, int slots, const std::vector<StagedTensorSpec>& specs);

}  // namespace tessera
