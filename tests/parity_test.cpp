// Backend parity suite: every op of tessera::Backend runs on the host backend (the specification)
// and on each tested backend with the same inputs, and the outputs must agree within a per-op
// tolerance, be free of NaN/Inf, leave the guard elements around every tensor untouched and leave
// inputs unmodified (tests/support/tensor_check.h: run_guarded).
//
// Parameterised over (op case x backend spec). Backends: "cuda" (skipped, with the reason, where
// no GPU is usable) and any spec listed in TESSERA_PARITY_BACKENDS (e.g. "cuda-emu"). The
// HostSelfCheck instantiation runs the same cases with the host backend on both sides: it keeps the
// harness honest on machines without a GPU (guards, 'never written' NaN, input immutability and
// determinism of the specification itself).
#include <gtest/gtest-spi.h>  // ScopedFakeTestPartResultReporter
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/backends.h"
#include "tests/support/tensor_check.h"

namespace tessera::test {
namespace {

struct ParityCase {
  std::string name;  // letters, digits and '_' (it becomes part of the test name)
  std::function<void(Backend& ref, Backend& dut, Rng& rng)> run;
};
void PrintTo(const ParityCase& c, std::ostream* os) {
  *os << c.name;
}

const char* t_name(Transpose t) {
  return t == Transpose::No ? "N" : "T";
}
const char* act_name(Activation a) {
  switch (a) {
    case Activation::None:
      return "none";
    case Activation::Relu:
      return "relu";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::Tanh:
      return "tanh";
  }
  return "?";
}
std::string num_name(float v) {  // 0.25 -> "0p25", -0.5 -> "m0p5"
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  for (char& c : s) c = c == '.' ? 'p' : c == '-' ? 'm' : c;
  return s;
}

// Both backends throw a tessera::Error of `kind` with the same message (the bad-input policy is
// identical everywhere; a deferred device check may add a suffix naming the op call after it),
// and the message contains `needle`.
void expect_same_error(Backend& ref, Backend& dut, const std::vector<OpArg>& args, const OpFn& op,
                       ErrorKind kind, const std::string& needle) {
  CaughtError r = catch_error([&] { run_guarded(ref, args, op); });
  CaughtError d = catch_error([&] { run_guarded(dut, args, op); });
  ASSERT_TRUE(r.threw_error) << "reference backend did not throw a tessera::Error; "
                             << (r.threw_other ? "it threw: " + r.message : "no exception");
  ASSERT_TRUE(d.threw_error) << dut.name() << " did not throw a tessera::Error; "
                             << (d.threw_other ? "it threw: " + d.message : "no exception");
  EXPECT_EQ(r.kind, kind) << r.message;
  EXPECT_EQ(d.kind, r.kind) << "reference: " << r.message << "\n"
                            << dut.name() << ": " << d.message;
  EXPECT_EQ(d.message.rfind(r.message, 0), 0u)  // a deferred check may add a suffix
      << "reference: " << r.message << "\n"
      << dut.name() << ": " << d.message;
  EXPECT_NE(r.message.find(needle), std::string::npos) << r.message;
}

// ---- gemm --------------------------------------------------------------------------------------

struct GemmShape {
  int64_t m, n, k;
};

void run_gemm(Backend& ref, Backend& dut, Rng& rng, Transpose ta, Transpose tb, GemmShape s,
              float alpha, float beta) {
  const Shape a_shape = ta == Transpose::No ? Shape{s.m, s.k} : Shape{s.k, s.m};
  const Shape b_shape = tb == Transpose::No ? Shape{s.k, s.n} : Shape{s.n, s.k};
  std::vector<OpArg> args = {
      in("A", random_f32(a_shape, rng)), in("B", random_f32(b_shape, rng)),
      // beta == 0: BLAS semantics, C is not read (it starts as NaN here).
      beta == 0.f ? out("C", {s.m, s.n}) : inout("C", random_f32({s.m, s.n}, rng))};
  OpFn op = [=](Backend& be, std::vector<Tensor>& t) {
    be.gemm(ta, tb, alpha, t[0], t[1], beta, t[2]);
  };
  // Inputs in [-1, 1]: a dot product of length K accumulates ~sqrt(K) roundings of size <= K.
  const double abs_tol = 1e-5 * (static_cast<double>(s.k) + 1.0) * std::max(1.f, std::fabs(alpha));
  expect_parity(ref, dut, args, op, {abs_tol, 1e-5});
}

void add_gemm_cases(std::vector<ParityCase>& cases) {
  const std::vector<GemmShape> shapes = {{1, 1, 1},    {0, 5, 3},   {5, 0, 3},    {4, 6, 0},
                                         {33, 17, 65}, {7, 1, 300}, {64, 96, 128}};
  struct Scale {
    const char* name;
    float alpha, beta;
  };
  const std::vector<Scale> scales = {{"plain", 1.f, 0.f}, {"scaled", 1.5f, -0.5f}};
  for (GemmShape s : shapes)
    for (Transpose ta : {Transpose::No, Transpose::Yes})
      for (Transpose tb : {Transpose::No, Transpose::Yes})
        for (const Scale& sc : scales) {
          std::string name = std::string("gemm_") + t_name(ta) + t_name(tb) + "_m" +
                             std::to_string(s.m) + "n" + std::to_string(s.n) + "k" +
                             std::to_string(s.k) + "_" + sc.name;
          cases.push_back({name, [=](Backend& r, Backend& d, Rng& rng) {
                             run_gemm(r, d, rng, ta, tb, s, sc.alpha, sc.beta);
                           }});
        }
  // alpha = 0 (C = beta * C, A and B irrelevant) and beta = 1 (accumulate).
  cases.push_back({"gemm_NN_m33n17k65_alpha0_beta2", [](Backend& r, Backend& d, Rng& rng) {
                     run_gemm(r, d, rng, Transpose::No, Transpose::No, {33, 17, 65}, 0.f, 2.f);
                   }});
  cases.push_back({"gemm_TN_m33n17k65_accumulate", [](Backend& r, Backend& d, Rng& rng) {
                     run_gemm(r, d, rng, Transpose::Yes, Transpose::No, {33, 17, 65}, -1.f, 1.f);
                   }});
}

// ---- bias + activation -------------------------------------------------------------------------

const std::vector<Activation> kActivations = {Activation::None, Activation::Relu,
                                              Activation::Sigmoid, Activation::Tanh};
const std::vector<Shape> kRowShapes = {{1, 1}, {3, 1000}, {257, 33}, {2, 3, 5}};

std::string shape_name(const Shape& s) {
  std::string n;
  for (size_t i = 0; i < s.size(); ++i) n += (i ? "x" : "") + std::to_string(s[i]);
  return n;
}
int64_t width_of(const Shape& s) {
  return s[0] ? shape_numel(s) / s[0] : 0;
}

enum class WithBias { No, Yes };
enum class InPlace { No, Yes };

void run_bias_act_forward(Backend& ref, Backend& dut, Rng& rng, Activation act, const Shape& shape,
                          WithBias wb, InPlace ip) {
  Tensor x = random_f32(shape, rng, -3.f, 3.f);
  OpArg bias =
      wb == WithBias::Yes ? in("bias", random_f32({width_of(shape)}, rng)) : absent("bias");
  const Tolerance tol{2e-6, 1e-5};  // expf/tanhf differ by a few ulp between libm and CUDA
  if (ip == InPlace::Yes) {
    expect_parity(
        ref, dut, {inout("x_and_y", x), bias},
        [=](Backend& be, std::vector<Tensor>& t) { be.bias_act_forward(act, t[0], t[1], t[0]); },
        tol);
  } else {
    expect_parity(
        ref, dut, {in("x", x), bias, out("y", shape)},
        [=](Backend& be, std::vector<Tensor>& t) { be.bias_act_forward(act, t[0], t[1], t[2]); },
        tol);
  }
}

void run_bias_act_backward(Backend& ref, Backend& dut, Rng& rng, Activation act, const Shape& shape,
                           WithBias wb, InPlace ip) {
  // y is a genuine forward output (the backward is expressed through it).
  Tensor x = random_f32(shape, rng, -3.f, 3.f);
  Tensor y = Tensor::host(shape);
  reference_backend().bias_act_forward(act, x, Tensor(), y);
  Tensor dy = random_f32(shape, rng);
  const int64_t rows = shape[0];
  const int64_t width = width_of(shape);
  // dbias sums `rows` values of magnitude <= 1; the host sums in double, others may not.
  OpArg dbias = wb == WithBias::Yes ? out("dbias", {width}).with_tol({2e-6 * (rows + 1), 1e-5})
                                    : absent("dbias");
  const Tolerance tol{1e-6, 1e-5};
  if (ip == InPlace::Yes) {
    expect_parity(
        ref, dut, {in("y", y), inout("dy_and_dx", dy), dbias},
        [=](Backend& be, std::vector<Tensor>& t) {
          be.bias_act_backward(act, t[0], t[1], t[1], t[2]);
        },
        tol);
  } else {
    expect_parity(
        ref, dut, {in("y", y), in("dy", dy), out("dx", shape), dbias},
        [=](Backend& be, std::vector<Tensor>& t) {
          be.bias_act_backward(act, t[0], t[1], t[2], t[3]);
        },
        tol);
  }
}

void add_bias_act_cases(std::vector<ParityCase>& cases) {
  for (Activation act : kActivations)
    for (const Shape& shape : kRowShapes)
      for (WithBias wb : {WithBias::No, WithBias::Yes}) {
        const std::string suffix = std::string(act_name(act)) + "_" + shape_name(shape) +
                                   (wb == WithBias::Yes ? "_bias" : "_nobias");
        cases.push_back({"bias_act_fwd_" + suffix, [=](Backend& r, Backend& d, Rng& rng) {
                           run_bias_act_forward(r, d, rng, act, shape, wb, InPlace::No);
                         }});
        cases.push_back({"bias_act_bwd_" + suffix, [=](Backend& r, Backend& d, Rng& rng) {
                           run_bias_act_backward(r, d, rng, act, shape, wb, InPlace::No);
                         }});
      }
  // In place (y aliases x; dx aliases dy), as the op's contract allows.
  for (Activation act : {Activation::Relu, Activation::Tanh}) {
    cases.push_back({std::string("bias_act_fwd_inplace_") + act_name(act),
                     [=](Backend& r, Backend& d, Rng& rng) {
                       run_bias_act_forward(r, d, rng, act, {257, 33}, WithBias::Yes, InPlace::Yes);
                     }});
    cases.push_back(
        {std::string("bias_act_bwd_inplace_") + act_name(act),
         [=](Backend& r, Backend& d, Rng& rng) {
           run_bias_act_backward(r, d, rng, act, {257, 33}, WithBias::Yes, InPlace::Yes);
         }});
  }
}

// ---- dropout -----------------------------------------------------------------------------------

// The mask is counter-based (math::dropout_keep), so which elements are dropped must be EXACTLY
// the same on every backend; kept values may differ by rounding only.
void expect_same_mask(const Tensor& ref, const Tensor& got, const std::string& what) {
  int64_t differ = 0, first = -1, dropped = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const bool r0 = ref.data<float>()[i] == 0.f;
    const bool g0 = got.data<float>()[i] == 0.f;
    dropped += r0;
    if (r0 != g0) {
      if (first < 0) first = i;
      ++differ;
    }
  }
  EXPECT_EQ(differ, 0) << what << ": the dropout masks differ in " << differ << " of "
                       << ref.numel() << " elements, first at flat index " << first;
}

void run_dropout(Backend& ref, Backend& dut, Rng& rng, const Shape& shape, float p, uint64_t seed,
                 bool backward) {
  // Inputs bounded away from 0, so y == 0 exactly when the element was dropped.
  Tensor x = random_f32(shape, rng, 0.5f, 1.5f);
  for (int64_t i = 0; i < x.numel(); i += 2) x.data<float>()[i] *= -1.f;
  const DropoutParams d{p, seed};
  OpFn op = [=](Backend& be, std::vector<Tensor>& t) {
    if (backward)
      be.dropout_backward(d, t[0], t[1]);
    else
      be.dropout_forward(d, t[0], t[1]);
  };
  ParityResults r = expect_parity(
      ref, dut, {in(backward ? "dy" : "x", x), out(backward ? "dx" : "y", shape)}, op, {0.0, 1e-6});
  expect_same_mask(r.ref[1], r.got[1], dut.name());
}

void add_dropout_cases(std::vector<ParityCase>& cases) {
  const std::vector<Shape> shapes = {{1, 1}, {3, 1000}, {257, 33}};
  const std::vector<float> ps = {0.f, 0.25f, 0.9f};
  for (const Shape& shape : shapes)
    for (float p : ps)
      for (bool backward : {false, true}) {
        const std::string name = std::string("dropout_") + (backward ? "bwd_" : "fwd_") +
                                 shape_name(shape) + "_p" + num_name(p);
        cases.push_back({name, [=](Backend& r, Backend& d, Rng& rng) {
                           run_dropout(r, d, rng, shape, p, /*seed=*/0x5eed0000u + shape[0],
                                       backward);
                         }});
      }
  // A seed above 2^32 (the counter hash takes all 64 bits).
  cases.push_back({"dropout_fwd_3x1000_p0p5_seed64bit", [](Backend& r, Backend& d, Rng& rng) {
                     run_dropout(r, d, rng, {3, 1000}, 0.5f, 0xDEADBEEFCAFEF00Dull, false);
                   }});
}

// ---- embedding ---------------------------------------------------------------------------------

Tensor ids_from(const std::vector<int64_t>& v) {
  return Tensor::host_from<int64_t>({static_cast<int64_t>(v.size())}, v);
}

void run_embedding(Backend& ref, Backend& dut, Rng& rng, int64_t vocab, int64_t dim,
                   const Tensor& ids, bool backward) {
  const int64_t n = ids.numel();
  if (!backward) {
    // A copy of rows: exact.
    expect_parity(
        ref, dut,
        {in("table", random_f32({vocab, dim}, rng)), in("ids", ids), out("out", {n, dim})},
        [](Backend& be, std::vector<Tensor>& t) { be.embedding_forward(t[0], t[1], t[2]); },
        {0.0, 0.0});
  } else {
    // Accumulates into an existing dtable; duplicate ids may be summed in any order.
    expect_parity(
        ref, dut,
        {in("ids", ids), in("dout", random_f32({n, dim}, rng)),
         inout("dtable", random_f32({vocab, dim}, rng))},
        [](Backend& be, std::vector<Tensor>& t) { be.embedding_backward(t[0], t[1], t[2]); },
        {2e-6 * static_cast<double>(n), 1e-5});
  }
}

void add_embedding_cases(std::vector<ParityCase>& cases) {
  struct E {
    const char* name;
    int64_t vocab, dim;
    std::vector<int64_t> ids;  // empty: 300 random ids (many duplicates)
  };
  const std::vector<E> es = {
      {"single_id_dim7", 10, 7, {3}},          {"dup_ids_dim7", 10, 7, {1, 1, 9, 0, 1, 9, 9, 2}},
      {"dup_ids_dim1", 5, 1, {4, 4, 4, 0, 2}}, {"single_row_table_dim1", 1, 1, {0, 0, 0}},
      {"random_ids_dim7", 50, 7, {}},          {"random_ids_dim128", 37, 128, {}},
  };
  for (const E& e : es)
    for (bool backward : {false, true}) {
      cases.push_back({std::string("embedding_") + (backward ? "bwd_" : "fwd_") + e.name,
                       [=](Backend& r, Backend& d, Rng& rng) {
                         Tensor ids =
                             e.ids.empty() ? random_ids(300, e.vocab, rng) : ids_from(e.ids);
                         run_embedding(r, d, rng, e.vocab, e.dim, ids, backward);
                       }});
    }
  // Out-of-range ids: an Error of kind Data with the same message on every backend.
  for (int64_t bad : {int64_t{10}, int64_t{-1}, int64_t{1} << 40})
    for (bool backward : {false, true}) {
      const std::string name = std::string("embedding_") + (backward ? "bwd" : "fwd") +
                               "_out_of_range_id_" + (bad < 0 ? "m1" : std::to_string(bad));
      cases.push_back({name, [=](Backend& r, Backend& d, Rng& rng) {
                         Tensor ids = ids_from({0, 9, 3, bad, 2});
                         std::vector<OpArg> args =
                             backward
                                 ? std::vector<OpArg>{in("ids", ids),
                                                      in("dout", random_f32({5, 7}, rng)),
                                                      inout("dtable", random_f32({10, 7}, rng))}
                                 : std::vector<OpArg>{in("table", random_f32({10, 7}, rng)),
                                                      in("ids", ids), out("out", {5, 7})};
                         OpFn op = [=](Backend& be, std::vector<Tensor>& t) {
                           if (backward)
                             be.embedding_backward(t[0], t[1], t[2]);
                           else
                             be.embedding_forward(t[0], t[1], t[2]);
                         };
                         expect_same_error(r, d, args, op, ErrorKind::Data,
                                           "id " + std::to_string(bad) + " at position 3");
                       }});
    }
}

// ---- losses ------------------------------------------------------------------------------------

void run_bce(Backend& ref, Backend& dut, Rng& rng, const Shape& shape, bool extreme) {
  const int64_t n = shape_numel(shape);
  Tensor logits = random_f32(shape, rng, -6.f, 6.f);
  Tensor labels = Tensor::host({n});
  for (int64_t i = 0; i < n; ++i)
    labels.data<float>()[i] = i % 3 == 0 ? 0.f : i % 3 == 1 ? 1.f : 0.3f;
  if (extreme) {
    // Large |z| on both sides and with both labels: log1p(exp(-|z|)) must not overflow.
    const float zs[] = {100.f, -100.f, 1e4f, -1e4f, 88.5f, -88.5f, 1e30f, -1e30f, 0.f, 20.f};
    for (int64_t i = 0; i < n; ++i)
      logits.data<float>()[i] = zs[i % 10] * (i % 7 == 3 ? -1.f : 1.f);
  }
  const float scale = 1.f / static_cast<float>(n);
  expect_parity(
      ref, dut,
      {in("logits", logits), in("labels", labels), out("loss", {n}), out("dlogits", shape)},
      [=](Backend& be, std::vector<Tensor>& t) {
        be.bce_with_logits(t[0], t[1], scale, t[2], t[3]);
      },
      {1e-6, 1e-5});
}

void run_softmax(Backend& ref, Backend& dut, Rng& rng, int64_t n, int64_t c, bool extreme) {
  Tensor logits = random_f32({n, c}, rng, -5.f, 5.f);
  if (extreme) {
    // Rows dominated by large logits: the max-subtraction must keep exp finite.
    for (int64_t j = 0; j < c; ++j) {
      logits.data<float>()[j] = 80.f + static_cast<float>(j % 5);
      if (n > 1) logits.data<float>()[c + j] = -1e3f * static_cast<float>(j % 3);
    }
  }
  Tensor labels = random_labels(n, static_cast<int32_t>(c), rng);
  const float scale = 1.f / static_cast<float>(n);
  // The loss is a log-sum-exp over C terms.
  const Tolerance loss_tol{2e-6 * std::log2(static_cast<double>(c) + 1.0) + 1e-6, 1e-5};
  expect_parity(
      ref, dut,
      {in("logits", logits), in("labels", labels), out("loss", {n}).with_tol(loss_tol),
       out("dlogits", {n, c})},
      [=](Backend& be, std::vector<Tensor>& t) { be.softmax_xent(t[0], t[1], scale, t[2], t[3]); },
      {1e-7, 1e-4});
}

void add_loss_cases(std::vector<ParityCase>& cases) {
  for (const Shape& shape : std::vector<Shape>{{1}, {37}, {1000, 1}})
    for (bool extreme : {false, true})
      cases.push_back(
          {"bce_with_logits_" + shape_name(shape) + (extreme ? "_large_z" : ""),
           [=](Backend& r, Backend& d, Rng& rng) { run_bce(r, d, rng, shape, extreme); }});
  struct S {
    int64_t n, c;
  };
  for (S s : {S{5, 1}, S{1, 3}, S{17, 3}, S{64, 1000}, S{3, 40}})
    for (bool extreme : {false, true})
      cases.push_back(
          {"softmax_xent_n" + std::to_string(s.n) + "_c" + std::to_string(s.c) +
               (extreme ? "_large_logits" : ""),
           [=](Backend& r, Backend& d, Rng& rng) { run_softmax(r, d, rng, s.n, s.c, extreme); }});
  for (int32_t bad : {3, -1})
    cases.push_back(
        {"softmax_xent_bad_label_" + (bad < 0 ? std::string("m1") : std::to_string(bad)),
         [=](Backend& r, Backend& d, Rng& rng) {
           Tensor labels = Tensor::host_from<int32_t>({4}, {0, 2, bad, 1});
           expect_same_error(
               r, d,
               {in("logits", random_f32({4, 3}, rng)), in("labels", labels), out("loss", {4}),
                out("dlogits", {4, 3})},
               [](Backend& be, std::vector<Tensor>& t) {
                 be.softmax_xent(t[0], t[1], 1.f, t[2], t[3]);
               },
               ErrorKind::Data, "label " + std::to_string(bad) + " at row 2");
         }});
}

// ---- optimizers --------------------------------------------------------------------------------

constexpr int kOptimizerSteps = 4;

// Several steps inside one guarded run: param and state are InOut, one gradient per step.
std::vector<OpArg> optimizer_args(Rng& rng, const Shape& shape, std::vector<OpArg> state) {
  std::vector<OpArg> args = {inout("param", random_f32(shape, rng))};
  for (OpArg& s : state) args.push_back(std::move(s));
  for (int s = 0; s < kOptimizerSteps; ++s)
    args.push_back(in("grad" + std::to_string(s), random_f32(shape, rng)));
  return args;
}

void run_sgd(Backend& ref, Backend& dut, Rng& rng, math::SgdParams p, const Shape& shape) {
  std::vector<OpArg> state;
  if (p.momentum != 0.f)
    state.push_back(inout("velocity", Tensor::host(shape)));
  else
    state.push_back(absent("velocity"));  // momentum 0 needs no velocity buffer
  expect_parity(ref, dut, optimizer_args(rng, shape, std::move(state)),
                [=](Backend& be, std::vector<Tensor>& t) {
                  for (int s = 0; s < kOptimizerSteps; ++s) be.sgd_update(p, t[0], t[2 + s], t[1]);
                },
                {1e-6, 1e-5});
}

void run_adam(Backend& ref, Backend& dut, Rng& rng, math::AdamParams p, const Shape& shape) {
  std::vector<OpArg> state = {inout("m", Tensor::host(shape)), inout("v", Tensor::host(shape))};
  expect_parity(ref, dut, optimizer_args(rng, shape, std::move(state)),
                [=](Backend& be, std::vector<Tensor>& t) {
                  math::AdamParams q = p;
                  for (int s = 0; s < kOptimizerSteps; ++s) {
                    q.bc1 = 1.f - std::pow(p.beta1, static_cast<float>(s + 1));
                    q.bc2 = 1.f - std::pow(p.beta2, static_cast<float>(s + 1));
                    be.adam_update(q, t[0], t[3 + s], t[1], t[2]);
                  }
                },
                {1e-6, 1e-5});
}

void add_optimizer_cases(std::vector<ParityCase>& cases) {
  struct Sgd {
    const char* name;
    math::SgdParams p;
  };
  const std::vector<Sgd> sgds = {
      {"plain", {0.1f, 0.f, 0.f, false}},
      {"momentum", {0.1f, 0.9f, 0.f, false}},
      {"nesterov", {0.1f, 0.9f, 0.f, true}},
      {"momentum_weight_decay", {0.05f, 0.9f, 0.01f, false}},
      {"weight_decay_no_momentum", {0.05f, 0.f, 0.1f, false}},
  };
  for (const Sgd& s : sgds)
    for (const Shape& shape : std::vector<Shape>{{1}, {257, 33}})
      cases.push_back({std::string("sgd_") + s.name + "_" + shape_name(shape),
                       [=](Backend& r, Backend& d, Rng& rng) { run_sgd(r, d, rng, s.p, shape); }});
  struct Adam {
    const char* name;
    float weight_decay;
    bool decoupled;
  };
  for (Adam a :
       {Adam{"adam", 0.f, false}, Adam{"adam_l2", 0.01f, false}, Adam{"adamw", 0.1f, true}})
    for (const Shape& shape : std::vector<Shape>{{1}, {3, 1000}}) {
      math::AdamParams p;
      p.lr = 0.01f;
      p.weight_decay = a.weight_decay;
      p.decoupled = a.decoupled;
      cases.push_back({std::string(a.name) + "_" + shape_name(shape),
                       [=](Backend& r, Backend& d, Rng& rng) { run_adam(r, d, rng, p, shape); }});
    }
}

// ---- memory: fill and copies -------------------------------------------------------------------

void add_memory_cases(std::vector<ParityCase>& cases) {
  for (const Shape& shape : std::vector<Shape>{{1}, {0, 4}, {3, 1000}, {257, 33}})
    for (float value : {3.25f, -0.f}) {
      cases.push_back(
          {"fill_" + shape_name(shape) + "_" + num_name(value), [=](Backend& r, Backend& d, Rng&) {
             ParityResults res = expect_parity(
                 r, d, {out("t", shape)},
                 [=](Backend& be, std::vector<Tensor>& t) { be.fill(t[0], value); }, {0.0, 0.0});
             // Exactly the value, sign of zero included.
             EXPECT_TRUE(bitwise_equal(host_f32(shape, value), res.got[0], "fill on " + d.name()));
           }});
    }
  // Host -> device -> host round trips and copies into / out of the middle of larger buffers.
  for (DType dt : {DType::F32, DType::I32, DType::I64}) {
    cases.push_back(
        {std::string("copy_round_trip_") + dtype_name(dt), [=](Backend&, Backend& d, Rng& rng) {
           const Shape shape{257, 33};
           Tensor h = Tensor::host(shape, dt);
           for (int64_t i = 0; i < h.numel(); ++i) {
             if (dt == DType::F32) h.data<float>()[i] = rng.uniform(-1e6f, 1e6f);
             if (dt == DType::I32) h.data<int32_t>()[i] = static_cast<int32_t>(rng.bits());
             if (dt == DType::I64) h.data<int64_t>()[i] = static_cast<int64_t>(rng.bits());
           }
           Tensor dev = d.to_device(h);
           EXPECT_EQ(dev.device(), d.device());
           EXPECT_TRUE(bitwise_equal(h, d.to_host(dev), "to_device/to_host on " + d.name()));
           // Host source -> guarded device view, then device -> device.
           std::vector<Tensor> got = run_guarded(
               d, {out("dst", shape), out("dst2", shape)},
               [&](Backend& be, std::vector<Tensor>& t) {
                 Tensor typed0 = t[0], typed1 = t[1];
                 if (dt != DType::F32) {  // the helper makes f32 outputs; reinterpret
                   typed0 = be.empty(shape, dt);
                   typed1 = be.empty(shape, dt);
                 }
                 be.copy(h, typed0);
                 be.copy(typed0, typed1);
                 Tensor back = Tensor::host(shape, dt);
                 be.copy(typed1, back);  // device -> host through copy()
                 EXPECT_TRUE(bitwise_equal(h, back, "copy chain on " + be.name()));
                 if (dt == DType::F32) {
                   // A view in the middle of a host buffer as the destination.
                   Tensor big = Tensor::host({shape[0] + 4, shape[1]}, dt);
                   Tensor mid = big.rows(2, 2 + shape[0]);
                   be.copy(typed1, mid);
                   EXPECT_TRUE(bitwise_equal(h, mid, "copy into a host view on " + be.name()));
                   for (int64_t i = 0; i < 2 * shape[1]; ++i) {
                     EXPECT_EQ(big.data<float>()[i], 0.f) << "before the view";
                     EXPECT_EQ(big.data<float>()[(shape[0] + 2) * shape[1] + i], 0.f)
                         << "after the view";
                   }
                 }
               });
           if (dt == DType::F32) {
             EXPECT_TRUE(bitwise_equal(h, got[0], "copy host -> device view on " + d.name()));
             EXPECT_TRUE(bitwise_equal(h, got[1], "copy device -> device view on " + d.name()));
           }
         }});
  }
}

// ---- DLRM dot interaction -----------------------------------------------------------------------

// Shapes: batch 1, F = 1, widths that are not multiples of the warp size or of 4, more vectors
// than a block has threads' worth of pairs (F = 26: 351 pairs > 128 threads).
struct InteractionShape {
  int64_t batch, d, f;
};

void run_dot_interaction(Backend& ref, Backend& dut, Rng& rng, InteractionShape s, bool backward) {
  const int64_t width = s.d + s.f * (s.f + 1) / 2;
  Tensor dense = random_f32({s.batch, s.d}, rng);
  Tensor emb = random_f32({s.batch, s.f * s.d}, rng);
  // Dot products of length d in [-1, 1]: rounding grows with d (and with F for the backward).
  const double abs_tol = 2e-6 * static_cast<double>(s.d + s.f + 1);
  if (!backward) {
    expect_parity(
        ref, dut, {in("dense", dense), in("emb", emb), out("y", {s.batch, width})},
        [](Backend& be, std::vector<Tensor>& t) { be.dot_interaction_forward(t[0], t[1], t[2]); },
        {abs_tol, 1e-5});
  } else {
    expect_parity(ref, dut,
                  {in("dense", dense), in("emb", emb), in("dy", random_f32({s.batch, width}, rng)),
                   out("ddense", {s.batch, s.d}), out("demb", {s.batch, s.f * s.d})},
                  [](Backend& be, std::vector<Tensor>& t) {
                    be.dot_interaction_backward(t[0], t[1], t[2], t[3], t[4]);
                  },
                  {abs_tol, 1e-5});
  }
}

void add_dot_interaction_cases(std::vector<ParityCase>& cases) {
  const std::vector<InteractionShape> shapes = {{1, 1, 1},   {1, 16, 1},  {3, 1, 5},
                                                {37, 13, 3}, {5, 33, 26}, {64, 16, 26}};
  for (InteractionShape s : shapes)
    for (bool backward : {false, true}) {
      const std::string name = std::string("dot_interaction_") + (backward ? "bwd" : "fwd") + "_b" +
                               std::to_string(s.batch) + "d" + std::to_string(s.d) + "f" +
                               std::to_string(s.f);
      cases.push_back({name, [=](Backend& r, Backend& d, Rng& rng) {
                         run_dot_interaction(r, d, rng, s, backward);
                       }});
    }
  // An emb width that is not a multiple of d: the same edge error everywhere.
  cases.push_back({"dot_interaction_fwd_bad_emb_width", [](Backend& r, Backend& d, Rng& rng) {
                     expect_same_error(
                         r, d,
                         {in("dense", random_f32({2, 4}, rng)), in("emb", random_f32({2, 10}, rng)),
                          out("y", {2, 7})},
                         [](Backend& be, std::vector<Tensor>& t) {
                           be.dot_interaction_forward(t[0], t[1], t[2]);
                         },
                         ErrorKind::Shape, "is not F * d");
                   }});
}

// ---- log-mel front end (stft_frames, power_spectrum, log_mel_transpose) -----------------------

struct LogMelShape {
  int64_t batch, n, n_fft, hop, mels;
};

void add_log_mel_cases(std::vector<ParityCase>& cases) {
  // Odd n_fft and hop, a waveform shorter than half a frame, the audio pipeline's 256 / 80 / 40.
  const std::vector<LogMelShape> shapes = {
      {1, 5, 16, 4, 3}, {3, 517, 101, 33, 7}, {2, 1000, 256, 80, 40}};
  for (LogMelShape s : shapes) {
    const std::string tag = "_b" + std::to_string(s.batch) + "n" + std::to_string(s.n) + "fft" +
                            std::to_string(s.n_fft) + "hop" + std::to_string(s.hop);
    const int64_t f = 1 + s.n / s.hop, bins = s.n_fft / 2 + 1;
    cases.push_back({"stft_frames" + tag, [=](Backend& r, Backend& d, Rng& rng) {
                       expect_parity(r, d,
                                     {in("waves", random_f32({s.batch, s.n}, rng)),
                                      in("window", random_f32({s.n_fft}, rng, 0.f, 1.f)),
                                      out("frames", {s.batch * f, s.n_fft})},
                                     [=](Backend& be, std::vector<Tensor>& t) {
                                       be.stft_frames(t[0], t[1], s.hop, t[2]);
                                     },
                                     {0.0, 0.0});  // one product per element: exact
                     }});
    cases.push_back(
        {"power_spectrum" + tag, [=](Backend& r, Backend& d, Rng& rng) {
           expect_parity(r, d,
                         {in("spectrum", random_f32({s.batch * f, 2 * bins}, rng)),
                          out("power", {s.batch * f, bins})},
                         [](Backend& be, std::vector<Tensor>& t) { be.power_spectrum(t[0], t[1]); },
                         {1e-7, 1e-6});  // re*re + im*im: fused or not (FMA contraction)
         }});
    cases.push_back({"log_mel_transpose" + tag, [=](Backend& r, Backend& d, Rng& rng) {
                       expect_parity(r, d,
                                     {in("mel", random_f32({s.batch * f, s.mels}, rng, 0.f, 4.f)),
                                      out("out", {s.batch, s.mels, f})},
                                     [](Backend& be, std::vector<Tensor>& t) {
                                       be.log_mel_transpose(t[0], 1e-6f, t[1]);
                                     },
                                     {1e-6, 1e-6});  // logf of host libm vs device
                     }});
  }
  cases.push_back(
      {"stft_frames_bad_frames_shape", [](Backend& r, Backend& d, Rng& rng) {
         expect_same_error(
             r, d,
             {in("waves", random_f32({2, 100}, rng)), in("window", random_f32({16}, rng)),
              out("frames", {20, 16})},
             [](Backend& be, std::vector<Tensor>& t) { be.stft_frames(t[0], t[1], 10, t[2]); },
             ErrorKind::Shape, "(F = 1 + n / hop = 11)");
       }});
}

std::vector<ParityCase> all_cases() {
  std::vector<ParityCase> cases;
  add_gemm_cases(cases);
  add_bias_act_cases(cases);
  add_dropout_cases(cases);
  add_embedding_cases(cases);
  add_dot_interaction_cases(cases);
  add_log_mel_cases(cases);
  add_loss_cases(cases);
  add_optimizer_cases(cases);
  add_memory_cases(cases);
  return cases;
}

// ---- the parameterised test --------------------------------------------------------------------

using ParityParam = std::tuple<ParityCase, std::string>;

class Parity : public ::testing::TestWithParam<ParityParam> {};

TEST_P(Parity, MatchesHostBackend) {
  const ParityCase& c = std::get<0>(GetParam());
  const std::string& spec = std::get<1>(GetParam());
  TESSERA_TEST_BACKEND_OR_SKIP(dut, spec);
  Rng rng(seed_from(c.name));
  c.run(reference_backend(), *dut, rng);
}

std::string parity_param_name(const ::testing::TestParamInfo<ParityParam>& info) {
  return std::get<0>(info.param).name + "_on_" + spec_param_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Backends, Parity,
                         ::testing::Combine(::testing::ValuesIn(all_cases()),
                                            ::testing::ValuesIn(parity_backend_specs())),
                         parity_param_name);

// The host backend against itself: runs every case's harness (guards, NaN-initialised outputs,
// unmodified inputs, finiteness) on machines without any other backend.
INSTANTIATE_TEST_SUITE_P(HostSelfCheck, Parity,
                         ::testing::Combine(::testing::ValuesIn(all_cases()),
                                            ::testing::Values(std::string("cpu"))),
                         parity_param_name);

// ---- the harness can fail ----------------------------------------------------------------------

// A deliberately broken backend (host memory, host arithmetic) with one fault at a time, to show
// that the guards, the 'never written' pattern, the input check and the comparison each catch it.
enum class Fault {
  WriteOnePastEnd,
  WriteOneBeforeStart,
  LeaveLastUnwritten,
  OffByOneUlp,
  ScribbleInput,
  ReadOnePastEnd,
};

class FaultyBackend final : public Backend {
 public:
  explicit FaultyBackend(Fault f) : fault_(f) {}
  std::string name() const override { return "faulty-test-double"; }
  Device device() const override { return Device{}; }
  void synchronize() override {}

