// Shuffle and split determinism, the prefetching batcher, and the streaming encoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>

#include "host/core/error.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/stream_encoder.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// A table whose row r holds dense (r, -r), cat (2r) and label r % 2, so rows are recognisable.
EncodedTable numbered_table(int64_t rows) {
  EncodedTable t;
  t.rows = rows;
  t.n_dense = 2;
  t.n_cat = 1;
  t.has_labels = true;
  for (int64_t r = 0; r < rows; ++r) {
    t.dense.push_back(static_cast<float>(r));
    t.dense.push_back(-static_cast<float>(r));
    t.cat.push_back(2 * r);
    t.labels.push_back(static_cast<float>(r % 2));
    t.lines.push_back(r + 1);
  }
  return t;
}

TEST(Shuffle, SeededPermutationIsDeterministic) {
  const std::vector<int64_t> a = seeded_permutation(1000, 42);
  EXPECT_EQ(a, seeded_permutation(1000, 42));
  EXPECT_NE(a, seeded_permutation(1000, 43));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);
  // Pinned: the permutation depends on mt19937_64 alone, the same on every platform.
  EXPECT_EQ(seeded_permutation(5, 1), seeded_permutation(5, 1));
  EXPECT_TRUE(seeded_permutation(0, 1).empty());
  EXPECT_EQ(seeded_permutation(1, 1), std::vector<int64_t>{0});

  EncodedTable t = numbered_table(100);
  shuffle_rows(t, 9);
  const std::vector<int64_t> p = seeded_permutation(100, 9);
  for (int64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(t.dense[2 * i], static_cast<float>(p[i]));
    EXPECT_EQ(t.cat[i], 2 * p[i]);
    EXPECT_EQ(t.lines[i], p[i] + 1);
  }
}

TEST(Split, ExactSizesDisjointAndDeterministic) {
  EncodedTable t = numbered_table(1001);
  TableSplit s = split_table(t, 0.1, 5);
  EXPECT_EQ(s.validation.rows, 100);
  EXPECT_EQ(s.train.rows, 901);
  std::vector<int> hits(1001, 0);
  for (int64_t c : s.train.cat) hits[c / 2]++;
  for (int64_t c : s.validation.cat) hits[c / 2]++;
  EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  EXPECT_TRUE(std::is_sorted(s.train.lines.begin(), s.train.lines.end()));
  TableSplit again = split_table(t, 0.1, 5);
  EXPECT_EQ(again.validation.cat, s.validation.cat);
  EXPECT_NE(split_table(t, 0.1, 6).validation.cat, s.validation.cat);
  EXPECT_THROW(split_table(t, 1.5, 5), Error);
}

TEST(RowSelection, PartsAreComplementary) {
  RowSelection train{SplitPart::Train, 0.25, 3};
  RowSelection val{SplitPart::Validation, 0.25, 3};
  int64_t n_val = 0;
  for (int64_t i = 0; i < 20000; ++i) {
    ASSERT_NE(train.selected(i), val.selected(i));
    n_val += val.selected(i);
  }
  EXPECT_NEAR(n_val, 5000, 300);
  EXPECT_TRUE(RowSelection{}.selected(123));
}

TEST(Batcher, EveryRowExactlyOncePerEpoch) {
  const EncodedTable t = numbered_table(103);
  BatcherOptions o;
  o.batch_size = 10;
  o.epochs = 3;
  o.seed = 11;
  Batcher b(t, o);
  EXPECT_EQ(b.batches_per_epoch(), 11);
  Batch batch;
  std::vector<std::vector<int>> seen(3, std::vector<int>(103, 0));
  std::vector<std::vector<int64_t>> order(3);
  int64_t batches = 0;
  while (b.next(batch)) {
    ++batches;
    ASSERT_EQ(batch.dense.shape(), (Shape{batch.rows, 2}));
    ASSERT_EQ(batch.cat.shape(), (Shape{batch.rows, 1}));
    ASSERT_EQ(batch.labels.shape(), (Shape{batch.rows}));
    EXPECT_EQ(batch.cat.dtype(), DType::I64);
    EXPECT_EQ(batch.last_in_epoch, batch.index == 10);
    EXPECT_EQ(batch.rows, batch.index == 10 ? 3 : 10);
    for (int64_t i = 0; i < batch.rows; ++i) {
      const int64_t r = batch.cat.data<int64_t>()[i] / 2;
      ASSERT_EQ(batch.dense.data<float>()[2 * i], static_cast<float>(r));
      ASSERT_EQ(batch.dense.data<float>()[2 * i + 1], -static_cast<float>(r));
      ASSERT_EQ(batch.labels.data<float>()[i], static_cast<float>(r % 2));
      ASSERT_EQ(batch.lines[i], r + 1);
      seen[batch.epoch][r]++;
      order[batch.epoch].push_back(r);
    }
  }
  EXPECT_EQ(batches, 33);
  for (int e = 0; e < 3; ++e) {
    EXPECT_TRUE(std::all_of(seen[e].begin(), seen[e].end(), [](int c) { return c == 1; }))
        << "epoch " << e;
    EXPECT_EQ(order[e], epoch_order(103, 11, e, ShuffleMode::PerEpoch));
  }
  EXPECT_NE(order[0], order[1]);  // a new permutation each epoch
  EXPECT_FALSE(b.next(batch));    // stays finished
}

