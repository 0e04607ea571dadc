#include "host/data/prepared.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

// One shard, mapped read-only for the dataset's lifetime.
struct MappedShard {
  std::string path;
  const ShardInfo* info = nullptr;
  const uint8_t* base = nullptr;
  size_t size = 0;
  ShardHeader header;
  std::atomic<bool> verified{false};
  std::mutex verify_mu;

  ~MappedShard() {
    if (base != nullptr && size > 0) ::munmap(const_cast<uint8_t*>(base), size);
  }

  void map() {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) TESSERA_THROW(Io, path << ": shard is missing (" << std::strerror(errno) << ")");
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      TESSERA_THROW(Io, path << ": cannot stat the shard");
    }
    size = static_cast<size_t>(st.st_size);
    if (static_cast<int64_t>(size) != info->bytes) {
      ::close(fd);
      TESSERA_THROW(Io, path << ": shard is " << size << " bytes, the manifest says " << info->bytes
                             << " (truncated or replaced?)");
    }
    void* p = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0) : nullptr;
    ::close(fd);
    if (p == MAP_FAILED) TESSERA_THROW(Io, path << ": cannot map the shard");
    base = static_cast<const uint8_t*>(p);
    header = parse_shard_header(base, size, path);
  }

  void verify() {
    if (verified.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(verify_mu);
    if (verified.load(std::memory_order_relaxed)) return;
    const uint32_t crc = crc32_of(base, size);
    if (crc != info->crc32)
      TESSERA_THROW(Io, path << ": checksum mismatch (crc32 " << crc << ", the manifest says "
                             << info->crc32 << "): the shard is corrupt; re-run `tessera prep`");
    // The check read every page: give them back, the reader maps in what it uses.
    if (size > 0) ::madvise(const_cast<uint8_t*>(base), size, MADV_DONTNEED);
    verified.store(true, std::memory_order_release);
  }
};

void check_shard_columns(const MappedShard& s, const PreparedManifest& m) {
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
  std::map<std::string, std::vector<std::unique_ptr<MappedShard>>> shards;
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
        auto s = std::make_unique<MappedShard>();
        s->path = dir + "/" + info.file;
        s->info = &info;
        s->map();
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

}  // namespace

struct PreparedBatchReader::State {
  std::shared_ptr<PreparedDataset::Impl> data;
  const std::vector<std::unique_ptr<MappedShard>>* shards = nullptr;
  PreparedReadOptions options;
  std::vector<Block> blocks;
  std::unique_ptr<EpochStream> stream;
  PreparedPosition pos;
  int64_t epoch_rows = 0;
  std::vector<RowRef> refs;
  std::vector<int64_t> shard_first_block;  // [shards]
  std::vector<int64_t> block_left;         // [blocks] rows not yet delivered this epoch
  std::vector<uint8_t> touched;            // [blocks] some rows delivered (pages read) this epoch
  int64_t released = 0, open = 0, peak_open = 0;

  void start_epoch(int64_t epoch) {
    // Blocks left open by a dropped last batch give their pages back too.
    for (size_t b = 0; b < touched.size(); ++b)
      if (touched[b] && block_left[b] > 0) release(blocks[b]);
    stream = std::make_unique<EpochStream>(blocks, options, epoch);
    epoch_rows = stream->rows();
    pos = PreparedPosition{epoch, 0};
    block_left.resize(blocks.size());
    for (size_t b = 0; b < blocks.size(); ++b) block_left[b] = blocks[b].rows;
    touched.assign(blocks.size(), 0);
    open = 0;
  }
  size_t block_of(const RowRef& r) const {
    return static_cast<size_t>(shard_first_block[static_cast<size_t>(r.shard)] +
                               r.row / options.block_rows);
  }
  // A row passed over by a resume: counted off its block, whose pages were never read.
  void skip(const RowRef& r) { --block_left[block_of(r)]; }
  // Counts the batch's rows off their blocks; a block whose rows have all been delivered gives its
  // pages back (file pages: read again from the page cache or disk if touched again).
  void release_delivered() {
    for (const RowRef& r : refs) {
      const size_t b = block_of(r);
      if (!touched[b]) {
        touched[b] = 1;
        peak_open = std::max(peak_open, ++open);
      }
      if (--block_left[b] == 0) {
        release(blocks[b]);
        --open;
      }
    }
  }
  void release(const Block& b) {
    const MappedShard& s = *(*shards)[static_cast<size_t>(b.shard)];
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    for (const ShardColumn& c : s.header.columns) {
      const uint64_t row_bytes = c.width * prepared_type_size(c.type);
      // Whole pages inside the block's bytes only: its neighbours' pages stay.
      const uint64_t from = (c.offset + b.begin * row_bytes + page - 1) / page * page;
      const uint64_t to = (c.offset + (b.begin + b.rows) * row_bytes) / page * page;
      if (to > from) ::madvise(const_cast<uint8_t*>(s.base) + from, to - from, MADV_DONTNEED);
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

// Column `col` (a table's ids, stored as T) of every row in `refs`, as global embedding rows
// (`offset` + id) into out[i * stride]: one column at a time, the type chosen once per column.
template <typename T>
void gather_ids(const std::vector<std::unique_ptr<MappedShard>>& shards,
                const std::vector<RowRef>& refs, size_t col, int64_t offset, int64_t* out,
                int64_t stride) {
  int32_t shard = -1;
  const uint8_t* base = nullptr;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (refs[i].shard != shard) {
      shard = refs[i].shard;
      const MappedShard& s = *shards[static_cast<size_t>(shard)];
      base = s.base + s.header.columns[col].offset;
    }
    out[static_cast<int64_t>(i) * stride] = offset + id_at<T>(base, refs[i].row);
  }
}

}  // namespace

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
  int32_t checked = -1;
  for (int64_t i = 0; i < n; ++i) {
    MappedShard& s = *(*shards)[static_cast<size_t>(refs[i].shard)];
    if (options.verify_checksums && refs[i].shard != checked) {
      s.verify();
      checked = refs[i].shard;
    }
    const int64_t r = refs[i].row;
    const auto& cols = s.header.columns;
    std::memcpy(labels + i, s.base + cols[0].offset + r * 4, 4);
    if (nd > 0) std::memcpy(dense + i * nd, s.base + cols[1].offset + r * nd * 4, 4 * nd);
    b.lines[static_cast<size_t>(i)] = id_at<int64_t>(s.base + cols.back().offset, r);
  }
  // The ids column by column (every shard stores a column in the manifest's type).
  for (int64_t c = 0; c < nc; ++c) {
    const size_t col = static_cast<size_t>(2 + c);
    const int64_t offset = m.columns[col].offset;
    switch (m.columns[col].type) {
      case PreparedType::U8:
        gather_ids<uint8_t>(*shards, refs, col, offset, cat + c, nc);
        break;
      case PreparedType::I16:
        gather_ids<int16_t>(*shards, refs, col, offset, cat + c, nc);
        break;
      case PreparedType::I32:
        gather_ids<int32_t>(*shards, refs, col, offset, cat + c, nc);
        break;
      default:
        gather_ids<int64_t>(*shards, refs, col, offset, cat + c, nc);
        break;
    }
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
  s.release_delivered();
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
