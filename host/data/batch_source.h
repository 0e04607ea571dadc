#pragma once
// BatchSource: where a training or scoring loop takes its host batches from, one at a time, in
// order. Two kinds implement it:
//   - Batcher (host/data/batcher.h): an EncodedTable in memory (a per-epoch permutation of all
//     its rows, cut per rank) or a text StreamEncoder (one pass, file order);
//   - PreparedSource (host/data/prepared.h): a split of a prepared directory read by
//   PreparedBatchReader
//     (host/data/prepared.h) on a prefetch thread, never the whole split in memory.
// Both produce ahead of the consumer through a bounded queue (2-4 batches), and both rethrow a
// producer error from next() after the batches produced before it.
//
// Resume: seek(epoch, batch) puts the source where an uninterrupted source would be after the
// first `batch` batches of epoch `epoch` (both 0-based), so a run stopped mid-epoch continues with
// the very batches it would have seen. The batches queued ahead are dropped.
#include <cstdint>

namespace tessera {

struct Batch;

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The next batch; false when every epoch is done. Rethrows a producer error in order.
  virtual bool next(Batch& out) = 0;
  // Batches a full epoch yields (0 when it is not known in advance: a text stream).
  virtual int64_t batches_per_epoch() const = 0;
  // Repositions at batch `batch` of epoch `epoch` (0-based; batch == batches_per_epoch() is the
  // epoch's end). An Error where the source cannot (a text stream) or the position is past the
  // data.
  virtual void seek(int64_t epoch, int64_t batch) = 0;
};

}  // namespace tessera
