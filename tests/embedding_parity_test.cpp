// Parity of the device embedding-bag ops (CUDA kernels in embeddings/kernels/embedding_bag*.cu on a
// GPU, or the same kernels emulated on the CPU as "cuda-emu") with the host ops, the specification:
// forward, the de-duplicated backward, every sparse optimizer over several steps, hashing, and
// the id policies and batch checks, which must behave identically (same errors, same messages,
// same clamping, same warnings). "cuda" skips with the reason where no GPU is usable; the
// emulation build adds "cuda-emu" (and TESSERA_PARITY_BACKENDS may add more).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "embeddings/collection.h"
#include "embeddings/sharding.h"
#include "tests/random_bags.h"
#include "tests/support/backends.h"

namespace tessera::emb {
namespace {

std::vector<std::string> device_specs() {
  std::vector<std::string> specs = test::parity_backend_specs();
#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION
  bool seen = false;
  for (const auto& s : specs) seen = seen || s == "cuda-emu";
  if (!seen) specs.push_back("cuda-emu");
#endif
  return specs;
}

// Dims that are not multiples of 4 or of a warp, one wider than others, Sum and Mean, a hashed
// table; row counts that make 64-bit element offsets non-trivial stay small here (EmuKernels
// covers > 2^31 offsets for the single-table op).
std::vector<TableSpec> specs() {
  return {{"a", 37, 5, Pooling::Sum},
          {"b", 50, 33, Pooling::Mean},
          {"c", 3, 1, Pooling::Sum},
          {"h", 17, 8, Pooling::Mean, IdPolicy::Error, IdMapping::Hash}};
}

void expect_near_all(const Tensor& host, const Tensor& dev, double atol, double rtol,
                     const char* what) {
  ASSERT_EQ(host.numel(), dev.numel()) << what;
  int shown = 0;
  for (int64_t i = 0; i < host.numel(); ++i) {
    const double a = host.data<float>()[i];
    const double b = dev.data<float>()[i];
    ASSERT_FALSE(std::isnan(b)) << what << " element " << i << " is NaN on the device";
    if (std::fabs(a - b) > atol + rtol * std::fabs(a) && shown++ < 5)
      ADD_FAILURE() << what << " element " << i << ": host " << a << " device " << b;
  }
}

class EmbeddingParity : public ::testing::TestWithParam<std::string> {};

TEST_P(EmbeddingParity, ForwardBackwardMatchHost) {
  TESSERA_TEST_BACKEND_OR_SKIP(dev, GetParam());
  Backend& host = test::reference_backend();
  std::mt19937 gen(21);
  for (bool weighted : {false, true}) {
    CollectionOptions opts;
    opts.init_scale = 0.5f;
    EmbeddingCollection eh(specs(), host, opts);
    EmbeddingCollection ed(specs(), *dev, opts);
    const int64_t B = 67;
    const Bags hb = random_bags(specs(), B, 6, weighted, 1000, gen);
    Tensor oh, od;
    eh.forward(hb, oh);
    ed.forward(bags_to(*dev, hb), od);
    expect_near_all(oh, dev->to_host(od), 1e-5, 1e-5, "pooled output");
    Tensor dout = Tensor::host({B, eh.layout().out_dim()});
    for (int64_t i = 0; i < dout.numel(); ++i)
      dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
    if (!weighted)
      std::cout << "[" << GetParam() << "] " << ed.ops().name() << ": " << ed.ops().notes() << "\n";
    const SparseGrad gh = eh.backward(dout);
    const SparseGrad gd = ed.backward(dev->to_device(dout));
    ASSERT_EQ(gh.count, gd.count);
    const Tensor kd = dev->to_host(gd.keys);
    for (int64_t u = 0; u < gh.count; ++u)
      ASSERT_EQ(gh.keys.data<int64_t>()[u], kd.data<int64_t>()[u]) << u;
    expect_near_all(gh.grads, dev->to_host(gd.grads), 1e-5, 1e-5, "sparse gradient");
    expect_near_all(eh.weight_grad(dout), dev->to_host(ed.weight_grad(dev->to_device(dout))), 1e-5,
                    1e-5, "per-sample weight gradient");
  }
}

TEST_P(EmbeddingParity, SparseOptimizersMatchHostOverSteps) {
  TESSERA_TEST_BACKEND_OR_SKIP(dev, GetParam());
  Backend& host = test::reference_backend();
  for (SparseOptimizer kind : {SparseOptimizer::Sgd, SparseOptimizer::Adagrad,
                               SparseOptimizer::RowwiseAdagrad, SparseOptimizer::LazyAdam}) {
    SCOPED_TRACE(sparse_optimizer_name(kind));
    std::mt19937 gen(22);
    CollectionOptions opts;
    opts.optimizer.kind = kind;
    opts.optimizer.lr = 0.03f;
    opts.optimizer.initial_accumulator = 0.05f;
    opts.init_scale = 0.2f;
    EmbeddingCollection eh(specs(), host, opts);
    EmbeddingCollection ed(specs(), *dev, opts);
    for (int step = 0; step < 3; ++step) {
      const int64_t B = 19;
      const Bags hb = random_bags(specs(), B, 5, step == 1, 4, gen);  // few distinct ids: repeats
      Tensor oh, od;
      eh.forward(hb, oh);
      ed.forward(bags_to(*dev, hb), od);
      Tensor dout = Tensor::host({B, eh.layout().out_dim()});
      for (int64_t i = 0; i < dout.numel(); ++i)
        dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
      eh.backward_and_update(dout);  // host: the fused path
      ed.backward_and_update(dev->to_device(dout));
    }
    expect_near_all(eh.weights_to_host(), ed.weights_to_host(), 1e-5, 1e-4, "weights");
    for (int s = 0; s < state_slots(kind); ++s)
      expect_near_all(eh.state_to_host(s), ed.state_to_host(s), 1e-6, 1e-4, "state");
  }
}

// Empty bags everywhere, and a batch of zero samples: zero outputs, no touched rows, no update.
TEST_P(EmbeddingParity, EmptyBatchesMatchHost) {
  TESSERA_TEST_BACKEND_OR_SKIP(dev, GetParam());
  Backend& host = test::reference_backend();
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::LazyAdam;
  EmbeddingCollection eh(specs(), host, opts);
  EmbeddingCollection ed(specs(), *dev, opts);
  for (int64_t B : {int64_t{3}, int64_t{0}}) {
    const std::vector<std::vector<std::vector<int64_t>>> ids(
        specs().size(), std::vector<std::vector<int64_t>>(static_cast<size_t>(B)));
    Bags hb;
    hb.batch = B;
    hb.indices = Tensor::host({0}, DType::I64);
    hb.offsets = Tensor::host({static_cast<int64_t>(specs().size()) * B + 1}, DType::I64);
    Tensor oh, od;
    eh.forward(hb, oh);
    ed.forward(bags_to(*dev, hb), od);
    expect_near_all(oh, dev->to_host(od), 0, 0, "empty-batch output");
    for (int64_t i = 0; i < oh.numel(); ++i) EXPECT_EQ(oh.data<float>()[i], 0.f);
    const Tensor dout = Tensor::host({B, eh.layout().out_dim()});
    EXPECT_EQ(eh.backward(dout).count, 0);
    EXPECT_EQ(ed.backward(dev->to_device(dout)).count, 0);
    eh.backward_and_update(dout);
    ed.backward_and_update(dev->to_device(dout));
  }
  expect_near_all(eh.weights_to_host(), ed.weights_to_host(), 0, 0, "weights after empty steps");
}

std::string error_of(EmbeddingCollection& emb, const Bags& bags) {
  Tensor out;
  try {
    emb.forward(bags, out);
  } catch (const Error& e) {
    return std::string(error_kind_name(e.kind())) + ": " + e.what();
  }
  return "no error";
}

TEST_P(EmbeddingParity, IdPoliciesAndBatchChecksBehaveIdentically) {
  TESSERA_TEST_BACKEND_OR_SKIP(dev, GetParam());
  Backend& host = test::reference_backend();
  const std::vector<TableSpec> sp{{"strict", 6, 3},
                                  {"lenient", 5, 4, Pooling::Mean, IdPolicy::WarnClamp}};
  // Error: the first offending position wins (position 4 in 'strict' before 'lenient' ones).
  {
    EmbeddingCollection eh(sp, host, {});
    EmbeddingCollection ed(sp, *dev, {});
    const Bags bad = make_host_bags({{{0, 1}, {5, 2}, {6, -1}}, {{9}, {}, {-4, 2}}});
    const std::string mh = error_of(eh, bad);
    EXPECT_NE(mh.find("embedding id 6 in table 'strict' (#0), sample 2 (index position 4)"),
              std::string::npos)
        << mh;
    EXPECT_EQ(mh, error_of(ed, bags_to(*dev, bad)));
  }
  // WarnClamp: same clamped output, same count, one identical warning per table.
  {
    EmbeddingCollection eh(sp, host, {});
    EmbeddingCollection ed(sp, *dev, {});
    const Bags b = make_host_bags({{{0, 1}, {5, 2}, {3}}, {{9, 0}, {}, {-4, 2, 7}}});
    Tensor oh, od;
    const size_t w0 = id_policy_warnings().size();
    eh.forward(b, oh);
    ASSERT_EQ(id_policy_warnings().size(), w0 + 1);
    const std::string host_warning = id_policy_warnings().back();
    ed.forward(bags_to(*dev, b), od);
    ASSERT_EQ(id_policy_warnings().size(), w0 + 2);
    EXPECT_EQ(host_warning, id_policy_warnings().back());
    expect_near_all(oh, dev->to_host(od), 1e-6, 1e-6, "clamped output");
    EXPECT_EQ(eh.clamped_ids(), 3u);
    EXPECT_EQ(ed.clamped_ids(), 3u);
    // Second batch: counted, not warned again.
    eh.forward(b, oh);
    ed.forward(bags_to(*dev, b), od);
    EXPECT_EQ(id_policy_warnings().size(), w0 + 2);
    EXPECT_EQ(ed.clamped_ids(), 6u);
  }
  // Broken offsets: the same message.
  {
    EmbeddingCollection eh(sp, host, {});
    EmbeddingCollection ed(sp, *dev, {});
    for (int which = 0; which < 3; ++which) {
      Bags b = make_host_bags({{{0, 1}, {5, 2}, {3}}, {{1, 0}, {}, {4, 2, 0}}});
      int64_t* off = b.offsets.data<int64_t>();
      if (which == 0) off[0] = 1;
      if (which == 1) off[3] = 2;  // decreases after offsets[2] = 4
      if (which == 2) off[6] = 9;  // end beyond nnz
      const std::string mh = error_of(eh, b);
      EXPECT_NE(mh.find(": bag offsets"), std::string::npos) << mh;
      EXPECT_EQ(mh, error_of(ed, bags_to(*dev, b)));
    }
  }
}

// Shards on the device (cuda:k round the GPUs, or cuda-emu backends): the sharded collection
// placed by place_shards for a device run, row- and column-wise, trains as the unsharded host
// collection does (pooled outputs, weight gradients, weights and optimizer state after steps).
TEST_P(EmbeddingParity, ShardsOnTheDeviceMatchTheUnshardedHost) {
  TESSERA_TEST_BACKEND_OR_SKIP(dev, GetParam());
  Backend& host = test::reference_backend();
  for (const ShardPlacement placement : {ShardPlacement::Row, ShardPlacement::Column}) {
    SCOPED_TRACE(placement == ShardPlacement::Row ? "row-wise" : "column-wise");
    CollectionOptions opts;
    opts.optimizer.kind = SparseOptimizer::Adagrad;
    opts.optimizer.lr = 0.05f;
    opts.init_scale = 0.2f;
    ShardDevices d = place_shards(specs(), *dev, 3, placement, opts.optimizer);
    ASSERT_EQ(d.raw.size(), 3u);
    for (Backend* b : d.raw) EXPECT_NE(b->device().kind, DeviceKind::Host) << b->name();
    ShardedEmbeddingCollection sharded(specs(), d.plan, d.raw, opts);
    EmbeddingCollection single(specs(), host, opts);
    std::mt19937 gen(41);
    for (int step = 0; step < 3; ++step) {
      const int64_t B = 13;
      const Bags hb = random_bags(specs(), B, 4, step != 1, 6, gen);
      Tensor os, ou;
      sharded.forward(hb, os);
      single.forward(hb, ou);
      expect_near_all(ou, os, 1e-5, 1e-5, "pooled");
      Tensor dout = Tensor::host({B, single.layout().out_dim()});
      for (int64_t i = 0; i < dout.numel(); ++i)
        dout.data<float>()[i] = std::uniform_real_distribution<float>(-1, 1)(gen);
      expect_near_all(single.weight_grad(dout), sharded.weight_grad(dout), 1e-5, 1e-5,
                      "weight gradient");
      sharded.backward_and_update(dout);
      single.backward_and_update(dout);
    }
    expect_near_all(single.weights_to_host(), sharded.weights_to_host(), 1e-5, 1e-4, "weights");
    expect_near_all(single.state_to_host(0), sharded.state_to_host(0), 1e-6, 1e-4, "state");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, EmbeddingParity, ::testing::ValuesIn(device_specs()),
                         [](const auto& info) { return test::spec_param_name(info.param); });

}  // namespace
}  // namespace tessera::emb
