// The Trainer's checkpoint format (host/train/checkpoint.h), the one every task resumes from:
// an exact round trip of the loop's counters, doubles as bit patterns, the task's state and the
// kept weights, and of a model's parameters with their optimizer state; refusal, as an Io error
// naming the file, of another task's or configuration's checkpoint, a corrupted or truncated
// file, a hostile header written with a correct CRC (naming the field) and a non-finite weight;
// and a state that does not fit the model refused before any parameter is touched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/train/checkpoint.h"
#include "tests/support/error_of.h"

namespace tessera::train {
namespace {

std::string temp_path(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  return base + "/train_ckpt_" + name + "." + std::to_string(::getpid());
}

// A temporary file removed at the end of the test, whatever happens.
struct TempFile {
  explicit TempFile(const std::string& name) : path(temp_path(name)) {}
  ~TempFile() { ::unlink(path.c_str()); }
  const std::string path;
};

uint64_t bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

double from_bits(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

// Same name, dtype, shape and bytes.
void expect_same_tensors(const NamedTensors& got, const NamedTensors& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    const Tensor* g = nullptr;
    for (const auto& [n, t] : got)
      if (n == name) g = &t;
    ASSERT_NE(g, nullptr) << "'" << name << "' missing";
    EXPECT_EQ(g->dtype(), w.dtype()) << name;
    ASSERT_EQ(g->shape(), w.shape()) << name;
    EXPECT_EQ(std::memcmp(g->raw(), w.raw(), w.bytes()), 0) << name;
  }
}

// The Io error `f` throws; a test failure (and "") when it throws none or another kind.
std::string io_error(const std::function<void()>& f) {
  return test::error_of_kind(ErrorKind::Io, f);
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << (needle) << " not in: " << (haystack)

Parameter param(const std::string& name, const Shape& shape, float first, bool with_state) {
  Parameter p;
  p.name = name;
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = first + 0.25f * static_cast<float>(i);
  p.value = Tensor::host_from(shape, v);
  if (with_state) {
    for (float& x : v) x = x * 0.5f - 1.f;
    p.state1 = Tensor::host_from(shape, v);
    for (float& x : v) x = x * x + 1e-30f;
    p.state2 = Tensor::host_from(shape, v);
  }
  return p;
}

void fill(Parameter& p, float x) {
  for (Tensor* t : {&p.value, &p.state1, &p.state2})
    if (t->defined())
      for (int64_t i = 0; i < t->numel(); ++i) t->data<float>()[i] = x;
}

struct Snapshot {
  std::vector<float> value, state1, state2;
};
Snapshot snap(const Parameter& p) {
  Snapshot s;
  s.value = values(p.value);
  if (p.state1.defined()) s.state1 = values(p.state1);
  if (p.state2.defined()) s.state2 = values(p.state2);
  return s;
}
void expect_holds(const Parameter& p, const Snapshot& s) {
  EXPECT_EQ(values(p.value), s.value) << p.name;
  if (p.state1.defined()) {
    EXPECT_EQ(values(p.state1), s.state1) << p.name;
  }
  if (p.state2.defined()) {
    EXPECT_EQ(values(p.state2), s.state2) << p.name;
  }
}

// A loop state with every field away from its default; doubles that a decimal round trip would
// change, a NaN the Trainer writes as best_tie when there is no tie metric, a generator's text.
LoopState full_loop_state() {
  LoopState s;
  s.task = "textclass";
  s.tag = "cfg-0123abcd";
  s.epochs_done = 7;
  s.step = 4321;
  s.samples = (int64_t{1} << 53) + 1;  // not a double
  s.train_seconds = 1.0 / 3.0;
  s.best_epoch = 5;
  s.best_score = 0.9123456789012345;
  s.best_tie = from_bits(0x7ff8000000000123ULL);  // NaN with a payload
  s.bad_epochs = 2;
  std::mt19937 gen(5489);
  gen.discard(17);
  std::ostringstream rng;
  rng << gen;
  s.random_state = rng.str();
  s.best_validation = {{"accuracy", 2.0 / 3.0},
                       {"loss", -0.0},
                       {"auc", std::numeric_limits<double>::infinity()},
                       {"top@1 \"quoted\"\\n", DBL_MIN / 4},  // a denormal, a name to escape
                       {"nan", from_bits(0xfff0000000000001ULL)}};
  return s;
}

void expect_same_loop(const LoopState& r, const LoopState& s) {
  EXPECT_EQ(r.task, s.task);
  EXPECT_EQ(r.tag, s.tag);
  EXPECT_EQ(r.epochs_done, s.epochs_done);
  EXPECT_EQ(r.step, s.step);
  EXPECT_EQ(r.samples, s.samples);
  EXPECT_EQ(bits(r.train_seconds), bits(s.train_seconds));
  EXPECT_EQ(r.best_epoch, s.best_epoch);
  EXPECT_EQ(bits(r.best_score), bits(s.best_score));
  EXPECT_EQ(bits(r.best_tie), bits(s.best_tie));
  EXPECT_EQ(r.bad_epochs, s.bad_epochs);
  EXPECT_EQ(r.random_state, s.random_state);
  ASSERT_EQ(r.best_validation.size(), s.best_validation.size());
  for (size_t i = 0; i < s.best_validation.size(); ++i) {
    EXPECT_EQ(r.best_validation[i].first, s.best_validation[i].first) << i;
    EXPECT_EQ(bits(r.best_validation[i].second), bits(s.best_validation[i].second))
        << s.best_validation[i].first;
  }
}

TEST(TrainCheckpoint, LoopStateAndTensorsRoundTripExactly) {
  const LoopState s = full_loop_state();
  const NamedTensors state = {
      {"value/layer.0/w",
       Tensor::host_from<float>({2, 3}, {1.f, -2.5f, 3.125f, -0.f, FLT_MAX, FLT_TRUE_MIN})},
      {"step", Tensor::host_from<int64_t>({1}, {std::numeric_limits<int64_t>::max()})},
      {"tables/ids", Tensor::host_from<int32_t>({4}, {0, -1, 7, 1 << 30})},
      {"best/not_a_kept_weight", Tensor::host_from<float>({1}, {0.5f})}};  // prefix inside state
  const NamedTensors best = {{"w", Tensor::host_from<float>({3}, {7.f, 8.f, 9.f})},
                             {"state/x", Tensor::host_from<float>({1, 1}, {-4.f})}};
  TempFile f("roundtrip");
  save_training_checkpoint(f.path, s, state, best);
  const TrainingCheckpoint c = load_training_checkpoint(f.path, s.task, s.tag);
  expect_same_loop(c.loop, s);
  expect_same_tensors(c.state, state);
  expect_same_tensors(c.best, best);
}

TEST(TrainCheckpoint, FreshLoopWithNoTensorsRoundTrips) {
  LoopState s;  // as before the first epoch: best_epoch -1, nothing kept, no generator
  s.task = "image";
  s.tag = "";
  TempFile f("fresh");
  save_training_checkpoint(f.path, s, {}, {});
  const TrainingCheckpoint c = load_training_checkpoint(f.path, "image", "");
  expect_same_loop(c.loop, s);
  EXPECT_TRUE(c.state.empty());
  EXPECT_TRUE(c.best.empty());
}

TEST(TrainCheckpoint, PrefixHelpersSplitAndJoinNames) {
  const NamedTensors all = {{"a/x", Tensor::host_from<float>({1}, {1.f})},
                            {"b/y", Tensor::host_from<float>({1}, {2.f})},
                            {"a/b/z", Tensor::host_from<float>({1}, {3.f})},
                            {"ab", Tensor::host_from<float>({1}, {4.f})}};
  const NamedTensors a = with_prefix(all, "a/");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].first, "x");
  EXPECT_EQ(values(a[0].second), std::vector<float>{1.f});
  EXPECT_EQ(a[1].first, "b/z");
  EXPECT_EQ(values(a[1].second), std::vector<float>{3.f});
  NamedTensors out = {{"keep", Tensor::host_from<float>({1}, {9.f})}};
  add_prefixed(out, "p/", a);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].first, "keep");
  EXPECT_EQ(out[1].first, "p/x");
  EXPECT_EQ(out[2].first, "p/b/z");
  EXPECT_EQ(values(out[2].second), std::vector<float>{3.f});
}

