// The BatchSource seam on the in-memory Batcher: each rank's contiguous part of every global batch
// (sizes within one row, empty parts of a short last batch), seek() to any batch of any epoch
// giving an uninterrupted batcher's tail, a stream batcher refusing to seek, and a batcher running
// a producer of its own rethrowing its error after the batches before it.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/data/batch_source.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"

namespace tessera {
namespace {

// `rows` rows: dense (row, -row), one categorical id per row (1000 + row), label row % 2, line row.
EncodedTable numbered_table(int64_t rows) {
  EncodedTable t;
  t.rows = rows;
  t.n_dense = 2;
  t.n_cat = 1;
  t.has_labels = true;
  for (int64_t r = 0; r < rows; ++r) {
    t.dense.push_back(static_cast<float>(r));
    t.dense.push_back(-static_cast<float>(r));
    t.cat.push_back(1000 + r);
    t.labels.push_back(static_cast<float>(r % 2));
    t.lines.push_back(r);
  }
  return t;
}

std::vector<Batch> drain(BatchSource& s) {
  std::vector<Batch> out;
  Batch b;
  while (s.next(b)) out.push_back(std::move(b));
  return out;
}

void expect_same(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.last_in_epoch, b.last_in_epoch);
  EXPECT_EQ(a.lines, b.lines);
  EXPECT_EQ(0, std::memcmp(a.dense.data<float>(), b.dense.data<float>(),
                           sizeof(float) * static_cast<size_t>(a.dense.numel())));
  EXPECT_EQ(0, std::memcmp(a.cat.data<int64_t>(), b.cat.data<int64_t>(),
                           sizeof(int64_t) * static_cast<size_t>(a.cat.numel())));
}

BatcherOptions options(int64_t batch, int64_t epochs, int rank = 0, int world = 1) {
  BatcherOptions o;
  o.batch_size = batch;
  o.seed = 11;
  o.epochs = epochs;
  o.rank = rank;
  o.world = world;
  return o;
}

// Concatenating the ranks' parts of each batch, in rank order, gives the one-rank batch: same
// permutation, contiguous parts, sizes within one row; every rank takes the same number of batches.
TEST(BatchSource, RanksCutEveryGlobalBatchIntoContiguousParts) {
  const EncodedTable t = numbered_table(47);  // batches of 10: the last has 7 rows
  Batcher whole(t, options(10, 2));
  const std::vector<Batch> global = drain(whole);
  ASSERT_EQ(global.size(), 10u);
  for (int world : {2, 3, 4}) {
    SCOPED_TRACE(world);
    std::vector<std::vector<Batch>> parts;
    for (int r = 0; r < world; ++r) {
      Batcher b(t, options(10, 2, r, world));
      EXPECT_EQ(b.batches_per_epoch(), whole.batches_per_epoch());
      parts.push_back(drain(b));
      ASSERT_EQ(parts.back().size(), global.size());
    }
    for (size_t k = 0; k < global.size(); ++k) {
      std::vector<int64_t> lines;
      int64_t smallest = global[k].rows, largest = 0;
      for (int r = 0; r < world; ++r) {
        const Batch& p = parts[static_cast<size_t>(r)][k];
        EXPECT_EQ(p.index, global[k].index);
        EXPECT_EQ(p.epoch, global[k].epoch);
        EXPECT_EQ(p.last_in_epoch, global[k].last_in_epoch);
        lines.insert(lines.end(), p.lines.begin(), p.lines.end());
        smallest = std::min(smallest, p.rows);
        largest = std::max(largest, p.rows);
      }
      EXPECT_EQ(lines, global[k].lines) << "batch " << k;
      EXPECT_LE(largest - smallest, 1) << "batch " << k;
    }
  }
}

// world 4, a last batch of 2 rows: ranks 2 and 3 get a batch of 0 rows (still a batch, so every
// rank steps alike), with the epoch's last flag.
TEST(BatchSource, ARankMayGetAnEmptyPartOfAShortLastBatch) {
  const EncodedTable t = numbered_table(22);  // batches of 10, 10, 2
  for (int r = 0; r < 4; ++r) {
    Batcher b(t, options(10, 1, r, 4));
    const std::vector<Batch> got = drain(b);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2].rows, r < 2 ? 1 : 0) << "rank " << r;
    EXPECT_TRUE(got[2].last_in_epoch);
    EXPECT_EQ(got[2].dense.numel(), got[2].rows * 2);
    EXPECT_EQ(got[0].rows, r < 2 ? 3 : 2) << "rank " << r;
  }
  EXPECT_THROW(Batcher(t, options(10, 1, 4, 4)), Error);
  EXPECT_THROW(Batcher(t, options(10, 1, -1, 2)), Error);
}

// seek(epoch, batch) then the rest equals an uninterrupted batcher from that batch on, for parts
// too; seeking to an epoch's end continues with the next epoch.
TEST(BatchSource, SeekGivesTheUninterruptedTail) {
  const EncodedTable t = numbered_table(53);
  for (int world : {1, 3}) {
    Batcher whole(t, options(8, 3, world - 1, world));
    const std::vector<Batch> all = drain(whole);
    const int64_t per_epoch = whole.batches_per_epoch();
    ASSERT_EQ(per_epoch, 7);
    ASSERT_EQ(static_cast<int64_t>(all.size()), 3 * per_epoch);
    for (const auto& [epoch, batch] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 5}, {1, 0}, {1, 3}, {1, 7}, {2, 6}}) {
      SCOPED_TRACE(std::to_string(world) + ": " + std::to_string(epoch) + "/" +
                   std::to_string(batch));
      Batcher b(t, options(8, 3, world - 1, world));
      Batch first;
      ASSERT_TRUE(b.next(first));  // seeking drops what was produced ahead, wherever it was
      b.seek(epoch, batch);
      const std::vector<Batch> tail = drain(b);
      const size_t from = static_cast<size_t>(epoch * per_epoch + batch);
      ASSERT_EQ(tail.size(), all.size() - from);
      for (size_t k = 0; k < tail.size(); ++k) expect_same(tail[k], all[from + k]);
    }
  }
}

TEST(BatchSource, SeekingPastTheDataIsAnErrorAndEndsTheSource) {
  const EncodedTable t = numbered_table(20);
  Batcher b(t, options(8, 2));
  EXPECT_THROW(b.seek(0, 4), Error);  // 3 batches an epoch
  Batch x;
  EXPECT_FALSE(b.next(x));
  b.seek(2, 0);  // past the last epoch: nothing more
  EXPECT_FALSE(b.next(x));
  b.seek(1, 2);
  ASSERT_TRUE(b.next(x));
  EXPECT_EQ(x.rows, 4);
  EXPECT_TRUE(x.last_in_epoch);
}

TEST(BatchSource, AProducerErrorComesAfterTheBatchesBeforeIt) {
  auto count = std::make_shared<int>(0);
  BatchProducer p;
  p.fill = [count](Batch& b) {
    if (++*count == 4) TESSERA_THROW(Data, "row 31 is bad");
    b.rows = 1;
    b.index = *count - 1;
    return true;
  };
  p.batches_per_epoch = 9;
  Batcher b(std::move(p), 2);
  EXPECT_EQ(b.batches_per_epoch(), 9);
  Batch x;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.next(x));
    EXPECT_EQ(x.index, i);
  }
  try {
    b.next(x);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 31 is bad"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(b.next(x));
  // A producer without seek cannot resume.
  EXPECT_THROW(b.seek(0, 1), Error);
}

}  // namespace
}  // namespace tessera
