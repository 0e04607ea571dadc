#pragma once
// Test helpers shared by the parity, gradient-check and host-backend suites:
//   - seeded random host tensors (f32 values, i64 ids, i32 class labels);
//   - comparisons that report the worst element: all_close (max abs / rel error against a
//     per-op Tolerance), bitwise_equal, all_finite (NaN/Inf);
//   - run_guarded: runs an op on any backend with every tensor placed inside a larger allocation
//     whose extra rows hold a sentinel, then asserts the sentinel is intact (out-of-bounds writes),
//     that inputs were not modified, and hands back the outputs on the host. Outputs the op must
//     overwrite start as a NaN pattern, so an element the op forgot to write fails all_finite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "host/backend/backend.h"

namespace tessera::test {

// A stable seed from a test-case name (FNV-1a), so each case draws its own reproducible inputs.
inline uint64_t seed_from(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

// ---- random inputs -----------------------------------------------------------------------------

// One seeded generator per test case, so every failure is reproducible from the test's name.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen_); }
  int64_t index(int64_t n) { return std::uniform_int_distribution<int64_t>(0, n - 1)(gen_); }
  uint64_t bits() { return gen_(); }

 private:
  std::mt19937_64 gen_;
};

inline Tensor random_f32(const Shape& shape, Rng& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::host(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(lo, hi);
  return t;
}

// ids i64 [n], uniform in [0, vocab).
inline Tensor random_ids(int64_t n, int64_t vocab, Rng& rng) {
  Tensor t = Tensor::host({n}, DType::I64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = rng.index(vocab);
  return t;
}

// labels i32 [n], uniform in [0, classes).
inline Tensor random_labels(int64_t n, int32_t classes, Rng& rng) {
  Tensor t = Tensor::host({n}, DType::I32);
  int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(rng.index(classes));
  return t;
}

inline Tensor host_f32(const Shape& shape, float value) {
  Tensor t = Tensor::host(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = value;
  return t;
}

// A host copy that owns its storage (so later writes through a view do not change it).
inline Tensor clone_host(const Tensor& t) {
  Tensor c = Tensor::host(t.shape(), t.dtype());
  if (t.bytes()) std::memcpy(c.raw(), t.raw(), t.bytes());
  return c;
}

// ---- comparisons -------------------------------------------------------------------------------

// An element passes when |got - ref| <= abs + rel * |ref|.
struct Tolerance {
  double abs = 0.0;
  double rel = 0.0;
};

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Multi-dimensional index of flat element i, for messages: "[2, 17]".
inline std::string index_str(const Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 0) break;
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return shape_str(idx);
}

inline ::testing::AssertionResult all_close(const Tensor& ref, const Tensor& got, Tolerance tol,
                                            const std::string& what) {
  if (ref.shape() != got.shape() || ref.dtype() != DType::F32 || got.dtype() != DType::F32)
    return ::testing::AssertionFailure()
           << what << ": compared " << ref.describe() << " with " << got.describe();
  const float* r = ref.data<float>();
  const float* g = got.data<float>();
  double max_abs = 0, max_rel = 0;
  int64_t bad = 0, first_bad = -1, nonfinite = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double diff = std::fabs(static_cast<double>(g[i]) - r[i]);
    const bool same_nonfinite = !std::isfinite(r[i]) && f32_bits(r[i]) == f32_bits(g[i]);
    // NaN diffs compare false, so they fail here and are counted apart from the maxima.
    const bool ok = same_nonfinite || diff <= tol.abs + tol.rel * std::fabs(r[i]);
    if (std::isfinite(diff)) {
      max_abs = std::max(max_abs, diff);
      if (r[i] != 0.f) max_rel = std::max(max_rel, diff / std::fabs(r[i]));
    } else if (!same_nonfinite) {
      ++nonfinite;
    }
    if (!ok) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << ref.numel() << " elements of "
         << shape_str(ref.shape()) << " differ beyond abs " << tol.abs << " + rel " << tol.rel
         << "; max abs err " << max_abs << ", max rel err " << max_rel << "; first at "
         << index_str(ref.shape(), first_bad) << ": reference " << r[first_bad] << ", got "
         << g[first_bad]
         << (nonfinite ? "; " + std::to_string(nonfinite) + " NaN/Inf mismatches" : "");
}

// Same shape, dtype and bytes (f32 compared by bit pattern, so -0 vs 0 and NaN payloads count).
inline ::testing::AssertionResult bitwise_equal(const Tensor& ref, const Tensor& got,
                                                const std::string& what) {
  if (ref.shape() != got.shape() || ref.dtype() != got.dtype())
    return ::testing::AssertionFailure()
           << what << ": compared " << ref.describe() << " with " << got.describe();
  const size_t es = dtype_size(ref.dtype());
  const auto* r = static_cast<const unsigned char*>(ref.raw());
  const auto* g = static_cast<const unsigned char*>(got.raw());
  for (int64_t i = 0; i < ref.numel(); ++i) {
    if (std::memcmp(r + i * es, g + i * es, es) != 0) {
      std::ostringstream o;
      if (ref.dtype() == DType::F32)
        o << ref.data<float>()[i] << " vs " << got.data<float>()[i];
      else if (ref.dtype() == DType::I32)
        o << ref.data<int32_t>()[i] << " vs " << got.data<int32_t>()[i];
      else
        o << ref.data<int64_t>()[i] << " vs " << got.data<int64_t>()[i];
      return ::testing::AssertionFailure()
             << what << ": first difference at " << index_str(ref.shape(), i) << ": " << o.str();
    }
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult all_finite(const Tensor& t, const std::string& what) {
  if (t.dtype() != DType::F32) return ::testing::AssertionSuccess();
  const float* p = t.data<float>();
  int64_t bad = 0, first_bad = -1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(p[i])) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << t.numel() << " elements are NaN/Inf, first at "
         << index_str(t.shape(), first_bad) << " = " << p[first_bad]
         << (f32_bits(p[first_bad]) == 0x7FC0DEADu ? " (the 'never written' pattern)" : "");
}

// ---- errors ------------------------------------------------------------------------------------

// What a call threw: a tessera::Error (kind + message), something else, or nothing.
struct CaughtError {
  bool threw_error = false;  // a tessera::Error
  ErrorKind kind = ErrorKind::Internal;
  std::string message;       // Error::what(), or the foreign exception's what()
  bool threw_other = false;  // any other exception (a bug: library code throws tessera::Error)
};

template <typename Fn>
CaughtError catch_error(Fn&& fn) {
  CaughtError c;
  try {
    fn();
  } catch (const Error& e) {
    c.threw_error = true;
    c.kind = e.kind();
    c.message = e.what();
  } catch (const std::exception& e) {
    c.threw_other = true;
    c.message = e.what();
  }
  return c;
}

// fn() throws tessera::Error of `kind` whose message contains every string in `needles`.
template <typename Fn>
::testing::AssertionResult throws_error(Fn&& fn, ErrorKind kind,
                                        const std::vector<std::string>& needles = {}) {
  CaughtError c = catch_error(std::forward<Fn>(fn));
  if (c.threw_other)
    return ::testing::AssertionFailure() << "threw a non-tessera exception: " << c.message;
  if (!c.threw_error) return ::testing::AssertionFailure() << "did not throw";
  if (c.kind != kind)
    return ::testing::AssertionFailure() << "threw " << error_kind_name(c.kind) << " instead of "
                                         << error_kind_name(kind) << ": " << c.message;
  for (const std::string& n : needles) {
    if (c.message.find(n) == std::string::npos)
      return ::testing::AssertionFailure() << "message lacks '" << n << "': " << c.message;
  }
  return ::testing::AssertionSuccess() << c.message;
}

// ---- guarded execution -------------------------------------------------------------------------

// Sentinels. The f32 guard is a NaN with a payload, so an op that reads past an input's end
// poisons its output (caught by all_finite) as well as being caught when it writes there.
inline constexpr uint32_t kGuardF32Bits = 0x7FA5A5A5u;
inline constexpr uint32_t kUnwrittenF32Bits = 0x7FC0DEADu;  // interior of Out arguments
inline constexpr int32_t kGuardI32 = 0x7A5A5A5A;            // out of range as a label
inline constexpr int64_t kGuardI64 = 0x7A5A5A5A5A5A5A5All;  // out of range as an id
inline constexpr int64_t kGuardMinElems = 16;  // at least this many guard elements each side

enum class ArgRole {
  In,     // read only: must be bit-for-bit unchanged afterwards
  Out,    // overwritten: starts as the 'never written' NaN pattern
  InOut,  // read and written (gemm C with beta != 0, accumulated gradients, optimizer state)
};

struct OpArg {
  std::string name;
  Tensor host;  // the initial value (host); undefined -> the op gets an undefined tensor
  ArgRole role = ArgRole::In;
  std::optional<Tolerance> tol;  // this output's parity tolerance, when not the op's default

  OpArg with_tol(Tolerance t) && {
    tol = t;
    return std::move(*this);
  }
};

inline OpArg in(std::string name, Tensor t) {
  return {std::move(name), std::move(t), ArgRole::In, std::nullopt};
}
inline OpArg out(std::string name, const Shape& shape) {
  return {std::move(name), Tensor::host(shape, DType::F32), ArgRole::Out, std::nullopt};
}
inline OpArg inout(std::string name, Tensor t) {
  return {std::move(name), std::move(t), ArgRole::InOut, std::nullopt};
}
// An argument the op receives as an undefined tensor (no bias, no velocity).
inline OpArg absent(std::string name) {
  return {std::move(name), Tensor(), ArgRole::In, std::nullopt};
}

// Rows of guard on each side of a tensor whose rows hold `row_elems` elements.
inline int64_t guard_rows(int64_t row_elems) {
  if (row_elems <= 0) return 1;
  return std::max<int64_t>(1, (kGuardMinElems + row_elems - 1) / row_elems);
}

inline void fill_guard(Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::F32:
        t.data<float>()[i] = f32_from_bits(kGuardF32Bits);
        break;
      case DType::I32:
        t.data<int32_t>()[i] = kGuardI32;
        break;
      case DType::I64:
        t.data<int64_t>()[i] = kGuardI64;
        break;
    }
  }
}

inline bool is_guard(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32:
      return f32_bits(t.data<float>()[i]) == kGuardF32Bits;
    case DType::I32:
      return t.data<int32_t>()[i] == kGuardI32;
    case DType::I64:
      return t.data<int64_t>()[i] == kGuardI64;
  }
  return false;
}

// One argument placed on a backend: `padded` holds guard rows, then the tensor, then guard rows.
struct GuardedTensor {
  Tensor padded;  // on the backend, shape [rows + 2*g, ...]
  Tensor view;    // the argument itself: padded.rows(g, g + rows)
  int64_t g = 0;
};

inline GuardedTensor place_guarded(Backend& be, const OpArg& arg) {
  GuardedTensor gt;
  if (!arg.host.defined()) return gt;
  const Tensor& h = arg.host;
  // Rank-0 tensors are guarded as [1].
  const Tensor h1 = h.rank() == 0 ? h.reshape({1}) : h;
  const int64_t rows = h1.dim(0);
  const int64_t row_elems =
      rows ? h1.numel() / rows : shape_numel(Shape(h1.shape().begin() + 1, h1.shape().end()));
  gt.g = guard_rows(row_elems);
  Shape padded_shape = h1.shape();
  padded_shape[0] = rows + 2 * gt.g;
  Tensor image = Tensor::host(padded_shape, h.dtype());
  fill_guard(image);
  Tensor middle = image.rows(gt.g, gt.g + rows);
  if (arg.role == ArgRole::Out && h.dtype() == DType::F32) {
    for (int64_t i = 0; i < middle.numel(); ++i)
      middle.data<float>()[i] = f32_from_bits(kUnwrittenF32Bits);
  } else if (h.bytes()) {
    std::memcpy(middle.raw(), h1.raw(), h1.bytes());
  }
  gt.padded = be.to_device(image);
  gt.view = gt.padded.rows(gt.g, gt.g + rows).reshape(h.shape());
  return gt;
}

using OpFn = std::function<void(Backend&, std::vector<Tensor>&)>;

// Runs `op` on `be` with every argument guarded (see the top of this file) and returns each
// argument's final value on the host, in order (undefined for undefined arguments). Guard damage
// and modified inputs are reported as test failures naming the backend, argument and element;
// exceptions from `op` propagate (callers test error behaviour through them).
inline std::vector<Tensor> run_guarded(Backend& be, const std::vector<OpArg>& args,
                                       const OpFn& op) {
  std::vector<GuardedTensor> placed;
  std::vector<Tensor> views;
  for (const OpArg& a : args) {
    placed.push_back(place_guarded(be, a));
    views.push_back(placed.back().view);
  }
  op(be, views);
  be.synchronize();
  std::vector<Tensor> results;
  for (size_t k = 0; k < args.size(); ++k) {
    const GuardedTensor& gt = placed[k];
    if (!gt.padded.defined()) {
      results.emplace_back();
      continue;
    }
    Tensor image = be.to_host(gt.padded);
    const int64_t rows = image.dim(0) - 2 * gt.g;
    const int64_t row_elems = image.dim(0) ? image.numel() / image.dim(0) : 0;
    const int64_t lead = gt.g * row_elems;
    const int64_t tail_begin = (gt.g + rows) * row_elems;
    int64_t damaged = 0, first = -1;
    for (int64_t i = 0; i < image.numel(); ++i) {
      if ((i < lead || i >= tail_begin) && !is_guard(image, i)) {
        if (first < 0) first = i;
        ++damaged;
      }
    }
    if (damaged) {
      const bool before = first < lead;
      ADD_FAILURE() << "backend " << be.name() << ": " << damaged << " guard element(s) around '"
                    << args[k].name << "' " << args[k].host.describe()
                    << " were overwritten; first "
                    << (before ? lead - first : first - tail_begin + 1) << " element(s) "
                    << (before ? "before its start" : "past its end");
    }
    Tensor result = clone_host(image.rows(gt.g, gt.g + rows).reshape(args[k].host.shape()));
    if (args[k].role == ArgRole::In) {
      EXPECT_TRUE(
          bitwise_equal(args[k].host, result,
                        "backend " + be.name() + " modified its input '" + args[k].name + "'"));
    }
    results.push_back(result);
  }
  return results;
}

// Runs the same guarded op on the reference backend and on `dut`, and checks every output:
// finite on both (unless `expect_finite` is false) and within its OpArg::tol, or else `tol`, of
// the reference.
// Returns {reference results, dut results} for extra, op-specific checks.
struct ParityResults {
  std::vector<Tensor> ref;
  std::vector<Tensor> got;
};
inline ParityResults expect_parity(Backend& ref_be, Backend& dut, const std::vector<OpArg>& args,
                                   const OpFn& op, Tolerance tol, bool expect_finite = true) {
  ParityResults r;
  r.ref = run_guarded(ref_be, args, op);
  r.got = run_guarded(dut, args, op);
  for (size_t k = 0; k < args.size(); ++k) {
    if (args[k].role == ArgRole::In || !args[k].host.defined()) continue;
    const std::string what = "output '" + args[k].name + "'";
    if (expect_finite) {
      EXPECT_TRUE(all_finite(r.ref[k], what + " on the reference backend " + ref_be.name()));
      EXPECT_TRUE(all_finite(r.got[k], what + " on " + dut.name()));
    }
    EXPECT_TRUE(all_close(r.ref[k], r.got[k], args[k].tol.value_or(tol),
                          what + " " + dut.name() + " vs reference"));
  }
  return r;
}

}  // namespace tessera::test
