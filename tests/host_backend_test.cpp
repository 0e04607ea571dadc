// The public Backend API at its edges, on the host backend (the specification): bad shapes, dtypes,
// devices and parameters are tessera::Errors whose messages name what was wrong; backend selection
// says why CUDA cannot be used instead of crashing; bad ids and labels leave outputs untouched; and
// a few semantic corners every backend must share (BLAS beta = 0, K = 0, dropout's counter-based
// mask, in-place bias+activation).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/backend/host_backend.h"
#include "tests/support/gpu_skips.h"
#include "tests/support/tensor_check.h"

namespace tessera::test {
namespace {

class HostBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be_ = make_host_backend();
  Backend& be() { return *be_; }
  Rng rng_{seed_from(::testing::UnitTest::GetInstance()->current_test_info()->name())};
  Tensor f32(const Shape& s) { return random_f32(s, rng_); }
};

// ---- shapes ------------------------------------------------------------------------------------

TEST_F(HostBackendTest, GemmInnerDimensionMismatchNamesTheShapes) {
  Tensor a = f32({2, 3}), b = f32({4, 5}), c = f32({2, 5});
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, a, b, 0.f, c); },
                           ErrorKind::Shape, {"op(A) [2,3]", "op(B) [4,5]", "C [2, 5]"}));
  // Transposes change which dimensions must agree: op(B) = B^T is [5,4].
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::Yes, 1.f, a, b, 0.f, c); },
                           ErrorKind::Shape, {"op(A) [2,3]", "op(B) [5,4]"}));
}

TEST_F(HostBackendTest, GemmWrongOutputShapeOrRankIsAShapeError) {
  Tensor a = f32({2, 3}), b = f32({3, 5}), c = f32({5, 2});
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, a, b, 0.f, c); },
                           ErrorKind::Shape, {"C [5, 2]"}));
  Tensor v = f32({6});
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, v, b, 0.f, c); },
                           ErrorKind::Shape, {"gemm takes matrices", "f32[6]"}));
}

TEST_F(HostBackendTest, ShapeErrorsSayWhereTheCheckIs) {
  Tensor x = f32({2, 3}), y = f32({3, 2});
  EXPECT_TRUE(throws_error([&] { be().bias_act_forward(Activation::Relu, x, Tensor(), y); },
                           ErrorKind::Shape,
                           {"x [2, 3] and y [3, 2] must have the same shape", "backend.cpp:"}));
}

TEST_F(HostBackendTest, BiasActShapeErrors) {
  Tensor x = f32({2, 3}), y = f32({2, 3});
  Tensor bias4 = f32({4});
  EXPECT_TRUE(throws_error([&] { be().bias_act_forward(Activation::Tanh, x, bias4, y); },
                           ErrorKind::Shape, {"bias [4] for rows of width 3"}));
  Tensor dx = f32({2, 4}), dbias = f32({3});
  EXPECT_TRUE(throws_error([&] { be().bias_act_backward(Activation::Tanh, y, x, dx, dbias); },
                           ErrorKind::Shape, {"y [2, 3] and dx [2, 4]"}));
  Tensor dx_ok = f32({2, 3}), dbias2 = f32({2});
  EXPECT_TRUE(throws_error([&] { be().bias_act_backward(Activation::Tanh, y, x, dx_ok, dbias2); },
                           ErrorKind::Shape, {"dbias [2] for rows of width 3"}));
  Tensor dy_bad = f32({3, 2});
  EXPECT_TRUE(
      throws_error([&] { be().bias_act_backward(Activation::Tanh, y, dy_bad, dx_ok, dbias); },
                   ErrorKind::Shape, {"y [2, 3] and dy [3, 2]"}));
}

