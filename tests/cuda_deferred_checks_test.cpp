// The CUDA backend's caching allocator and deferred input checks, end to end on a GPU (skipped,
// as a GPU skip, where none is usable): Backend::empty reuses cached blocks, a bad embedding id
// or class label does not stop the op that got it but is raised by check_deferred(),
// synchronize() or to_host() with the host backend's message plus the op and its call, and so
// is a bad id in a host batch of embedding bags staged by the device bag ops.
// The bad inputs here stay inside the allocation the kernels read (the row just past a 5-row
// table lies in the same 512-byte block), since those kernels still read what the id points at.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "embeddings/collection.h"
#include "host/backend/backend.h"
#include "tests/support/error_of.h"
#include "tests/support/gpu_skips.h"

namespace tessera {
namespace {

std::unique_ptr<Backend> cuda_or_skip_reason(std::string* why) {
  if (!cuda_available(why)) return nullptr;
  return make_backend("cuda");
}

TEST(CudaDeviceMemory, FreedTemporariesComeBackFromTheCache) {
  std::string why;
  auto be = cuda_or_skip_reason(&why);
  if (!be) TESSERA_NEEDS_GPU_SKIP(why);
  { Tensor warm = be->empty({1000, 3}); }
  const DeviceMemoryStats before = be->memory_stats().value();
  for (int step = 0; step < 100; ++step) {
    Tensor a = be->empty({1000, 3});
    Tensor b = be->empty({257}, DType::I64);
  }
  const DeviceMemoryStats after = be->memory_stats().value();
  EXPECT_EQ(after.raw_allocations, before.raw_allocations + 1) << "only the i64 class is new";
  EXPECT_EQ(after.cache_hits, before.cache_hits + 199);
  EXPECT_EQ(after.raw_frees, 0);
  EXPECT_EQ(after.bytes_in_use, 0);
  EXPECT_GE(after.peak_bytes_in_use, 12288 + 2560);
}

TEST(CudaDeferredChecks, ABadIdIsRaisedLaterNamingTheOpAndItsCall) {
  std::string why;
  auto be = cuda_or_skip_reason(&why);
  if (!be) TESSERA_NEEDS_GPU_SKIP(why);
  Tensor table = be->to_device(Tensor::host({5, 4}));
  Tensor good = be->to_device(Tensor::host_from<int64_t>({3}, {0, 4, 2}));
  Tensor bad = be->to_device(Tensor::host_from<int64_t>({6}, {0, 1, 4, 5, 2, 3}));
  Tensor out3 = be->empty({3, 4}), out6 = be->empty({6, 4});
  be->embedding_forward(table, good, out3);
  EXPECT_NO_THROW(be->embedding_forward(table, bad, out6)) << "the op must not wait for its check";
  const std::string what = test::error_of_kind(ErrorKind::Data, [&] { be->check_deferred(); });
  EXPECT_EQ(what,
            "embedding id 5 at position 3 is outside the table's rows [0, 5) (embedding_forward "
            "call 2 on cuda:0, found by its deferred check)");
  EXPECT_NO_THROW(be->check_deferred()) << "an error is raised once";
  EXPECT_NO_THROW(be->synchronize());
}

TEST(CudaDeferredChecks, ABadLabelIsRaisedBySynchronizeAndToHost) {
  std::string why;
  auto be = cuda_or_skip_reason(&why);
  if (!be) TESSERA_NEEDS_GPU_SKIP(why);
  Tensor z = be->to_device(Tensor::host({3, 3}));
  Tensor labels = be->to_device(Tensor::host_from<int32_t>({3}, {0, 3, 1}));
  Tensor loss = be->empty({3}), g = be->empty({3, 3});
  be->softmax_xent(z, labels, 1.f, loss, g);
  EXPECT_EQ(test::error_of_kind(ErrorKind::Data, [&] { be->synchronize(); }),
            "class label 3 at row 1 is outside [0, 3) (softmax_xent call 1 on cuda:0, found by "
            "its deferred check)");
  be->softmax_xent(z, labels, 1.f, loss, g);
  EXPECT_NE(test::error_of_kind(ErrorKind::Data, [&] { (void)be->to_host(loss); })
                .find("(softmax_xent call 2 on cuda:0"),
            std::string::npos);
}

// A host batch staged by the device bag ops has its id check deferred too: the forward and the
// update run, and the backend's next check raises the host ops' message plus the batch.
TEST(CudaDeferredChecks, AStagedBagBatchWithABadIdIsRaisedLaterNamingTableAndBatch) {
  std::string why;
  auto be = cuda_or_skip_reason(&why);
  if (!be) TESSERA_NEEDS_GPU_SKIP(why);
  emb::EmbeddingCollection bags(std::vector<emb::TableSpec>{{"a", 5, 4}, {"b", 3, 4}}, *be, {});
  Tensor out;
  bags.forward_host_bags(emb::make_host_bags({{{0, 4}, {1}}, {{2}, {1, 3}}}), out);
  EXPECT_NO_THROW(bags.backward_and_update(out)) << "the batch must not wait for its check";
  EXPECT_EQ(test::error_of_kind(ErrorKind::Data, [&] { be->check_deferred(); }),
            "embedding id 3 in table 'b' (#1), sample 1 (index position 5) is outside the "
            "table's rows [0, 3) (id policy 'error') (embedding_bag call 1 on cuda:0, found by "
            "its deferred check)");
  EXPECT_NO_THROW(be->synchronize());
}

}  // namespace
}  // namespace tessera
