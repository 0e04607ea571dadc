#include "host/data/prepared.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <utility>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/encoded_table.h"

namespace tessera {

namespace {

// The layout parse_shard_header reads: a fixed part (magic, version, column count, rows), then one
// entry per column and the table's CRC.
constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kColumnEntryBytes = 24;

// A shard opened read-only for one job (a header, a checksum, a block); closed when it ends.
struct Fd {
  std::string path;
  int fd = -1;
  explicit Fd(const std::string& p) : path(p), fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd < 0) TESSERA_THROW(Io, path << ": shard is missing (" << std::strerror(errno) << ")");
  }
  ~Fd() { ::close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  // Exactly `n` bytes at `offset`, or an Io error (the file shrank since it was opened).
  void read(void* dst, size_t n, uint64_t offset) const {
    auto* p = static_cast<uint8_t*>(dst);
    while (n > 0) {
      const ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) TESSERA_THROW(Io, path << ": read failed (" << std::strerror(errno) << ")");
      if (got == 0)
        TESSERA_THROW(Io, path << ": the shard ends at byte " << offset
                               << ", before its data (truncated since it was opened?)");
      p += got;
      n -= static_cast<size_t>(got);
      offset += static_cast<uint64_t>(got);
    }
  }
};

// One shard file, read with pread into buffers the caller owns: nothing of it stays in the
// process's memory but the header (a file mapping would keep every page it touched resident
// until unmapped, and the page cache's copy is the kernel's to reclaim).
struct ShardFile {
  std::string path;
  const ShardInfo* info = nullptr;
  size_t size = 0;
  ShardHeader header;
  std::atomic<bool> verified{false};
  std::mutex verify_mu;

  void open_and_check() {
    Fd fd(path);
    struct stat st;
    if (::fstat(fd.fd, &st) != 0) TESSERA_THROW(Io, path << ": cannot stat the shard");
    size = static_cast<size_t>(st.st_size);
    if (static_cast<int64_t>(size) != info->bytes)
      TESSERA_THROW(Io, path << ": shard is " << size << " bytes, the manifest says " << info->bytes
                             << " (truncated or replaced?)");
    // The fixed part says the column count; then the column table and its CRC.
    std::vector<uint8_t> head(std::min<size_t>(size, kFixedHeaderBytes));
    fd.read(head.data(), head.size(), 0);
    if (head.size() == kFixedHeaderBytes) {
      uint32_t n = 0;
      std::memcpy(&n, head.data() + 12, 4);
      n = std::min(n, kMaxShardColumns + 1);
      head.resize(std::min<size_t>(size, kFixedHeaderBytes + kColumnEntryBytes * n + 4));
      fd.read(head.data(), head.size(), 0);
    }
    header = parse_shard_header(head.data(), size, path);
  }

  // True when this call read the shard (the first check of it).
  bool verify() {
    if (verified.load(std::memory_order_acquire)) return false;
    std::lock_guard<std::mutex> lock(verify_mu);
    if (verified.load(std::memory_order_relaxed)) return false;
    Fd fd(path);
    std::vector<uint8_t> buf(std::min<size_t>(size, size_t{1} << 20));
    uLong crc = ::crc32(0L, Z_NULL, 0);
    for (size_t at = 0; at < size; at += buf.size()) {
      const size_t n = std::min(buf.size(), size - at);
      fd.read(buf.data(), n, at);
      crc = ::crc32(crc, buf.data(), static_cast<uInt>(n));
    }
    if (static_cast<uint32_t>(crc) != info->crc32)
      TESSERA_THROW(Io, path << ": checksum mismatch (crc32 " << static_cast<uint32_t>(crc)
                             << ", the manifest says " << info->crc32
                             << "): the shard is corrupt; re-run `tessera prep`");
    verified.store(true, std::memory_order_release);
    return true;
  }
};