TEST_F(HostBackendTest, DropoutEmbeddingLossAndOptimizerShapeErrors) {
  Tensor x = f32({2, 3}), y = f32({3, 2});
  EXPECT_TRUE(throws_error(
      [&] {
        be().dropout_forward({0.5f, 1}, x, y);
      },
      ErrorKind::Shape, {"x [2, 3] and y [3, 2]"}));
  EXPECT_TRUE(throws_error(
      [&] {
        be().dropout_backward({0.5f, 1}, x, y);
      },
      ErrorKind::Shape, {"dy [2, 3] and dx [3, 2]"}));

  Tensor table = f32({10, 4}), ids = random_ids(3, 10, rng_), out = f32({3, 5});
  EXPECT_TRUE(throws_error([&] { be().embedding_forward(table, ids, out); }, ErrorKind::Shape,
                           {"out f32[3, 5]", "3 ids of width 4"}));
  Tensor flat_table = f32({10});
  Tensor out_ok = f32({3, 4});
  EXPECT_TRUE(throws_error([&] { be().embedding_forward(flat_table, ids, out_ok); },
                           ErrorKind::Shape, {"table must be [V, D]", "f32[10]"}));
  EXPECT_TRUE(throws_error([&] { be().embedding_backward(ids, out, table); }, ErrorKind::Shape,
                           {"dout f32[3, 5]", "3 ids of width 4"}));

  Tensor logits2 = f32({4, 2}), labels = f32({4}), loss = f32({4}), dl = f32({4, 2});
  EXPECT_TRUE(throws_error([&] { be().bce_with_logits(logits2, labels, 1.f, loss, dl); },
                           ErrorKind::Shape, {"must be [N] or [N,1]", "f32[4, 2]"}));
  Tensor logits = f32({4}), labels3 = f32({3}), dl1 = f32({4});
  EXPECT_TRUE(throws_error([&] { be().bce_with_logits(logits, labels3, 1.f, loss, dl1); },
                           ErrorKind::Shape, {"labels f32[3]"}));

  Tensor sl = f32({4, 3}), slabels = Tensor::host({5}, DType::I32), sloss = f32({4});
  Tensor sdl = f32({4, 3}), sdl_bad = f32({3, 4});
  EXPECT_TRUE(throws_error([&] { be().softmax_xent(sl, slabels, 1.f, sloss, sdl); },
                           ErrorKind::Shape, {"labels i32[5]"}));
  Tensor slabels4 = Tensor::host({4}, DType::I32);
  EXPECT_TRUE(throws_error([&] { be().softmax_xent(sl, slabels4, 1.f, sloss, sdl_bad); },
                           ErrorKind::Shape, {"logits [4, 3] and dlogits [3, 4]"}));
  Tensor s1 = f32({4});
  EXPECT_TRUE(throws_error([&] { be().softmax_xent(s1, slabels4, 1.f, sloss, sdl); },
                           ErrorKind::Shape, {"logits must be [N, C]"}));

  Tensor w = f32({3, 2}), g = f32({2, 3}), vel = f32({3, 2}), vel_bad = f32({6});
  math::SgdParams sgd;
  EXPECT_TRUE(throws_error([&] { be().sgd_update(sgd, w, g, vel); }, ErrorKind::Shape,
                           {"param [3, 2] and grad [2, 3]"}));
  sgd.momentum = 0.9f;
  Tensor g_ok = f32({3, 2});
  EXPECT_TRUE(throws_error([&] { be().sgd_update(sgd, w, g_ok, vel_bad); }, ErrorKind::Shape,
                           {"param [3, 2] and velocity [6]"}));
  Tensor no_velocity;
  EXPECT_TRUE(throws_error([&] { be().sgd_update(sgd, w, g_ok, no_velocity); }, ErrorKind::Shape,
                           {"velocity is undefined"}));
  Tensor m = f32({3, 2}), v_bad = f32({2, 3});
  EXPECT_TRUE(throws_error([&] { be().adam_update({}, w, g_ok, m, v_bad); }, ErrorKind::Shape,
                           {"param [3, 2] and v [2, 3]"}));

  Tensor src = f32({2, 3}), dst = f32({7});
  EXPECT_TRUE(throws_error([&] { be().copy(src, dst); }, ErrorKind::Shape,
                           {"f32[2, 3]@cpu -> f32[7]@cpu"}));
}

