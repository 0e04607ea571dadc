// Host round trips of the device embedding-bag ops per batch (issue 17 item 4, the embedding
// part), counted by the emulated CUDA runtime (cuda/emu/runtime_counters.h): resolve sets its
// validation flags on the device (no upload) and reads them back once, and more only when an id
// was out of range; the fused backward + update reads nothing back beyond what the sort needs
// (the host fallback of the emulation build copies the keys out; CUB on a GPU nothing), since the
// kernels take the number of touched rows from device memory.
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <memory>
#include <string>
#include <vector>

#include "cuda/emu/runtime_counters.h"
#include "embeddings/collection.h"
#include "embeddings/device_segments.h"
#include "host/backend/backend.h"

namespace tessera::emb {
namespace {

Backend& emu() {
  static std::unique_ptr<Backend> b = make_backend("cuda-emu");
  return *b;
}

std::vector<TableSpec> specs() {
  return {{"a", 10, 4}, {"w", 6, 3, Pooling::Mean, IdPolicy::WarnClamp}};
}

// Two tables, three samples; `bad` puts id 9 (rows 6) in the WarnClamp table.
Bags device_bags(bool bad) {
  const std::vector<std::vector<std::vector<int64_t> > > ids{{{1, 2}, {3}, {1, 9}},
                                                             {{0}, {bad ? 9 : 5, 1}, {}}};
  return bags_to(emu(), make_host_bags(ids));
}

bool host_sort() {
  return sort_segments_path().rfind("host fallback", 0) == 0;
}

TEST(EmuBagRoundTrips, ResolveUploadsNothingAndReadsTheFlagsOnce) {
  EmbeddingCollection ed(specs(), emu(), CollectionOptions{});
  const Bags first = device_bags(false), good = device_bags(false), bad = device_bags(true);
  Tensor out;
  ed.forward(first, out);  // uploads the layout's meta once
  emu::reset_runtime_counters();
  ed.forward(good, out);
  emu::RuntimeCounters c = emu::runtime_counters();
  EXPECT_EQ(c.h2d_copies, 0u) << c.describe();
  EXPECT_EQ(c.d2h_copies, 1u) << c.describe();
  // A clamped id: the policy also fetches the batch's ids and offsets to name it.
  emu::reset_runtime_counters();
  ed.forward(bad, out);
  c = emu::runtime_counters();
  EXPECT_EQ(c.h2d_copies, 0u) << c.describe();
  EXPECT_EQ(c.d2h_copies, 3u) << c.describe();
}

TEST(EmuBagRoundTrips, TheFusedStepReadsNoCountBack) {
  CollectionOptions opts;
  opts.optimizer.kind = SparseOptimizer::RowwiseAdagrad;
  EmbeddingCollection ed(specs(), emu(), opts);
  const Bags bags = device_bags(false);
  Tensor out;
  ed.forward(bags, out);
  const Tensor dout = emu().to_device(Tensor::host({3, ed.layout().out_dim()}));
  emu::reset_runtime_counters();
  ed.backward_and_update(dout);
  emu::RuntimeCounters c = emu::runtime_counters();
  // The host fallback copies the keys out and the segments and count in; CUB copies nothing.
  EXPECT_EQ(c.d2h_copies, host_sort() ? 1u : 0u) << sort_segments_path() << "\n" << c.describe();
  // backward() returns U on the host: on CUB one read of the count, which the host fallback
  // already knows.
  emu::reset_runtime_counters();
  const SparseGrad g = ed.backward(dout);
  c = emu::runtime_counters();
  EXPECT_EQ(c.d2h_copies, 1u) << sort_segments_path() << "\n" << c.describe();
  EXPECT_EQ(g.count, 7);  // rows 1, 2, 3, 9 of "a"; 0, 5, 1 of "w"
}

}  // namespace
}  // namespace tessera::emb

#endif  // TESSERA_CUDA_EMULATION
