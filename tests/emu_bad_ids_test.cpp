// The embedding and softmax cross-entropy kernels on ids and labels that have not been checked
// yet. The CUDA Backend queues its id / label check and reads the flag later
// (Backend::check_deferred), so the op's own kernel runs on a batch holding a bad value before
// anyone knows. These tests launch the kernels directly on emulated device memory with such
// values and check that nothing outside the outputs is touched and that the documented values
// come out (cuda/kernels/kernels.h): a zero row from the gather, nothing from the scatter, a NaN
// loss and a zero gradient row from softmax_xent. An access outside an allocation is caught by
// the emulator's guard bytes (a write: the launch throws a tessera::Error naming the kernel) or,
// under AddressSanitizer, reported at the access itself (reads too).
#include <gtest/gtest.h>

// Compiled only into the emulation build (-DTESSERA_CUDA_EMULATION=ON -DTESSERA_WITH_CUDA=OFF:
// tests/CMakeLists.txt leaves tests/emu_*_test.cpp out of the others).
#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/kernels/kernels.h"

namespace tessera {
namespace {

using emu::DeviceArray;
using emu::ElementKind;

constexpr int64_t kRows = 5;

// Ids with every kind of bad value between good ones: one past the last row, negative, far
// beyond the table (an unchecked kernel would index gigabytes away) and the extremes.
std::vector<int64_t> mixed_ids() {
  return {2,
          kRows,
          -1,
          0,
          kRows + 100,
          int64_t{1} << 40,
          4,
          std::numeric_limits<int64_t>::min(),
          std::numeric_limits<int64_t>::max(),
          2};
}

bool id_ok(int64_t id) {
  return id >= 0 && id < kRows;
}

DeviceArray<int64_t> device_ids(const std::vector<int64_t>& v) {
  DeviceArray<int64_t> ids(v.size(), ElementKind::I64, "ids");
  for (size_t i = 0; i < v.size(); ++i) ids[i] = v[i];
  return ids;
}

uint32_t bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

class EmuBadIds : public ::testing::TestWithParam<int64_t> {};

TEST_P(EmuBadIds, GatherWritesZeroRowsAndReadsNothingOutsideTheTable) {
  const int64_t dim = GetParam();
  const std::vector<int64_t> host_ids = mixed_ids();
  const int64_t n = static_cast<int64_t>(host_ids.size());
  DeviceArray<float> table(static_cast<size_t>(kRows * dim), ElementKind::F32, "table");
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(i) * 0.25f + 1.f;
  DeviceArray<int64_t> ids = device_ids(host_ids);
  DeviceArray<float> out(static_cast<size_t>(n * dim), ElementKind::F32, "out");
  for (size_t i = 0; i < out.size(); ++i) out[i] = std::numeric_limits<float>::quiet_NaN();

  ASSERT_NO_THROW(
      cuda::launch_embedding_forward(table.data(), kRows, ids.data(), out.data(), n, dim, nullptr));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c) {
      const float got = out[static_cast<size_t>(i * dim + c)];
      const int64_t id = host_ids[static_cast<size_t>(i)];
      const float want = id_ok(id) ? table[static_cast<size_t>(id * dim + c)] : 0.f;
      EXPECT_EQ(bits(got), bits(want)) << "dim " << dim << ", id " << id << ", column " << c;
    }
  for (size_t i = 0; i < table.size(); ++i)
    ASSERT_EQ(table[i], static_cast<float>(i) * 0.25f + 1.f) << "the gather changed the table";
}

TEST_P(EmuBadIds, ScatterSkipsBadIdsAndWritesNothingOutsideTheTable) {
  const int64_t dim = GetParam();
  const std::vector<int64_t> host_ids = mixed_ids();
  const int64_t n = static_cast<int64_t>(host_ids.size());
  DeviceArray<int64_t> ids = device_ids(host_ids);
  DeviceArray<float> dout(static_cast<size_t>(n * dim), ElementKind::F32, "dout");
  DeviceArray<float> dtable(static_cast<size_t>(kRows * dim), ElementKind::F32, "dtable");
  // Small integers: every sum below is exact, whatever order the atomics run in.
  std::vector<float> expect(dtable.size());
  for (size_t k = 0; k < dtable.size(); ++k) dtable[k] = expect[k] = static_cast<float>(k % 5);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c) {
      const float g = static_cast<float>((i * 3 + c) % 7) - 3.f;
      dout[static_cast<size_t>(i * dim + c)] = g;
      const int64_t id = host_ids[static_cast<size_t>(i)];
      if (id_ok(id)) expect[static_cast<size_t>(id * dim + c)] += g;
    }

  // The guard bytes around dtable (or ASan) catch a write for id -1 or kRows; ids further out
  // would land in other memory or fault.
  ASSERT_NO_THROW(cuda::launch_embedding_backward(ids.data(), dout.data(), dtable.data(), kRows, n,
                                                  dim, nullptr));
  for (size_t k = 0; k < expect.size(); ++k)
    EXPECT_EQ(dtable[k], expect[k]) << "dim " << dim << ", element " << k;
}

