// BatchStager (host/backend/batch_stager.h): the slot ring's rules checked against a fake copy
// engine that records what a device would see, the host backend's pass-through, the behaviour
// trainer's feed, and (with a GPU) the CUDA engine's pinned upload ordered before compute.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/backend/batch_stager.h"
#include "host/core/error.h"
#include "host/data/batcher.h"
#include "pipelines/behaviour/train_feed.h"
#include "tests/support/gpu_skips.h"

namespace tessera {
namespace {

// A fake device: upload copies into per-slot "device" tensors; mark_consumed starts a pretend
// kernel reading the slot, wait_consumed finishes it. Refilling a slot whose kernel has not
// finished is what a real GPU would turn into silently corrupted batches: counted here.
struct FakeLog {
  std::vector<std::string> calls;
  int refills_while_read = 0;
  int waits = 0;
};
class FakeEngine final : public StagingEngine {
 public:
  FakeEngine(FakeLog& log, int slots, const std::vector<StagedTensorSpec>& specs)
      : log_(log), device_(slots), reading_(slots, false) {
    for (auto& slot : device_)
      for (const StagedTensorSpec& s : specs) slot.push_back(Tensor::host(s.max_shape, s.dtype));
  }
  std::vector<Tensor> upload(int slot, const std::vector<Tensor>& src, int64_t rows) override {
    log_.calls.push_back("upload " + std::to_string(slot));
    if (reading_[slot]) ++log_.refills_while_read;
    std::vector<Tensor> out;
    for (size_t i = 0; i < src.size(); ++i) {
      Tensor d = device_[slot][i].rows(0, rows);
      std::memcpy(d.raw(), src[i].raw(), d.bytes());
      out.push_back(d);
    }
    return out;
  }
  void mark_consumed(int slot) override {
    log_.calls.push_back("consumed " + std::to_string(slot));
    reading_[slot] = true;
  }
  void wait_consumed(int slot) override {
    log_.calls.push_back("wait " + std::to_string(slot));
    ++log_.waits;
    reading_[slot] = false;
  }

