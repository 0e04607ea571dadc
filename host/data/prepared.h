#pragma once
// Reading a prepared dataset (the directory `tessera prep` writes; docs/prepared-format.md).
//
// PreparedDataset::open(dir) reads and checks manifest.json (an Io error naming the file and the
// field), the fitted preprocessor it holds, and every shard's size and header against it (an Io
// error naming the shard); nothing is read beyond the headers, and no shard is kept open or
// mapped. A shard's crc32 (whole file, read in 1 MiB pieces) is checked the first time a reader
// takes rows from it, or by verify(): a mismatch is an Io error "DIR/train-00002.tshard:
// checksum mismatch ...".
//
// PreparedBatchReader yields the rows of one split as Batches in EncodedTable's encoding (dense
// f32, global embedding rows i64, labels f32, source lines), the shape a BatchSource has:
//   - order: the split's shards cut into blocks of `block_rows` rows. Without shuffling, blocks
//     in file order, so the rows come out exactly as load_table / Batcher (ShuffleMode::None)
//     give them. With shuffling, epoch e visits the blocks in seeded_permutation(blocks,
//     mix64(seed + e)) and passes the rows through a shuffle buffer of `shuffle_buffer` rows (a
//     row is emitted from a uniformly chosen buffer slot, its place taken by the next row).
//   - part `rank` of `world`: the ordered blocks at positions p with p % world == rank, so the
//     parts are disjoint and together hold every row once per epoch.
//   - lockstep parts (training under mpirun; `lockstep`): every rank visits every block in the
//     one-process order but reads only its slice of each block's rows (slot (rank + block) %
//     world of world near-equal slices), takes batches of its share of the global batch_size
//     (batch_size / world, the first batch_size % world ranks one more), and every rank yields
//     the same number of batches per epoch (the most any rank needs, from the manifest): a rank
//     whose rows are out yields empty batches. Disjoint, every row once per epoch, each rank
//     about 1/world of the bytes.
//   - exact resume: position() after a batch, given back as `start`, continues with the very next
//     batch: the row order depends only on the options, so the reader replays the order (row
//     indices only, no data read) up to the position.
// Memory, whatever the data's size: the open blocks' rows (a block is read with pread, every
// column, when its first row is delivered in an epoch, into a row-major buffer, and freed once all
// its rows have been: bytes_held(); freed buffers are kept for the next blocks, so the buffers
// never exceed peak_bytes_held()), one column of a block as read, the block order and the
// shuffle buffer's row indices. The reader maps nothing,
// so no file page it read stays in the process's resident set (an earlier mapped reader kept the
// pages of narrow columns and fault-around neighbours resident: RSS grew with the shards).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/data/batch_source.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared_format.h"
#include "host/data/preprocessor.h"

namespace tessera {

class PreparedDataset {
 public:
  static PreparedDataset open(const std::string& dir);

  const std::string& dir() const;
  const PreparedManifest& manifest() const;
  // The fitted preprocessor, read from the manifest by open(). Internal error once released.
  const Preprocessor& preprocessor() const;
  // Moves the preprocessor out, for a caller that keeps its own for the whole run (a training
  // run from prepared shards): its vocabulary, ~52 bytes a token, then lives once, not once here
  // and once there. Every copy of this dataset shares it, so none may call preprocessor() after
  // (the shards and their readers do not need it: open() checked the columns against it).
  Preprocessor release_preprocessor();
  int64_t rows(const std::string& split) const { return manifest().rows(split); }
  bool has_split(const std::string& split) const;
  // Checks the crc32 of every shard of `split` ("" = every split).
  void verify(const std::string& split = "") const;