// dim 4 and 8 take the float4 gather, 1, 3 and 13 the scalar one.
INSTANTIATE_TEST_SUITE_P(Dims, EmuBadIds, ::testing::Values(1, 3, 4, 8, 13));

struct XentRun {
  std::vector<float> loss;
  std::vector<float> dlogits;
  std::vector<float> logits_after;
};

// Runs softmax_xent on logits [n, classes] (a fixed pattern) with `labels`; dlogits aliases the
// logits when `aliased`.
float pattern_logit(size_t k) {
  return static_cast<float>((k * 37) % 23) * 0.3f - 3.f;
}

// log-sum-exp of row i minus its logit at `label`, in double.
double host_xent_loss(size_t i, int64_t classes, int32_t label) {
  const size_t c = static_cast<size_t>(classes);
  double mx = -1e30;
  for (size_t j = 0; j < c; ++j) mx = std::max(mx, static_cast<double>(pattern_logit(i * c + j)));
  double sum = 0.0;
  for (size_t j = 0; j < c; ++j) sum += std::exp(pattern_logit(i * c + j) - mx);
  return mx + std::log(sum) - pattern_logit(i * c + static_cast<size_t>(label));
}

XentRun run_xent(const std::vector<int32_t>& host_labels, int64_t classes, bool aliased) {
  const int64_t n = static_cast<int64_t>(host_labels.size());
  const size_t count = static_cast<size_t>(n * classes);
  DeviceArray<float> logits(count, ElementKind::F32, "logits");
  for (size_t k = 0; k < count; ++k) logits[k] = pattern_logit(k);
  DeviceArray<int32_t> labels(host_labels.size(), ElementKind::I32, "labels");
  for (size_t i = 0; i < host_labels.size(); ++i) labels[i] = host_labels[i];
  DeviceArray<float> loss(static_cast<size_t>(n), ElementKind::F32, "loss");
  DeviceArray<float> separate(count, ElementKind::F32, "dlogits");  // unused when aliased
  float* dlogits = aliased ? logits.data() : separate.data();
  for (size_t i = 0; i < loss.size(); ++i) loss[i] = -7.f;
  for (size_t k = 0; k < separate.size(); ++k) separate[k] = -7.f;

  const float grad_scale = 0.5f;
  EXPECT_NO_THROW(cuda::launch_softmax_xent(logits.data(), labels.data(), grad_scale, loss.data(),
                                            dlogits, n, classes, nullptr));
  XentRun r;
  r.loss.assign(loss.data(), loss.data() + n);
  r.dlogits.assign(dlogits, dlogits + count);
  r.logits_after.assign(logits.data(), logits.data() + count);
  return r;
}

void check_xent(int64_t classes, bool aliased) {
  const int32_t c = static_cast<int32_t>(classes);
  const std::vector<int32_t> labels = {
      1, c, -1, 0, std::numeric_limits<int32_t>::max(), c - 1, std::numeric_limits<int32_t>::min()};
  // The same rows with every label valid: the rows whose label was valid must come out bit for
  // bit the same (rows are independent).
  std::vector<int32_t> valid = labels;
  for (int32_t& y : valid)
    if (y < 0 || y >= c) y = 0;
  const XentRun bad = run_xent(labels, classes, aliased);
  const XentRun ref = run_xent(valid, classes, aliased);

  for (size_t i = 0; i < labels.size(); ++i) {
    const bool ok = labels[i] >= 0 && labels[i] < c;
    SCOPED_TRACE(::testing::Message() << "classes " << classes << (aliased ? ", aliased" : "")
                                      << ", row " << i << ", label " << labels[i]);
    if (ok) {
      EXPECT_EQ(bits(bad.loss[i]), bits(ref.loss[i]));
      EXPECT_NEAR(bad.loss[i], host_xent_loss(i, classes, labels[i]), 1e-4);
    } else {
      EXPECT_TRUE(std::isnan(bad.loss[i])) << bad.loss[i];
    }
    for (int64_t j = 0; j < classes; ++j) {
      const size_t k = i * static_cast<size_t>(classes) + static_cast<size_t>(j);
      if (ok)
        ASSERT_EQ(bits(bad.dlogits[k]), bits(ref.dlogits[k])) << "column " << j;
      else
        ASSERT_EQ(bits(bad.dlogits[k]), bits(0.f)) << "column " << j;
    }
  }
  if (!aliased) {
    for (size_t k = 0; k < bad.logits_after.size(); ++k)
      ASSERT_EQ(bits(bad.logits_after[k]), bits(ref.logits_after[k])) << "logits changed at " << k;
  }
}

// 5 classes: a 32-thread block, most threads idle; 300: a 256-thread block striding the row.
TEST(EmuBadLabels, SoftmaxXentGivesNanLossAndZeroGradientRows) {
  for (const int64_t classes : {int64_t{5}, int64_t{300}}) {
    check_xent(classes, /*aliased=*/false);
    check_xent(classes, /*aliased=*/true);
  }
}

}  // namespace
}  // namespace tessera

#endif  // TESSERA_CUDA_EMULATION
