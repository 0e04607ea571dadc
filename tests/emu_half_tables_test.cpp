// bf16 and f16 embedding tables through the device kernels on cuda-emu: the 16-bit forward,
// per-sample weight gradient, sparse update and fused backward + update kernels
// (embeddings/kernels/*: launch_*_half) against the f32 kernels on the widened table (lookups
// equal, updates equal the f32 update rounded, state equal), for every sparse optimizer, with
// nearest even and with stochastic rounding (the host's counter-based bits).
#include <gtest/gtest.h>

// Compiled only into the emulation build (tests/CMakeLists.txt leaves tests/emu_*_test.cpp out
// of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <random>
#include <string>
#include <vector>

#include "embeddings/collection.h"
#include "embeddings/table_dtype.h"

namespace tessera::emb {
namespace {

using Ids = std::vector<std::vector<std::vector<int64_t> > >;
using Wts = std::vector<std::vector<std::vector<float> > >;

std::vector<float> to_vec(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

std::vector<TableSpec> specs() {
  // b starts at an odd element (21), the wide table takes more than one warp's columns.
  return {{"a", 7, 3, Pooling::Sum}, {"b", 11, 5, Pooling::Mean}, {"wide", 90, 40, Pooling::Sum}};
}

Ids random_ids(int64_t batch, std::mt19937& gen) {
  const std::vector<TableSpec> sp = specs();
  Ids ids(sp.size(), std::vector<std::vector<int64_t> >(static_cast<size_t>(batch)));
  for (size_t t = 0; t < sp.size(); ++t)
    for (auto& bag : ids[t]) {
      const int len = std::uniform_int_distribution<int>(0, 6)(gen);
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

struct HalfCase {
  SparseOptimizer kind;
  TableDType dtype;
  bool stochastic;
};
class EmuHalfTables : public ::testing::TestWithParam<HalfCase> {};

CollectionOptions options(const HalfCase& c, TableDType d) {
  CollectionOptions o;
  o.optimizer.kind = c.kind;
  o.optimizer.lr = c.kind == SparseOptimizer::Sgd ? 0.5f : 0.05f;
  o.optimizer.initial_accumulator = 0.1f;
  o.init_scale = 0.5f;
  o.seed = 23;
  o.table_dtype = d;
  o.stochastic_rounding = c.stochastic && d != TableDType::F32;
  return o;
}

// The 16-bit kernels against the f32 kernels on the same device over the widened table: the
// lookups and weight gradients equal bit for bit, each step's stored values are the f32 kernels'
// update rounded to nearest even (stochastic: that value or the neighbour on the update's other
// side), and the f32 optimizer state is the same exactly. The host's 16-bit collection gives the
// same lookups up to the f32 kernels' own difference from the host (a summation order).
TEST_P(EmuHalfTables, KernelsEqualTheF32KernelsRounded) {
  const HalfCase c = GetParam();
  const TableDType d = c.dtype;
  auto host = make_host_backend();
  std::unique_ptr<Backend> emu = make_backend("cuda-emu");
  EmbeddingCollection d16(specs(), *emu, options(c, d)),
      d32(specs(), *emu, options(c, TableDType::F32));
  EmbeddingCollection h16(specs(), *host, options(c, d));
  ASSERT_EQ(d16.storage().weights().dtype(), DType::I32);
  ASSERT_EQ(to_vec(d16.weights_to_host()), to_vec(h16.weights_to_host()));
  std::mt19937 gen(static_cast<uint32_t>(5 + static_cast<int>(c.kind)));
  int64_t changed = 0, other_side = 0;
  for (int step = 1; step <= 4; ++step) {
    d32.set_weights(d16.weights_to_host());
    const std::vector<float> before = to_vec(d16.weights_to_host());
    const Ids ids = random_ids(16, gen);
    const Wts wts = step == 2 ? Wts{} : random_weights(ids, gen);
    const Bags bags = make_host_bags(ids, wts);
    Tensor o16, o32, oh;
    d16.forward(bags_to(*emu, bags), o16);
    d32.forward(bags_to(*emu, bags), o32);
    h16.forward(bags, oh);
    const std::vector<float> v16 = to_vec(emu->to_host(o16)), v32 = to_vec(emu->to_host(o32));
    ASSERT_EQ(v16, v32) << "forward, step " << step;
    const std::vector<float> vh = to_vec(oh);
    for (size_t i = 0; i < vh.size(); ++i) ASSERT_NEAR(v16[i], vh[i], 1e-5f) << i;
    Tensor dout = Tensor::host({16, d16.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1.f, 1.f)(gen);
    const Tensor dd = emu->to_device(dout);
    ASSERT_EQ(to_vec(emu->to_host(d16.weight_grad(dd))), to_vec(emu->to_host(d32.weight_grad(dd))))
        << "weight gradient, step " << step;
    if (step == 3) {  // the unfused kernels: backward, then the update kernel
      d16.apply(d16.backward(dd));
      d32.apply(d32.backward(dd));
    } else {
      d16.backward_and_update(dd);
      d32.backward_and_update(dd);
    }
    h16.set_weights(d16.weights_to_host());  // the host follows the device's table
    const std::vector<float> w16 = to_vec(d16.weights_to_host()),
                             w32 = to_vec(d32.weights_to_host());
    ASSERT_EQ(w16.size(), w32.size());
    for (size_t e = 0; e < w16.size(); ++e) {
      const float nearest = half_to_f32(d, f32_to_half(d, w32[e]));
      if (!c.stochastic) {
        ASSERT_EQ(w16[e], nearest) << "element " << e << ", step " << step;
      } else if (w16[e] != nearest) {
        ASSERT_LE((w16[e] - w32[e]) * (nearest - w32[e]), 0.f) << "element " << e;
        ASSERT_EQ(half_to_f32(d, f32_to_half(d, w16[e])), w16[e]) << "element " << e;
        ++other_side;
      }
      changed += w16[e] != before[e];
    }
    for (int k = 0; k < d16.storage().num_states(); ++k)
      ASSERT_EQ(to_vec(d16.state_to_host(k)), to_vec(d32.state_to_host(k))) << "state " << k;
  }
  EXPECT_GT(changed, 50) << "the steps changed too few weights to compare";
  if (c.stochastic) EXPECT_GT(other_side, 5) << "stochastic rounding never left the nearest value";
}

// The same seed and batches give the same stochastically rounded tables on the device and the
// host: both draw rounding_bits(stream, element) per element. The host and device f32 updates
// differ in their last bits (the gradient's summation order), so the comparison allows the
// neighbouring value where the host's own f32 update lies next to a rounding boundary: almost
// every value must agree exactly.
TEST(EmuHalfTablesStochastic, HostAndDeviceDrawTheSameBits) {
  auto host = make_host_backend();
  std::unique_ptr<Backend> emu = make_backend("cuda-emu");
  const HalfCase c{SparseOptimizer::Sgd, TableDType::BF16, true};
  EmbeddingCollection dv(specs(), *emu, options(c, c.dtype)),
      hs(specs(), *host, options(c, c.dtype));
  std::mt19937 gen(77);
  int64_t same = 0, touched = 0;
  for (int step = 1; step <= 3; ++step) {
    const std::vector<float> before = to_vec(hs.weights_to_host());
    const Bags bags = make_host_bags(random_ids(16, gen));
    Tensor od, oh;
    dv.forward(bags_to(*emu, bags), od);
    hs.forward(bags, oh);
    Tensor dout = Tensor::host({16, hs.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1.f, 1.f)(gen);
    dv.backward_and_update(emu->to_device(dout));
    hs.backward_and_update(dout);
    const std::vector<float> wd = to_vec(dv.weights_to_host()), wh = to_vec(hs.weights_to_host());
    for (size_t e = 0; e < wh.size(); ++e) {
      if (wh[e] == before[e] && wd[e] == before[e]) continue;
      ++touched;
      same += wd[e] == wh[e];
    }
    dv.set_weights(hs.weights_to_host());
  }
  ASSERT_GT(touched, 100);
  EXPECT_GE(static_cast<double>(same), 0.99 * static_cast<double>(touched))
      << same << " of " << touched << " updated values agree";
}

INSTANTIATE_TEST_SUITE_P(
    All, EmuHalfTables,
    ::testing::Values(HalfCase{SparseOptimizer::Sgd, TableDType::BF16, false},
                      HalfCase{SparseOptimizer::Adagrad, TableDType::BF16, false},
                      HalfCase{SparseOptimizer::RowwiseAdagrad, TableDType::BF16, false},
                      HalfCase{SparseOptimizer::LazyAdam, TableDType::BF16, false},
                      HalfCase{SparseOptimizer::Adagrad, TableDType::F16, false},
                      HalfCase{SparseOptimizer::RowwiseAdagrad, TableDType::F16, true},
                      HalfCase{SparseOptimizer::LazyAdam, TableDType::BF16, true},
                      HalfCase{SparseOptimizer::Sgd, TableDType::F16, true}),
    [](const ::testing::TestParamInfo<HalfCase>& i) {
      return std::string(sparse_optimizer_name(i.param.kind)) + "_" +
             table_dtype_name(i.param.dtype) + (i.param.stochastic ? "_stochastic" : "");
    });

}  // namespace
}  // namespace tessera::emb

#endif  // TESSERA_CUDA_EMULATION