 protected:
  Tensor empty_impl(const Shape& shape, DType dtype) override { return Tensor::host(shape, dtype); }
  void copy_impl(const Tensor& src, Tensor& dst) override {
    if (src.bytes()) std::memmove(dst.raw(), src.raw(), src.bytes());
  }
  void fill_impl(Tensor& t, float value) override {
    float* p = t.data<float>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = value;
    if (fault_ == Fault::WriteOnePastEnd) p[n] = value;  // lands in the guard rows
    if (fault_ == Fault::WriteOneBeforeStart) p[-1] = value;
    if (fault_ == Fault::LeaveLastUnwritten) p[n - 1] = f32_from_bits(kUnwrittenF32Bits);
    if (fault_ == Fault::OffByOneUlp) p[n / 2] = std::nextafter(value, 1e30f);
  }
  void bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                             Tensor& y) override {
    const int64_t cols = x.numel() / x.dim(0);
    const int64_t shift = fault_ == Fault::ReadOnePastEnd ? 1 : 0;  // x[i + 1]: last one is a guard
    for (int64_t i = 0; i < x.numel(); ++i)
      y.data<float>()[i] =
          math::activate(act, x.data<float>()[i + shift] + bias.data<float>()[i % cols]);
    if (fault_ == Fault::ScribbleInput) x.data<float>()[0] += 1.f;
  }
  [[noreturn]] void unsupported() { TESSERA_THROW(Internal, "not implemented by the test double"); }
#define TESSERA_FAULTY_UNSUPPORTED(ret, name, params) \
  ret name##_impl params override {                   \
    unsupported();                                    \
  }
  TESSERA_BACKEND_ELEMENTWISE_OPS(TESSERA_FAULTY_UNSUPPORTED)
  TESSERA_BACKEND_REC_OPS(TESSERA_FAULTY_UNSUPPORTED)
