// The Trainer's deferred loss read (host/train/trainer.cpp): a step that hands back its per-sample
// losses as StepResult::device_loss has them summed on its backend (Backend::loss_accumulate) and
// read every TrainerOptions::loss_read_every steps and at each epoch's end; the epoch's loss is
// the one a step reporting loss_sum gives, and a non-finite loss under "stop" stops naming the
// step it was in, with no checkpoint after it. A recording backend over the host backend counts
// the reads (every copy it makes is the Trainer reading its accumulator: the task's losses are
// host tensors already). Also Backend::loss_accumulate's own contract on the host backend.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/atomic_file.h"
#include "host/model/divergence.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"
#include "tests/data_test_util.h"
#include "tests/support/error_of.h"

namespace tessera::train {
namespace {

// Every op throws: the recording backend below overrides the few the Trainer uses.
class UnusedOps : public Backend {
 protected:
#define TESSERA_TEST_UNUSED_OP(ret, name, params)               \
  ret name##_impl params override {                             \
    TESSERA_THROW(Internal, #name " is not used by this test"); \
  }
  TESSERA_BACKEND_OPS(TESSERA_TEST_UNUSED_OP)
#undef TESSERA_TEST_UNUSED_OP
};

class RecordingBackend final : public UnusedOps {
 public:
  std::string name() const override { return "recording"; }
  Device device() const override { return Device{}; }
  void synchronize() override {}

  int copies = 0;  // the Trainer's reads of its accumulator
  int accumulates = 0;

 protected:
  Tensor empty_impl(const Shape& shape, DType dtype) override { return host_->empty(shape, dtype); }
  void copy_impl(const Tensor& src, Tensor& dst) override {
    ++copies;
    host_->copy(src, dst);
  }
  void fill_impl(Tensor& t, float value) override { host_->fill(t, value); }
  void loss_accumulate_impl(const Tensor& loss, float step, Tensor& acc) override {
    ++accumulates;
    host_->loss_accumulate(loss, step, acc);
  }

