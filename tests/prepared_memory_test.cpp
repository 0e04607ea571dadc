// The prepared reader's memory does not follow the data's size: it holds the rows of its open
// blocks only (read with pread, freed once delivered: bytes_held), so a split 6x larger is read
// within the same bytes; what it delivers is still exactly the split's rows; an epoch's end and a
// dropped last batch free everything; a shard cut short after open is an Io error naming it.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic.h"

namespace tessera {
namespace {

// A synthetic behaviour dataset of `rows` train rows, prepared in shards of 1000 rows.
struct Data {
  std::string dir, prepared;
  Data(const std::string& name, int64_t rows) {
    std::string base = ::testing::TempDir();
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    dir = base + "/prepared_memory_" + name + "." + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    make_directories(dir);
    behaviour::SyntheticOptions so;
    so.train_rows = rows;
    so.test_rows = 200;
    const std::string config = behaviour::write_synthetic_dataset(dir + "/data", so);
    prepared = dir + "/prepared";
    PrepareOptions po;
    po.shard_rows = 1000;
    prepare_dataset(behaviour::prepare_inputs_of(config), prepared, po);
  }
  ~Data() { std::filesystem::remove_all(dir); }
};

// Bytes of one row, every column (what a block of n rows holds: n times this).
int64_t row_bytes(const PreparedDataset& ds) {
  int64_t n = 0;
  for (const PreparedColumnInfo& c : ds.manifest().columns)
    n += c.width * static_cast<int64_t>(prepared_type_size(c.type));
  return n;
}

PreparedReadOptions options(bool shuffle) {
  PreparedReadOptions o;
  o.batch_size = 100;
  o.shuffle = shuffle;
  o.seed = 11;
  o.block_rows = 64;
  o.shuffle_buffer = 256;
  o.epochs = 2;
  return o;
}

struct Held {
  int64_t peak_bytes = 0, peak_blocks = 0, rows = 0;
};

Held read_all(const PreparedDataset& ds, const PreparedReadOptions& o) {
  PreparedBatchReader r(ds, o);
  Batch b;
  Held h;
  while (r.next(b)) {
    EXPECT_LE(r.bytes_held(), r.open_blocks() * o.block_rows * row_bytes(ds));
    h.rows += b.rows;
  }
  EXPECT_EQ(r.bytes_held(), 0);
  EXPECT_EQ(r.open_blocks(), 0);
  h.peak_bytes = r.peak_bytes_held();
  h.peak_blocks = r.peak_open_blocks();
  EXPECT_LE(h.peak_bytes, h.peak_blocks * o.block_rows * row_bytes(ds));
  EXPECT_GT(h.peak_bytes, 0);
  return h;
}

TEST(PreparedMemory, ASixTimesLargerSplitIsReadWithinTheSameBytes) {
  const Data small("small", 2000), large("large", 12000);
  const PreparedDataset s = PreparedDataset::open(small.prepared);
  const PreparedDataset l = PreparedDataset::open(large.prepared);
  ASSERT_GE(l.rows("train"), 11 * s.rows("train") / 2);  // validation is carved from both
  const int64_t split_bytes = l.rows("train") * row_bytes(l);
  // In file order: a batch of 100 rows spans at most 3 blocks of 64, whatever the split's size.
  const PreparedReadOptions plain = options(false);
  const Held ps = read_all(s, plain), pl = read_all(l, plain);
  EXPECT_EQ(pl.rows, 2 * l.rows("train"));
  EXPECT_LE(ps.peak_blocks, 3);
  EXPECT_LE(pl.peak_blocks, 3);
  EXPECT_LE(pl.peak_bytes, 3 * plain.block_rows * row_bytes(l));
  // Shuffled (blocks and a 256-row buffer): the blocks the buffer's rows come from, a few times
  // buffer / block_rows; the larger split may reach a little further into the buffer's tail.
  const PreparedReadOptions shuf = options(true);
  const Held ss = read_all(s, shuf), sl = read_all(l, shuf);
  EXPECT_EQ(sl.rows, 2 * l.rows("train"));
  EXPECT_LE(sl.peak_bytes, ss.peak_bytes * 3 / 2)
      << "small " << ss.peak_blocks << " blocks, large " << sl.peak_blocks;
  EXPECT_LT(sl.peak_bytes, split_bytes / 5) << "small split peak " << ss.peak_bytes;
  EXPECT_LE(sl.peak_blocks, 40);
  // The source reports its reader's peak.
  PreparedSource src(l, shuf);
  Batch b;
  while (src.next(b)) {
  }
  EXPECT_EQ(src.peak_bytes_held(), sl.peak_bytes);
}

// Reading blocks in runs must still give every row's own values: each delivered row equals the
// whole split's row of the same line, shuffled, resumed mid-epoch, in parts.
TEST(PreparedMemory, EveryDeliveredRowIsTheSplitsRow) {
  const Data d("rows", 3000);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  const EncodedTable t = read_prepared_table(ds, "train");
  std::map<int64_t, int64_t> row_of_line;
  for (int64_t i = 0; i < t.rows; ++i) row_of_line[t.lines[static_cast<size_t>(i)]] = i;
  ASSERT_EQ(static_cast<int64_t>(row_of_line.size()), t.rows);
  for (const int world : {1, 3}) {
    PreparedReadOptions o = options(true);
    o.world = world;
    o.rank = world - 1;
    o.start = PreparedPosition{1, 300};
    PreparedBatchReader r(ds, o);
    Batch b;
    int64_t seen = 0;
    while (r.next(b)) {
      for (int64_t i = 0; i < b.rows; ++i) {
        const int64_t k = row_of_line.at(b.lines[static_cast<size_t>(i)]);
        ASSERT_EQ(b.labels.data<float>()[i], t.labels[static_cast<size_t>(k)]);
        ASSERT_EQ(0, std::memcmp(b.dense.data<float>() + i * t.n_dense,
                                 t.dense.data() + k * t.n_dense, sizeof(float) * t.n_dense));
        ASSERT_EQ(0, std::memcmp(b.cat.data<int64_t>() + i * t.n_cat, t.cat.data() + k * t.n_cat,
                                 sizeof(int64_t) * t.n_cat));
      }
      seen += b.rows;
    }
    EXPECT_EQ(seen, r.rows_in_epoch(1) - 300);
    EXPECT_EQ(r.bytes_held(), 0);
  }
}

// Copies the prepared directory `from` to `to` with its shards' table columns stored wider
// than prep's narrowest type (column c as i64, i32, i16 or as it was, by c % 4), the manifest's
// types, sizes and CRCs to match: the same data in every id width the reader widens.
void copy_with_wider_ids(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  const std::string manifest = to + "/" + kManifestFile;
  PreparedManifest m = PreparedManifest::parse_text(read_file(manifest), manifest);
  const PreparedType wider[] = {PreparedType::I64, PreparedType::I32, PreparedType::I16};
  for (int64_t c = 0; c < m.n_cat; ++c) {
    PreparedColumnInfo& col = m.columns[static_cast<size_t>(2 + c)];
    if (c % 4 < 3 && prepared_type_size(wider[c % 4]) >= prepared_type_size(col.type))
      col.type = wider[c % 4];
  }
  for (auto& [split, sources] : m.splits)
    for (SourceInfo& src : sources)
      for (ShardInfo& sh : src.shards) {
        const std::string path = to + "/" + sh.file, old = read_file(path);
        const ShardHeader h =
            parse_shard_header(reinterpret_cast<const uint8_t*>(old.data()), old.size(), path);
        ShardHeader w = h;
        for (size_t c = 0; c < w.columns.size(); ++c) w.columns[c].type = m.columns[c].type;
        std::string bytes = shard_header_bytes(w);
        for (size_t c = 0; c < w.columns.size(); ++c) {
          bytes.resize(w.columns[c].offset, '\0');
          const size_t from_size = prepared_type_size(h.columns[c].type);
          const size_t to_size = prepared_type_size(w.columns[c].type);
          for (uint64_t v = 0; v < h.rows * h.columns[c].width; ++v) {
            int64_t x = 0;  // an id (>= 0, little-endian): widened by zero bytes; f32 copied as is
            std::memcpy(&x, old.data() + h.columns[c].offset + v * from_size, from_size);
            bytes.append(reinterpret_cast<const char*>(&x), to_size);
          }
        }
        write_file_atomic(path, bytes);
        sh.bytes = static_cast<int64_t>(bytes.size());
        sh.crc32 = static_cast<uint32_t>(::crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()),
                                                 static_cast<uInt>(bytes.size())));
      }
  write_file_atomic(manifest, m.to_json());
}

