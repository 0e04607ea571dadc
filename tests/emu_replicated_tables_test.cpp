// The sparse step exchange of replicated tables (embeddings/step_exchange.h; docs/distributed.md,
// "Replicated tables") on a device backend (cuda-emu): the ranks' pooled gradients come down
// from the device into their packs (EmbeddingTables::export_step), and the imported global batch
// is staged back up through the device bag ops' pinned ring without a lookup
// (EmbeddingCollection::stage_batch) before the device's fused update. Three parts (2, 0 and 3
// samples; repeated ids, mean pooling, per-id weights) step Adagrad tables to exactly the bits
// of one forward and update of the whole batch on the same device, three steps running.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "embeddings/tables.h"
#include "host/backend/backend.h"

namespace tessera::emb {
namespace {

// Bags of samples [lo, hi) of a fixed 5-sample batch: table a one id, table b 1-3 weighted ids.
Bags part(int64_t lo, int64_t hi) {
  std::vector<std::vector<std::vector<int64_t>>> ids(2);
  std::vector<std::vector<std::vector<float>>> w(2);
  for (int64_t s = lo; s < hi; ++s) {
    ids[0].push_back({(s * 2) % 3});
    w[0].push_back({1.f});
    std::vector<int64_t> b;
    std::vector<float> bw;
    for (int64_t k = 0; k <= s % 3; ++k) {
      b.push_back((s + k) % 4);
      bw.push_back(0.5f + 0.25f * static_cast<float>(k));
    }
    ids[1].push_back(b);
    w[1].push_back(bw);
  }
  return make_host_bags(ids, w);
}

// Rows [lo, hi) of a fixed [5, 6] gradient, on `be`.
Tensor dout(Backend& be, int64_t lo, int64_t hi) {
  Tensor d = Tensor::host({hi - lo, 6});
  for (int64_t s = lo; s < hi; ++s)
    for (int64_t j = 0; j < 6; ++j)
      d.data<float>()[(s - lo) * 6 + j] = 0.125f * static_cast<float>((s * 6 + j) % 13) - 0.7f;
  return be.to_device(d);
}

std::vector<float> state_of(EmbeddingTables& t) {
  std::vector<float> v;
  for (const auto& [name, x] : t.training_state())
    if (x.dtype() == DType::F32) v.insert(v.end(), x.data<float>(), x.data<float>() + x.numel());
  return v;
}

TEST(EmuReplicatedTables, ImportedPartsStepAsTheWholeBatchOnTheDevice) {
  std::unique_ptr<Backend> be = make_backend("cuda-emu");
  CollectionOptions o;
  o.optimizer = {SparseOptimizer::Adagrad, 0.1f};
  o.init_scale = 0.5f;
  o.seed = 3;
  const std::vector<TableSpec> specs = {{"a", 3, 2, Pooling::Sum}, {"b", 4, 4, Pooling::Mean}};
  auto whole = make_embedding_tables(specs, *be, o);
  auto parts = make_embedding_tables(specs, *be, o);
  const int64_t cut[] = {0, 2, 2, 5};
  for (int step = 0; step < 3; ++step) {
    Tensor out;
    whole->forward(part(0, 5), out);
    whole->backward_and_update(dout(*be, 0, 5));
    std::vector<std::string> packs;
    for (int r = 0; r < 3; ++r) {
      if (cut[r] == cut[r + 1]) {
        packs.push_back(parts->export_step(Tensor(), 1.f));
        continue;
      }
      Tensor pooled;
      parts->forward(part(cut[r], cut[r + 1]), pooled);
      packs.push_back(parts->export_step(dout(*be, cut[r], cut[r + 1]), 1.f));
    }
    parts->import_steps(packs);
    ASSERT_TRUE(parts->step_imported());
    EXPECT_EQ(state_of(*parts), state_of(*whole)) << "step " << step;
  }
}

}  // namespace
}  // namespace tessera::emb
