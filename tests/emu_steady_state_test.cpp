// Steady-state training steps on the CUDA backend (the real CudaBackend on the emulated runtime):
// after two warm-up steps (plans, caches, the allocator's first blocks), three more steps of the
// behaviour MLP, DLRM (one shard, and two shards on cuda-emu:0 and cuda-emu:1) and the CNN make no
// device allocation and no host synchronisation, counted by the emulated runtime
// (cuda/emu/runtime_counters.h). A step here is what the model and the backend do — forward,
// loss, backward, the dense SGD update, DLRM's sparse update — with the dense batch already on
// the device, as the pinned stager hands it over; the Trainer's own per-step loss read is
// outside. DLRM's categorical batch is a host tensor: its ids and offsets go up through the bag
// ops' pinned ring, and the resolve's id check is deferred.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#endif

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "cuda/emu/runtime_counters.h"
#include "host/backend/backend.h"
#include "host/model/cnn.h"
#include "host/model/mlp.h"
#include "pipelines/behaviour/dlrm_model.h"

namespace tessera {
namespace {

Tensor uniform(const Shape& s, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::host(s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

void sgd(Backend& be, const std::vector<Parameter*>& params) {
  for (Parameter* p : params) {
    if (!p->state1.defined()) p->state1 = be.empty(p->value.shape());
    be.sgd_update({/*lr=*/0.01f, /*momentum=*/0.9f}, p->value, p->grad, p->state1);
  }
}

// Two warm-up steps, then the runtime's counters over three steps.
emu::RuntimeCounters steady_state(Backend& be, const std::function<void()>& step) {
  step();
  step();
  be.synchronize();
  emu::reset_runtime_counters();
  for (int i = 0; i < 3; ++i) step();
  const emu::RuntimeCounters c = emu::runtime_counters();
  be.synchronize();  // and any deferred failure surfaces here
  return c;
}

void expect_no_stall(const emu::RuntimeCounters& c, const std::string& what) {
  EXPECT_EQ(c.synchronisations, 0u) << what << ":\n" << c.describe();
  EXPECT_EQ(c.device_allocations, 0u) << what << ":\n" << c.describe();
  EXPECT_EQ(c.pinned_allocations, 0u) << what << ":\n" << c.describe();
  EXPECT_GT(c.launches, 0u) << what << " launched nothing";
}

TEST(EmuSteadyState, BehaviourMlpStepNeitherWaitsNorAllocates) {
  auto be = make_backend("cuda-emu");
  std::mt19937 rng(1);
  MlpSpec s;
  s.n_dense = 5;
  s.n_cat = 3;
  s.embedding_rows = 40;
  s.embedding_dim = 4;
  s.hidden = {16, 8};
  s.dropout = 0.1f;
  MlpModel m(*be, s, 3, 32);
  const Tensor dense = be->to_device(uniform({32, 5}, rng));
  Tensor cat_host = Tensor::host({32, 3}, DType::I64);
  for (int64_t i = 0; i < cat_host.numel(); ++i) cat_host.data<int64_t>()[i] = rng() % 40;
  const Tensor cat = be->to_device(cat_host);
  const Tensor labels = be->to_device(uniform({32}, rng, 0.f, 1.f));
  Tensor loss = be->empty({32}), dlogits = be->empty({32, 1});
  uint64_t seed = 0;
  const auto c = steady_state(*be, [&] {
    Tensor logits = m.forward(dense, cat, Mode::Train, ++seed);
    be->bce_with_logits(logits, labels, 1.f / 32.f, loss, dlogits);
    m.backward(dlogits);
    sgd(*be, m.parameters());
  });
  expect_no_stall(c, "behaviour MLP step");
}

TEST(EmuSteadyState, CnnStepNeitherWaitsNorAllocates) {
  auto be = make_backend("cuda-emu");
  std::mt19937 rng(2);
  CnnSpec s;
  s.channels = 1;
  s.height = s.width = 8;
  s.classes = 3;
  CnnLayerSpec conv;
  conv.type = CnnLayerType::Conv;
  conv.units = 4;
  conv.padding = 1;
  conv.activation = Activation::Relu;
  CnnLayerSpec bn;
  bn.type = CnnLayerType::BatchNorm;
  CnnLayerSpec pool;
  pool.type = CnnLayerType::MaxPool;
  pool.kernel = pool.stride = 2;
  CnnLayerSpec flat;
  flat.type = CnnLayerType::Flatten;
  CnnLayerSpec dense;
  dense.type = CnnLayerType::Dense;
  dense.units = 3;
  s.layers = {conv, bn, pool, flat, dense};
  CnnModel m(*be, s, 5, 6);
  const Tensor x = be->to_device(uniform({6, 1, 8, 8}, rng));
  Tensor labels_host = Tensor::host({6}, DType::I32);
  for (int64_t i = 0; i < 6; ++i) labels_host.data<int32_t>()[i] = static_cast<int32_t>(i % 3);
  const Tensor labels = be->to_device(labels_host);
  Tensor loss = be->empty({6}), dlogits = be->empty({6, 3});
  const auto c = steady_state(*be, [&] {
    Tensor logits = m.forward(x, CnnMode::Train);
    be->softmax_xent(logits, labels, 1.f / 6.f, loss, dlogits);
    m.backward(dlogits);
    sgd(*be, m.parameters());
  });
  expect_no_stall(c, "CNN step");
}

void dlrm_steady_state(int64_t shards, const std::string& what) {
  auto be = make_backend("cuda-emu");
  std::mt19937 rng(3);
  DlrmSpec s;
  s.n_dense = 4;
  s.table_rows = {11, 7, 23};
  s.embedding_dim = 4;
  s.bottom = {8};
  s.top = {8};
  s.sparse.kind = emb::SparseOptimizer::RowwiseAdagrad;
  s.shards = shards;
  DlrmModel m(*be, s, 7, 16);
  if (shards > 1) {  // tables on both emulated devices
    EXPECT_NE(m.shard_plan().find("shard 0 rows"), std::string::npos) << m.shard_plan();
    EXPECT_NE(m.shard_plan().find("shard 1 rows"), std::string::npos) << m.shard_plan();
  }
  const Tensor dense = be->to_device(uniform({16, 4}, rng));
  Tensor cat = Tensor::host({16, 3}, DType::I64);
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t t = 0; t < 3; ++t)
      cat.data<int64_t>()[i * 3 + t] = static_cast<int64_t>(rng() % s.table_rows[t]);
  const Tensor labels = be->to_device(uniform({16}, rng, 0.f, 1.f));
  Tensor loss = be->empty({16}), dlogits = be->empty({16, 1});
  const auto c = steady_state(*be, [&] {
    Tensor logits = m.forward(dense, cat, Mode::Train, 0);
    be->bce_with_logits(logits, labels, 1.f / 16.f, loss, dlogits);
    m.backward(dlogits);
    sgd(*be, m.parameters());
  });
  expect_no_stall(c, what);
}

TEST(EmuSteadyState, DlrmStepNeitherWaitsNorAllocates) {
  dlrm_steady_state(1, "DLRM step");
}

TEST(EmuSteadyState, ShardedDlrmStepNeitherWaitsNorAllocates) {
  dlrm_steady_state(2, "DLRM step on two shards (cuda-emu:0, cuda-emu:1)");
}

}  // namespace
}  // namespace tessera
