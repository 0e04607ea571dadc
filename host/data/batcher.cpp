#include "host/data/batcher.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "host/core/error.h"
#include "host/core/math.h"

namespace tessera {

std::vector<int64_t> epoch_order(int64_t rows, uint64_t seed, int64_t epoch, ShuffleMode mode) {
  if (mode == ShuffleMode::PerEpoch) {
    return seeded_permutation(rows, math::mix64(seed + static_cast<uint64_t>(epoch)));
  }
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) order[i] = i;
  return order;
}

struct Batcher::State {
  BatcherOptions options;
  int64_t batches_per_epoch = 0;
  // Producer: fills one batch; false when there are no more. Runs on the producer thread only.
  std::function<bool(Batch&)> produce;
  // Repositions the producer (with its thread stopped); empty: it cannot.
  std::function<void(int64_t, int64_t)> seek;

  std::mutex mu;
  std::condition_variable not_full;
  std::condition_variable not_empty;
  std::deque<Batch> queue;
  bool stop = false;      // set by the destructor
  bool finished = false;  // the producer has exited
  std::exception_ptr error;
  std::thread thread;

  void run() {
    try {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(mu);
          not_full.wait(
              lock, [&] { return stop || static_cast<int>(queue.size()) < options.queue_depth; });
          if (stop) break;
        }
        Batch b;
        if (!produce(b)) break;
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(std::move(b));
        not_empty.notify_one();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
    not_empty.notify_all();
  }

  void start() {
    thread = std::thread([this] { run(); });
  }

  void shutdown() noexcept {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    not_full.notify_all();
    if (thread.joinable()) thread.join();
  }

  // With the thread stopped: nothing queued, no error, ready to start again.
  void reset() {
    queue.clear();
    stop = false;
    finished = false;
    error = nullptr;
  }
};

namespace {

void check_options(const BatcherOptions& o) {
  if (o.batch_size <= 0) TESSERA_THROW(Config, "batch_size must be > 0, got " << o.batch_size);
  if (o.queue_depth < 1 || o.queue_depth > 64) {
    TESSERA_THROW(Config, "queue_depth must be in [1, 64], got " << o.queue_depth);
  }
  if (o.epochs < 0) TESSERA_THROW(Config, "epochs must be >= 0, got " << o.epochs);
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    TESSERA_THROW(Config, "rank " << o.rank << " of " << o.world << ": need 0 <= rank < world");
}

// Rank `rank`'s contiguous part [begin, begin + n) of a global batch of `rows` rows cut into
// `world` parts whose sizes differ by at most one (the first rows % world parts one larger).
std::pair<int64_t, int64_t> part_of(int64_t rows, int rank, int world) {
  const int64_t base = rows / world, extra = rows % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, base + (rank < extra ? 1 : 0)};
}

// Copies rows `order[begin, begin + n)` of `t` into a new batch.
void fill_from_table(const EncodedTable& t, const std::vector<int64_t>& order, int64_t begin,
                     int64_t n, Batch& b) {
  b.rows = n;
  b.dense = Tensor::host({n, t.n_dense}, DType::F32);
  b.cat = Tensor::host({n, t.n_cat}, DType::I64);
  float* dense = b.dense.data<float>();
  int64_t* cat = b.cat.data<int64_t>();
  float* labels = nullptr;
  if (t.has_labels) {
    b.labels = Tensor::host({n}, DType::F32);
    labels = b.labels.data<float>();
  }
  const bool with_lines = !t.lines.empty();
  if (with_lines) b.lines.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = order[begin + i];
    if (t.n_dense > 0)
      std::memcpy(dense + i * t.n_dense, t.dense.data() + r * t.n_dense, sizeof(float) * t.n_dense);
    if (t.n_cat > 0)
      std::memcpy(cat + i * t.n_cat, t.cat.data() + r * t.n_cat, sizeof(int64_t) * t.n_cat);
    if (labels != nullptr) labels[i] = t.labels[r];
    if (with_lines) b.lines[i] = t.lines[r];
  }
}

}  // namespace