void check_shard_columns(const ShardFile& s, const PreparedManifest& m) {
  if (s.header.rows != static_cast<uint64_t>(s.info->rows))
    TESSERA_THROW(Io, s.path << ": shard holds " << s.header.rows << " rows, the manifest says "
                             << s.info->rows);
  if (s.header.columns.size() != m.columns.size())
    TESSERA_THROW(Io, s.path << ": shard has " << s.header.columns.size()
                             << " columns, the manifest " << m.columns.size());
  for (size_t i = 0; i < m.columns.size(); ++i) {
    const ShardColumn& c = s.header.columns[i];
    if (c.type != m.columns[i].type || c.width != m.columns[i].width)
      TESSERA_THROW(Io, s.path << ": column " << i << " (" << m.columns[i].name << ") is "
                               << prepared_type_name(c.type) << " x " << c.width
                               << ", the manifest says " << prepared_type_name(m.columns[i].type)
                               << " x " << m.columns[i].width);
  }
}

// The columns must be what the preprocessor encodes: label, dense, one table each, line.
void check_columns(const PreparedManifest& m, const Preprocessor& pre, const std::string& path) {
  auto fail = [&](const std::string& why) { TESSERA_THROW(Io, path << ": columns: " << why); };
  if (m.n_dense != pre.n_dense() || m.n_cat != pre.n_cat())
    fail("widths differ from the preprocessor's");
  const auto& cols = m.columns;
  if (cols[0].name != "label" || cols[0].type != PreparedType::F32 || cols[0].width != 1)
    fail("the first must be label f32 x 1");
  if (cols[1].name != "dense" || cols[1].type != PreparedType::F32 || cols[1].width != m.n_dense)
    fail("the second must be dense f32 x n_dense");
  for (int64_t c = 0; c < m.n_cat; ++c) {
    const CategoricalColumnModel& t = pre.categorical_columns()[static_cast<size_t>(c)];
    const PreparedColumnInfo& info = cols[static_cast<size_t>(2 + c)];
    if (info.name != "cat:" + t.name || info.width != 1 || info.offset != t.offset ||
        info.type == PreparedType::F32 ||
        prepared_type_size(info.type) < prepared_type_size(narrowest_id_type(t.size)))
      fail("table column " + std::to_string(c) + " does not match the preprocessor's table '" +
           t.name + "'");
  }
  const PreparedColumnInfo& line = cols.back();
  if (line.name != "line" || line.type != PreparedType::I64 || line.width != 1)
    fail("the last must be line i64 x 1");
}

}  // namespace

struct PreparedDataset::Impl {
  std::string dir;
  PreparedManifest manifest;
  Preprocessor pre;
  bool pre_released = false;  // release_preprocessor() moved `pre` out
  std::map<std::string, std::vector<std::unique_ptr<ShardFile>>> shards;
};

PreparedDataset PreparedDataset::open(const std::string& dir) {
  PreparedDataset d;
  d.impl_ = std::make_shared<Impl>();
  Impl& im = *d.impl_;
  im.dir = dir;
  const std::string path = dir + "/" + kManifestFile;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    TESSERA_THROW(Io, path << ": not found: " << dir
                           << " is not a prepared dataset (write one with `tessera prep`)");
  im.manifest = PreparedManifest::parse(read_file(path), path);
  if (!im.manifest.complete)
    TESSERA_THROW(Data, path << ": complete is false: `tessera prep` did not finish; run it again "
                                "to complete the dataset");
  im.pre = Preprocessor::from_json_string(im.manifest.preprocessor_json);
  check_columns(im.manifest, im.pre, path);
  for (const auto& [split, sources] : im.manifest.splits) {
    auto& list = im.shards[split];
    for (const SourceInfo& src : sources) {
      for (const ShardInfo& info : src.shards) {
        auto s = std::make_unique<ShardFile>();
        s->path = dir + "/" + info.file;
        s->info = &info;
        s->open_and_check();
        check_shard_columns(*s, im.manifest);
        list.push_back(std::move(s));
      }
    }
  }
  return d;
}

