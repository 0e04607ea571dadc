// Host batches staged by the device bag ops (BagOps::stage: offsets checked on the host, an upload
// from a ring of page-locked buffers nobody waits for, the resolve's id check deferred), on the
// CUDA backend over the emulated runtime: the same pooled rows and updates as a batch uploaded
// from pageable memory, no synchronisation per batch, an out-of-range id raised later by the
// backend's deferred checks with the host ops' message plus the batch, bad offsets refused at
// once, and warn_clamp tables still warned within their batch.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "embeddings/collection.h"
#include "host/backend/backend.h"
#include "pipelines/behaviour/dlrm_model.h"
#include "tests/support/error_of.h"

namespace tessera::emb {
namespace {

using Ids = std::vector<std::vector<std::vector<int64_t> > >;

std::vector<TableSpec> error_specs() {
  return {{"a", 10, 4},
          {"m", 6, 3, Pooling::Mean},
          {"h", 5, 2, Pooling::Sum, IdPolicy::Error, IdMapping::Hash}};
}

// Three tables, `batch` samples of 0..3 ids each, from `seed` (ids in range).
Ids random_ids(int64_t batch, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t rows[] = {10, 6, 1000};  // the hashed table takes any id
  Ids ids(3, std::vector<std::vector<int64_t> >(static_cast<size_t>(batch)));
  for (size_t t = 0; t < 3; ++t)
    for (auto& bag : ids[t]) {
      bag.resize(rng() % 4);
      for (int64_t& id : bag) id = static_cast<int64_t>(rng() % rows[t]);
    }
  return ids;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

// Batches of changing size (the ring's slots grow and are reused): staged and pageable uploads
// give the same pooled rows and the same tables after each update.
TEST(EmuStagedBags, StagedBatchesTrainExactlyLikeUploadedOnes) {
  auto be = make_backend("cuda-emu");
  CollectionOptions o;
  o.optimizer.kind = SparseOptimizer::Adagrad;
  o.seed = 5;
  EmbeddingCollection staged(error_specs(), *be, o), uploaded(error_specs(), *be, o);
  for (int step = 0; step < 9; ++step) {
    const int64_t batch = 2 + (step * 5) % 7;
    const Bags host = make_host_bags(random_ids(batch, 100 + step));
    Tensor out_s, out_u;
    staged.forward_host_bags(host, out_s);
    uploaded.forward(bags_to(*be, host), out_u);
    ASSERT_TRUE(same_bits(be->to_host(out_s), be->to_host(out_u))) << "step " << step;
    staged.backward_and_update(out_s);  // any gradient will do: the pooled rows themselves
    uploaded.backward_and_update(out_u);
  }
  EXPECT_TRUE(same_bits(staged.weights_to_host(), uploaded.weights_to_host()));
  EXPECT_TRUE(same_bits(staged.state_to_host(0), uploaded.state_to_host(0)));
}

TEST(EmuStagedBags, AStagedBatchNeitherWaitsNorAllocatesOnceTheRingIsWarm) {
  auto be = make_backend("cuda-emu");
  EmbeddingCollection emb(error_specs(), *be, {});
  const Bags host = make_host_bags(random_ids(8, 1));
  auto step = [&] {
    Tensor out;
    emb.forward_host_bags(host, out);
    emb.backward_and_update(out);
  };
  for (int i = 0; i < 4; ++i) step();  // every ring slot once
  be->synchronize();
  emu::reset_runtime_counters();
  for (int i = 0; i < 4; ++i) step();
  const emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.synchronisations, 0u) << c.describe();
  EXPECT_EQ(c.device_allocations, 0u) << c.describe();
  EXPECT_EQ(c.pinned_allocations, 0u) << c.describe();
  EXPECT_EQ(c.h2d_copies, 4u * 2u) << "ids and offsets, one copy each per batch\n" << c.describe();
  EXPECT_NO_THROW(be->synchronize());
}

// The message the host ops give for the same batch, which the deferred check must repeat.
std::string host_message(const Ids& ids) {
  auto host = make_backend("cpu");
  EmbeddingCollection emb(error_specs(), *host, {});
  return test::error_of_kind(ErrorKind::Data, [&] {
    Tensor out;
    emb.forward_host_bags(make_host_bags(ids), out);
  });
}

TEST(EmuStagedBags, AnOutOfRangeIdIsRaisedLaterNamingTableSampleAndBatch) {
  auto be = make_backend("cuda-emu");
  EmbeddingCollection emb(error_specs(), *be, {});
  const Ids good = random_ids(4, 2);
  Ids bad = random_ids(4, 3);
  bad[1][2] = {1, 6};  // table 'm' has rows [0, 6): the first bad position
  bad[1][3] = {-4, std::numeric_limits<int64_t>::min(), int64_t{1} << 40};  // far outside
  const std::string want = host_message(bad);
  ASSERT_NE(want.find("table 'm'"), std::string::npos) << want;  // the first bad position
  Tensor out;
  emb.forward_host_bags(make_host_bags(good), out);
  emb.backward_and_update(out);
  // The batch's forward and update run before the check lands: on rows clamped into the table
  // (the emulator's guard bytes, or ASan, catch any access outside it).
  EXPECT_NO_THROW(emb.forward_host_bags(make_host_bags(bad), out)) << "the batch must not wait";
  EXPECT_NO_THROW(emb.backward_and_update(out));
  EXPECT_EQ(test::error_of_kind(ErrorKind::Data, [&] { be->check_deferred(); }),
            want + " (embedding_bag call 2 on cuda:0, found by its deferred check)");
  EXPECT_NO_THROW(be->check_deferred()) << "an error is raised once";
  // synchronize() raises it too.
  emb.forward_host_bags(make_host_bags(bad), out);
  EXPECT_EQ(test::error_of_kind(ErrorKind::Data, [&] { be->synchronize(); }),
            want + " (embedding_bag call 3 on cuda:0, found by its deferred check)");
}

TEST(EmuStagedBags, BadOffsetsAreRefusedAtOnceWithTheHostMessage) {
  auto be = make_backend("cuda-emu");
  auto host = make_backend("cpu");
  EmbeddingCollection emb(error_specs(), *be, {}), ref(error_specs(), *host, {});
  Bags bags = make_host_bags(random_ids(3, 4));
  bags.offsets.data<int64_t>()[4] = bags.offsets.data<int64_t>()[3] - 1;  // decreasing at bag 4
  Tensor out;
  const std::string want =
      test::error_of_kind(ErrorKind::Data, [&] { ref.forward_host_bags(bags, out); });
  ASSERT_NE(want.find("offsets"), std::string::npos) << want;
  emu::reset_runtime_counters();
  EXPECT_EQ(test::error_of_kind(ErrorKind::Data, [&] { emb.forward_host_bags(bags, out); }), want);
  EXPECT_EQ(emu::runtime_counters().h2d_copies, 0u) << "a refused batch is not uploaded";
}

TEST(EmuStagedBags, WarnClampTablesAreStillWarnedWithinTheirBatch) {
  auto be = make_backend("cuda-emu");
  auto host = make_backend("cpu");
  const std::vector<TableSpec> specs{{"a", 10, 4}, {"w", 6, 3, Pooling::Mean, IdPolicy::WarnClamp}};
  EmbeddingCollection emb(specs, *be, {}), ref(specs, *host, {});
  const Bags bags = make_host_bags(Ids{{{1, 2}, {3}, {1, 9}}, {{0}, {9, 1}, {7}}});
  Tensor out, ref_out;
  emb.forward_host_bags(bags, out);
  ref.forward_host_bags(bags, ref_out);
  EXPECT_EQ(emb.clamped_ids(), 2u);
  EXPECT_EQ(emb.clamped_ids(), ref.clamped_ids());
  EXPECT_TRUE(same_bits(be->to_host(out), ref_out));
}

// A DLRM step with an id past its table: the step is not stopped, the backend's next check is,
// naming the table.
TEST(EmuStagedBags, DlrmStopsOnAnOutOfRangeIdAtTheNextCheck) {
  auto be = make_backend("cuda-emu");
  DlrmSpec s;
  s.n_dense = 2;
  s.table_rows = {5, 7};
  s.embedding_dim = 2;
  s.bottom = {4};
  s.top = {4};
  DlrmModel m(*be, s, 1, 4);
  const Tensor dense = be->to_device(Tensor::host({4, 2}));
  Tensor cat = Tensor::host_from<int64_t>({4, 2}, {0, 1, 2, 3, 4, 7, 1, 6});  // 7: row 2, table 1
  Tensor logits;
  EXPECT_NO_THROW(logits = m.forward(dense, cat, Mode::Train, 0));
  const std::string what = test::error_of_kind(ErrorKind::Data, [&] { be->check_deferred(); });
  EXPECT_EQ(what,
            "embedding id 7 in table 'c1' (#1), sample 2 (index position 6) is outside the table's "
            "rows [0, 7) (id policy 'error') (embedding_bag call 1 on cuda:0, found by its "
            "deferred check)");
}

}  // namespace
}  // namespace tessera::emb

#endif  // TESSERA_CUDA_EMULATION