TEST(TrainCheckpoint, ParameterStateRoundTripsValuesAndOptimizerState) {
  auto backend = make_backend("cpu");
  Parameter w = param("w", {2, 3}, 1.f, true), b = param("b", {2}, -3.f, false);
  const Snapshot sw = snap(w), sb = snap(b);
  const NamedTensors state = parameter_state(*backend, {&w, &b});
  std::vector<std::string> names;
  for (const auto& [name, t] : state) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"value/w", "state1/w", "state2/w", "value/b"}));
  for (const auto& [name, t] : state) EXPECT_TRUE(t.is_host()) << name;

  // Host copies: training on does not change the state already taken.
  fill(w, 42.f);
  fill(b, 42.f);
  restore_parameter_state(*backend, {&w, &b}, state, "test");
  expect_holds(w, sw);
  expect_holds(b, sb);

  // Through the file, into a fresh model of the same shapes.
  TempFile f("params");
  LoopState s;
  s.task = "behaviour";
  s.tag = "t";
  save_training_checkpoint(f.path, s, parameter_state(*backend, {&w, &b}), {});
  Parameter w2 = param("w", {2, 3}, 0.f, true), b2 = param("b", {2}, 0.f, false);
  const TrainingCheckpoint c = load_training_checkpoint(f.path, "behaviour", "t");
  restore_parameter_state(*backend, {&w2, &b2}, c.state, "checkpoint");
  expect_holds(w2, sw);
  expect_holds(b2, sb);
}

