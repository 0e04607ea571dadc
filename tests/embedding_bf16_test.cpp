// bf16 and f16 embedding tables on the host: the conversions (against the CPU's own F16C and
// AVX-512 BF16 instructions where it has them, and hand-worked cases), lookups that equal the f32
// lookups of the rounded table bit for bit, updates of every sparse optimizer that equal the f32
// update rounded to the storage type (state in f32, equal exactly), stochastic rounding (a
// neighbour each time, unbiased, reproducible from the seed), and tables in and out as f32
// (checkpoints, single tables at odd element offsets).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "embeddings/collection.h"
#include "embeddings/remote_shard.h"
#include "embeddings/sharding.h"
#include "embeddings/table_rows.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TESSERA_TEST_X86 1
#else
#define TESSERA_TEST_X86 0
#endif

namespace tessera::emb {
namespace {

#if TESSERA_TEST_X86
// The CPU's own f16 -> f32 (VCVTPH2PS), for a CPU with F16C.
__attribute__((target("f16c"))) float cpu_f16_to_f32(uint16_t h) {
  return _cvtsh_ss(h);
}
bool cpu_has_f16c() {
  return __builtin_cpu_supports("f16c");
}
#else
float cpu_f16_to_f32(uint16_t) {
  return 0.f;
}
bool cpu_has_f16c() {
  return false;
}
#endif

using Ids = std::vector<std::vector<std::vector<int64_t>>>;
using Wts = std::vector<std::vector<std::vector<float>>>;

std::vector<float> to_vec(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

// Floats that exercise the rounding: random magnitudes over f32's range and f16's, ties, values
// next to the overflow limits, subnormals of both types, zeros, infinities and NaNs.
std::vector<float> rounding_cases(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<float> v = {0.f,      -0.f,          1.f,        1.00390625f,   1.01171875f,
                          65504.f,  65519.f,       65520.f,    -65520.f,      6.1035156e-5f,
                          3.0e-8f,  2.9802322e-8f, 5.96e-8f,   1e-40f,        -1e-40f,
                          INFINITY, -INFINITY,     3.3895e38f, 1.0009765625f, 1.00048828125f};
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_real_distribution<float> exp(-30.f, 17.f);
  while (v.size() < n) {
    if (v.size() % 2) {
      uint32_t u = bits(gen);
      if ((u & 0x7F800000u) == 0x7F800000u) u &= ~0x00400000u;  // keep NaNs rare but present
      v.push_back(f32_from_bits(u));
    } else {
      const float m = std::uniform_real_distribution<float>(-1.f, 1.f)(gen);
      v.push_back(m * std::exp2(exp(gen)));
    }
  }
  return v;
}

TEST(TableDType, Bf16HandCasesAndRoundTrip) {
  EXPECT_EQ(f32_to_bf16(1.f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3F80);  // 1 + 2^-8: a tie, to the even 1
  EXPECT_EQ(f32_to_bf16(1.01171875f), 0x3F82);  // 1 + 3 * 2^-8: a tie, to the even 1 + 2^-6
  EXPECT_EQ(f32_to_bf16(1.0078125f + 1e-6f), 0x3F81);
  EXPECT_EQ(f32_to_bf16(-2.f), 0xC000);
  EXPECT_EQ(f32_to_bf16(1e-40f), 0x0000);  // a subnormal becomes zero, as VCVTNE2PS2BF16 does
  EXPECT_EQ(f32_to_bf16(-1e-40f), 0x8000);
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(f32_to_bf16(3.4e38f), 0x7F80);  // rounds past the largest bf16
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  // Every finite, non-subnormal bf16 survives widening and rounding back.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const uint32_t e = (h >> 7) & 0xFFu;
    if (e == 0xFF || e == 0) continue;
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(b)), b) << std::hex << h;
  }
}

TEST(TableDType, F16AgreesWithTheCpuConversionEverywhere) {
  // Every f16 widens to the value F16C gives, and rounds back to itself.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float f = f16_to_f32(b);
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), b) << std::hex << h;
    if (cpu_has_f16c()) ASSERT_EQ(f32_bits(cpu_f16_to_f32(b)), f32_bits(f)) << std::hex << h;
  }
  EXPECT_EQ(f32_to_f16(65504.f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.f), 0x7C00);  // the tie above the largest half goes to infinity
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);
  EXPECT_EQ(f32_to_f16(2.9802322e-8f), 0x0000);  // half the smallest subnormal: tie to even 0
  EXPECT_EQ(f32_to_f16(3.0e-8f), 0x0001);
  // The vector path (VCVTPS2PH, IEEE) and the scalar one agree on any input.
  const std::vector<float> v = rounding_cases(20000, 5);
  std::vector<uint16_t> vec(v.size()), scalar(v.size());
  set_vector_rounding(true);
  narrow_row(TableDType::F16, v.data(), vec.data(), static_cast<int64_t>(v.size()));
  set_vector_rounding(false);
  narrow_row(TableDType::F16, v.data(), scalar.data(), static_cast<int64_t>(v.size()));
  set_vector_rounding(true);
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(vec[i], scalar[i]) << i << " " << v[i];
    ASSERT_EQ(scalar[i], f32_to_f16(v[i])) << i;
  }
}