const std::string& PreparedDataset::dir() const {
  return impl_->dir;
}
const PreparedManifest& PreparedDataset::manifest() const {
  return impl_->manifest;
}
const Preprocessor& PreparedDataset::preprocessor() const {
  if (impl_->pre_released)
    TESSERA_THROW(Internal, impl_->dir << ": the prepared dataset's preprocessor was released");
  return impl_->pre;
}
Preprocessor PreparedDataset::release_preprocessor() {
  preprocessor();  // throws when released already
  Preprocessor out = std::move(impl_->pre);
  impl_->pre = Preprocessor();  // a moved-from object's members hold no promise of being empty
  impl_->pre_released = true;
  return out;
}
bool PreparedDataset::has_split(const std::string& split) const {
  return impl_->manifest.splits.count(split) > 0;
}

void PreparedDataset::verify(const std::string& split) const {
  for (auto& [name, list] : impl_->shards)
    if (split.empty() || name == split)
      for (auto& s : list) s->verify();
}

// ---- the batch reader -------------------------------------------------------------------------

namespace {

struct Block {
  int32_t shard = 0;
  int64_t begin = 0, rows = 0;
};

// The split's shards cut into blocks of `block_rows` rows, in file order.
std::vector<Block> split_blocks(const std::vector<std::unique_ptr<ShardFile>>& shards,
                                int64_t block_rows) {
  std::vector<Block> blocks;
  for (size_t i = 0; i < shards.size(); ++i) {
    const int64_t rows = shards[i]->info->rows;
    for (int64_t b = 0; b < rows; b += block_rows)
      blocks.push_back(Block{static_cast<int32_t>(i), b, std::min(block_rows, rows - b)});
  }
  return blocks;
}

// Lockstep parts: rank `rank`'s slice of every block. Block i's rows are cut into `world`
// near-equal slices and the rank takes slot (rank + i) % world, so the one-row remainders rotate
// over the ranks and their row counts stay within a row or so of each other.
std::vector<Block> lockstep_slices(const std::vector<Block>& all, int rank, int world) {
  std::vector<Block> mine(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const int64_t slot = (rank + static_cast<int64_t>(i)) % world, k = all[i].rows;
    const int64_t lo = k * slot / world, hi = k * (slot + 1) / world;
    mine[i] = Block{all[i].shard, all[i].begin + lo, hi - lo};
  }
  return mine;
}

int64_t rows_of(const std::vector<Block>& blocks) {
  int64_t n = 0;
  for (const Block& b : blocks) n += b.rows;
  return n;
}

// Rank `rank`'s share of a global batch of B rows (the in-memory Batcher's cut: the first B %
// world ranks one row more).
int64_t local_batch(int64_t B, int rank, int world) {
  return B / world + (rank < B % world ? 1 : 0);
}

// Batches per epoch of lockstep parts: the most any rank needs for its rows (every epoch alike:
// a rank's slices do not depend on the block order).
int64_t lockstep_batches(const std::vector<Block>& all, const PreparedReadOptions& o) {
  int64_t most = 0;
  for (int r = 0; r < o.world; ++r) {
    const int64_t b = local_batch(o.batch_size, r, o.world);
    most = std::max(most, (rows_of(lockstep_slices(all, r, o.world)) + b - 1) / b);
  }
  return most;
}

// A row of an epoch's order: row `row` (within the block) of the split's block `block`.
struct RowRef {
  int64_t block = 0;
  int64_t row = 0;
};

// The row order of one epoch of one part: its blocks, then the shuffle buffer.
class EpochStream {
 public:
  EpochStream(const std::vector<Block>& blocks, const PreparedReadOptions& o, int64_t epoch)
      : blocks_(blocks), cap_(o.shuffle ? o.shuffle_buffer : 0) {
    std::vector<int64_t> order;
    if (o.shuffle) {
      order = seeded_permutation(static_cast<int64_t>(blocks.size()),
                                 math::mix64(o.seed + static_cast<uint64_t>(epoch)));
    } else {
      order.resize(blocks.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    }
    // Lockstep parts hold a slice of every block (their blocks are the slices): all positions.
    const size_t first = o.lockstep ? 0 : static_cast<size_t>(o.rank);
    const size_t stride = o.lockstep ? 1 : static_cast<size_t>(o.world);
    for (size_t p = first; p < order.size(); p += stride) mine_.push_back(order[p]);
    rng_.seed(math::mix64(o.seed ^ 0x9e3779b97f4a7c15ULL) + static_cast<uint64_t>(epoch));
  }

  int64_t rows() const {
    int64_t n = 0;
    for (int64_t b : mine_) n += blocks_[static_cast<size_t>(b)].rows;
    return n;
  }

  bool next(RowRef& out) {
    if (cap_ <= 1) return next_source(out);
    RowRef r;
    while (static_cast<int64_t>(buffer_.size()) < cap_ && next_source(r)) buffer_.push_back(r);
    if (buffer_.empty()) return false;
    const size_t j = static_cast<size_t>(uniform_below(rng_, buffer_.size()));
    out = buffer_[j];
    if (next_source(r)) {
      buffer_[j] = r;
    } else {
      buffer_[j] = buffer_.back();
      buffer_.pop_back();
    }
    return true;
  }

 private:
  bool next_source(RowRef& out) {
    while (bi_ < mine_.size()) {
      if (in_block_ < blocks_[static_cast<size_t>(mine_[bi_])].rows) {
        out = RowRef{mine_[bi_], in_block_++};
        return true;
      }
      ++bi_;
      in_block_ = 0;
    }
    return false;
  }

  const std::vector<Block>& blocks_;
  int64_t cap_;
  std::vector<int64_t> mine_;
  size_t bi_ = 0;
  int64_t in_block_ = 0;
  std::vector<RowRef> buffer_;
  std::mt19937_64 rng_;
};

// Where a block's rows sit in its buffer: row-major, row i's record at i * record, its column c
// at pos[c] (the shard's columns in their order, each as stored: the record is the bytes of one
// row of the shard). Row-major because a shuffled batch takes rows scattered over the open blocks:
// a row's values in one or two cache lines, instead of one line per column (the shard's own
// column-major layout), which made the gather wait on memory for every value. One layout for every
// block of the split (room for its largest block), so a freed block's buffer serves the next.
struct BlockLayout {
  std::vector<size_t> pos, col_bytes;  // [columns]
  size_t record = 0;                   // bytes of one row, every column
  size_t rows = 0;                     // rows a buffer has room for
  // The table columns by stored id type, so a batch row's ids are widened with one dispatch per
  // type, not per value: (record position, column in the batch's cat, embedding row offset).
  struct Id {
    size_t pos;
    int64_t index, offset;
  };
  std::vector<std::pair<PreparedType, std::vector<Id>>> ids;

