#pragma once
// Batcher: a producer thread cuts host batches ahead of the training step and hands them over
// through a bounded queue (depth 2-4), so data preparation overlaps the model step.
//
// Table mode: every epoch visits every row exactly once, in a per-epoch permutation
// seeded_permutation(rows, mix64(seed + epoch)) (ShuffleMode::PerEpoch) or in file order; the
// last short batch is kept or dropped (LastBatch). Stream mode (batch scoring): one pass over a
// StreamEncoder in file order, never holding more than the queue's batches in memory.
//
// Parts (rank / world, table mode): every global batch of batch_size rows (the same permutation
// for every rank) is cut into `world` contiguous parts and rank r gets part r; the part sizes
// differ by at most one row (the first n % world ranks get one more). So every rank takes the same
// number of batches per epoch, and a rank may get 0 rows of a short last batch: next() then
// returns true with a Batch of rows == 0 (empty tensors, the batch's epoch / index / last flag).
//
// The consumer calls next() until it returns false. An exception thrown by the producer (a bad
// row under BadRowPolicy::Error, an I/O error) is rethrown by next() after the batches produced
// before it. The destructor stops the producer and joins it, also when the consumer stops early;
// it never throws and never waits for more than the batch in progress.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "host/core/tensor.h"
#include "host/data/batch_source.h"
#include "host/data/encoded_table.h"
#include "host/data/stream_encoder.h"

namespace tessera {

struct Batch {
  int64_t rows = 0;            // B (the last batch of an epoch may be short)
  Tensor dense;                // (B, n_dense) f32, host
  Tensor cat;                  // (B, n_cat) i64, global embedding rows, host
  Tensor labels;               // (B) f32 0/1, host; undefined when the data has no labels
  std::vector<int64_t> lines;  // [B] source line of each row (empty if the table has none)
  int64_t epoch = 0;
  int64_t index = 0;  // batch index within the epoch
  bool last_in_epoch = false;
};

enum class ShuffleMode : uint8_t { None, PerEpoch };
enum class LastBatch : uint8_t { Keep, Drop };

struct BatcherOptions {
  int64_t batch_size = 256;
  ShuffleMode shuffle = ShuffleMode::PerEpoch;  // table mode only; streams are in file order
  uint64_t seed = 0;
  LastBatch last_batch = LastBatch::Keep;
  int64_t epochs = 1;       // table mode only; streams make one pass
  int queue_depth = 3;      // 2..4 ready batches
  int rank = 0, world = 1;  // table mode: this rank's part of every global batch
};

// What a batcher runs on its producer thread for a source of its own (PreparedSource): fill(b)
// fills the next batch (false: done); seek(epoch, batch) repositions it (called with the thread
// stopped; empty: the source cannot seek); batches_per_epoch as BatchSource's.
struct BatchProducer {
  std::function<bool(Batch&)> fill;
  std::function<void(int64_t, int64_t)> seek;
  int64_t batches_per_epoch = 0;
};

class Batcher final : public BatchSource {
 public:
  // `table` must outlive the batcher.
  Batcher(const EncodedTable& table, const BatcherOptions& options);
  Batcher(std::unique_ptr<StreamEncoder> stream, const BatcherOptions& options);
  // Runs `producer` on the prefetch thread with a queue of `queue_depth` batches.
  Batcher(BatchProducer producer, int queue_depth);
  ~Batcher() override;
  Batcher(Batcher&&) noexcept;
  Batcher& operator=(Batcher&&) noexcept;

  // The next batch; false when every epoch is done. Rethrows a producer exception.
  bool next(Batch& out) override;
  // Table mode: global batches in each epoch, the same on every rank (0 in stream mode, where it
  // is not known in advance).
  int64_t batches_per_epoch() const override;
  // Table mode: the producer restarts at (epoch, batch) without copying the batches before it.
  // Stream mode: an Error (a text stream is read once, in order).
  void seek(int64_t epoch, int64_t batch) override;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Permutation of epoch `epoch` used by the table batcher (exposed for tests and resumption).
std::vector<int64_t> epoch_order(int64_t rows, uint64_t seed, int64_t epoch, ShuffleMode mode);

}  // namespace tessera