TEST(TableDType, Bf16VectorPathEqualsTheScalarOne) {
  if (!cpu_has_avx512_bf16()) {
    std::cout << "this CPU has no AVX-512 BF16: only the scalar path runs\n";
  }
  const std::vector<float> v = rounding_cases(20011, 7);  // odd: the tail loop runs too
  std::vector<uint16_t> vec(v.size()), scalar(v.size());
  set_vector_rounding(true);
  narrow_row(TableDType::BF16, v.data(), vec.data(), static_cast<int64_t>(v.size()));
  set_vector_rounding(false);
  narrow_row(TableDType::BF16, v.data(), scalar.data(), static_cast<int64_t>(v.size()));
  set_vector_rounding(true);
  for (size_t i = 0; i < v.size(); ++i) {
    const bool nan = std::isnan(v[i]);
    if (nan) {
      ASSERT_TRUE(std::isnan(bf16_to_f32(vec[i])) && std::isnan(bf16_to_f32(scalar[i]))) << i;
      continue;
    }
    ASSERT_EQ(vec[i], scalar[i]) << i << " " << v[i];
  }
}

// The vector widening (every 16-bit pattern, NaN payloads included) and stochastic rounding
// (AVX-512, on CPUs that have it) give the scalar functions' bits: host and device tables round
// identically whichever path the host takes. Odd offsets and counts run the tail loops too.
TEST(TableDType, VectorWideningAndStochasticRoundingEqualTheScalarOnes) {
  std::vector<uint16_t> all(0x10001);
  for (size_t h = 0; h < all.size(); ++h) all[h] = static_cast<uint16_t>(h);
  const std::vector<float> v = rounding_cases(20011, 9);
  for (TableDType d : {TableDType::BF16, TableDType::F16}) {
    std::vector<float> wide_vec(all.size()), wide_scalar(all.size());
    std::vector<uint16_t> sr_vec(v.size()), sr_scalar(v.size());
    for (bool vector : {true, false}) {
      set_vector_rounding(vector);
      widen_row(d, all.data() + 1, (vector ? wide_vec : wide_scalar).data() + 1, 0x10000);
      narrow_row_stochastic(d, v.data() + 1, (vector ? sr_vec : sr_scalar).data() + 1,
                            static_cast<int64_t>(v.size()) - 1, 0xC0FFEEull, 7);
    }
    set_vector_rounding(true);
    for (size_t h = 1; h < all.size(); ++h) {
      ASSERT_EQ(f32_bits(wide_vec[h]), f32_bits(wide_scalar[h])) << std::hex << all[h];
      ASSERT_EQ(f32_bits(wide_scalar[h]), f32_bits(half_to_f32(d, all[h]))) << std::hex << all[h];
    }
    int64_t up = 0;
    for (size_t i = 1; i < v.size(); ++i) {
      ASSERT_EQ(sr_vec[i], sr_scalar[i]) << table_dtype_name(d) << " " << i << " " << v[i];
      ASSERT_EQ(sr_scalar[i],
                round_to_half(d, v[i], true, 0xC0FFEEull, static_cast<int64_t>(i) + 6));
      up += sr_scalar[i] != f32_to_half(d, v[i]);
    }
    EXPECT_GT(up, 1000) << "stochastic rounding never left the nearest value";
  }
}

