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

  void verify() {
    if (verified.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(verify_mu);
    if (verified.load(std::memory_order_relaxed)) return;
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
  return impl_->pre;
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

struct RowRef {
  int32_t shard = 0;
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
    for (size_t p = static_cast<size_t>(o.rank); p < order.size(); p += o.world)
      mine_.push_back(order[p]);
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
      const Block& b = blocks_[static_cast<size_t>(mine_[bi_])];
      if (in_block_ < b.rows) {
        out = RowRef{b.shard, b.begin + in_block_++};
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

template <typename T>
int64_t id_at(const uint8_t* p, int64_t row) {
  T v;
  std::memcpy(&v, p + row * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return static_cast<int64_t>(v);
}

// The rows of one block, every column, read from its shard: the only copy of shard data the reader
// holds. Column `c` of the block's row `i` is at bytes + at[c] + i * row_bytes[c].
struct BlockData {
  std::vector<uint8_t> bytes;
  std::vector<size_t> at, row_bytes;
};

// Reads block `b` of shard `s` (one pread per column, the shard opened for the block).
std::unique_ptr<BlockData> read_block(const ShardFile& s, int64_t begin, int64_t rows) {
  auto d = std::make_unique<BlockData>();
  size_t total = 0;
  for (const ShardColumn& c : s.header.columns) {
    d->at.push_back(total);
    d->row_bytes.push_back(c.width * prepared_type_size(c.type));
    total += d->row_bytes.back() * static_cast<size_t>(rows);
  }
  d->bytes.resize(total);
  const Fd fd(s.path);
  for (size_t c = 0; c < s.header.columns.size(); ++c)
    fd.read(d->bytes.data() + d->at[c], d->row_bytes[c] * static_cast<size_t>(rows),
            s.header.columns[c].offset + static_cast<uint64_t>(begin) * d->row_bytes[c]);
  return d;
}

}  // namespace

struct PreparedBatchReader::State {
  std::shared_ptr<PreparedDataset::Impl> data;
  const std::vector<std::unique_ptr<ShardFile>>* shards = nullptr;
  PreparedReadOptions options;
  std::vector<Block> blocks;
  std::unique_ptr<EpochStream> stream;
  PreparedPosition pos;
  int64_t epoch_rows = 0;
  std::vector<RowRef> refs;
  std::vector<int64_t> shard_first_block;        // [shards]
  std::vector<int64_t> block_left;               // [blocks] rows not yet delivered this epoch
  std::vector<uint8_t> touched;                  // [blocks] some rows delivered this epoch
  std::vector<std::unique_ptr<BlockData>> held;  // [blocks] the open blocks' rows
  int64_t released = 0, open = 0, peak_open = 0;
  int64_t bytes_held = 0, peak_bytes_held = 0;

  void start_epoch(int64_t epoch) {
    // Blocks left open by a dropped last batch are given back too.
    for (size_t b = 0; b < touched.size(); ++b)
      if (touched[b] && block_left[b] > 0) release(b);
    stream = std::make_unique<EpochStream>(blocks, options, epoch);
    epoch_rows = stream->rows();
    pos = PreparedPosition{epoch, 0};
    block_left.resize(blocks.size());
    for (size_t b = 0; b < blocks.size(); ++b) block_left[b] = blocks[b].rows;
    touched.assign(blocks.size(), 0);
    held.resize(blocks.size());
    open = 0;
  }
  size_t block_of(const RowRef& r) const {
    return static_cast<size_t>(shard_first_block[static_cast<size_t>(r.shard)] +
                               r.row / options.block_rows);
  }
  // A row passed over by a resume: counted off its block, which is never read for it.
  void skip(const RowRef& r) { --block_left[block_of(r)]; }
  // The rows of block `b`, read (its shard's checksum checked first) at its first delivered row.
  const BlockData& block(size_t b) {
    if (!held[b]) {
      const Block& k = blocks[b];
      ShardFile& s = *(*shards)[static_cast<size_t>(k.shard)];
      if (options.verify_checksums) s.verify();
      held[b] = read_block(s, k.begin, k.rows);
      bytes_held += static_cast<int64_t>(held[b]->bytes.size());
      peak_bytes_held = std::max(peak_bytes_held, bytes_held);
      touched[b] = 1;
      peak_open = std::max(peak_open, ++open);
    }
    return *held[b];
  }
  void release(size_t b) {
    if (held[b]) {
      bytes_held -= static_cast<int64_t>(held[b]->bytes.size());
      held[b].reset();
      --open;
    }
    ++released;
  }
  int64_t batches_in_epoch() const {
    const int64_t B = options.batch_size;
    return options.last_batch == LastBatch::Drop ? epoch_rows / B : (epoch_rows + B - 1) / B;
  }
  void fill(Batch& b);
};

namespace {

// Rows [from, to) of a block's table column `col` (ids stored as T) as global embedding rows
// (`offset` + id) into out[i * stride].
template <typename T>
void gather_ids(const BlockData& d, size_t col, int64_t from, int64_t to, int64_t offset,
                int64_t* out, int64_t stride) {
  const uint8_t* p = d.bytes.data() + d.at[col];
  for (int64_t r = from; r < to; ++r) out[(r - from) * stride] = offset + id_at<T>(p, r);
}

void gather_ids(PreparedType type, const BlockData& d, size_t col, int64_t from, int64_t to,
                int64_t offset, int64_t* out, int64_t stride) {
  switch (type) {
    case PreparedType::U8:
      return gather_ids<uint8_t>(d, col, from, to, offset, out, stride);
    case PreparedType::I16:
      return gather_ids<int16_t>(d, col, from, to, offset, out, stride);
    case PreparedType::I32:
      return gather_ids<int32_t>(d, col, from, to, offset, out, stride);
    default:
      return gather_ids<int64_t>(d, col, from, to, offset, out, stride);
  }
}

}  // namespace

// The batch's rows in runs of consecutive rows of one block: each run copied column by column,
// its rows counted off the block, which is freed once all its rows have been delivered (so a
// batch holds at most the blocks it spans at once, and only while it reads them).
void PreparedBatchReader::State::fill(Batch& b) {
  const PreparedManifest& m = data->manifest;
  const int64_t n = static_cast<int64_t>(refs.size()), nd = m.n_dense, nc = m.n_cat;
  b.rows = n;
  b.dense = Tensor::host({n, nd}, DType::F32);
  b.cat = Tensor::host({n, nc}, DType::I64);
  b.labels = Tensor::host({n}, DType::F32);
  b.lines.resize(static_cast<size_t>(n));
  float* dense = b.dense.data<float>();
  int64_t* cat = b.cat.data<int64_t>();
  float* labels = b.labels.data<float>();
  const size_t line_col = m.columns.size() - 1;
  for (int64_t i = 0; i < n;) {
    const RowRef& first = refs[static_cast<size_t>(i)];
    const size_t k = block_of(first);
    const int64_t from = first.row - blocks[k].begin;
    int64_t len = 1;
    while (i + len < n && refs[static_cast<size_t>(i + len)].shard == first.shard &&
           refs[static_cast<size_t>(i + len)].row == first.row + len && from + len < blocks[k].rows)
      ++len;
    const BlockData& d = block(k);
    const size_t rb = static_cast<size_t>(from);
    std::memcpy(labels + i, d.bytes.data() + d.at[0] + rb * 4, static_cast<size_t>(4 * len));
    if (nd > 0)
      std::memcpy(dense + i * nd, d.bytes.data() + d.at[1] + rb * d.row_bytes[1],
                  static_cast<size_t>(len) * d.row_bytes[1]);
    for (int64_t r = 0; r < len; ++r)
      b.lines[static_cast<size_t>(i + r)] =
          id_at<int64_t>(d.bytes.data() + d.at[line_col], from + r);
    for (int64_t c = 0; c < nc; ++c) {
      const size_t col = static_cast<size_t>(2 + c);
      gather_ids(m.columns[col].type, d, col, from, from + len, m.columns[col].offset,
                 cat + i * nc + c, nc);
    }
    block_left[k] -= len;
    if (block_left[k] == 0) release(k);
    i += len;
  }
}

PreparedBatchReader::PreparedBatchReader(const PreparedDataset& data, const PreparedReadOptions& o)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.data = data.impl();
  s.options = o;
  if (o.batch_size <= 0) TESSERA_THROW(Config, "batch_size must be > 0, got " << o.batch_size);
  if (o.block_rows <= 0) TESSERA_THROW(Config, "block_rows must be > 0, got " << o.block_rows);
  if (o.world < 1 || o.rank < 0 || o.rank >= o.world)
    TESSERA_THROW(Config, "part " << o.rank << " of " << o.world << ": need 0 <= rank < world");
  if (o.epochs < 0) TESSERA_THROW(Config, "epochs must be >= 0, got " << o.epochs);
  if (o.start.epoch < 0 || o.start.row < 0)
    TESSERA_THROW(Config, "start position must not be negative");
  auto it = s.data->shards.find(o.split);
  if (it == s.data->shards.end())
    TESSERA_THROW(Data, s.data->dir << ": the prepared dataset has no split '" << o.split << "'");
  s.shards = &it->second;
  for (size_t i = 0; i < s.shards->size(); ++i) {
    s.shard_first_block.push_back(static_cast<int64_t>(s.blocks.size()));
    const int64_t rows = (*s.shards)[i]->info->rows;
    for (int64_t b = 0; b < rows; b += o.block_rows)
      s.blocks.push_back(Block{static_cast<int32_t>(i), b, std::min(o.block_rows, rows - b)});
  }
  s.start_epoch(o.start.epoch);
  if (o.start.row > s.epoch_rows)
    TESSERA_THROW(Config, "start position row " << o.start.row << " is past the epoch's "
                                                << s.epoch_rows << " rows");
  RowRef skip;
  for (int64_t i = 0; i < o.start.row; ++i) {
    TESSERA_CHECK(s.stream->next(skip), "prepared reader: the epoch's row order ended early");
    s.skip(skip);
  }
  s.pos.row = o.start.row;
}

PreparedBatchReader::~PreparedBatchReader() = default;
PreparedBatchReader::PreparedBatchReader(PreparedBatchReader&&) noexcept = default;
PreparedBatchReader& PreparedBatchReader::operator=(PreparedBatchReader&&) noexcept = default;

bool PreparedBatchReader::next(Batch& out) {
  State& s = *state_;
  const int64_t B = s.options.batch_size;
  for (;;) {
    if (s.pos.epoch >= s.options.epochs) return false;
    const int64_t left = s.epoch_rows - s.pos.row;
    const bool drop = left < B && s.options.last_batch == LastBatch::Drop;
    if (left > 0 && !drop) break;
    s.start_epoch(s.pos.epoch + 1);
  }
  const int64_t n = std::min(B, s.epoch_rows - s.pos.row);
  s.refs.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    TESSERA_CHECK(s.stream->next(s.refs[static_cast<size_t>(i)]),
                  "prepared reader: the epoch's row order ended early");
  s.fill(out);
  out.epoch = s.pos.epoch;
  out.index = s.pos.row / B;
  s.pos.row += n;
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