TEST_F(HostBackendTest, UndefinedTensorsAreNamed) {
  Tensor undefined, b = f32({3, 5}), c = f32({2, 5});
  EXPECT_TRUE(
      throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, undefined, b, 0.f, c); },
                   ErrorKind::Shape, {"gemm A is undefined"}));
  EXPECT_TRUE(throws_error([&] { be().fill(undefined, 1.f); }, ErrorKind::Shape,
                           {"fill target is undefined"}));
}

// ---- dtypes ------------------------------------------------------------------------------------

TEST_F(HostBackendTest, WrongDtypesAreNamed) {
  Tensor ai = Tensor::host({2, 3}, DType::I32), b = f32({3, 5}), c = f32({2, 5});
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, ai, b, 0.f, c); },
                           ErrorKind::Shape, {"gemm A must be f32", "i32[2, 3]"}));
  Tensor l64 = Tensor::host({4}, DType::I64);
  EXPECT_TRUE(throws_error([&] { be().fill(l64, 1.f); }, ErrorKind::Shape,
                           {"fill target must be f32", "i64[4]"}));
  Tensor table = f32({10, 4}), ids32 = Tensor::host({3}, DType::I32), out = f32({3, 4});
  EXPECT_TRUE(throws_error([&] { be().embedding_forward(table, ids32, out); }, ErrorKind::Shape,
                           {"ids must be i64", "i32[3]"}));
  EXPECT_TRUE(throws_error([&] { be().embedding_backward(ids32, out, table); }, ErrorKind::Shape,
                           {"ids must be i64"}));
  Tensor logits = f32({4, 3}), flabels = f32({4}), loss = f32({4}), dl = f32({4, 3});
  EXPECT_TRUE(throws_error([&] { be().softmax_xent(logits, flabels, 1.f, loss, dl); },
                           ErrorKind::Shape, {"softmax labels must be i32", "f32[4]"}));
  Tensor z = f32({4}), ilabels = Tensor::host({4}, DType::I32), dz = f32({4});
  EXPECT_TRUE(throws_error([&] { be().bce_with_logits(z, ilabels, 1.f, loss, dz); },
                           ErrorKind::Shape, {"must be f32", "i32[4]"}));
  Tensor src = f32({4}), dst = Tensor::host({4}, DType::I32);
  EXPECT_TRUE(throws_error([&] { be().copy(src, dst); }, ErrorKind::Shape, {"f32[4]", "i32[4]"}));
  Tensor w = f32({4}), gi = Tensor::host({4}, DType::I32), m = f32({4}), v = f32({4});
  EXPECT_TRUE(
      throws_error([&] { be().adam_update({}, w, gi, m, v); }, ErrorKind::Shape, {"must be f32"}));
  // Reading a tensor as the wrong element type is refused too.
  EXPECT_TRUE(throws_error([&] { (void)ai.data<float>(); }, ErrorKind::Shape,
                           {"tensor of i32 read as f32"}));
}

// ---- devices -----------------------------------------------------------------------------------

// Host memory that claims to live on cuda:0: lets a CPU-only machine check the device guard.
class FakeDeviceBuffer final : public Buffer {
 public:
  explicit FakeDeviceBuffer(size_t bytes) : inner_(bytes) {}
  void* data() override { return inner_.data(); }
  size_t bytes() const override { return inner_.bytes(); }
  Device device() const override { return Device{DeviceKind::Cuda, 0}; }

 private:
  HostBuffer inner_;
};