// SGD's one-pass step on a 16-bit row equals widening, w + a * x in f32 (the product rounded
// first) and rounding back, to nearest even and stochastically; where the CPU has no vector path
// it reports so and leaves the row alone.
TEST(TableDType, AxpyHalfRowEqualsWidenStepNarrow) {
  const std::vector<float> x = rounding_cases(4099, 11);
  std::mt19937 gen(12);
  for (TableDType d : {TableDType::BF16, TableDType::F16})
    for (bool sr : {false, true}) {
      std::vector<uint16_t> w(x.size());
      for (uint16_t& h : w)
        h = f32_to_half(d, std::uniform_real_distribution<float>(-2.f, 2.f)(gen));
      w[5] = f32_to_half(d, 1e-6f);  // an f16 subnormal result: the scalar lanes of the f16 path
      std::vector<uint16_t> got = w;
      const float a = -0.37f;
      const int64_t n = static_cast<int64_t>(x.size()) - 3;  // from element 3: a masked tail
      if (!axpy_half_row(d, got.data() + 3, a, x.data() + 3, n, sr, 77, 1003)) {
        ASSERT_EQ(got, w);
        std::cout << "no vector path on this CPU: apply_row_at widens, steps and narrows\n";
        continue;
      }
      for (int64_t i = 0; i < 3; ++i)
        ASSERT_EQ(got[static_cast<size_t>(i)], w[static_cast<size_t>(i)]);
      for (int64_t i = 0; i < n; ++i) {
        const size_t k = static_cast<size_t>(i + 3);
        volatile float prod = a * x[k];  // volatile: no FMA in this reference either
        const float v = half_to_f32(d, w[k]) + prod;
        const uint16_t want = round_to_half(d, v, sr, 77, 1003 + i);
        if (std::isnan(v)) {
          ASSERT_TRUE(std::isnan(half_to_f32(d, got[k]))) << i;
          continue;
        }
        ASSERT_EQ(got[k], want) << table_dtype_name(d) << (sr ? " stochastic " : " nearest ") << i;
      }
    }
}

// Stochastic rounding gives one of the two neighbours, the upper one with probability equal to
// the distance from the lower over the gap, and the same bits for the same stream and element.
TEST(TableDType, StochasticRoundingIsUnbiasedAndReproducible) {
  for (TableDType d : {TableDType::BF16, TableDType::F16}) {
    const float lo = d == TableDType::BF16 ? 1.f : 1.f;
    const float gap = d == TableDType::BF16 ? 0.0078125f : 0.0009765625f;
    for (float frac : {0.25f, 0.5f, 0.875f}) {
      const float x = lo + frac * gap;
      const int n = 40000;
      int up = 0;
      for (int i = 0; i < n; ++i) {
        const float r = half_to_f32(d, round_to_half(d, x, true, 99, i));
        ASSERT_TRUE(r == lo || r == lo + gap) << r;
        up += r != lo;
        ASSERT_EQ(round_to_half(d, x, true, 99, i), round_to_half(d, x, true, 99, i));
      }
      EXPECT_NEAR(static_cast<double>(up) / n, frac, 0.01) << table_dtype_name(d);
    }
    // A value the type holds exactly never moves; a subnormal half rounds between its neighbours.
    for (int i = 0; i < 1000; ++i)
      EXPECT_EQ(half_to_f32(d, round_to_half(d, 0.75f, true, 3, i)), 0.75f);
  }
  const float sub = 1.5f * 5.9604645e-8f;  // between f16 subnormals 1 and 2
  int ones = 0;
  for (int i = 0; i < 20000; ++i) {
    const uint16_t h = round_to_half(TableDType::F16, sub, true, 4, i);
    ASSERT_TRUE(h == 1 || h == 2) << h;
    ones += h == 1;
  }
  EXPECT_NEAR(ones / 20000.0, 0.5, 0.02);
}