TEST(Batcher, DropLastAndNoShuffle) {
  const EncodedTable t = numbered_table(25);
  BatcherOptions o;
  o.batch_size = 10;
  o.last_batch = LastBatch::Drop;
  o.shuffle = ShuffleMode::None;
  Batcher b(t, o);
  EXPECT_EQ(b.batches_per_epoch(), 2);
  Batch batch;
  std::vector<int64_t> rows;
  while (b.next(batch)) {
    EXPECT_EQ(batch.rows, 10);
    for (int64_t i = 0; i < batch.rows; ++i) rows.push_back(batch.cat.data<int64_t>()[i] / 2);
  }
  std::vector<int64_t> expect(20);
  std::iota(expect.begin(), expect.end(), 0);
  EXPECT_EQ(rows, expect);
}

TEST(Batcher, ConsumerStoppingEarlyShutsDownCleanly) {
  const EncodedTable t = numbered_table(100000);
  for (int trial = 0; trial < 20; ++trial) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      BatcherOptions o;
      o.batch_size = 64;
      o.epochs = 1000;  // far more than will be consumed
      o.queue_depth = 2;
      Batcher b(t, o);
      Batch batch;
      for (int i = 0; i < trial; ++i) ASSERT_TRUE(b.next(batch));
    }  // destructor: the producer is blocked on a full queue and must be released
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  }
  // Moving a running batcher keeps it working.
  BatcherOptions o;
  o.batch_size = 1000;
  Batcher a(t, o);
  Batcher moved(std::move(a));
  Batch batch;
  int n = 0;
  while (moved.next(batch)) ++n;
  EXPECT_EQ(n, 100);
}

TEST(Batcher, ProducerErrorsReachTheConsumer) {
  TempDir dir;
  TableSchema s;
  s.columns = {{"x", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"y", ColumnType::Label, NumericTransform::None, {}, {}}};
  std::string train_text, score_text;
  for (int i = 0; i < 50; ++i) train_text += std::to_string(i) + "," + std::to_string(i % 2) + "\n";
  for (int i = 0; i < 30; ++i) score_text += std::to_string(i) + "\n";
  score_text += "oops\n";
  const std::string train = write_file(dir.file("train.csv"), train_text);
  const std::string score = write_file(dir.file("score.csv"), score_text);
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, s, PreprocessOptions{});
  BatcherOptions o;
  o.batch_size = 8;
  Batcher b(std::make_unique<StreamEncoder>(FileSpec{score, 0}, p), o);
  Batch batch;
  int64_t rows = 0;
  try {
    while (b.next(batch)) {
      rows += batch.rows;
      EXPECT_FALSE(batch.labels.defined());  // scoring input without labels
    }
    FAIL() << "the bad row did not surface";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), score + ":31:column 1 (x): expected a number, got 'oops'");
  }
  EXPECT_EQ(rows, 24);  // the full batches before the bad row (rows 25-30 died with it)
  EXPECT_FALSE(b.next(batch));
}

TEST(StreamEncoder, ChunksAreBoundedAndKeepLineNumbers) {
  TempDir dir;
  TableSchema s;
  s.header = true;
  s.columns = {{"x", ColumnType::Numeric, NumericTransform::None, {}, {}},
               {"c", ColumnType::Categorical, NumericTransform::None, {}, {}},
               {"y", ColumnType::Label, NumericTransform::None, {"yes"}, {"no"}}};
  std::string train_text = "x,c,y\n", score_text = "x,c\n";
  for (int i = 0; i < 1000; ++i)
    train_text +=
        std::to_string(i) + ",k" + std::to_string(i % 7) + "," + (i % 3 ? "yes" : "no") + "\n";
  for (int i = 0; i < 10000; ++i)
    score_text += std::to_string(i) + ",k" + std::to_string(i % 9) + "\n";
  const std::string train = write_file(dir.file("train.csv"), train_text);
  const std::string score = write_file(dir.file("score.csv"), score_text);
  Preprocessor p = fit_preprocessor(FileSpec{train, 0}, s, PreprocessOptions{});
  const EncodedTable whole =
      load_table(FileSpec{score, 0}, p, LoadOptions{LabelMode::Optional, {}});
  EXPECT_FALSE(whole.has_labels);
  ASSERT_EQ(whole.rows, 10000);

  StreamOptions so;
  so.chunk_rows = 4096;
  StreamEncoder enc(FileSpec{score, 0}, p, so);
  EXPECT_FALSE(enc.has_labels());
  EncodedTable chunk;
  std::vector<int64_t> sizes;
  std::vector<float> dense;
  std::vector<int64_t> cat, lines;
  while (enc.next(chunk)) {
    sizes.push_back(chunk.rows);
    EXPECT_LE(chunk.dense.capacity(), 2u * 4096 * chunk.n_dense + 64);  // bounded by the chunk
    EXPECT_TRUE(chunk.labels.empty());
    dense.insert(dense.end(), chunk.dense.begin(), chunk.dense.end());
    cat.insert(cat.end(), chunk.cat.begin(), chunk.cat.end());
    lines.insert(lines.end(), chunk.lines.begin(), chunk.lines.end());
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4096, 4096, 1808}));
  EXPECT_EQ(dense, whole.dense);
  EXPECT_EQ(cat, whole.cat);
  EXPECT_EQ(lines.front(), 2);
  EXPECT_EQ(lines.back(), 10001);
  EXPECT_EQ(enc.encode_stats().oov[0], 10000 / 9 * 2 + (10000 % 9 > 7 ? 1 : 0));  // k7, k8 unseen
  // With labels present, the same encoder reads them.
  StreamEncoder labelled(FileSpec{train, 0}, p, so);
  ASSERT_TRUE(labelled.next(chunk));
  EXPECT_TRUE(chunk.has_labels);
  ASSERT_EQ(chunk.labels.size(), 1000u);
  EXPECT_EQ(chunk.labels[0], 0.f);
  EXPECT_EQ(chunk.labels[1], 1.f);
}

}  // namespace
}  // namespace tessera