 private:
  std::unique_ptr<Backend> host_ = make_host_backend();
};

// Losses of the batch at (epoch, batch 0-based): a few examples each, a different count per
// batch, values spread over orders of magnitude so summation order would show.
std::vector<float> batch_losses(int64_t epoch, int64_t batch) {
  std::vector<float> v(static_cast<size_t>(3 + (batch % 4)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(0.1 * std::pow(1.7, static_cast<double>(i + batch)) +
                              0.01 * static_cast<double>(epoch));
  return v;
}

// A task whose step reports batch_losses() as loss_sum (on_device false) or as device_loss;
// `poison(step)` may replace a step's losses with a non-finite one.
class LossTask final : public TrainTask {
 public:
  LossTask(RecordingBackend& backend, int64_t batches, bool on_device)
      : backend_(backend), batches_(batches), on_device_(on_device) {}
  int64_t batches_per_epoch() override { return batches_; }
  void start_epoch(int64_t epoch) override { epoch_ = epoch; }
  StepResult step(StepContext& ctx) override {
    std::vector<float> v = batch_losses(ctx.epoch, ctx.batch);
    if (poison) poison(ctx.step + 1, v);
    ++steps;
    StepResult r;
    r.examples = static_cast<int64_t>(v.size());
    r.units = r.examples;
    if (on_device_) {
      r.device_loss = Tensor::host_from<float>({r.examples}, v);
    } else {
      for (float x : v) r.loss_sum += x;
    }
    return r;
  }
  Backend* backend() override { return &backend_; }
  double learning_rate() override { return 0.1; }
  void check_weights(DivergenceGuard&) override {}
  Metrics validate(DivergenceGuard&) override { return {}; }
  NamedTensors training_state() override { return {}; }
  void restore_training_state(const NamedTensors&, int64_t) override {}
  NamedTensors snapshot() override { return {}; }
  void restore_snapshot(const NamedTensors&) override {}
  void finish(FinishContext&) override {}

  std::function<void(int64_t step, std::vector<float>& losses)> poison;
  int64_t steps = 0;

 private:
  RecordingBackend& backend_;
  int64_t batches_;
  bool on_device_;
  int64_t epoch_ = 0;
};

TrainerOptions options(const testing::TempDir& dir, const std::string& run, int64_t epochs) {
  TrainerOptions o;
  o.task = "test";
  o.name = "loss-read";
  o.run_dir = dir.file(run);
  o.epochs = epochs;
  o.quiet = true;
  return o;
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

double field(const std::string& json, const char* name) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d.HasParseError() || !d.HasMember(name) ? NAN : d[name].GetDouble();
}

TEST(TrainerLossRead, TheEpochLossIsThePerStepSumOverExamples) {
  testing::TempDir dir;
  RecordingBackend host_be, device_be;
  LossTask on_host(host_be, 11, false), on_device(device_be, 11, true);
  TrainerOptions o = options(dir, "host", 3);
  o.loss_read_every = 4;
  (void)Trainer(o).fit(on_host);
  o.run_dir = dir.file("device");
  (void)Trainer(o).fit(on_device);
  const std::vector<std::string> h = lines(dir.file("host/metrics.jsonl"));
  const std::vector<std::string> d = lines(dir.file("device/metrics.jsonl"));
  ASSERT_EQ(h.size(), 3u);
  ASSERT_EQ(d.size(), 3u);
  for (int64_t e = 1; e <= 3; ++e) {
    double sum = 0;
    int64_t examples = 0;
    for (int64_t b = 0; b < 11; ++b)
      for (float x : batch_losses(e, b)) {
        sum += x;
        ++examples;
      }
    const double expect = sum / static_cast<double>(examples);
    const double host_loss = field(h[e - 1], "train_loss");
    const double device_loss = field(d[e - 1], "train_loss");
    EXPECT_DOUBLE_EQ(host_loss, expect) << "epoch " << e;
    // The accumulator is f32 between reads (each step's sum is taken in double, then rounded
    // once into it): within a few f32 roundings of the double sum.
    EXPECT_NEAR(device_loss, expect, 4e-7 * expect) << "epoch " << e;
  }
  EXPECT_EQ(host_be.accumulates, 0) << "loss_sum steps need no accumulator";
  EXPECT_EQ(device_be.accumulates, 33);
}

TEST(TrainerLossRead, ReadsEveryNStepsAndAtEachEpochsEnd) {
  testing::TempDir dir;
  RecordingBackend be;
  LossTask task(be, 7, true);
  TrainerOptions o = options(dir, "run", 2);
  o.loss_read_every = 3;
  std::vector<int64_t> read_after;
  std::vector<int> copies_before;
  o.after_step = [&](int64_t step, bool read) {
    copies_before.push_back(be.copies);
    if (read) read_after.push_back(step);
  };
  (void)Trainer(o).fit(task);
  // Per epoch: after its batches 3 and 6, and after its last (7).
  EXPECT_EQ(read_after, (std::vector<int64_t>{3, 6, 7, 10, 13, 14}));
  EXPECT_EQ(be.copies, 6) << "one copy to the host per read, none per step";
  ASSERT_EQ(copies_before.size(), 14u);
  EXPECT_EQ(copies_before[1], 0) << "no read after step 2";
  EXPECT_EQ(copies_before[2], 1);
  EXPECT_EQ(copies_before[5], 2);
  EXPECT_EQ(copies_before[6], 3);
  EXPECT_EQ(copies_before[8], 3) << "the epoch's end restarts the count";
  EXPECT_EQ(copies_before[9], 4);

  RecordingBackend every;
  LossTask each(every, 7, true);
  o.run_dir = dir.file("each");
  o.loss_read_every = 1;
  o.after_step = nullptr;
  (void)Trainer(o).fit(each);
  EXPECT_EQ(every.copies, 14);

  o.run_dir = dir.file("zero");
  o.loss_read_every = 0;
  const std::string what = test::error_of_kind(ErrorKind::Usage, [&] { Trainer(o).fit(each); });
  EXPECT_NE(what.find("loss_read_every must be at least 1, got 0"), std::string::npos) << what;
}

struct Stop {
  std::string message;
  rapidjson::Document json;
};

Stop expect_stop(Trainer trainer, LossTask& task) {
  Stop s;
  try {
    (void)trainer.fit(task);
    ADD_FAILURE() << "training did not stop";
  } catch (const TrainingDiverged& e) {
    s.message = e.what();
    s.json.Parse(e.result_json().c_str());
  }
  return s;
}

TEST(TrainerLossRead, ANonFiniteLossStopsNamingItsStepWithNoCheckpointAfterIt) {
  testing::TempDir dir;
  RecordingBackend be;
  LossTask task(be, 5, true);
  // Global step 8 is epoch 2's batch 3; step 9 has an Inf too: the first is named.
  task.poison = [](int64_t step, std::vector<float>& v) {
    if (step == 8) v[1] = std::nanf("");
    if (step == 9) v[0] = INFINITY;
  };
  TrainerOptions o = options(dir, "run", 4);
  o.checkpoint_every = 1;
  std::vector<int64_t> checkpoints;
  o.after_checkpoint = [&](int64_t epochs) { checkpoints.push_back(epochs); };
  const Stop s = expect_stop(Trainer(o), task);
  ASSERT_FALSE(s.json.HasParseError()) << s.message;
  EXPECT_STREQ(s.json["status"].GetString(), "diverged");
  EXPECT_STREQ(s.json["kind"].GetString(), "loss");
  EXPECT_STREQ(s.json["phase"].GetString(), "batch");
  EXPECT_EQ(s.json["epoch"].GetInt64(), 2);
  EXPECT_EQ(s.json["batch"].GetInt64(), 3);
  EXPECT_EQ(s.json["step"].GetInt64(), 8);
  EXPECT_STREQ(s.json["value"].GetString(), "NaN");
  EXPECT_EQ(s.json["checkpoint_epoch"].GetInt64(), 1);
  EXPECT_NE(s.message.find("epoch 2, batch 3 of 5 (global step 8)"), std::string::npos)
      << s.message;
  EXPECT_NE(read_file(dir.file("run/result.json")).find("\"status\":\"diverged\""),
            std::string::npos);
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{1})) << "nothing written after step 8";
  const TrainingCheckpoint c =
      load_training_checkpoint(dir.file("run/checkpoint.tsc"), "test", o.resume_tag);
  EXPECT_EQ(c.loop.epochs_done, 1);
  EXPECT_EQ(lines(dir.file("run/metrics.jsonl")).size(), 1u);
  EXPECT_EQ(task.steps, 10) << "the read at epoch 2's end found it";

  // Read every 3 steps of an epoch: found at the read after epoch 2's batch 3 (step 8), before
  // step 9 runs.
  LossTask early(be, 5, true);
  early.poison = task.poison;
  o.run_dir = dir.file("early");
  o.loss_read_every = 3;
  checkpoints.clear();
  const Stop e = expect_stop(Trainer(o), early);
  EXPECT_EQ(e.json["step"].GetInt64(), 8) << e.message;
  EXPECT_EQ(early.steps, 8);
  EXPECT_EQ(checkpoints, (std::vector<int64_t>{1}));

  // Under "skip_batch" a deferred loss cannot be skipped any more (its batch was applied): it
  // stops the same way.
  LossTask skip(be, 5, true);
  skip.poison = task.poison;
  o.run_dir = dir.file("skip");
  o.on_nonfinite = NonFinitePolicy::SkipBatch;
  const Stop k = expect_stop(Trainer(o), skip);
  EXPECT_EQ(k.json["step"].GetInt64(), 8) << k.message;
  EXPECT_STREQ(k.json["on_nonfinite"].GetString(), "skip_batch");
}

TEST(TrainerLossRead, ATaskWithDeviceLossesMustNameItsBackend) {
  testing::TempDir dir;
  RecordingBackend be;
  class Nameless final : public TrainTask {
   public:
    explicit Nameless(LossTask& inner) : inner_(inner) {}
    int64_t batches_per_epoch() override { return 2; }
    void start_epoch(int64_t e) override { inner_.start_epoch(e); }
    StepResult step(StepContext& ctx) override { return inner_.step(ctx); }
    double learning_rate() override { return 0; }
    void check_weights(DivergenceGuard&) override {}
    Metrics validate(DivergenceGuard&) override { return {}; }
    NamedTensors training_state() override { return {}; }
    void restore_training_state(const NamedTensors&, int64_t) override {}
    NamedTensors snapshot() override { return {}; }
    void restore_snapshot(const NamedTensors&) override {}
    void finish(FinishContext&) override {}

   private:
    LossTask& inner_;
  };
  LossTask inner(be, 2, true);
  Nameless task(inner);
  const std::string what =
      test::error_of_kind(ErrorKind::Internal, [&] { Trainer(options(dir, "run", 1)).fit(task); });
  EXPECT_NE(what.find("names no backend"), std::string::npos) << what;
}

// ---- Backend::loss_accumulate on the host backend ---------------------------------------------

TEST(LossAccumulate, SumsCountsAndKeepsTheFirstBadStep) {
  auto be = make_host_backend();
  Tensor acc = Tensor::host_from<float>({3}, {0.5f, 0.f, 0.f});
  be->loss_accumulate(Tensor::host_from<float>({3}, {1.f, 2.f, 0.25f}), 1.f, acc);
  EXPECT_EQ(acc.data<float>()[0], 3.75f);
  EXPECT_EQ(acc.data<float>()[1], 0.f);
  EXPECT_EQ(acc.data<float>()[2], 0.f);
  be->loss_accumulate(Tensor::host_from<float>({4}, {1.f, INFINITY, -INFINITY, 2.f}), 2.f, acc);
  EXPECT_TRUE(std::isnan(acc.data<float>()[0]));
  EXPECT_EQ(acc.data<float>()[1], 2.f);
  EXPECT_EQ(acc.data<float>()[2], 2.f);
  be->loss_accumulate(Tensor::host_from<float>({1}, {std::nanf("")}), 3.f, acc);
  EXPECT_EQ(acc.data<float>()[1], 3.f);
  EXPECT_EQ(acc.data<float>()[2], 2.f) << "the first bad step stays";
  // The step's sum is taken in double and added once: from 2^24, where adding one value at a
  // time in f32 would never move, all 2^20 of them count.
  Tensor big = Tensor::host({1 << 20});
  for (int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] = 1.f + 1e-7f;
  Tensor a2 = Tensor::host_from<float>({3}, {16777216.f, 0.f, 0.f});
  be->loss_accumulate(big, 1.f, a2);
  EXPECT_EQ(a2.data<float>()[0], static_cast<float>(16777216.0 + (1 << 20) * double{1.f + 1e-7f}));
}

TEST(LossAccumulate, EdgeChecks) {
  auto be = make_host_backend();
  Tensor acc = Tensor::host({3}), loss = Tensor::host({4});
  be->fill(acc, 0.f);
  be->fill(loss, 1.f);
  const auto msg = [&](const std::function<void()>& f) {
    return test::error_of_kind(ErrorKind::Shape, f);
  };
  EXPECT_NE(msg([&] {
              Tensor bad = Tensor::host({4});
              be->loss_accumulate(loss, 1.f, bad);
            }).find("the accumulator must be f32 [3]"),
            std::string::npos);
  EXPECT_NE(msg([&] {
              be->loss_accumulate(Tensor::host({2, 2}), 1.f, acc);
            }).find("the losses must be f32 [N]"),
            std::string::npos);
  EXPECT_NE(msg([&] {
              be->loss_accumulate(Tensor::host({4}, DType::I32), 1.f, acc);
            }).find("the losses must be f32 [N]"),
            std::string::npos);
  for (float step : {0.f, 1.5f, 16777216.f, NAN})
    EXPECT_NE(msg([&] { be->loss_accumulate(loss, step, acc); }).find("is not a whole number"),
              std::string::npos)
        << step;
  be->loss_accumulate(Tensor::host({0}), 1.f, acc);  // no losses: nothing changes
  EXPECT_EQ(acc.data<float>()[0], 0.f);
  be->loss_accumulate(loss, 16777215.f, acc);
  EXPECT_EQ(acc.data<float>()[0], 4.f);
}

}  // namespace
}  // namespace tessera::train