std::vector<TableSpec> specs() {
  // An odd element count (table b starts at an odd offset in the packed buffer); three tables,
  // so a large batch takes the parallel per-row path (tables < 2 x threads) and a small one the
  // fused per-table path.
  return {{"a", 7, 3, Pooling::Sum}, {"b", 11, 5, Pooling::Mean}, {"wide", 300, 64, Pooling::Sum}};
}

Ids random_ids(const std::vector<TableSpec>& sp, int64_t batch, int max_len, std::mt19937& gen) {
  Ids ids(sp.size(), std::vector<std::vector<int64_t>>(static_cast<size_t>(batch)));
  for (size_t t = 0; t < sp.size(); ++t)
    for (auto& bag : ids[t]) {
      const int len = std::uniform_int_distribution<int>(0, max_len)(gen);
      for (int k = 0; k < len; ++k)
        bag.push_back(std::uniform_int_distribution<int64_t>(0, sp[t].rows - 1)(gen));
    }
  return ids;
}
Wts random_weights(const Ids& ids, std::mt19937& gen) {
  Wts w(ids.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    w[t].resize(ids[t].size());
    for (size_t s = 0; s < ids[t].size(); ++s)
      for (size_t k = 0; k < ids[t][s].size(); ++k)
        w[t][s].push_back(std::uniform_real_distribution<float>(-1.5f, 1.5f)(gen));
  }
  return w;
}
Tensor random_dout(int64_t B, int64_t out_dim, std::mt19937& gen) {
  Tensor d = Tensor::host({B, out_dim});
  for (int64_t i = 0; i < d.numel(); ++i)
    d.data<float>()[i] = std::uniform_real_distribution<float>(-1.f, 1.f)(gen);
  return d;
}

CollectionOptions options(SparseOptimizer kind, TableDType d, bool stochastic = false) {
  CollectionOptions o;
  o.optimizer.kind = kind;
  o.optimizer.lr = kind == SparseOptimizer::Sgd ? 0.5f : 0.05f;
  o.optimizer.initial_accumulator = 0.1f;
  o.init_scale = 0.5f;
  o.seed = 17;
  o.table_dtype = d;
  o.stochastic_rounding = stochastic;
  return o;
}

// The storage type's value of each f32 (to nearest even), widened.
std::vector<float> rounded(const std::vector<float>& v, TableDType d) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = half_to_f32(d, f32_to_half(d, v[i]));
  return r;
}

struct ParityCase {
  SparseOptimizer kind;
  TableDType dtype;
};
class HalfTableParity : public ::testing::TestWithParam<ParityCase> {};