#undef TESSERA_FAULTY_UNSUPPORTED
  void gemm_impl(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*, int64_t,
                 const float*, int64_t, float, float*, int64_t) override {
    unsupported();
  }
  void bias_act_backward_impl(Activation, const Tensor&, const Tensor&, Tensor&, Tensor&) override {
    unsupported();
  }
  void dropout_forward_impl(const DropoutParams&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void dropout_backward_impl(const DropoutParams&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void lstm_forward_impl(const LstmConfig&, LstmMode, LstmIo&) override {
    unsupported();
  }
  void lstm_backward_impl(const LstmConfig&, const LstmIo&, LstmGrads&) override {
    unsupported();
  }
  void conv2d_forward_impl(const Conv2dParams&, const Tensor&, const Tensor&, const Tensor&,
                           Tensor&) override {
    unsupported();
  }
  void conv2d_backward_impl(const Conv2dParams&, const Tensor&, const Tensor&, const Tensor&,
                            Tensor&, Tensor&, Tensor&) override {
    unsupported();
  }
  void pool2d_forward_impl(const Pool2dParams&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void pool2d_backward_impl(const Pool2dParams&, const Tensor&, const Tensor&, const Tensor&,
                            Tensor&) override {
    unsupported();
  }
  void batchnorm_forward_impl(const BatchNormParams&, const Tensor&, const Tensor&, const Tensor&,
                              Tensor&, Tensor&, Tensor&, Tensor&, Tensor&) override {
    unsupported();
  }
  void batchnorm_backward_impl(const BatchNormParams&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, const Tensor&, Tensor&, Tensor&, Tensor&) override {
    unsupported();
  }
  void embedding_forward_impl(const Tensor&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void embedding_backward_impl(const Tensor&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void dot_interaction_forward_impl(const Tensor&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void dot_interaction_backward_impl(const Tensor&, const Tensor&, const Tensor&, Tensor&,
                                     Tensor&) override {
    unsupported();
  }
  void stft_frames_impl(const Tensor&, const Tensor&, int64_t, Tensor&) override {
    unsupported();
  }
  void power_spectrum_impl(const Tensor&, Tensor&) override {
    unsupported();
  }
  void log_mel_transpose_impl(const Tensor&, float, Tensor&) override {
    unsupported();
  }
  void bce_with_logits_impl(const Tensor&, const Tensor&, float, Tensor&, Tensor&) override {
    unsupported();
  }
  void softmax_xent_impl(const Tensor&, const Tensor&, float, Tensor&, Tensor&) override {
    unsupported();
  }
  void sgd_update_impl(const math::SgdParams&, Tensor&, const Tensor&, Tensor&) override {
    unsupported();
  }
  void adam_update_impl(const math::AdamParams&, Tensor&, const Tensor&, Tensor&,
                        Tensor&) override {
    unsupported();
  }

 private:
  Fault fault_;
};

// Runs fn() with GoogleTest's failure reporting captured; succeeds when at least one of the
// failures it produced contains `needle` (a fault usually trips more than one check).
template <typename Fn>
::testing::AssertionResult fails_with(Fn&& fn, const std::string& needle) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    fn();
  }
  std::string seen;
  for (int i = 0; i < results.size(); ++i) {
    const std::string msg = results.GetTestPartResult(i).message();
    if (results.GetTestPartResult(i).failed() && msg.find(needle) != std::string::npos)
      return ::testing::AssertionSuccess();
    seen += "\n  " + msg;
  }
  return ::testing::AssertionFailure()
         << results.size() << " failure(s), none containing '" << needle << "':" << seen;
}

void fill_parity_with(Fault f) {
  FaultyBackend faulty(f);
  expect_parity(reference_backend(), faulty, {out("t", {3, 5})},
                [](Backend& be, std::vector<Tensor>& t) { be.fill(t[0], 2.f); }, {1e-6, 1e-6});
}

TEST(ParityHarness, CatchesWritePastTheEnd) {
  EXPECT_TRUE(
      fails_with([] { fill_parity_with(Fault::WriteOnePastEnd); }, "1 element(s) past its end"));
}

TEST(ParityHarness, CatchesWriteBeforeTheStart) {
  EXPECT_TRUE(fails_with([] { fill_parity_with(Fault::WriteOneBeforeStart); },
                         "1 element(s) before its start"));
}

TEST(ParityHarness, CatchesUnwrittenOutput) {
  EXPECT_TRUE(
      fails_with([] { fill_parity_with(Fault::LeaveLastUnwritten); }, "'never written' pattern"));
}

TEST(ParityHarness, CatchesValueBeyondTolerance) {
  // One element one ulp above 2.0 (2.4e-7 off): caught at zero tolerance, accepted at abs 1e-6.
  FaultyBackend faulty(Fault::OffByOneUlp);
  auto run = [&](Tolerance tol) {
    expect_parity(
        reference_backend(), faulty, {out("t", {3, 5})},
        [](Backend& be, std::vector<Tensor>& t) { be.fill(t[0], 2.f); }, tol);
  };
  EXPECT_TRUE(fails_with([&] { run({0.0, 0.0}); }, "1 of 15 elements"));
  run({1e-6, 0.0});
}

TEST(ParityHarness, CatchesModifiedInput) {
  FaultyBackend faulty(Fault::ScribbleInput);
  Rng rng(1);
  Tensor x = random_f32({4, 3}, rng);
  Tensor b = random_f32({3}, rng);
  EXPECT_TRUE(fails_with(
      [&] {
        run_guarded(faulty, {in("x", x), in("bias", b), out("y", {4, 3})},
                    [](Backend& be, std::vector<Tensor>& t) {
                      be.bias_act_forward(Activation::Tanh, t[0], t[1], t[2]);
                    });
      },
      "modified its input 'x'"));
}

TEST(ParityHarness, CatchesReadPastTheEnd) {
  // The f32 guard is a NaN: an op reading past its input's end yields a non-finite output.
  FaultyBackend faulty(Fault::ReadOnePastEnd);
  Rng rng(2);
  Tensor x = random_f32({4, 3}, rng);
  Tensor b = random_f32({3}, rng);
  EXPECT_TRUE(fails_with(
      [&] {
        expect_parity(reference_backend(), faulty, {in("x", x), in("bias", b), out("y", {4, 3})},
                      [](Backend& be, std::vector<Tensor>& t) {
                        be.bias_act_forward(Activation::Tanh, t[0], t[1], t[2]);
                      },
                      {1e-6, 1e-5});
      },
      "are NaN/Inf"));
}

TEST(ParityBackends, CudaIsAlwaysListedAndEnvAddsSpecs) {
  const char* saved = std::getenv(kParityBackendsEnv);
  const std::string saved_value = saved ? saved : "";
  setenv(kParityBackendsEnv, " cuda-emu, ,cuda,extra ", 1);
  EXPECT_EQ(parity_backend_specs(), (std::vector<std::string>{"cuda", "cuda-emu", "extra"}));
  EXPECT_TRUE(spec_requested_explicitly("cuda-emu"));
  EXPECT_FALSE(spec_requested_explicitly("cuda-e"));
  unsetenv(kParityBackendsEnv);
  EXPECT_EQ(parity_backend_specs(), std::vector<std::string>{"cuda"});
  if (saved) setenv(kParityBackendsEnv, saved_value.c_str(), 1);
  EXPECT_EQ(spec_param_name("cuda-emu"), "cuda_emu");
}

}  // namespace
}  // namespace tessera::test