  struct Impl;
  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

// A whole split read into memory, in file order: the EncodedTable load_table gives for the same
// rows (lines included), for data that fits in memory and is trained on many times.
EncodedTable read_prepared_table(const PreparedDataset& data, const std::string& split);

struct PreparedPosition {
  int64_t epoch = 0;
  int64_t row = 0;    // rows of this part already delivered in `epoch`
  int64_t batch = 0;  // batches yielded in `epoch` (lockstep: empty ones too; else row / batch)
  bool operator==(const PreparedPosition& o) const {
    return epoch == o.epoch && row == o.row && batch == o.batch;
  }
};

struct PreparedReadOptions {
  std::string split = "train";
  int64_t batch_size = 256;
  bool shuffle = false;
  uint64_t seed = 0;
  int64_t block_rows = 4096;       // the unit of the block shuffle and of the parts
  int64_t shuffle_buffer = 16384;  // rows; <= 1: blocks shuffled, rows within them in order
  int rank = 0, world = 1;         // part `rank` of `world`
  // Lockstep parts (above): batch_size is the global batch, every rank the same batch count;
  // needs LastBatch::Keep and batch_size >= world. A resume's `start` is read by its batch.
  bool lockstep = false;
  int64_t epochs = 1;
  LastBatch last_batch = LastBatch::Keep;
  PreparedPosition start;        // where to begin (a position() from an earlier reader)
  bool verify_checksums = true;  // check each shard's crc32 before its first rows are used
};

class PreparedBatchReader {
 public:
  PreparedBatchReader(const PreparedDataset& data, const PreparedReadOptions& options);
  ~PreparedBatchReader();
  PreparedBatchReader(PreparedBatchReader&&) noexcept;
  PreparedBatchReader& operator=(PreparedBatchReader&&) noexcept;

  // The next batch; false when every epoch is done.
  bool next(Batch& out);
  // Where the next batch starts (after the last one next() returned).
  PreparedPosition position() const;
  // Rows of this part in epoch `epoch` (parts of a shuffled split differ by epoch when the
  // blocks differ in size).
  int64_t rows_in_epoch(int64_t epoch) const;
  // Batches epoch `epoch` yields (lockstep: the same on every rank).
  int64_t batches_in_epoch(int64_t epoch) const;
  // Bytes this reader read from the shards: its blocks' rows, and the checksums it computed
  // (lockstep: rank r checks the shards s with s % world == r, so no rank reads every shard).
  int64_t bytes_read() const;
  // Blocks whose rows have all been delivered (or whose epoch ended) and whose rows were freed.
  int64_t blocks_released() const;
  // Blocks open now / at most so far: some of their rows delivered in this epoch, not all (the
  // blocks whose rows the reader holds). Without a shuffle buffer at most the blocks one batch
  // spans, plus one; with one, each open block but the one being read has a row in the buffer.
  int64_t open_blocks() const;
  int64_t peak_open_blocks() const;
  // Bytes of shard data held now / at most so far: the open blocks' rows (every column).
  int64_t bytes_held() const;
  int64_t peak_bytes_held() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Lockstep parts (PreparedReadOptions::lockstep) of `o.world` ranks: where each rank's reader
// stands after `batch` batches of epoch `epoch` ([world]; what a mid-epoch checkpoint records).
// The dealing depends only on the manifest and the options, so any rank can say every rank's.
std::vector<PreparedPosition> lockstep_positions(const PreparedDataset& data,
                                                 const PreparedReadOptions& o, int64_t epoch,
                                                 int64_t batch);

// A prepared split through PreparedBatchReader on a prefetch thread. The reader's options say the
// order (block shuffle, shuffle buffer, seed), the part (rank / world) and the epochs; the batch
// count per epoch comes from the reader's rows_in_epoch. Memory: the queue's batches, the reader's
// block order and shuffle-buffer row indices, and the rows of the blocks being delivered (a
// block is freed once all its rows are out).
class PreparedSource final : public BatchSource {
 public:
  // `data` is shared (its shard list stays alive while the source does).
  PreparedSource(const PreparedDataset& data, const PreparedReadOptions& options,
                 int queue_depth = 3);
  ~PreparedSource() override;

  bool next(Batch& out) override;
  // Of the first epoch read (parts of a shuffled split may differ by epoch when world > 1).
  int64_t batches_per_epoch() const override;
  void seek(int64_t epoch, int64_t batch) override;
  // Batches epoch `epoch` yields for this part.
  int64_t batches_in_epoch(int64_t epoch) const;

  // The reader's counters so far (updated as batches are produced, also across seeks): blocks
  // whose rows were freed, the most blocks ever open at once (some rows delivered, some not: the
  // blocks whose rows the reader holds) and the most bytes of them held at once.
  int64_t blocks_released() const;
  int64_t peak_open_blocks() const;
  int64_t peak_bytes_held() const;
  // The reader's bytes read from the shards so far (PreparedBatchReader::bytes_read), also
  // across seeks.
  int64_t bytes_read() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<BatchSource> queue_;  // a Batcher running the reader
};

}  // namespace tessera