TEST_F(HostBackendTest, TensorsOnAnotherDeviceAreRefused) {
  Tensor dev(std::make_shared<FakeDeviceBuffer>(6 * sizeof(float)), {2, 3}, DType::F32);
  EXPECT_TRUE(throws_error([&] { be().fill(dev, 1.f); }, ErrorKind::Shape,
                           {"fill target lives on cuda:0 but the backend is cpu"}));
  Tensor b = f32({3, 5}), c = f32({2, 5});
  EXPECT_TRUE(throws_error([&] { be().gemm(Transpose::No, Transpose::No, 1.f, dev, b, 0.f, c); },
                           ErrorKind::Shape, {"gemm A lives on cuda:0"}));
  EXPECT_TRUE(throws_error([&] { be().to_device(dev); }, ErrorKind::Shape,
                           {"to_device expects a host tensor"}));
}

// ---- parameters --------------------------------------------------------------------------------

TEST_F(HostBackendTest, DropoutProbabilityOutOfRangeIsRefused) {
  Tensor x = f32({2, 3}), y = f32({2, 3});
  // The edge checks share one macro family (kind Shape); what matters is a tessera::Error that
  // names the bad value, before any element is touched.
  for (float p : {1.f, 1.5f, -0.1f, std::numeric_limits<float>::quiet_NaN(),
                  std::numeric_limits<float>::infinity()}) {
    SCOPED_TRACE("p = " + std::to_string(p));
    const Tensor y_before = clone_host(y);
    CaughtError fwd = catch_error([&] { be().dropout_forward({p, 1}, x, y); });
    EXPECT_TRUE(fwd.threw_error) << (fwd.threw_other ? fwd.message : "no throw");
    EXPECT_NE(fwd.message.find("dropout probability"), std::string::npos) << fwd.message;
    EXPECT_NE(fwd.message.find("not in [0, 1)"), std::string::npos) << fwd.message;
    EXPECT_TRUE(bitwise_equal(y_before, y, "y after a refused dropout"));
    CaughtError bwd = catch_error([&] { be().dropout_backward({p, 1}, x, y); });
    EXPECT_TRUE(bwd.threw_error) << (bwd.threw_other ? bwd.message : "no throw");
    EXPECT_NE(bwd.message.find("dropout probability"), std::string::npos) << bwd.message;
  }
}

// ---- backend selection -------------------------------------------------------------------------

TEST(BackendSelection, CudaWithoutAGpuIsABackendErrorThatSaysWhy) {
  std::string why;
  if (cuda_available(&why)) TESSERA_GPU_PRESENT_SKIP("nothing to refuse");
  ASSERT_FALSE(why.empty()) << "cuda_available() must say why it is false";
  for (const char* spec : {"cuda", "cuda:0", "cuda:3"}) {
    EXPECT_TRUE(throws_error([&] { make_backend(spec); }, ErrorKind::Backend,
                             {std::string("'") + spec + "'", "CUDA cannot be used", why}))
        << spec;
  }
}

TEST(BackendSelection, AutoFallsBackToTheHostBackend) {
  if (cuda_available()) TESSERA_GPU_PRESENT_SKIP("'auto' picks it");
  std::unique_ptr<Backend> be = make_backend("auto");
  ASSERT_NE(be, nullptr);
  EXPECT_EQ(be->name(), "cpu");
  EXPECT_EQ(be->device(), Device{});
  // And it works.
  Tensor t = be->empty({3});
  be->fill(t, 2.f);
  EXPECT_EQ(t.data<float>()[2], 2.f);
}

TEST(BackendSelection, HostSpellings) {
  for (const char* spec : {"cpu", "host"}) {
    std::unique_ptr<Backend> be = make_backend(spec);
    EXPECT_EQ(be->name(), "cpu") << spec;
    EXPECT_EQ(be->device().kind, DeviceKind::Host) << spec;
  }
}

