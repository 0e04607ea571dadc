#pragma once
// TrainFeed: the training loop's batches, one batch ahead of the model, through the backend's
// BatchStager (host/backend/batch_stager.h). next() queues batch k+1's upload before the caller
// queues batch k's compute, so on CUDA the copy (pinned memory, copy stream) runs beside the
// kernels; on the host the source's own tensors reach the model unchanged.
#include <exception>
#include <memory>

#include "host/backend/backend.h"
#include "host/data/batch_source.h"
#include "host/data/batcher.h"

namespace tessera::behaviour {

// Where the model wants the categorical ids. The DLRM remaps and bags them on the host
// (pipelines/behaviour/net.cpp), so they stay there; the MLP looks them up on the device.
enum class CatPlacement : uint8_t { Host, Device };

class TrainFeed {
 public:
  struct Item {
    Batch batch;                // the source's host batch (rows, epoch, flags)
    Tensor dense, cat, labels;  // what the model reads: [rows, ...] on the backend, except a
                                // host cat under CatPlacement::Host
    BatchStager::Staged staged;
  };

  // `source` and `backend` must outlive the feed; max_batch: the source's batch size.
  TrainFeed(Backend& backend, BatchSource& source, int64_t max_batch, CatPlacement cat);
  ~TrainFeed();

  // The next batch; false when the source is done. A source error is rethrown here, in order
  // (after the batches before it), not when the look-ahead meets it.
  bool next(Item& out);
  // The compute reading `item` is queued (not necessarily finished): its slot may be refilled
  // once that compute finishes. Call once per item, in order.
  void done(Item& item);

 private:
  Item stage(Batch&& b);

  Backend& backend_;
  BatchSource& source_;
  int64_t max_batch_;
  CatPlacement cat_;
  std::unique_ptr<BatchStager> stager_;  // made at the first batch (its widths come from it)
  bool stage_dense_ = false, stage_cat_ = false;
  Item ahead_;
  bool have_ahead_ = false, started_ = false;
  std::exception_ptr ahead_error_;
};

}  // namespace tessera::behaviour