  size_t bytes() const { return record * rows; }
  void build(const PreparedManifest& m, int64_t max_rows) {
    rows = static_cast<size_t>(max_rows);
    for (const PreparedColumnInfo& c : m.columns) {
      pos.push_back(record);
      col_bytes.push_back(static_cast<size_t>(c.width) * prepared_type_size(c.type));
      record += col_bytes.back();
    }
    for (int64_t k = 0; k < m.n_cat; ++k) {
      const size_t c = static_cast<size_t>(2 + k);
      auto g = std::find_if(ids.begin(), ids.end(),
                            [&](const auto& e) { return e.first == m.columns[c].type; });
      if (g == ids.end()) {
        ids.emplace_back(m.columns[c].type, std::vector<Id>{});
        g = ids.end() - 1;
      }
      g->second.push_back(Id{pos[c], k, m.columns[c].offset});
    }
  }
};

// `rows` values of `W` bytes, packed at `src`, to dst + i * stride (a column into the records).
template <size_t W>
void scatter_column(const uint8_t* src, size_t rows, uint8_t* dst, size_t stride) {
  for (size_t i = 0; i < rows; ++i) std::memcpy(dst + i * stride, src + i * W, W);
}

void scatter_column(const uint8_t* src, size_t width, size_t rows, uint8_t* dst, size_t stride) {
  switch (width) {
    case 1:
      return scatter_column<1>(src, rows, dst, stride);
    case 2:
      return scatter_column<2>(src, rows, dst, stride);
    case 4:
      return scatter_column<4>(src, rows, dst, stride);
    case 8:
      return scatter_column<8>(src, rows, dst, stride);
    default:  // the dense column, f32 x n_dense: 4-byte pieces, no library call per row
      if (width % 4 == 0) {
        for (size_t i = 0; i < rows; ++i)
          for (size_t j = 0; j < width; j += 4)
            std::memcpy(dst + i * stride + j, src + i * width + j, 4);
      } else {
        for (size_t i = 0; i < rows; ++i) std::memcpy(dst + i * stride, src + i * width, width);
      }
  }
}

// Reads the rows of block `k` of shard `s` into `dst` (a buffer of `l.bytes()`), row-major: one
// pread per column (the shard opened for the block) into `column`, scattered into the records.
void read_block(const ShardFile& s, const Block& k, const BlockLayout& l,
                std::vector<uint8_t>& column, uint8_t* dst) {
  const Fd fd(s.path);
  const size_t rows = static_cast<size_t>(k.rows);
  for (size_t c = 0; c < l.pos.size(); ++c) {
    column.resize(std::max(column.size(), l.col_bytes[c] * l.rows));
    fd.read(column.data(), l.col_bytes[c] * rows,
            s.header.columns[c].offset + static_cast<uint64_t>(k.begin) * l.col_bytes[c]);
    scatter_column(column.data(), l.col_bytes[c], rows, dst + l.pos[c], l.record);
  }
}

// One value stored as T at `p`.
template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The ids of one type of a row's record as global embedding rows (offset + id) into its cat row.
template <typename T>
void widen_ids(const uint8_t* record, const std::vector<BlockLayout::Id>& ids, int64_t* out) {
  for (const BlockLayout::Id& id : ids) out[id.index] = id.offset + load<T>(record + id.pos);
}

void widen_ids(PreparedType type, const uint8_t* record, const std::vector<BlockLayout::Id>& ids,
               int64_t* out) {
  switch (type) {
    case PreparedType::U8:
      return widen_ids<uint8_t>(record, ids, out);
    case PreparedType::I16:
      return widen_ids<int16_t>(record, ids, out);
    case PreparedType::I32:
      return widen_ids<int32_t>(record, ids, out);
    default:
      return widen_ids<int64_t>(record, ids, out);
  }
}

}  // namespace

struct PreparedBatchReader::State {
  std::shared_ptr<PreparedDataset::Impl> data;
  const std::vector<std::unique_ptr<ShardFile>>* shards = nullptr;
  PreparedReadOptions options;
  std::vector<Block> blocks;
  BlockLayout layout;
  std::unique_ptr<EpochStream> stream;
  PreparedPosition pos;
  int64_t epoch_rows = 0;
  std::vector<RowRef> refs;                       // [batch] the batch's rows, in order
  std::vector<const uint8_t*> records;            // [batch] where their records are
  std::vector<int64_t> block_left;                // [blocks] rows not yet delivered this epoch
  std::vector<uint8_t> touched;                   // [blocks] some rows delivered this epoch
  std::vector<std::unique_ptr<uint8_t[]>> held;   // [blocks] the open blocks' rows
  std::vector<std::unique_ptr<uint8_t[]>> spare;  // freed buffers, reused by the next reads
  std::vector<uint8_t> column;                    // one column of a block, as read
  int64_t released = 0, open = 0, peak_open = 0;
  int64_t bytes_held = 0, peak_bytes_held = 0, bytes_read = 0;
  int64_t batch_rows = 0;  // rows of a full batch of this part (lockstep: the rank's share)
  int64_t steps = 0;       // lockstep: batches per epoch, the same on every rank