// The ids' stored width is the reader's business only: a copy stored wider gives the same
// batches, value for value, shuffled and in file order.
TEST(PreparedMemory, EveryIdWidthGivesTheSameBatches) {
  const Data d("widths", 2500);
  const std::string wide = d.dir + "/wide";
  copy_with_wider_ids(d.prepared, wide);
  const PreparedDataset narrow = PreparedDataset::open(d.prepared);
  const PreparedDataset wider = PreparedDataset::open(wide);
  // The synthetic data's three small tables: u8 as prep stores them, i64, i32 and i16 widened.
  std::set<PreparedType> types;
  for (int64_t c = 0; c < wider.manifest().n_cat; ++c) {
    EXPECT_EQ(narrow.manifest().columns[static_cast<size_t>(2 + c)].type, PreparedType::U8);
    types.insert(wider.manifest().columns[static_cast<size_t>(2 + c)].type);
  }
  EXPECT_EQ(types,
            (std::set<PreparedType>{PreparedType::I64, PreparedType::I32, PreparedType::I16}));
  for (const bool shuffle : {false, true}) {
    PreparedBatchReader a(narrow, options(shuffle)), b(wider, options(shuffle));
    Batch x, y;
    int64_t batches = 0;
    while (a.next(x)) {
      ASSERT_TRUE(b.next(y));
      ASSERT_EQ(x.rows, y.rows);
      EXPECT_EQ(0, std::memcmp(x.cat.data<int64_t>(), y.cat.data<int64_t>(),
                               sizeof(int64_t) * static_cast<size_t>(x.cat.numel())));
      EXPECT_EQ(0, std::memcmp(x.dense.data<float>(), y.dense.data<float>(),
                               sizeof(float) * static_cast<size_t>(x.dense.numel())));
      EXPECT_EQ(0, std::memcmp(x.labels.data<float>(), y.labels.data<float>(),
                               sizeof(float) * static_cast<size_t>(x.rows)));
      EXPECT_EQ(x.lines, y.lines);
      ++batches;
    }
    EXPECT_FALSE(b.next(y));
    EXPECT_EQ(batches, 2 * ((narrow.rows("train") + 99) / 100));
  }
}

