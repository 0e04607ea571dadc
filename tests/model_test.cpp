// The MLP model's backward pass against finite differences of its own forward loss, and the
// tensor archive / optimizer plumbing around it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include <unistd.h>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"

namespace tessera {
namespace {

struct Problem {
  Tensor dense, cat, labels;
};

Problem make_problem(int64_t b, int64_t n_dense, int64_t n_cat, int64_t rows_per_col,
                     uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  Problem p{Tensor::host({b, n_dense}), Tensor::host({b, n_cat}, DType::I64), Tensor::host({b})};
  for (int64_t i = 0; i < b * n_dense; ++i) p.dense.data<float>()[i] = n(rng);
  for (int64_t i = 0; i < b; ++i) {
    float score = 0.f;
    for (int64_t c = 0; c < n_cat; ++c) {
      int64_t v = static_cast<int64_t>(rng() % rows_per_col);
      p.cat.data<int64_t>()[i * n_cat + c] = c * rows_per_col + v;
      score += (v % 2 ? 1.f : -1.f);
    }
    score += 2.f * p.dense.data<float>()[i * n_dense];
    p.labels.data<float>()[i] = score > 0.f ? 1.f : 0.f;
  }
  return p;
}

// Mean BCE loss of the model on the problem, and (optionally) the gradients via backward.
double loss_of(Backend& be, MlpModel& m, const Problem& p, bool with_backward) {
  const int64_t b = p.labels.numel();
  Tensor logits = m.forward(p.dense, p.cat, with_backward ? Mode::Train : Mode::Eval, 7);
  Tensor labels = be.to_device(p.labels);
  Tensor loss = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, labels, 1.f / b, loss, dl);
  if (with_backward) m.backward(dl);
  Tensor h = be.to_host(loss);
  double s = 0;
  for (int64_t i = 0; i < b; ++i) s += h.data<float>()[i];
  return s / b;
}

TEST(MlpModel, BackwardMatchesFiniteDifferences) {
  auto be = make_host_backend();
  MlpSpec spec;
  spec.n_dense = 3;
  spec.n_cat = 2;
  spec.embedding_rows = 10;
  spec.embedding_dim = 3;
  spec.hidden = {5, 4};
  spec.dropout = 0.f;  // dropout makes the loss non-smooth in the mask; tested at op level
  spec.activation = Activation::Tanh;  // smooth, so central differences are accurate
  MlpModel m(*be, spec, 1, 16);
  Problem p = make_problem(9, 3, 2, 5, 3);
  loss_of(*be, m, p, /*with_backward=*/true);
  int checked = 0;
  for (Parameter* prm : m.parameters()) {
    Tensor g = be->to_host(prm->grad);
    float* w = prm->value.data<float>();
    for (int64_t i = 0; i < prm->value.numel(); i += std::max<int64_t>(1, prm->value.numel() / 7)) {
      const float orig = w[i];
      const float eps = 1e-2f;
      w[i] = orig + eps;
      const double lp = loss_of(*be, m, p, false);
      w[i] = orig - eps;
      const double lm = loss_of(*be, m, p, false);
      w[i] = orig;
      const double numeric = (lp - lm) / (2 * eps);
      EXPECT_NEAR(g.data<float>()[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
          << prm->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(MlpModel, AdamTrainingLearnsAPlantedSignal) {
  auto be = make_host_backend();
  MlpSpec spec;
  spec.n_dense = 4;
  spec.n_cat = 3;
  spec.embedding_rows = 30;
  spec.embedding_dim = 4;
  spec.hidden = {16, 8};
  spec.dropout = 0.1f;
  MlpModel m(*be, spec, 5, 64);
  OptimizerConfig os;
  os.lr = 1e-2;
  Optimizer opt(*be, os, LrSchedule{});
  opt.attach(m.parameters());
  Problem p = make_problem(64, 4, 3, 10, 11);
  const double before = loss_of(*be, m, p, false);
  for (int step = 0; step < 200; ++step) {
    loss_of(*be, m, p, true);
    opt.step();
  }
  const double after = loss_of(*be, m, p, false);
  EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
  EXPECT_LT(after, 0.2);
}

TEST(LrSchedule, WarmupCosineAndStep) {
  LrSchedule s;
  s.type = LrScheduleType::Cosine;
  s.warmup_steps = 10;
  s.total_steps = 110;
  EXPECT_FLOAT_EQ(s.lr_at(1.f, 0), 0.1f);
  EXPECT_FLOAT_EQ(s.lr_at(1.f, 9), 1.f);
  EXPECT_NEAR(s.lr_at(1.f, 60), 0.5f, 1e-6);
  EXPECT_NEAR(s.lr_at(1.f, 110), 0.f, 1e-6);
  LrSchedule st;
  st.type = LrScheduleType::Step;
  st.step_every = 5;
  st.gamma = 0.5f;
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 4), 2.f);
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 5), 1.f);
  EXPECT_FLOAT_EQ(st.lr_at(2.f, 12), 0.5f);
}

std::string temp_path(const char* name) {
  return std::string(::testing::TempDir()) + "/" + name;
}

TEST(Archive, RoundTripsTensorsAndMeta) {
  const std::string path = temp_path("archive_roundtrip.tsm");
  Tensor a = Tensor::host_from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::host_from<int64_t>({3}, {7, -8, 1LL << 40});
  save_archive(path, R"({"kind":"test","n":3})", {{"a", a}, {"b", b}});
  Archive r = load_archive(path);
  EXPECT_EQ(r.meta_json, R"({"kind":"test","n":3})");
  ASSERT_EQ(r.tensors.count("a"), 1u);
  EXPECT_EQ(r.tensors.at("a").shape(), (Shape{2, 3}));
  EXPECT_EQ(r.tensors.at("a").data<float>()[5], 6.f);
  EXPECT_EQ(r.tensors.at("b").data<int64_t>()[2], 1LL << 40);
}

TEST(Archive, CorruptionAndTruncationAreDetected) {
  const std::string path = temp_path("archive_corrupt.tsm");
  save_archive(path, "{}", {{"a", Tensor::host_from<float>({4}, {1, 2, 3, 4})}});
  std::string bytes = read_file(path);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  write_file_atomic(path, flipped);
  try {
    load_archive(path);
    FAIL() << "corruption not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  write_file_atomic(path, bytes.substr(0, bytes.size() - 9));
  EXPECT_THROW(load_archive(path), Error);
}

TEST(AtomicFile, UnwritableDirectoryIsAClearErrorAndLeavesNothing) {
  try {
    write_file_atomic("/nonexistent-dir-tessera/x.bin", "abc");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir-tessera/x.bin"), std::string::npos);
  }
}

TEST(AtomicFile, AbandonedWriterLeavesTheOldFileIntact) {
  const std::string path = temp_path("atomic_keep.txt");
  write_file_atomic(path, "old");
  {
    AtomicFileWriter w(path);
    w.write("new but never committed");
  }
  EXPECT_EQ(read_file(path), "old");
  std::FILE* f = std::fopen((path + ".tmp." + std::to_string(::getpid())).c_str(), "r");
  EXPECT_EQ(f, nullptr);
  if (f) std::fclose(f);
}

}  // namespace
}  // namespace tessera