  void start_epoch(int64_t epoch) {
    // Blocks left open by a dropped last batch are given back too.
    for (size_t b = 0; b < touched.size(); ++b)
      if (touched[b] && block_left[b] > 0) release(b);
    stream = std::make_unique<EpochStream>(blocks, options, epoch);
    epoch_rows = stream->rows();
    pos = PreparedPosition{epoch, 0, 0};
    block_left.resize(blocks.size());
    for (size_t b = 0; b < blocks.size(); ++b) block_left[b] = blocks[b].rows;
    touched.assign(blocks.size(), 0);
    held.resize(blocks.size());
    open = 0;
  }
  // A row passed over by a resume: counted off its block, which is never read for it.
  void skip(const RowRef& r) { --block_left[static_cast<size_t>(r.block)]; }
  // The rows of block `b`, read (its shard's checksum checked first) at its first delivered row
  // into a spare buffer (allocated, uninitialised, only while none is spare).
  const uint8_t* block(size_t b) {
    if (!held[b]) {
      const Block& k = blocks[b];
      ShardFile& s = *(*shards)[static_cast<size_t>(k.shard)];
      // Lockstep ranks share the checks: rank r checks the shards s with s % world == r.
      const bool mine = !options.lockstep || k.shard % options.world == options.rank;
      if (options.verify_checksums && mine && s.verify())
        bytes_read += static_cast<int64_t>(s.size);
      std::unique_ptr<uint8_t[]> buf;
      if (spare.empty()) {
        buf.reset(new uint8_t[layout.bytes()]);
      } else {
        buf = std::move(spare.back());
        spare.pop_back();
      }
      read_block(s, k, layout, column, buf.get());
      bytes_read += k.rows * static_cast<int64_t>(layout.record);
      held[b] = std::move(buf);
      bytes_held += static_cast<int64_t>(layout.bytes());
      peak_bytes_held = std::max(peak_bytes_held, bytes_held);
      touched[b] = 1;
      peak_open = std::max(peak_open, ++open);
    }
    return held[b].get();
  }
  void release(size_t b) {
    if (held[b]) {
      bytes_held -= static_cast<int64_t>(layout.bytes());
      spare.push_back(std::move(held[b]));
      --open;
    }
    ++released;
  }
  int64_t batches_in_epoch() const {
    if (options.lockstep) return steps;
    const int64_t B = options.batch_size;
    return options.last_batch == LastBatch::Drop ? epoch_rows / B : (epoch_rows + B - 1) / B;
  }
  // Whether epoch pos.epoch has a batch left (lockstep: until `steps`, empty ones included).
  bool has_batch() const {
    if (options.lockstep) return pos.batch < steps;
    const int64_t left = epoch_rows - pos.row;
    return left > 0 && !(left < options.batch_size && options.last_batch == LastBatch::Drop);
  }
  void check_options() const;
  void seek_start();
  void fill(Batch& b);
  void gather(Batch& b, size_t from, size_t to);
  // The shuffled rows are scattered over megabytes of open blocks, beyond the caches: each
  // record's lines are asked for this many rows before they are read, so the gather does not
  // wait on one memory access per row (it did: nearly all its time went to the first load of
  // each record).
  static constexpr int64_t kPrefetchRows = 16;
  void prefetch_record(const uint8_t* r) const {
    for (size_t at = 0; at < layout.record; at += 64) __builtin_prefetch(r + at);
  }
};

// The batch's rows located (each block read at its first delivered row) and gathered a record at
// a time. A block is freed at its last row, once the rows located so far are gathered: so the
// reader holds at most the blocks the buffer's rows span plus the one being read, as it did when
// it copied a batch in runs of one block.
void PreparedBatchReader::State::fill(Batch& b) {
  const PreparedManifest& m = data->manifest;
  const int64_t n = static_cast<int64_t>(refs.size());
  b.rows = n;
  b.dense = Tensor::host({n, m.n_dense}, DType::F32);  // (B, n_dense)
  b.cat = Tensor::host({n, m.n_cat}, DType::I64);      // (B, n_cat)
  b.labels = Tensor::host({n}, DType::F32);            // (B)
  b.lines.resize(static_cast<size_t>(n));              // [B]
  records.resize(refs.size());
  size_t from = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const size_t k = static_cast<size_t>(refs[i].block);
    records[i] = block(k) + static_cast<size_t>(refs[i].row) * layout.record;
    if (--block_left[k] == 0) {
      gather(b, from, i + 1);
      from = i + 1;
      release(k);
    }
  }
  gather(b, from, refs.size());
}

