// Tables split across the ranks (embeddings/alltoall_tables.h) on a device backend (cuda-emu),
// in the group of one (its alltoallv is the identity), under the sanitizer build: the pooled rows
// come down from the device to be sent and the gradients go back up for the owner's fused
// update. Against one ordinary collection on the same device (not the all-to-all code): the same
// initial weights, pooled rows and Adagrad steps bit for bit, three steps running (repeated ids,
// mean pooling, per-id weights), and a training state that one restores into the other.
// The several-rank cases are tests/mpi/mpi_sharded_tables_test.cpp (MPI is not in the sanitizer
// build).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "embeddings/alltoall_tables.h"
#include "embeddings/tables.h"
#include "host/backend/backend.h"

namespace tessera::emb {
namespace {

// Bags of a fixed 5-sample batch: table a one id, table b 1-3 weighted ids, table c one id.
Bags batch(int64_t step) {
  std::vector<std::vector<std::vector<int64_t>>> ids(3);
  std::vector<std::vector<std::vector<float>>> w(3);
  for (int64_t s = 0; s < 5; ++s) {
    ids[0].push_back({(s * 2 + step) % 3});
    w[0].push_back({1.f});
    std::vector<int64_t> b;
    std::vector<float> bw;
    for (int64_t k = 0; k <= s % 3; ++k) {
      b.push_back((s + k + step) % 4);
      bw.push_back(0.5f + 0.25f * static_cast<float>(k));
    }
    ids[1].push_back(b);
    w[1].push_back(bw);
    ids[2].push_back({(s + step) % 5});
    w[2].push_back({2.f});
  }
  return make_host_bags(ids, w);
}

// A fixed [5, 9] gradient, on `be`.
Tensor dout(Backend& be, int64_t step) {
  Tensor d = Tensor::host({5, 9});
  for (int64_t i = 0; i < d.numel(); ++i)
    d.data<float>()[i] = 0.125f * static_cast<float>((i + step) % 13) - 0.7f;
  return be.to_device(d);
}

std::vector<float> host_floats(Backend& be, const Tensor& t) {
  const Tensor h = t.is_host() ? t : be.to_host(t);
  return {h.data<float>(), h.data<float>() + h.numel()};
}

std::vector<float> state_of(EmbeddingTables& t) {
  std::vector<float> v;
  for (const auto& [name, x] : t.training_state())
    if (x.dtype() == DType::F32) v.insert(v.end(), x.data<float>(), x.data<float>() + x.numel());
  return v;
}

TEST(EmuAllToAllTables, OneRankOnTheDeviceIsOneCollectionBitForBit) {
  std::unique_ptr<Backend> be = make_backend("cuda-emu");
  CollectionOptions o;
  o.optimizer = {SparseOptimizer::Adagrad, 0.1f};
  o.init_scale = 0.5f;
  o.seed = 3;
  const std::vector<TableSpec> specs = {
      {"a", 3, 2, Pooling::Sum}, {"b", 4, 4, Pooling::Mean}, {"c", 5, 3, Pooling::Sum}};
  std::unique_ptr<EmbeddingTables> one = make_embedding_tables(specs, *be, o);
  AllToAllTables split(specs, *be, o);
  EXPECT_EQ(split.held_elements(), split.layout().total_elements());
  EXPECT_EQ(state_of(split), state_of(*one)) << "initial weights";
  for (int64_t step = 0; step < 3; ++step) {
    const Bags b = batch(step);
    Tensor a, c;
    one->forward(b, a);
    split.forward(b, c);
    EXPECT_EQ(host_floats(*be, c), host_floats(*be, a)) << "pooled rows, step " << step;
    one->backward_and_update(dout(*be, step));
    split.backward_and_update(dout(*be, step));
    EXPECT_EQ(state_of(split), state_of(*one)) << "tables and Adagrad state, step " << step;
  }
  EXPECT_EQ(split.steps(), 3);
  // One's state restores into the split tables (and back), steps included.
  AllToAllTables again(specs, *be, o);
  again.restore_training_state(one->training_state());
  EXPECT_EQ(state_of(again), state_of(*one));
  EXPECT_EQ(again.steps(), 3);
  std::map<std::string, Tensor> cut = one->training_state();
  cut["weights"] = Tensor::host({7});
  EXPECT_THROW(again.restore_training_state(cut), Error);
}

}  // namespace
}  // namespace tessera::emb