TEST(BackendSelection, UnknownSpecIsAUsageErrorListingTheChoices) {
  for (const char* spec : {"bogus", "", "CPU", "gpu", "cuda0"}) {
    EXPECT_TRUE(
        throws_error([&] { make_backend(spec); }, ErrorKind::Usage,
                     {std::string("device '") + spec + "'", "auto", "cpu", "cuda", "cuda:N"}))
        << "spec '" << spec << "'";
  }
  for (const char* spec : {"cuda:x", "cuda:", "cuda:-1", "cuda:1x"}) {
    EXPECT_TRUE(throws_error([&] { make_backend(spec); }, ErrorKind::Usage,
                             {std::string("device '") + spec + "'", "cuda:N"}))
        << "spec '" << spec << "'";
  }
}

// ---- bad ids and labels: Data errors, outputs untouched ----------------------------------------

TEST_F(HostBackendTest, OutOfRangeIdNamesIdAndPositionAndWritesNothing) {
  Tensor table = f32({10, 4});
  Tensor ids = Tensor::host_from<int64_t>({4}, {1, 2, 10, 3});
  Tensor out = f32({4, 4});
  const Tensor out_before = clone_host(out);
  EXPECT_TRUE(throws_error([&] { be().embedding_forward(table, ids, out); }, ErrorKind::Data,
                           {"embedding id 10 at position 2", "[0, 10)"}));
  EXPECT_TRUE(bitwise_equal(out_before, out, "out after a refused lookup"));
  Tensor neg = Tensor::host_from<int64_t>({2}, {0, -5});
  Tensor out2 = f32({2, 4});
  EXPECT_TRUE(throws_error([&] { be().embedding_forward(table, neg, out2); }, ErrorKind::Data,
                           {"embedding id -5 at position 1"}));
}

TEST_F(HostBackendTest, OutOfRangeIdInBackwardLeavesTheGradientUntouched) {
  // Every backend must refuse the whole batch before accumulating anything, or a caller that
  // catches the error and skips the batch keeps a half-applied gradient (and backends that
  // accumulate in different orders would disagree about which half).
  Tensor dtable = f32({10, 4});
  Tensor ids = Tensor::host_from<int64_t>({4}, {1, 2, 10, 3});
  Tensor dout = f32({4, 4});
  const Tensor before = clone_host(dtable);
  EXPECT_TRUE(throws_error([&] { be().embedding_backward(ids, dout, dtable); }, ErrorKind::Data,
                           {"embedding id 10 at position 2"}));
  EXPECT_TRUE(bitwise_equal(before, dtable, "dtable after a refused backward"));
}

TEST_F(HostBackendTest, BadClassLabelNamesRowAndWritesNothing) {
  Tensor logits = f32({3, 4}), loss = f32({3}), dl = f32({3, 4});
  const Tensor loss_before = clone_host(loss), dl_before = clone_host(dl);
  for (int32_t bad : {4, -1}) {
    Tensor labels = Tensor::host_from<int32_t>({3}, {0, bad, 3});
    EXPECT_TRUE(throws_error([&] { be().softmax_xent(logits, labels, 1.f, loss, dl); },
                             ErrorKind::Data,
                             {"class label " + std::to_string(bad) + " at row 1", "[0, 4)"}));
    EXPECT_TRUE(bitwise_equal(loss_before, loss, "loss after a refused batch"));
    EXPECT_TRUE(bitwise_equal(dl_before, dl, "dlogits after a refused batch"));
  }
}

// ---- semantic corners every backend shares -----------------------------------------------------

TEST_F(HostBackendTest, GemmBetaZeroDoesNotReadC) {
  // BLAS semantics: with beta = 0, C's old contents (even NaN) do not matter.
  Tensor a = f32({4, 3}), b = f32({3, 5});
  Tensor c = host_f32({4, 5}, std::numeric_limits<float>::quiet_NaN());
  be().gemm(Transpose::No, Transpose::No, 1.f, a, b, 0.f, c);
  EXPECT_TRUE(all_finite(c, "C"));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      double want = 0;
      for (int64_t k = 0; k < 3; ++k)
        want += static_cast<double>(a.data<float>()[i * 3 + k]) * b.data<float>()[k * 5 + j];
      EXPECT_NEAR(c.data<float>()[i * 5 + j], want, 1e-5) << i << "," << j;
    }
}