// Rows [from, to) of the batch from their records (the ids widened one type group at a time).
void PreparedBatchReader::State::gather(Batch& b, size_t from, size_t to) {
  const int64_t nd = data->manifest.n_dense, nc = data->manifest.n_cat;
  float* labels = b.labels.data<float>();
  float* dense = b.dense.data<float>();
  int64_t* cat = b.cat.data<int64_t>();
  const size_t label_at = layout.pos[0], dense_at = layout.pos[1], line_at = layout.pos.back();
  for (size_t i = from; i < to; ++i) {
    if (i + kPrefetchRows < to) prefetch_record(records[i + kPrefetchRows]);
    const uint8_t* r = records[i];
    const int64_t row = static_cast<int64_t>(i);
    labels[row] = load<float>(r + label_at);
    for (int64_t j = 0; j < nd; ++j) dense[row * nd + j] = load<float>(r + dense_at + 4 * j);
    b.lines[i] = load<int64_t>(r + line_at);
    for (const auto& [type, ids] : layout.ids) widen_ids(type, r, ids, cat + row * nc);
  }
}

void PreparedBatchReader::State::check_options() const {
  const PreparedReadOptions& o = options;
  if (o.batch_size <= 0) TESSERA_THROW(Config, "batch_size must be > 0, got " << o.batch_size);
  if (o.block_rows <= 0) TESSERA_THROW(Config, "block_rows must be > 0, got " << o.block_rows);
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    TESSERA_THROW(Config, "part " << o.rank << " of " << o.world << ": need 0 <= rank < world");
  if (o.epochs < 0) TESSERA_THROW(Config, "epochs must be >= 0, got " << o.epochs);
  if (o.start.epoch < 0 || o.start.row < 0 || o.start.batch < 0)
    TESSERA_THROW(Config, "start position must not be negative");
  if (o.lockstep && o.batch_size < o.world)
    TESSERA_THROW(Config, "batch_size " << o.batch_size << " is smaller than the " << o.world
                                        << " ranks: every rank needs a row of each batch");
  if (o.lockstep && o.last_batch != LastBatch::Keep)
    TESSERA_THROW(Config, "lockstep parts keep the last batch (LastBatch::Keep)");
}

