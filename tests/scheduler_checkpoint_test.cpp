// Training checkpoints: exact round trip of parameters, optimizer state, counters and best
// weights; refusal (before touching the model) of another configuration's or a corrupt file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/checkpoint.h"

namespace tessera::scheduler {
namespace {

std::string temp_path(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + "/sched_ckpt_" + name + "." + std::to_string(::getpid());
}

Parameter param(const std::string& name, std::vector<float> v, bool with_state) {
  Parameter p;
  p.name = name;
  const int64_t n = static_cast<int64_t>(v.size());
  p.value = Tensor::host_from({n}, v);
  if (with_state) {
    for (float& x : v) x *= 0.5f;
    p.state1 = Tensor::host_from({n}, v);
    for (float& x : v) x *= 0.25f;
    p.state2 = Tensor::host_from({n}, v);
  }
  return p;
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

TEST(Checkpoint, RoundTripIsExact) {
  auto backend = make_backend("cpu");
  Parameter a = param("w", {1.f, -2.5f, 3.125f}, true), b = param("b", {0.1f, 0.2f}, false);
  TrainingState s;
  s.epochs_done = 3;
  s.step = 123;
  s.samples = 31488;
  s.train_seconds = 1.0 / 3.0;
  s.best_score = 0.9123456789012345;
  s.best_epoch = 2;
  s.bad_epochs = 1;
  s.tag = "cfg-hash";
  std::map<std::string, Tensor> best = {
      {"w", Tensor::host_from({3}, std::vector<float>{7.f, 8.f, 9.f})}};
  const std::string path = temp_path("roundtrip");
  save_checkpoint(path, *backend, {&a, &b}, s, best);

  Parameter a2 = param("w", {0.f, 0.f, 0.f}, true), b2 = param("b", {0.f, 0.f}, false);
  TrainingState r;
  std::map<std::string, Tensor> best2;
  load_checkpoint(path, *backend, {&a2, &b2}, "cfg-hash", &r, &best2);
  EXPECT_EQ(values(a2.value), values(a.value));
  EXPECT_EQ(values(a2.state1), values(a.state1));
  EXPECT_EQ(values(a2.state2), values(a.state2));
  EXPECT_EQ(values(b2.value), values(b.value));
  EXPECT_EQ(r.epochs_done, 3);
  EXPECT_EQ(r.step, 123);
  EXPECT_EQ(r.samples, 31488);
  EXPECT_EQ(r.train_seconds, 1.0 / 3.0);  // bit-exact
  EXPECT_EQ(r.best_score, 0.9123456789012345);
  EXPECT_EQ(r.best_epoch, 2);
  EXPECT_EQ(r.bad_epochs, 1);
  ASSERT_EQ(best2.count("w"), 1u);
  EXPECT_EQ(values(best2["w"]), (std::vector<float>{7.f, 8.f, 9.f}));
  ::unlink(path.c_str());
}

TEST(Checkpoint, GeneratorStateAndExtraTensorsRoundTrip) {
  auto backend = make_backend("cpu");
  Parameter a = param("w", {1.f, 2.f}, true);
  TrainingState s;
  s.tag = "t";
  s.rng = "5489 17 4294967295";  // what operator<< writes for a generator: digits and spaces
  const std::map<std::string, Tensor> extra = {
      {"bn.running_mean", Tensor::host_from({2}, std::vector<float>{0.5f, -1.f})}};
  const std::string path = temp_path("extra");
  save_checkpoint(path, *backend, {&a}, s, {}, extra);
  TrainingState r;
  std::map<std::string, Tensor> best, extra2;
  load_checkpoint(path, *backend, {&a}, "t", &r, &best, &extra2);
  EXPECT_EQ(r.rng, s.rng);
  EXPECT_TRUE(best.empty());
  ASSERT_EQ(extra2.count("bn.running_mean"), 1u);
  EXPECT_EQ(values(extra2["bn.running_mean"]), (std::vector<float>{0.5f, -1.f}));
  ::unlink(path.c_str());
}

TEST(Checkpoint, OtherConfigurationShapeOrCorruptionIsRefusedBeforeAnyCopy) {
  auto backend = make_backend("cpu");
  Parameter a = param("w", {1.f, 2.f}, true);
  TrainingState s;
  s.tag = "mine";
  const std::string path = temp_path("refuse");
  save_checkpoint(path, *backend, {&a}, s, {});
  TrainingState r;
  std::map<std::string, Tensor> best;
  auto expect_io = [&](std::vector<Parameter*> params, const std::string& tag,
                       const std::string& needle) {
    try {
      load_checkpoint(path, *backend, params, tag, &r, &best);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  Parameter same = param("w", {0.f, 0.f}, true);
  expect_io({&same}, "theirs", "another configuration");
  Parameter wider = param("w", {5.f, 5.f, 5.f}, true);
  expect_io({&wider}, "mine", "shape");
  EXPECT_EQ(values(wider.value), (std::vector<float>{5.f, 5.f, 5.f}));  // untouched
  Parameter other = param("v", {0.f, 0.f}, false);
  expect_io({&other}, "mine", "'value/v' missing");

  std::string bytes = read_file(path);
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file_atomic(path, bytes);
  try {
    load_checkpoint(path, *backend, {&same}, "mine", &r, &best);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
  }
  ::unlink(path.c_str());
}

// Header fields of the wrong type or value, written by a hostile writer with a correct CRC, are
// Io errors naming the field: a non-numeric bit pattern escaped as std::invalid_argument, a tag
// of another type read as "" (and blamed on another configuration), a tensor of another dtype
// reached the backend's copy.
TEST(Checkpoint, HeaderFieldsAndTensorTypesAreCheckedByName) {
  auto backend = make_backend("cpu");
  Parameter w = param("w", {1.f, 2.f}, false);
  const std::string path = temp_path("hostile");
  const std::string good =
      R"({"format":"tessera.checkpoint","version":1,"epochs_done":1,"step":2,"samples":3,)"
      R"("train_seconds_bits":"0","best_score_bits":"0","best_epoch":-1,"bad_epochs":0,)"
      R"("tag":"mine","rng":""})";
  auto error_of = [&](const std::string& meta, const Tensor& value) -> std::string {
    save_archive(path, meta, {{"value/w", value}});
    TrainingState st;
    std::map<std::string, Tensor> best;
    try {
      load_checkpoint(path, *backend, {&w}, "mine", &st, &best);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
      return e.what();
    }
    return "";
  };
  const Tensor f32 = Tensor::host_from<float>({2}, {3.f, 4.f});
  EXPECT_EQ(error_of(good, f32), "");
  const std::pair<std::string, std::string> cases[] = {
      {R"("train_seconds_bits":"abc")", "'train_seconds_bits'"},
      {R"("train_seconds_bits":"-1")", "'train_seconds_bits'"},
      {R"("train_seconds_bits":"99999999999999999999")", "'train_seconds_bits'"},
      {R"("train_seconds_bits":0)", "'train_seconds_bits'"},
      {R"("tag":5)", "'tag' is not a string"},
      {R"("rng":[])", "'rng' is not a string"},
      {R"("step":"2")", "'step'"},
      {R"("step":-2)", "negative"},
  };
  for (const auto& [field, needle] : cases) {
    const std::string from = field.substr(0, field.find(':') + 1);
    std::string meta = good;
    const size_t at = meta.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    const size_t end = meta.find_first_of(",}", at + from.size());
    meta.replace(at, end - at, field);
    const std::string e = error_of(meta, f32);
    EXPECT_NE(e.find(needle), std::string::npos) << field << ": " << e;
  }
  const std::string e = error_of(good, Tensor::host_from<int32_t>({2}, {3, 4}));
  EXPECT_NE(e.find("(i32), the model has [2] (f32)"), std::string::npos) << e;
  EXPECT_EQ(values(w.value), (std::vector<float>{3.f, 4.f}));  // the good load; untouched since
  ::unlink(path.c_str());
}

TEST(Checkpoint, TruncateLinesKeepsTheFirstN) {
  const std::string path = temp_path("lines");
  write_file_atomic(path, "a\nb\nc\n");
  truncate_lines(path, 2);
  EXPECT_EQ(read_file(path), "a\nb\n");
  truncate_lines(path, 5);
  EXPECT_EQ(read_file(path), "a\nb\n");
  truncate_lines(path, 0);
  EXPECT_EQ(read_file(path), "");
  ::unlink(path.c_str());
  truncate_lines(path, 1);  // missing: fine
}

}  // namespace
}  // namespace tessera::scheduler