TEST(TrainCheckpoint, StateThatDoesNotFitIsRefusedBeforeAnyCopy) {
  auto backend = make_backend("cpu");
  Parameter w = param("w", {2, 3}, 1.f, true), b = param("b", {2}, -3.f, true);
  const NamedTensors good = parameter_state(*backend, {&w, &b});
  fill(w, 0.f);
  fill(b, 0.f);
  const Snapshot sw = snap(w), sb = snap(b);
  // `good` with `name` replaced by `t` (or dropped when `t` is undefined).
  auto with = [&](const std::string& name, const Tensor& t) {
    NamedTensors out;
    for (const auto& [n, v] : good)
      if (n != name)
        out.emplace_back(n, v);
      else if (t.defined())
        out.emplace_back(n, t);
    return out;
  };
  const std::string origin = "textclass checkpoint 'x.tsc'";
  struct Case {
    std::string name;
    Tensor tensor;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {"value/b", Tensor::host_from<float>({3}, {1.f, 2.f, 3.f}), {"'value/b'", "[3]", "[2]"}},
      // Same element count, another shape: the backend's copy alone would take it.
      {"value/w",
       Tensor::host_from<float>({3, 2}, std::vector<float>(6, 1.f)),
       {"'value/w'", "[3, 2]", "[2, 3]"}},
      {"state2/b", Tensor::host_from<int32_t>({2}, {1, 2}), {"'state2/b'", "i32", "f32"}},
      {"state1/b", Tensor(), {"'state1/b' is missing"}},
      {"value/b", Tensor(), {"'value/b' is missing"}},
  };
  for (const Case& c : cases) {
    const NamedTensors bad = with(c.name, c.tensor);
    const std::string e = io_error([&] {
      restore_parameter_state(*backend, {&w, &b}, bad, origin);
    });
    EXPECT_CONTAINS(e, origin);
    for (const std::string& n : c.needles) EXPECT_CONTAINS(e, n);
    // w comes first and fits: a copy before the check of b would have changed it.
    expect_holds(w, sw);
    expect_holds(b, sb);
  }
  // The model has an optimizer slot the checkpoint lacks (state taken without one).
  Parameter plain = param("b", {2}, 5.f, false);
  const NamedTensors no_slots = parameter_state(*backend, {&plain});
  const std::string e = io_error([&] {
    restore_parameter_state(*backend, {&w, &b}, no_slots, origin);
  });
  EXPECT_CONTAINS(e, "'value/w' is missing");
  expect_holds(w, sw);
  expect_holds(b, sb);
  // And the untouched parameters do take the good state.
  restore_parameter_state(*backend, {&w, &b}, good, origin);
  EXPECT_NE(values(w.value), sw.value);
  EXPECT_EQ(values(w.value), values(good[0].second));
}

class SavedCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = full_loop_state();
    save_training_checkpoint(file_.path, loop_, {{"value/w", f32_}}, {{"w", f32_}});
    // The file as written is good: every refusal below is of what was done to it.
    expect_same_loop(load_training_checkpoint(file_.path, loop_.task, loop_.tag).loop, loop_);
  }
  std::string load_error() {
    return io_error([&] { load_training_checkpoint(file_.path, loop_.task, loop_.tag); });
  }
  TempFile file_{"saved"};
  LoopState loop_;
  const Tensor f32_ = Tensor::host_from<float>({4}, {1.f, 2.f, 3.f, 4.f});
};

TEST_F(SavedCheckpoint, AnotherTaskOrConfigurationIsRefused) {
  std::string e = io_error([&] { load_training_checkpoint(file_.path, "image", loop_.tag); });
  EXPECT_CONTAINS(e, "'" + file_.path + "'");
  EXPECT_CONTAINS(e, "it is a textclass checkpoint, not image");
  e = io_error([&] { load_training_checkpoint(file_.path, loop_.task, "cfg-other"); });
  EXPECT_CONTAINS(e, "'" + file_.path + "'");
  EXPECT_CONTAINS(e, "it was written under another configuration");
  e = io_error([&] { load_training_checkpoint(file_.path + ".missing", "textclass", "t"); });
  EXPECT_CONTAINS(e, file_.path + ".missing");
}

TEST_F(SavedCheckpoint, CorruptedBytesAreRefused) {
  const std::string good = read_file(file_.path);
  // Every byte of the magic, the header length and the header's start, every byte of the CRC and
  // the data before it, and a stride through the rest (each write is a synced file).
  std::vector<size_t> at;
  for (size_t i = 0; i < good.size(); ++i)
    if (i < 64 || i + 8 >= good.size() || i % 61 == 0) at.push_back(i);
  for (size_t i : at) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ (i % 2 ? 0x01 : 0x80));
    write_file_atomic(file_.path, bad);
    const std::string e = load_error();
    EXPECT_CONTAINS(e, "'" + file_.path + "'") << " byte " << i;
    if (i >= 8) {  // past the magic
      EXPECT_CONTAINS(e, "checksum mismatch") << " byte " << i;
    }
    if (e.empty()) break;  // one report is enough
  }
}

TEST_F(SavedCheckpoint, TruncatedFileIsRefused) {
  const std::string good = read_file(file_.path);
  for (size_t n : {size_t{0}, size_t{7}, size_t{16}, size_t{19}, size_t{20}, good.size() / 2,
                   good.size() - 5, good.size() - 4, good.size() - 1}) {
    write_file_atomic(file_.path, good.substr(0, n));
    const std::string e = load_error();
    EXPECT_CONTAINS(e, "'" + file_.path + "'") << " at " << n << " bytes";
  }
}