TEST_F(HostBackendTest, GemmWithEmptyInnerDimensionScalesC) {
  Tensor a = Tensor::host({3, 0}), b = Tensor::host({0, 2});
  Tensor c = host_f32({3, 2}, 4.f);
  be().gemm(Transpose::No, Transpose::No, 1.f, a, b, 0.5f, c);
  EXPECT_TRUE(bitwise_equal(host_f32({3, 2}, 2.f), c, "C = 0.5 C"));
  Tensor c_nan = host_f32({3, 2}, std::numeric_limits<float>::quiet_NaN());
  be().gemm(Transpose::No, Transpose::No, 1.f, a, b, 0.f, c_nan);
  EXPECT_TRUE(bitwise_equal(host_f32({3, 2}, 0.f), c_nan, "C = 0 with beta = 0"));
  // M = 0 and N = 0: nothing to do, and no error.
  Tensor a0 = Tensor::host({0, 3}), b0 = f32({3, 2}), c0 = Tensor::host({0, 2});
  EXPECT_NO_THROW(be().gemm(Transpose::No, Transpose::No, 1.f, a0, b0, 0.f, c0));
}

TEST_F(HostBackendTest, DropoutMaskIsTheCounterHash) {
  const int64_t n = 20000;
  Tensor x = host_f32({n}, 1.f), y = Tensor::host({n});
  const DropoutParams d{0.3f, 12345};
  be().dropout_forward(d, x, y);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = math::dropout_keep(d.seed, static_cast<uint64_t>(i), d.p);
    ASSERT_EQ(y.data<float>()[i], keep ? 1.f / 0.7f : 0.f) << "element " << i;
    kept += keep;
  }
  // 1 - p kept, within 5 standard deviations of a binomial(n, 0.7).
  EXPECT_NEAR(static_cast<double>(kept) / n, 0.7, 5 * std::sqrt(0.21 / n));
  // Another seed, another mask.
  Tensor y2 = Tensor::host({n});
  be().dropout_forward({0.3f, 12346}, x, y2);
  EXPECT_FALSE(bitwise_equal(y, y2, "masks of two seeds"));
  // p = 0 is the identity, exactly.
  Tensor z = f32({7, 3}), z_out = Tensor::host({7, 3});
  be().dropout_forward({0.f, 9}, z, z_out);
  EXPECT_TRUE(bitwise_equal(z, z_out, "dropout with p = 0"));
}

TEST_F(HostBackendTest, BiasActInPlaceEqualsOutOfPlace) {
  Tensor x = random_f32({5, 7}, rng_, -3.f, 3.f), bias = f32({7});
  for (Activation act :
       {Activation::None, Activation::Relu, Activation::Sigmoid, Activation::Tanh}) {
    Tensor y = Tensor::host({5, 7});
    be().bias_act_forward(act, x, bias, y);
    Tensor inplace = clone_host(x);
    be().bias_act_forward(act, inplace, bias, inplace);
    EXPECT_TRUE(bitwise_equal(y, inplace, "in-place forward"));
    Tensor dy = f32({5, 7}), dx = Tensor::host({5, 7}), db = Tensor::host({7});
    be().bias_act_backward(act, y, dy, dx, db);
    Tensor dy_inplace = clone_host(dy), db2 = Tensor::host({7});
    be().bias_act_backward(act, y, dy_inplace, dy_inplace, db2);
    EXPECT_TRUE(bitwise_equal(dx, dy_inplace, "in-place backward dx"));
    EXPECT_TRUE(bitwise_equal(db, db2, "in-place backward dbias"));
  }
}