 private:
  FakeLog& log_;
  std::vector<std::vector<Tensor>> device_;
  std::vector<bool> reading_;
};

const std::vector<StagedTensorSpec> kSpecs = {{{4, 2}, DType::F32}, {{4}, DType::F32}};

std::vector<Tensor> batch_of(int64_t rows, float base) {
  Tensor x = Tensor::host({rows, 2}), y = Tensor::host({rows});
  for (int64_t i = 0; i < 2 * rows; ++i) x.data<float>()[i] = base + static_cast<float>(i);
  for (int64_t i = 0; i < rows; ++i) y.data<float>()[i] = -base - static_cast<float>(i);
  return {x, y};
}

BatchStager fake_stager(FakeLog& log, int slots) {
  return BatchStager(slots, kSpecs, std::make_unique<FakeEngine>(log, slots, kSpecs));
}

TEST(BatchStager, SlotsGoRoundInOrderAndAreNeverRefilledWhileRead) {
  FakeLog log;
  {
    BatchStager st(3, kSpecs, std::make_unique<FakeEngine>(log, 3, kSpecs));
    // The trainer's pattern: stage k+1, compute k, release k.
    BatchStager::Staged cur = st.stage(batch_of(4, 0.f), 4);
    for (int k = 0; k < 10; ++k) {
      const int64_t rows = k % 3 + 1;  // short batches too
      BatchStager::Staged ahead = st.stage(batch_of(rows, 100.f * (k + 1)), rows);
      EXPECT_EQ(ahead.sequence, k + 1);
      EXPECT_EQ(ahead.slot, (k + 1) % 3);
      ASSERT_EQ(ahead.tensors.size(), 2u);
      EXPECT_EQ(ahead.tensors[0].shape(), (Shape{rows, 2}));
      for (int64_t i = 0; i < 2 * rows; ++i)
        EXPECT_EQ(ahead.tensors[0].data<float>()[i], 100.f * (k + 1) + i);
      EXPECT_EQ(ahead.tensors[1].data<float>()[rows - 1], -100.f * (k + 1) - (rows - 1));
      st.release(cur);
      cur = ahead;
    }
    st.release(cur);
  }
  EXPECT_EQ(log.refills_while_read, 0);
  // Every reuse of a slot waited for its compute (slots 0..2 first used without a wait).
  EXPECT_EQ(log.waits, 11 - 3 + 3);  // 8 reuses + the destructor's 3 released slots
  EXPECT_EQ(log.calls[0], "upload 0");
  EXPECT_EQ(log.calls[1], "upload 1");
  EXPECT_EQ(log.calls[2], "consumed 0");
  EXPECT_EQ(log.calls[3], "upload 2");
  EXPECT_EQ(log.calls[4], "consumed 1");
  EXPECT_EQ(log.calls[5], "wait 0");
  EXPECT_EQ(log.calls[6], "upload 0");
}

TEST(BatchStager, IsBoundedByItsSlots) {
  FakeLog log;
  BatchStager st = fake_stager(log, 2);
  BatchStager::Staged a = st.stage(batch_of(4, 0), 4);
  BatchStager::Staged b = st.stage(batch_of(4, 1), 4);
  try {
    st.stage(batch_of(4, 2), 4);
    FAIL() << "a third batch fitted in two slots";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("all 2 slots"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log.calls.size(), 2u) << "the refused batch reached the engine";
  st.release(a);
  BatchStager::Staged c = st.stage(batch_of(4, 2), 4);
  EXPECT_EQ(c.slot, 0);
  EXPECT_EQ(log.refills_while_read, 0);
  st.release(b);
  st.release(c);
}

TEST(BatchStager, ReleasesComeInOrder) {
  FakeLog log;
  BatchStager st = fake_stager(log, 3);
  BatchStager::Staged a = st.stage(batch_of(4, 0), 4);
  BatchStager::Staged b = st.stage(batch_of(4, 1), 4);
  EXPECT_THROW(st.release(b), Error);
  st.release(a);
  EXPECT_THROW(st.release(a), Error);
  st.release(b);
}

TEST(BatchStager, RejectsTensorsThatDoNotFitTheSlot) {
  FakeLog log;
  BatchStager st = fake_stager(log, 2);
  EXPECT_THROW(st.stage(batch_of(5, 0), 5), Error);  // more rows than the slot
  EXPECT_THROW(st.stage(batch_of(3, 0), 0), Error);  // no rows
  EXPECT_THROW(st.stage({Tensor::host({4, 3}), Tensor::host({4})}, 4), Error);  // width
  EXPECT_THROW(st.stage({Tensor::host({4, 2}), Tensor::host({4}, DType::I32)}, 4), Error);
  EXPECT_THROW(st.stage({Tensor::host({4, 2})}, 4), Error);  // count
  EXPECT_TRUE(log.calls.empty());
  EXPECT_THROW(BatchStager(1, kSpecs, std::make_unique<FakeEngine>(log, 1, kSpecs)), Error);
}

TEST(BatchStager, HostBackendUsesTheCallersTensors) {
  auto host = make_host_backend();
  auto st = host->make_batch_stager(3, kSpecs);
  const std::vector<Tensor> full = batch_of(4, 1), part = batch_of(3, 2);
  BatchStager::Staged a = st->stage(full, 4);
  BatchStager::Staged b = st->stage(part, 2);
  EXPECT_EQ(a.tensors[0].raw(), full[0].raw());
  EXPECT_EQ(a.tensors[1].raw(), full[1].raw());
  EXPECT_EQ(b.tensors[0].raw(), part[0].raw());
  EXPECT_EQ(b.tensors[0].shape(), (Shape{2, 2}));
  st->release(a);
  st->release(b);
}

TEST(BatchStager, TrainFeedOnTheHostHandsOverTheBatchersOwnTensorsInOrder) {
  EncodedTable t;
  t.rows = 10;
  t.n_dense = 2;
  t.n_cat = 1;
  t.has_labels = true;
  for (int64_t r = 0; r < t.rows; ++r) {
    t.dense.push_back(static_cast<float>(r));
    t.dense.push_back(static_cast<float>(-r));
    t.cat.push_back(r);
    t.labels.push_back(static_cast<float>(r % 2));
  }
  BatcherOptions bo;
  bo.batch_size = 4;
  bo.epochs = 2;
  bo.seed = 7;
  Batcher reference(t, bo), batcher(t, bo);
  auto host = make_host_backend();
  behaviour::TrainFeed feed(*host, batcher, 4, behaviour::CatPlacement::Device);
  behaviour::TrainFeed::Item item;
  Batch want;
  int n = 0;
  while (feed.next(item)) {
    ASSERT_TRUE(reference.next(want));
    EXPECT_EQ(item.batch.epoch, want.epoch);
    EXPECT_EQ(item.batch.index, want.index);
    EXPECT_EQ(item.dense.raw(), item.batch.dense.raw());
    EXPECT_EQ(item.cat.raw(), item.batch.cat.raw());
    EXPECT_EQ(item.labels.raw(), item.batch.labels.raw());
    for (int64_t i = 0; i < item.batch.rows; ++i)
      EXPECT_EQ(item.cat.data<int64_t>()[i], want.cat.data<int64_t>()[i]);
    feed.done(item);
    ++n;
  }
  EXPECT_FALSE(reference.next(want));
  EXPECT_EQ(n, 6);  // 2 epochs of 3 batches (4, 4, 2 rows)
}

// ---- the CUDA engine (runs only where a GPU is usable) ----------------------------------------

TEST(BatchStagerCuda, PinnedUploadsAreOrderedBeforeComputeAndSlotsRecycleSafely) {
  std::string why;
  if (!cuda_available(&why)) TESSERA_NEEDS_GPU_SKIP(why);
  auto cuda = make_backend("cuda");
  const int64_t rows = 1 << 18, width = 16;  // 16 MiB per batch: copies long enough to race
  const std::vector<StagedTensorSpec> specs = {{{rows, width}, DType::F32}};
  auto st = cuda->make_batch_stager(3, specs);
  Tensor sum = cuda->empty({rows, width});
  Tensor src = Tensor::host({rows, width});
  BatchStager::Staged cur;
  const int batches = 12;
  double want = 0;
  for (int k = 0; k <= batches; ++k) {
    BatchStager::Staged ahead;
    if (k < batches) {
      // Batch k holds k + 1 everywhere; the host overwrites its source right after stage().
      for (int64_t i = 0; i < rows * width; ++i) src.data<float>()[i] = static_cast<float>(k + 1);
      ahead = st->stage({src}, rows - k);  // short batches too
      EXPECT_TRUE(ahead.tensors[0].device().kind == DeviceKind::Cuda);
      want += k + 1;
    }
    if (k > 0) {
      // sum[:n] += batch on the compute stream (sgd with lr -1, no momentum: param -= -grad).
      Tensor s = sum.rows(0, cur.tensors[0].dim(0)), vel;
      math::SgdParams p;
      p.lr = -1.f;
      cuda->sgd_update(p, s, cur.tensors[0], vel);
      st->release(cur);
    }
    cur = ahead;
  }
  Tensor h = cuda->to_host(sum);
  // Row 0 saw every batch; the last row of the shortest prefix saw only the longer batches.
  EXPECT_FLOAT_EQ(h.data<float>()[0], static_cast<float>(want));
  EXPECT_FLOAT_EQ(h.data<float>()[(rows - 1) * width], 1.f);  // only batch 0 has every row
}

}  // namespace
}  // namespace tessera