// Passes over the rows before options.start (row indices only: no block is read for them). A
// lockstep start is read by its batch: the rank's rows of that many batches.
void PreparedBatchReader::State::seek_start() {
  const PreparedPosition& at = options.start;
  int64_t row = at.row;
  if (options.lockstep) {
    if (at.batch > steps)
      TESSERA_THROW(Config, "start position batch " << at.batch << " is past the epoch's " << steps
                                                    << " batches");
    row = std::min(at.batch * batch_rows, epoch_rows);
  } else if (row > epoch_rows) {
    TESSERA_THROW(Config,
                  "start position row " << row << " is past the epoch's " << epoch_rows << " rows");
  }
  RowRef ref;
  for (int64_t i = 0; i < row; ++i) {
    TESSERA_CHECK(stream->next(ref), "prepared reader: the epoch's row order ended early");
    skip(ref);
  }
  pos.row = row;
  pos.batch = options.lockstep ? at.batch : (row + options.batch_size - 1) / options.batch_size;
}

PreparedBatchReader::PreparedBatchReader(const PreparedDataset& data, const PreparedReadOptions& o)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.data = data.impl();
  s.options = o;
  s.check_options();
  auto it = s.data->shards.find(o.split);
  if (it == s.data->shards.end())
    TESSERA_THROW(Data, s.data->dir << ": the prepared dataset has no split '" << o.split << "'");
  s.shards = &it->second;
  s.blocks = split_blocks(*s.shards, o.block_rows);
  s.batch_rows = o.batch_size;
  if (o.lockstep) {
    s.steps = lockstep_batches(s.blocks, o);
    s.blocks = lockstep_slices(s.blocks, o.rank, o.world);
    s.batch_rows = local_batch(o.batch_size, o.rank, o.world);
  }
  int64_t max_rows = 0;
  for (const Block& b : s.blocks) max_rows = std::max(max_rows, b.rows);
  s.layout.build(s.data->manifest, max_rows);
  s.start_epoch(o.start.epoch);
  s.seek_start();
}

PreparedBatchReader::~PreparedBatchReader() = default;
PreparedBatchReader::PreparedBatchReader(PreparedBatchReader&&) noexcept = default;
PreparedBatchReader& PreparedBatchReader::operator=(PreparedBatchReader&&) noexcept = default;