TEST_F(HostBackendTest, SgdWithoutMomentumNeedsNoVelocity) {
  Tensor w = host_f32({3}, 1.f), g = host_f32({3}, 0.5f), no_velocity;
  math::SgdParams p;
  p.lr = 0.1f;
  EXPECT_NO_THROW(be().sgd_update(p, w, g, no_velocity));
  EXPECT_FLOAT_EQ(w.data<float>()[0], 0.95f);
}

// A rank-1 tensor [N] is N rows of width 1 (shape[0] is the row dimension), and the edge check
// sizes bias by that width. Whichever way a backend reads rank-1 input, it must agree with what
// the edge accepted: never read or write past the bias (guards), and compute act(x + bias) with
// the bias the edge accepted.
TEST_F(HostBackendTest, BiasActOnRankOneTensorsStaysInBounds) {
  const int64_t n = 5;
  Tensor x = random_f32({n}, rng_);
  for (int64_t bias_len : {int64_t{1}, n}) {
    SCOPED_TRACE("bias [" + std::to_string(bias_len) + "]");
    Tensor bias = random_f32({bias_len}, rng_);
    CaughtError c = catch_error([&] {
      std::vector<Tensor> r = run_guarded(be(), {in("x", x), in("bias", bias), out("y", {n})},
                                          [](Backend& b, std::vector<Tensor>& t) {
                                            b.bias_act_forward(Activation::None, t[0], t[1], t[2]);
                                          });
      for (int64_t i = 0; i < n; ++i) {
        const float want = x.data<float>()[i] + bias.data<float>()[bias_len == 1 ? 0 : i];
        EXPECT_EQ(r[2].data<float>()[i], want) << "element " << i;
      }
    });
    EXPECT_FALSE(c.threw_other) << c.message;
    if (c.threw_error) EXPECT_EQ(c.kind, ErrorKind::Shape) << c.message;
  }
  // Backward: dbias must be the column sums of dx for the width the edge accepted.
  Tensor y = random_f32({n}, rng_), dy = random_f32({n}, rng_);
  for (int64_t bias_len : {int64_t{1}, n}) {
    SCOPED_TRACE("dbias [" + std::to_string(bias_len) + "]");
    CaughtError c = catch_error([&] {
      std::vector<Tensor> r =
          run_guarded(be(), {in("y", y), in("dy", dy), out("dx", {n}), out("dbias", {bias_len})},
                      [](Backend& b, std::vector<Tensor>& t) {
                        b.bias_act_backward(Activation::None, t[0], t[1], t[2], t[3]);
                      });
      double total = 0;
      for (int64_t i = 0; i < n; ++i) total += dy.data<float>()[i];
      for (int64_t j = 0; j < bias_len; ++j) {
        const double want = bias_len == 1 ? total : dy.data<float>()[j];
        EXPECT_NEAR(r[3].data<float>()[j], want, 1e-6) << "dbias " << j;
      }
    });
    EXPECT_FALSE(c.threw_other) << c.message;
    if (c.threw_error) EXPECT_EQ(c.kind, ErrorKind::Shape) << c.message;
  }
}

TEST_F(HostBackendTest, ScalarTensorsWorkOrAreRefusedCleanly) {
  // A rank-0 tensor must never escape as std::out_of_range from inside an op.
  Tensor x = Tensor::host({}), y = Tensor::host({});
  x.data<float>()[0] = 0.5f;
  CaughtError c = catch_error([&] { be().bias_act_forward(Activation::Tanh, x, Tensor(), y); });
  EXPECT_FALSE(c.threw_other) << "non-tessera exception: " << c.message;
  if (!c.threw_error && !c.threw_other) EXPECT_FLOAT_EQ(y.data<float>()[0], std::tanh(0.5f));
  Tensor dx = Tensor::host({});
  Tensor no_bias;
  CaughtError cb =
      catch_error([&] { be().bias_act_backward(Activation::Tanh, y, x, dx, no_bias); });
  EXPECT_FALSE(cb.threw_other) << "non-tessera exception: " << cb.message;
}

}  // namespace
}  // namespace tessera::test