// A 16-bit collection and an f32 one holding the same (widened) values: lookups and weight
// gradients equal bit for bit; each step's f32 update, rounded, is the 16-bit table's; the f32
// optimizer state is the same exactly. Small batches (one thread, the fused per-table path) and
// large ones (the parallel paths), fused and unfused.
TEST_P(HalfTableParity, LookupsAndUpdatesEqualTheF32OnesRounded) {
  const auto [kind, d] = GetParam();
  auto backend = make_host_backend();
  std::mt19937 gen(static_cast<uint32_t>(31 + static_cast<int>(kind) * 3 + static_cast<int>(d)));
  EmbeddingCollection half(specs(), *backend, options(kind, d));
  EmbeddingCollection ref(specs(), *backend, options(kind, TableDType::F32));
  const TableLayout& L = half.layout();
  int64_t changed = 0;
  for (int step = 1; step <= 6; ++step) {
    ref.set_weights(half.weights_to_host());  // the rounded table, in f32
    const std::vector<float> before = to_vec(ref.weights_to_host());
    const int64_t B = step <= 3 ? 9 : 1500;
    const Ids ids = random_ids(specs(), B, step % 2 ? 5 : 12, gen);
    const Wts wts = step == 2 ? Wts{} : random_weights(ids, gen);
    Tensor oh, orf;
    half.forward(make_host_bags(ids, wts), oh);
    ref.forward(make_host_bags(ids, wts), orf);
    const std::vector<float> vh = to_vec(oh), vr = to_vec(orf);
    for (size_t i = 0; i < vh.size(); ++i) ASSERT_EQ(f32_bits(vh[i]), f32_bits(vr[i])) << i;
    const Tensor dout = random_dout(B, L.out_dim(), gen);
    const std::vector<float> gh = to_vec(half.weight_grad(dout)),
                             gr = to_vec(ref.weight_grad(dout));
    for (size_t i = 0; i < gh.size(); ++i) ASSERT_EQ(f32_bits(gh[i]), f32_bits(gr[i])) << i;
    if (step % 3 == 0) {
      half.apply(half.backward(dout));
      ref.apply(ref.backward(dout));
    } else {
      half.backward_and_update(dout);
      ref.backward_and_update(dout);
    }
    const std::vector<float> want = rounded(to_vec(ref.weights_to_host()), d);
    const std::vector<float> got = to_vec(half.weights_to_host());
    for (size_t e = 0; e < want.size(); ++e) {
      ASSERT_EQ(f32_bits(got[e]), f32_bits(want[e])) << "element " << e << ", step " << step;
      changed += got[e] != before[e];
    }
    for (int k = 0; k < half.storage().num_states(); ++k) {
      const std::vector<float> sh = to_vec(half.state_to_host(k)),
                               sr = to_vec(ref.state_to_host(k));
      for (size_t i = 0; i < sh.size(); ++i) ASSERT_EQ(f32_bits(sh[i]), f32_bits(sr[i])) << i;
    }
  }
  EXPECT_GT(changed, 100) << "the steps changed too few weights to compare";
}

INSTANTIATE_TEST_SUITE_P(
    All, HalfTableParity,
    ::testing::Values(ParityCase{SparseOptimizer::Sgd, TableDType::BF16},
                      ParityCase{SparseOptimizer::Adagrad, TableDType::BF16},
                      ParityCase{SparseOptimizer::RowwiseAdagrad, TableDType::BF16},
                      ParityCase{SparseOptimizer::LazyAdam, TableDType::BF16},
                      ParityCase{SparseOptimizer::Sgd, TableDType::F16},
                      ParityCase{SparseOptimizer::Adagrad, TableDType::F16},
                      ParityCase{SparseOptimizer::RowwiseAdagrad, TableDType::F16},
                      ParityCase{SparseOptimizer::LazyAdam, TableDType::F16}),
    [](const ::testing::TestParamInfo<ParityCase>& i) {
      return std::string(sparse_optimizer_name(i.param.kind)) + "_" +
             table_dtype_name(i.param.dtype);
    });

// Stochastic rounding: every stored value is one of the two neighbours of the f32 update, runs
// with the same seed are identical, and another seed rounds differently.
TEST(HalfTableStochastic, NeighboursOfTheF32UpdateAndReproducible) {
  auto backend = make_host_backend();
  for (TableDType d : {TableDType::BF16, TableDType::F16}) {
    CollectionOptions o = options(SparseOptimizer::Adagrad, d, true);
    EmbeddingCollection a(specs(), *backend, o), b(specs(), *backend, o);
    o.seed = 18;
    EmbeddingCollection other(specs(), *backend, o);
    other.set_weights(a.weights_to_host());
    EmbeddingCollection ref(specs(), *backend, options(SparseOptimizer::Adagrad, TableDType::F32));
    std::mt19937 gen(3);
    int64_t differ = 0, stochastic_up = 0;
    for (int step = 1; step <= 4; ++step) {
      ref.set_weights(a.weights_to_host());
      const Ids ids = random_ids(specs(), 600, 6, gen);
      const Tensor dout = random_dout(600, a.layout().out_dim(), gen);
      for (EmbeddingCollection* e : {&a, &b, &other, &ref}) {
        Tensor out;
        e->forward(make_host_bags(ids), out);
        e->backward_and_update(dout);
      }
      const std::vector<float> wa = to_vec(a.weights_to_host()), wb = to_vec(b.weights_to_host());
      const std::vector<float> wo = to_vec(other.weights_to_host());
      const std::vector<float> wr = to_vec(ref.weights_to_host());
      for (size_t e = 0; e < wa.size(); ++e) {
        ASSERT_EQ(f32_bits(wa[e]), f32_bits(wb[e])) << e;
        const float nearest = half_to_f32(d, f32_to_half(d, wr[e]));
        if (wa[e] != nearest) {
          // The other neighbour: no representable value lies strictly between it and the update.
          const uint16_t h = f32_to_half(d, wa[e]);
          ASSERT_TRUE((wa[e] - wr[e]) * (nearest - wr[e]) <= 0.f) << e;
          ASSERT_EQ(half_to_f32(d, h), wa[e]);
          ++stochastic_up;
        }
        differ += wa[e] != wo[e];
      }
      // The optimizer state stays f32 and follows the same gradients.
      other.restore_training_state(a.training_state());
    }
    EXPECT_GT(stochastic_up, 50) << "stochastic rounding never left the nearest value";
    EXPECT_GT(differ, 50) << "another seed rounded the same way";
  }
}

