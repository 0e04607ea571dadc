// The sparse step exchange of replicated tables (embeddings/step_exchange.h, EmbeddingTables::
// export_step / import_steps / step_imported; docs/distributed.md), in one process so that it
// runs in the sanitizer build too:
//   - three "ranks" each look up their contiguous part of a batch and export it; the imported
//     concatenation steps the tables to exactly the bits one collection reaches with a forward
//     and backward_and_update of the whole batch (mean and sum pooling, per-id weights, Adagrad,
//     rows repeated within and across the parts; a gradient of sums, so the scale is 1);
//   - a rank with no rows, or whose part was dropped (scale 0), adds nothing;
//   - the scale multiplies the gradient rows;
//   - a cut or altered pack is refused with an error naming the rank and the field.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "embeddings/step_exchange.h"
#include "embeddings/tables.h"
#include "host/backend/backend.h"
#include "tests/support/error_of.h"

namespace tessera::emb {
namespace {

std::vector<TableSpec> specs() {
  return {{"a", 5, 3, Pooling::Sum}, {"b", 4, 2, Pooling::Mean}};
}

CollectionOptions options() {
  CollectionOptions o;
  o.optimizer = {SparseOptimizer::Adagrad, 0.1f};
  o.init_scale = 0.5f;
  o.seed = 9;
  return o;
}

// Bags of samples [lo, hi) of a fixed 7-sample batch: table a one id or two, table b a bag of
// up to 3 ids with weights; ids repeat.
Bags part(int64_t lo, int64_t hi) {
  std::vector<std::vector<std::vector<int64_t>>> ids(2);
  std::vector<std::vector<std::vector<float>>> w(2);
  for (int64_t s = lo; s < hi; ++s) {
    ids[0].push_back(s % 3 ? std::vector<int64_t>{s % 5} : std::vector<int64_t>{1, s % 5});
    std::vector<int64_t> b;
    for (int64_t k = 0; k <= s % 3; ++k) b.push_back((s + k) % 4);
    ids[1].push_back(b);
  }
  for (int t = 0; t < 2; ++t)
    for (const auto& bag : ids[t]) {
      std::vector<float> v;
      for (size_t k = 0; k < bag.size(); ++k) v.push_back(0.5f + 0.25f * static_cast<float>(k));
      w[t].push_back(v);
    }
  return make_host_bags(ids, w);
}

// dout rows [lo, hi) of a fixed [7, 5] gradient.
Tensor dout(int64_t lo, int64_t hi) {
  Tensor d = Tensor::host({hi - lo, 5});
  for (int64_t s = lo; s < hi; ++s)
    for (int64_t j = 0; j < 5; ++j)
      d.data<float>()[(s - lo) * 5 + j] = 0.125f * static_cast<float>((s * 5 + j) % 11) - 0.6f;
  return d;
}

std::vector<float> state_of(EmbeddingTables& t) {
  std::vector<float> v;
  for (const auto& [name, x] : t.training_state())
    if (x.dtype() == DType::F32) v.insert(v.end(), x.data<float>(), x.data<float>() + x.numel());
  return v;
}

TEST(SparseStepExchange, ConcatenatedPartsStepAsTheWholeBatch) {
  auto be = make_host_backend();
  auto whole = make_embedding_tables(specs(), *be, options());
  auto parts = make_embedding_tables(specs(), *be, options());
  for (int step = 0; step < 3; ++step) {
    Tensor out;
    whole->forward(part(0, 7), out);
    whole->backward_and_update(dout(0, 7));
    // Parts of 3, 0 and 4 samples, in rank order; the empty rank exports no rows.
    std::vector<std::string> packs;
    const int64_t cut[] = {0, 3, 3, 7};
    for (int r = 0; r < 3; ++r) {
      if (cut[r] == cut[r + 1]) {
        packs.push_back(parts->export_step(Tensor(), 1.f));
        continue;
      }
      Tensor o;
      parts->forward(part(cut[r], cut[r + 1]), o);
      packs.push_back(parts->export_step(dout(cut[r], cut[r + 1]), 1.f));
    }
    parts->import_steps(packs);
    EXPECT_TRUE(parts->step_imported());
    EXPECT_FALSE(parts->step_imported()) << "an imported step is applied once";
    EXPECT_EQ(state_of(*parts), state_of(*whole)) << "step " << step;
    EXPECT_EQ(parts->steps(), whole->steps());
  }
}

TEST(SparseStepExchange, ScaleMultipliesAndZeroScaleSendsNothing) {
  auto be = make_host_backend();
  auto t = make_embedding_tables(specs(), *be, options());
  Tensor o;
  t->forward(part(0, 2), o);
  const GlobalStep g =
      concat_steps({t->export_step(dout(0, 2), 0.25f), t->export_step(dout(0, 2), 0.f)}, 2, 5);
  ASSERT_EQ(g.bags.batch, 2);
  const Tensor d = dout(0, 2);
  for (int64_t i = 0; i < d.numel(); ++i)
    EXPECT_EQ(g.dout.data<float>()[i], d.data<float>()[i] * 0.25f);
  EXPECT_EQ(g.bags.offsets.numel(), 2 * 2 + 1);
}

TEST(SparseStepExchange, CutOrAlteredPacksAreRefusedNamingRankAndField) {
  const std::string good = pack_step(part(0, 3), dout(0, 3), 1.f, 2, 5);
  const std::string cut = good.substr(0, good.size() - 3);
  std::string e = test::error_of_kind(ErrorKind::Internal, [&] {
    concat_steps({good, cut}, 2, 5);
  });
  EXPECT_NE(e.find("rank 1"), std::string::npos) << e;
  EXPECT_NE(e.find("gradient"), std::string::npos) << e;
  e = test::error_of_kind(ErrorKind::Internal, [&] { concat_steps({good}, 3, 5); });
  EXPECT_NE(e.find("3 of width 5"), std::string::npos) << e;
  std::string bad = good;
  const int32_t huge = 1000;
  std::memcpy(bad.data() + 40, &huge, sizeof huge);  // the first bag length
  e = test::error_of_kind(ErrorKind::Internal, [&] { concat_steps({bad}, 2, 5); });
  EXPECT_NE(e.find("bag lengths sum"), std::string::npos) << e;
  e = test::error_of_kind(ErrorKind::Internal, [&] { concat_steps({good + "x"}, 2, 5); });
  EXPECT_NE(e.find("after its gradient"), std::string::npos) << e;
}

}  // namespace
}  // namespace tessera::emb