// A header written by hand, field by field as save_training_checkpoint writes it, and archived
// with a correct CRC: what the load refuses is the field, not the file's integrity.
class HostileHeader : public ::testing::Test {
 protected:
  using Fields = std::vector<std::pair<std::string, std::string>>;  // name, JSON value
  static Fields good_fields() {
    return {{"format", R"("tessera.checkpoint")"},
            {"version", "2"},
            {"task", R"("textclass")"},
            {"tag", R"("mine")"},
            {"epochs_done", "3"},
            {"step", "30"},
            {"samples", "960"},
            {"train_seconds_bits", R"("3fd5555555555555")"},  // 1/3
            {"best_epoch", "2"},
            {"best_score_bits", R"("3fe8000000000000")"},  // 0.75
            {"best_tie_bits", R"("7ff8000000000000")"},    // NaN: no tie metric
            {"bad_epochs", "1"},
            {"random_state", R"("1 2 3")"},
            {"best_validation", R"({"accuracy":"3fe8000000000000"})"}};
  }
  static std::string json_of(const Fields& fields) {
    std::string s = "{";
    for (const auto& [k, v] : fields) s += (s.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
    return s + "}";
  }
  // The good header with `name` set to `value` (removed when `value` is empty).
  static std::string with(const std::string& name, const std::string& value) {
    Fields fields;
    bool found = false;
    for (const auto& [k, v] : good_fields()) {
      if (k != name)
        fields.emplace_back(k, v);
      else if (!value.empty())
        fields.emplace_back(k, value);
      found = found || k == name;
    }
    EXPECT_TRUE(found) << name;
    return json_of(fields);
  }
  void write(const std::string& meta, const NamedTensors& tensors) {
    save_archive(file_.path, meta, tensors);
  }
  std::string load_error() {
    const std::string e =
        io_error([&] { load_training_checkpoint(file_.path, "textclass", "mine"); });
    EXPECT_CONTAINS(e, "'" + file_.path + "'");
    return e;
  }
  TempFile file_{"hostile"};
  const NamedTensors tensors_ = {{"state/value/w", Tensor::host_from<float>({2}, {1.f, 2.f})},
                                 {"best/w", Tensor::host_from<float>({2}, {3.f, 4.f})}};
};

TEST_F(HostileHeader, HandWrittenHeaderIsTheOneTheWriterWrites) {
  // The hand-written header is the format: the writer's header for the same state, byte for byte.
  LoopState s;
  s.task = "textclass";
  s.tag = "mine";
  s.epochs_done = 3;
  s.step = 30;
  s.samples = 960;
  s.train_seconds = 1.0 / 3.0;
  s.best_epoch = 2;
  s.best_score = 0.75;
  s.best_tie = NAN;
  s.bad_epochs = 1;
  s.random_state = "1 2 3";
  s.best_validation = {{"accuracy", 0.75}};
  save_training_checkpoint(file_.path, s, {}, {});
  EXPECT_EQ(load_archive_meta(file_.path), json_of(good_fields()));
  // And it loads.
  write(json_of(good_fields()), tensors_);
  const TrainingCheckpoint c = load_training_checkpoint(file_.path, "textclass", "mine");
  expect_same_loop(c.loop, s);
  ASSERT_EQ(c.state.size(), 1u);
  EXPECT_EQ(c.state[0].first, "value/w");
  ASSERT_EQ(c.best.size(), 1u);
  EXPECT_EQ(values(c.best[0].second), (std::vector<float>{3.f, 4.f}));
}

TEST_F(HostileHeader, WrongTypesAndValuesAreRefusedByField) {
  const std::string int_max = std::to_string(std::numeric_limits<int64_t>::max());
  const std::string hex = "is not 16 lowercase hex digits";
  struct Case {
    std::string field, value, needle;  // value "": the field removed
  };
  const std::vector<Case> cases = {
      {"format", "5", ": format is not a string"},
      {"format", R"("tessera.model")", "it is not a tessera training checkpoint"},
      {"format", "", "it is not a tessera training checkpoint"},
      {"version", R"("2")", ": version is not an integer"},
      {"version", "2.0", ": version is not an integer"},
      {"version", "1", "it has version 1; this build reads 2"},
      {"version", "", ": version is missing"},
      {"task", "7", ": task is not a string"},
      {"task", R"("image")", "it is a image checkpoint, not textclass"},
      {"task", "", ": task is missing"},
      {"tag", "null", ": tag is not a string"},
      {"tag", R"("theirs")", "another configuration"},
      {"tag", "", ": tag is missing"},
      {"epochs_done", "-1", ": epochs_done is not an integer in [0, " + int_max + "]"},
      {"epochs_done", R"("3")", ": epochs_done is not an integer"},
      {"epochs_done", "3.5", ": epochs_done is not an integer"},
      {"epochs_done", "9223372036854775808", ": epochs_done is not an integer"},
      {"epochs_done", "", ": epochs_done is missing"},
      {"step", "-2", ": step is not an integer in [0, "},
      {"step", "true", ": step is not an integer"},
      {"samples", "[]", ": samples is not an integer"},
      {"samples", "-960", ": samples is not an integer in [0, "},
      {"train_seconds_bits", R"("abc")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", "0", ": train_seconds_bits is not a string"},
      {"train_seconds_bits", R"("3FD5555555555555")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", R"("3fd555555555555")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", R"("3fd55555555555555")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", R"("3fd555555555555g")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", R"("-fd5555555555555")", ": train_seconds_bits " + hex},
      {"train_seconds_bits", "", ": train_seconds_bits is missing"},
      {"best_epoch", "-2", ": best_epoch is not an integer in [-1, 3]"},
      {"best_epoch", "4", ": best_epoch is not an integer in [-1, 3]"},
      {"best_epoch", R"("2")", ": best_epoch is not an integer"},
      {"best_score_bits", "0.75", ": best_score_bits is not a string"},
      {"best_score_bits", R"("xyz")", ": best_score_bits " + hex},
      {"best_tie_bits", "null", ": best_tie_bits is not a string"},
      {"best_tie_bits", R"("")", ": best_tie_bits " + hex},
      {"bad_epochs", "-1", ": bad_epochs is not an integer in [0, 3]"},
      {"bad_epochs", "4", ": bad_epochs is not an integer in [0, 3]"},
      {"bad_epochs", "", ": bad_epochs is missing"},
      {"random_state", "[]", ": random_state is not a string"},
      {"random_state", "5", ": random_state is not a string"},
      {"random_state", "", ": random_state is missing"},
      {"best_validation", "[]", ": best_validation is not an object"},
      {"best_validation", R"("accuracy")", ": best_validation is not an object"},
      {"best_validation", R"({"accuracy":0.75})", ": best_validation.accuracy is not a string"},
      {"best_validation", R"({"auc":"3fe8000000000000","accuracy":"zz"})",
       ": best_validation.accuracy " + hex},
      {"best_validation", "", ": best_validation is missing"},
  };
  for (const Case& c : cases) {
    write(with(c.field, c.value), tensors_);
    const std::string e = load_error();
    EXPECT_CONTAINS(e, c.needle) << " (" << c.field << " = " << c.value << ")";
  }
}

TEST_F(HostileHeader, TensorsOutsideStateAndBestAreRefused) {
  for (const std::string name : {"other/x", "statex", "State/x", "bestw"}) {
    NamedTensors t = tensors_;
    t.emplace_back(name, Tensor::host_from<float>({1}, {0.f}));
    write(json_of(good_fields()), t);
    EXPECT_CONTAINS(load_error(), "tensor '" + name + "' is neither state/ nor best/");
  }
}

TEST_F(HostileHeader, NonFiniteWeightsAreRefusedByTensorAndElement) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), inf, -inf}) {
    for (const std::string name : {"state/value/w", "best/w"}) {
      NamedTensors t;
      for (const auto& [n, v] : tensors_)
        t.emplace_back(n, n == name ? Tensor::host_from<float>({3}, {0.f, 1.f, bad}) : v);
      write(json_of(good_fields()), t);
      const std::string e = load_error();
      EXPECT_CONTAINS(e, "tensor '" + name + "'");
      EXPECT_CONTAINS(e, "at element 2");
    }
  }
  // Integer state (a step count, table ids) is not a weight: any value is finite.
  NamedTensors t = tensors_;
  t.emplace_back("state/step",
                 Tensor::host_from<int32_t>({1}, {std::numeric_limits<int32_t>::min()}));
  write(json_of(good_fields()), t);
  EXPECT_EQ(load_training_checkpoint(file_.path, "textclass", "mine").state.size(), 2u);
}

}  // namespace
}  // namespace tessera::train
