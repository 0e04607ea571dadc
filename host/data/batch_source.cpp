#include "host/data/batch_source.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "host/core/error.h"
#include "host/data/batcher.h"
#include "host/data/prepared.h"

namespace tessera {

// What the producer thread and the consumer share: the reader lives on the producer thread (and
// is replaced by seek() while that thread is stopped); the counters are read by the consumer.
struct PreparedSource::Shared {
  PreparedDataset data;
  PreparedReadOptions options;
  std::unique_ptr<PreparedBatchReader> reader;
  std::atomic<int64_t> released{0}, peak_open{0}, peak_bytes{0}, bytes_read{0};
  int64_t released_before = 0, read_before = 0;  // by readers a seek replaced

  bool fill(Batch& b) {
    if (!reader->next(b)) return false;
    released.store(released_before + reader->blocks_released(), std::memory_order_relaxed);
    bytes_read.store(read_before + reader->bytes_read(), std::memory_order_relaxed);
    const int64_t open = reader->peak_open_blocks();
    if (open > peak_open.load(std::memory_order_relaxed))
      peak_open.store(open, std::memory_order_relaxed);
    const int64_t bytes = reader->peak_bytes_held();
    if (bytes > peak_bytes.load(std::memory_order_relaxed))
      peak_bytes.store(bytes, std::memory_order_relaxed);
    return true;
  }
  void seek(int64_t epoch, int64_t batch) {
    if (epoch < 0 || batch < 0)
      TESSERA_THROW(Config,
                    "prepared source: cannot seek to batch " << batch << " of epoch " << epoch);
    const int64_t batches = reader->batches_in_epoch(epoch);
    if (batch > batches)
      TESSERA_THROW(Config, "prepared source: epoch "
                                << epoch << " of split '" << options.split << "' has " << batches
                                << " batches, cannot seek to batch " << batch);
    PreparedReadOptions o = options;
    // The epoch's end is the next epoch's start (a Drop'd short batch is never read).
    // (A lockstep reader reads the start by its batch, and works out its rows.)
    o.start = batch == batches ? PreparedPosition{epoch + 1, 0, 0}
                               : PreparedPosition{epoch, batch * options.batch_size, batch};
    released_before = released.load(std::memory_order_relaxed);
    read_before = bytes_read.load(std::memory_order_relaxed);
    reader = std::make_unique<PreparedBatchReader>(data, o);
  }
};

PreparedSource::PreparedSource(const PreparedDataset& data, const PreparedReadOptions& options,
                               int queue_depth)
    : shared_(std::make_shared<Shared>()) {
  Shared& sh = *shared_;
  sh.data = data;
  sh.options = options;
  sh.reader = std::make_unique<PreparedBatchReader>(data, options);
  BatchProducer p;
  auto shared = shared_;
  p.fill = [shared](Batch& b) { return shared->fill(b); };
  p.seek = [shared](int64_t epoch, int64_t batch) { shared->seek(epoch, batch); };
  p.batches_per_epoch = sh.reader->batches_in_epoch(options.start.epoch);
  queue_ = std::make_unique<Batcher>(std::move(p), queue_depth);
}

PreparedSource::~PreparedSource() = default;

bool PreparedSource::next(Batch& out) {
  return queue_->next(out);
}

int64_t PreparedSource::batches_per_epoch() const {
  return queue_->batches_per_epoch();
}

void PreparedSource::seek(int64_t epoch, int64_t batch) {
  queue_->seek(epoch, batch);
}

int64_t PreparedSource::batches_in_epoch(int64_t epoch) const {
  // rows_in_epoch reads only the block order: safe beside the producer, which never changes it.
  return shared_->reader->batches_in_epoch(epoch);
}

int64_t PreparedSource::bytes_read() const {
  return shared_->bytes_read.load(std::memory_order_relaxed);
}

int64_t PreparedSource::blocks_released() const {
  return shared_->released.load(std::memory_order_relaxed);
}

int64_t PreparedSource::peak_open_blocks() const {
  return shared_->peak_open.load(std::memory_order_relaxed);
}

int64_t PreparedSource::peak_bytes_held() const {
  return shared_->peak_bytes.load(std::memory_order_relaxed);
}

}  // namespace tessera