// A dropped short last batch leaves blocks part-delivered: the epoch's turn frees them.
TEST(PreparedMemory, ADroppedLastBatchFreesItsBlocks) {
  const Data d("drop", 2050);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  PreparedReadOptions o = options(true);
  o.last_batch = LastBatch::Drop;
  o.epochs = 3;
  ASSERT_NE(ds.rows("train") % o.batch_size, 0);
  PreparedBatchReader r(ds, o);
  Batch b;
  int64_t batches = 0;
  while (r.next(b)) ++batches;
  EXPECT_EQ(batches, 3 * (ds.rows("train") / o.batch_size));
  // The blocks the dropped rows left part-delivered are freed when the epoch turns, the last
  // epoch's too: every block of every epoch given back, nothing held.
  int64_t blocks = 0;
  for (const SourceInfo& src : ds.manifest().splits.at("train"))
    for (const ShardInfo& sh : src.shards) blocks += (sh.rows + o.block_rows - 1) / o.block_rows;
  EXPECT_EQ(r.blocks_released(), 3 * blocks);
  EXPECT_EQ(r.bytes_held(), 0);
  EXPECT_EQ(r.open_blocks(), 0);
  EXPECT_GT(r.peak_bytes_held(), 0);
}

// The reader keeps no shard open: one cut short after the dataset was opened fails the read that
// needs it, naming the shard.
TEST(PreparedMemory, AShardCutShortAfterOpenIsAnIoErrorNamingIt) {
  const Data d("cut", 2000);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  const ShardInfo& first = ds.manifest().splits.at("train").at(0).shards.at(0);
  const std::string path = d.prepared + "/" + first.file;
  std::filesystem::resize_file(path, static_cast<uintmax_t>(first.bytes / 2));
  PreparedReadOptions o = options(false);
  o.verify_checksums = false;
  PreparedBatchReader r(ds, o);
  Batch b;
  try {
    while (r.next(b)) {
    }
    ADD_FAILURE() << "reading a cut shard succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(first.file), std::string::npos) << e.what();
  }
  o.verify_checksums = true;
  PreparedBatchReader checked(ds, o);
  EXPECT_THROW(checked.next(b), Error);
}

}  // namespace
}  // namespace tessera