// Shards store the format they are given: table- and column-wise shards in this process and
// behind a loopback channel (the create request carries the storage type) train a bf16 / f16
// collection exactly as one unsharded collection of the same format does.
TEST(HalfTableShards, ShardedAndRemoteEqualUnsharded) {
  auto backend = make_host_backend();
  std::vector<std::unique_ptr<Backend>> owned;
  std::vector<Backend*> backends;
  for (int k = 0; k < 2; ++k) {
    owned.push_back(make_host_backend());
    backends.push_back(owned.back().get());
  }
  for (TableDType d : {TableDType::BF16, TableDType::F16})
    for (Placement force : {Placement::TableWise, Placement::ColumnWise})
      for (bool remote : {false, true}) {
        const CollectionOptions o = options(SparseOptimizer::Adagrad, d);
        PlannerOptions po;
        po.force_all = true;
        po.force = force;
        const ShardPlan plan =
            plan_shards(specs(), {int64_t{1} << 20, int64_t{1} << 20}, o.optimizer, po);
        auto sharded =
            remote
                ? std::make_unique<ShardedEmbeddingCollection>(
                      specs(), plan,
                      remote_shard_factory([&](int) { return make_loopback_channel(*backend); }), o)
                : std::make_unique<ShardedEmbeddingCollection>(specs(), plan, backends, o);
        EmbeddingCollection single(specs(), *backend, o);
        std::mt19937 gen(12);
        for (int step = 0; step < 3; ++step) {
          const Ids ids = random_ids(specs(), 40, 5, gen);
          Tensor os, ou;
          sharded->forward(make_host_bags(ids), os);
          single.forward(make_host_bags(ids), ou);
          const Tensor dout = random_dout(40, single.layout().out_dim(), gen);
          sharded->backward_and_update(dout);
          single.backward_and_update(dout);
        }
        const std::vector<float> ws = to_vec(sharded->weights_to_host());
        const std::vector<float> wu = to_vec(single.weights_to_host());
        ASSERT_EQ(ws, wu) << table_dtype_name(d) << " " << placement_name(force)
                          << (remote ? " remote" : " local");
        EXPECT_EQ(wu, rounded(wu, d)) << "the tables left the storage type";
      }
}

// The shard planner counts 2 bytes a value for 16-bit tables (state stays 4 bytes a value).
TEST(HalfTableShards, ThePlannerCountsTwoBytesAValue) {
  const std::vector<TableSpec> big = {{"big", 1000, 64, Pooling::Sum}};
  SparseOptimizerConfig sgd;
  PlannerOptions po;
  EXPECT_THROW(plan_shards(big, {200000}, sgd, po), Error);  // f32: 256,000 bytes
  po.table_dtype = TableDType::BF16;
  const ShardPlan plan = plan_shards(big, {200000}, sgd, po);  // bf16: 128,000 bytes
  EXPECT_EQ(plan.tables[0].bytes, 128000);
  SparseOptimizerConfig adam;
  adam.kind = SparseOptimizer::LazyAdam;
  EXPECT_EQ(plan_shards(big, {int64_t{1} << 30}, adam, po).tables[0].bytes, 1000 * 64 * (2 + 8));
}