Batcher::Batcher(const EncodedTable& table, const BatcherOptions& options)
    : state_(std::make_unique<State>()) {
  check_options(options);
  State& s = *state_;
  s.options = options;
  const int64_t B = options.batch_size;
  s.batches_per_epoch =
      options.last_batch == LastBatch::Drop ? table.rows / B : (table.rows + B - 1) / B;
  struct Cursor {
    int64_t epoch = -1;
    int64_t index = 0;
    std::vector<int64_t> order;
  };
  auto cursor = std::make_shared<Cursor>();
  const EncodedTable* t = &table;
  const int64_t per_epoch = s.batches_per_epoch;
  s.produce = [t, options, per_epoch, cursor](Batch& b) {
    Cursor& c = *cursor;
    if (c.epoch >= options.epochs) return false;  // done, or sought past the last epoch
    if (c.epoch < 0 || c.index >= per_epoch) {
      ++c.epoch;
      c.index = 0;
      if (c.epoch >= options.epochs || per_epoch == 0) return false;
      c.order = epoch_order(t->rows, options.seed, c.epoch, options.shuffle);
    }
    const int64_t begin = c.index * options.batch_size;
    const auto [first, n] =
        part_of(std::min(options.batch_size, t->rows - begin), options.rank, options.world);
    fill_from_table(*t, c.order, begin + first, n, b);
    b.epoch = c.epoch;
    b.index = c.index;
    b.last_in_epoch = ++c.index == per_epoch;
    return true;
  };
  s.seek = [t, options, per_epoch, cursor](int64_t epoch, int64_t batch) {
    if (epoch < 0 || batch < 0 || batch > per_epoch)
      TESSERA_THROW(Config, "batcher: cannot seek to batch " << batch << " of epoch " << epoch
                                                             << " (" << per_epoch
                                                             << " batches an epoch)");
    Cursor& c = *cursor;
    c.epoch = epoch;
    c.index = batch;
    c.order.clear();
    if (epoch < options.epochs && batch < per_epoch)
      c.order = epoch_order(t->rows, options.seed, epoch, options.shuffle);
  };
  s.start();
}

Batcher::Batcher(std::unique_ptr<StreamEncoder> stream, const BatcherOptions& options)
    : state_(std::make_unique<State>()) {
  check_options(options);
  TESSERA_CHECK(stream != nullptr, "Batcher: null stream");
  State& s = *state_;
  s.options = options;
  std::shared_ptr<StreamEncoder> enc(std::move(stream));
  struct Cursor {
    int64_t index = 0;
    EncodedTable chunk;
    std::vector<int64_t> identity;
  };
  auto cursor = std::make_shared<Cursor>();
  cursor->chunk.n_dense = enc->preprocessor().n_dense();
  cursor->chunk.n_cat = enc->preprocessor().n_cat();
  s.produce = [enc, options, cursor](Batch& b) {
    Cursor& c = *cursor;
    c.chunk.clear();
    const int64_t n = enc->append_to(c.chunk, options.batch_size);
    if (n == 0) return false;
    if (n < options.batch_size && options.last_batch == LastBatch::Drop) return false;
    c.chunk.has_labels = enc->has_labels();
    if (static_cast<int64_t>(c.identity.size()) < n) {
      c.identity.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) c.identity[i] = i;
    }
    fill_from_table(c.chunk, c.identity, 0, n, b);
    b.epoch = 0;
    b.index = c.index++;
    b.last_in_epoch = n < options.batch_size;  // known only for a short final batch
    return true;
  };
  s.start();
}

Batcher::Batcher(BatchProducer producer, int queue_depth) : state_(std::make_unique<State>()) {
  TESSERA_CHECK(producer.fill != nullptr, "Batcher: a producer without fill");
  BatcherOptions o;
  o.queue_depth = queue_depth;
  check_options(o);
  State& s = *state_;
  s.options = o;
  s.batches_per_epoch = producer.batches_per_epoch;
  s.produce = std::move(producer.fill);
  s.seek = std::move(producer.seek);
  s.start();
}

void Batcher::seek(int64_t epoch, int64_t batch) {
  TESSERA_CHECK(state_ != nullptr, "Batcher::seek on a moved-from batcher");
  State& s = *state_;
  if (!s.seek)
    TESSERA_THROW(Usage, "this batch source is read once, in order: it cannot resume at batch "
                             << batch << " of epoch " << epoch);
  s.shutdown();
  s.reset();
  try {
    s.seek(epoch, batch);
  } catch (...) {
    s.finished = true;  // no producer: next() reports the end instead of waiting
    throw;
  }
  s.start();
}

Batcher::~Batcher() {
  if (state_) state_->shutdown();
}
Batcher::Batcher(Batcher&&) noexcept = default;
Batcher& Batcher::operator=(Batcher&& o) noexcept {
  if (this != &o) {
    if (state_) state_->shutdown();
    state_ = std::move(o.state_);
  }
  return *this;
}

int64_t Batcher::batches_per_epoch() const {
  return state_->batches_per_epoch;
}

bool Batcher::next(Batch& out) {
  TESSERA_CHECK(state_ != nullptr, "Batcher::next on a moved-from batcher");
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.not_empty.wait(lock, [&] { return !s.queue.empty() || s.finished; });
  if (!s.queue.empty()) {
    out = std::move(s.queue.front());
    s.queue.pop_front();
    s.not_full.notify_one();
    return true;
  }
  if (s.error) {
    std::exception_ptr e = s.error;
    s.error = nullptr;  // rethrown once; later calls report the end
    std::rethrow_exception(e);
  }
  return false;
}

}  // namespace tessera