bool PreparedBatchReader::next(Batch& out) {
  State& s = *state_;
  for (;;) {
    if (s.pos.epoch >= s.options.epochs) return false;
    if (s.has_batch()) break;
    s.start_epoch(s.pos.epoch + 1);
  }
  // 0 rows when a lockstep rank's part of the epoch is out (the other ranks still step).
  const int64_t n = std::min(s.batch_rows, s.epoch_rows - s.pos.row);
  s.refs.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    TESSERA_CHECK(s.stream->next(s.refs[static_cast<size_t>(i)]),
                  "prepared reader: the epoch's row order ended early");
  s.fill(out);
  out.epoch = s.pos.epoch;
  out.index = s.options.lockstep ? s.pos.batch : s.pos.row / s.batch_rows;
  s.pos.row += n;
  ++s.pos.batch;
  out.last_in_epoch = out.index + 1 == s.batches_in_epoch();
  return true;
}

int64_t PreparedBatchReader::blocks_released() const {
  return state_->released;
}
int64_t PreparedBatchReader::open_blocks() const {
  return state_->open;
}
int64_t PreparedBatchReader::peak_open_blocks() const {
  return state_->peak_open;
}
int64_t PreparedBatchReader::bytes_held() const {
  return state_->bytes_held;
}
int64_t PreparedBatchReader::peak_bytes_held() const {
  return state_->peak_bytes_held;
}

PreparedPosition PreparedBatchReader::position() const {
  return state_->pos;
}

int64_t PreparedBatchReader::rows_in_epoch(int64_t epoch) const {
  return EpochStream(state_->blocks, state_->options, epoch).rows();
}

int64_t PreparedBatchReader::batches_in_epoch(int64_t epoch) const {
  const State& s = *state_;
  if (s.options.lockstep) return s.steps;
  const int64_t rows = rows_in_epoch(epoch), B = s.options.batch_size;
  return s.options.last_batch == LastBatch::Drop ? rows / B : (rows + B - 1) / B;
}

int64_t PreparedBatchReader::bytes_read() const {
  return state_->bytes_read;
}

std::vector<PreparedPosition> lockstep_positions(const PreparedDataset& data,
                                                 const PreparedReadOptions& o, int64_t epoch,
                                                 int64_t batch) {
  auto it = data.impl()->shards.find(o.split);
  if (it == data.impl()->shards.end())
    TESSERA_THROW(Data, data.dir() << ": the prepared dataset has no split '" << o.split << "'");
  const std::vector<Block> all = split_blocks(it->second, o.block_rows);
  std::vector<PreparedPosition> at;
  for (int r = 0; r < o.world; ++r) {
    const int64_t rows = rows_of(lockstep_slices(all, r, o.world));
    at.push_back({epoch, std::min(batch * local_batch(o.batch_size, r, o.world), rows), batch});
  }
  return at;
}

EncodedTable read_prepared_table(const PreparedDataset& data, const std::string& split) {
  EncodedTable t;
  t.n_dense = data.manifest().n_dense;
  t.n_cat = data.manifest().n_cat;
  t.has_labels = true;
  const int64_t rows = data.rows(split);
  t.dense.reserve(static_cast<size_t>(rows * t.n_dense));
  t.cat.reserve(static_cast<size_t>(rows * t.n_cat));
  t.labels.reserve(static_cast<size_t>(rows));
  t.lines.reserve(static_cast<size_t>(rows));
  PreparedReadOptions o;
  o.split = split;
  o.batch_size = 65536;
  PreparedBatchReader reader(data, o);
  Batch b;
  while (reader.next(b)) {
    t.dense.insert(t.dense.end(), b.dense.data<float>(), b.dense.data<float>() + b.dense.numel());
    t.cat.insert(t.cat.end(), b.cat.data<int64_t>(), b.cat.data<int64_t>() + b.cat.numel());
    t.labels.insert(t.labels.end(), b.labels.data<float>(), b.labels.data<float>() + b.rows);
    t.lines.insert(t.lines.end(), b.lines.begin(), b.lines.end());
    t.rows += b.rows;
  }
  return t;
}

}  // namespace tessera