// Tables in and out are f32: a table at an odd offset is replaced without touching its
// neighbours, a checkpoint of a 16-bit collection restores it exactly, and an f32 checkpoint
// loads into a 16-bit collection rounded to nearest even.
TEST(HalfTableIo, SetTableCheckpointsAndF32Files) {
  auto backend = make_host_backend();
  for (TableDType d : {TableDType::BF16, TableDType::F16}) {
    const CollectionOptions o = options(SparseOptimizer::LazyAdam, d);
    EmbeddingCollection emb(specs(), *backend, o);
    const TableLayout& L = emb.layout();
    ASSERT_EQ(emb.storage().weights().dtype(), DType::I32);
    ASSERT_EQ(emb.storage().weights().numel(), packed_words(L.total_elements()));
    const std::vector<float> before = to_vec(emb.weights_to_host());
    EXPECT_EQ(before, rounded(before, d)) << "the initial table is not in the storage type";
    Tensor b = Tensor::host({11, 5});
    for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = 0.1f * static_cast<float>(i) - 2.f;
    emb.set_table(1, b);  // elements [21, 76): odd start and odd end
    EXPECT_EQ(to_vec(emb.table_to_host(1)), rounded(to_vec(b), d));
    const std::vector<float> after = to_vec(emb.weights_to_host());
    for (int64_t e = 0; e < L.total_elements(); ++e)
      if (e < L.weight_offset(1) || e >= L.weight_offset(2))
        ASSERT_EQ(after[static_cast<size_t>(e)], before[static_cast<size_t>(e)]) << e;
    for (int64_t t = 0; t < L.num_tables(); ++t) {
      const std::vector<float> tab = to_vec(emb.table_to_host(t));
      for (size_t i = 0; i < tab.size(); ++i)
        ASSERT_EQ(tab[i], after[static_cast<size_t>(L.weight_offset(t)) + i]) << t << " " << i;
    }
    std::mt19937 gen(8);
    Tensor out;
    emb.forward(make_host_bags(random_ids(specs(), 20, 4, gen)), out);
    emb.backward_and_update(random_dout(20, L.out_dim(), gen));
    const auto state = emb.training_state();
    EXPECT_EQ(state.at("weights").dtype(), DType::F32);
    EmbeddingCollection back(specs(), *backend, options(SparseOptimizer::LazyAdam, d));
    back.restore_training_state(state);
    EXPECT_EQ(to_vec(back.weights_to_host()), to_vec(emb.weights_to_host()));
    EXPECT_EQ(to_vec(back.state_to_host(1)), to_vec(emb.state_to_host(1)));
    EXPECT_EQ(back.steps(), 1);
    // An f32 collection's checkpoint (an older file) loads, rounded.
    EmbeddingCollection f32(specs(), *backend, options(SparseOptimizer::LazyAdam, TableDType::F32));
    back.restore_training_state(f32.training_state());
    EXPECT_EQ(to_vec(back.weights_to_host()), rounded(to_vec(f32.weights_to_host()), d));
    // And the other way: the 16-bit checkpoint is an f32 one with the table's exact values.
    f32.restore_training_state(state);
    EXPECT_EQ(to_vec(f32.weights_to_host()), to_vec(emb.weights_to_host()));
  }
}

TEST(HalfTableIo, StorageHalvesTheTableBytesAndNamesAreParsed) {
  auto backend = make_host_backend();
  EmbeddingCollection f(specs(), *backend, options(SparseOptimizer::Sgd, TableDType::F32));
  EmbeddingCollection h(specs(), *backend, options(SparseOptimizer::Sgd, TableDType::BF16));
  EXPECT_EQ(h.storage().weights().bytes() * 2,
            f.storage().weights().bytes() + 4 * (f.layout().total_elements() % 2));
  EXPECT_EQ(parse_table_dtype("bf16"), TableDType::BF16);
  EXPECT_EQ(parse_table_dtype("f16"), TableDType::F16);
  EXPECT_EQ(parse_table_dtype("f32"), TableDType::F32);
  try {
    parse_table_dtype("fp8");
    FAIL() << "fp8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fp8' is not one of f32, bf16, f16"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tessera::emb
