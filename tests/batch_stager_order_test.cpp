// BatchStager's hand-over (host/backend/batch_stager.h): a batch's compute waits for its own
// upload and nothing later. A fake engine models a device with one compute queue and one copy
// queue: hand_over(slot) orders the compute queue after that slot's latest upload, as
// cudaStreamWaitEvent does for the CUDA engine (cuda/pinned_stager.cpp). The stager used to
// leave the wait to upload(), so compute k waited for copy k+1 whenever k+1 was staged first.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/batch_stager.h"
#include "host/core/error.h"

namespace tessera {
namespace {

struct Device {
  std::vector<int64_t> slot_upload;  // per slot: the upload number it last received (-1: none)
  int64_t uploads = 0;
  int64_t compute_after = -1;  // the compute queue is ordered after uploads [0, compute_after]
  std::vector<std::string> calls;
};

class OrderEngine final : public StagingEngine {
 public:
  OrderEngine(Device& d, int slots) : d_(d) { d_.slot_upload.assign(slots, -1); }
  std::vector<Tensor> upload(int slot, const std::vector<Tensor>& src, int64_t rows) override {
    d_.slot_upload[slot] = d_.uploads++;
    d_.calls.push_back("upload " + std::to_string(slot));
    std::vector<Tensor> out;
    for (const Tensor& t : src) out.push_back(t.rows(0, rows));
    return out;
  }
  void hand_over(int slot) override {
    d_.calls.push_back("hand_over " + std::to_string(slot));
    // A wait on the copy queue orders after everything up to that upload.
    d_.compute_after = std::max(d_.compute_after, d_.slot_upload[slot]);
  }
  void mark_consumed(int slot) override { d_.calls.push_back("consumed " + std::to_string(slot)); }
  void wait_consumed(int) override {}

 private:
  Device& d_;
};

const std::vector<StagedTensorSpec> kSpecs = {{{4}, DType::F32}};

std::vector<Tensor> batch() {
  return {Tensor::host({4})};
}

// What "queue batch s's compute" checks: the compute queue waits for s's upload, not a later one.
void expect_compute_waits_exactly_for(const Device& d, const BatchStager::Staged& s,
                                      int64_t upload_of_s) {
  EXPECT_EQ(d.compute_after, upload_of_s)
      << "compute of batch " << s.sequence << " is ordered after upload " << d.compute_after;
}

TEST(BatchStagerOrder, ComputeOfABatchWaitsForItsOwnUploadNotTheLookAhead) {
  Device d;
  BatchStager st(3, kSpecs, std::make_unique<OrderEngine>(d, 3));
  // The trainer's pattern: stage k+1 before queuing k's compute, then release k.
  BatchStager::Staged cur = st.stage(batch(), 4);
  for (int k = 0; k < 8; ++k) {
    BatchStager::Staged ahead = st.stage(batch(), 4);
    expect_compute_waits_exactly_for(d, cur, cur.sequence);  // queue compute k now
    st.release(cur);
    cur = ahead;
  }
  expect_compute_waits_exactly_for(d, cur, cur.sequence);
  st.release(cur);
  // Each batch handed over exactly once, after its upload and after the previous release.
  int hand_overs = 0;
  for (const std::string& c : d.calls) hand_overs += c.rfind("hand_over", 0) == 0;
  EXPECT_EQ(hand_overs, 9);
  ASSERT_GE(d.calls.size(), 5u);
  EXPECT_EQ(d.calls[0], "upload 0");
  EXPECT_EQ(d.calls[1], "hand_over 0");
  EXPECT_EQ(d.calls[2], "upload 1");
  EXPECT_EQ(d.calls[3], "consumed 0");
  EXPECT_EQ(d.calls[4], "hand_over 1");
}

TEST(BatchStagerOrder, ABatchStagedAfterItsPredecessorsReleaseIsHandedOverAtOnce) {
  Device d;
  BatchStager st(2, kSpecs, std::make_unique<OrderEngine>(d, 2));
  for (int k = 0; k < 5; ++k) {  // no look-ahead: stage, compute, release
    BatchStager::Staged s = st.stage(batch(), 4);
    expect_compute_waits_exactly_for(d, s, k);
    st.release(s);
  }
}

TEST(BatchStagerOrder, TwoBatchesAheadAreHandedOverOneReleaseAtATime) {
  Device d;
  BatchStager st(3, kSpecs, std::make_unique<OrderEngine>(d, 3));
  BatchStager::Staged a = st.stage(batch(), 4);
  BatchStager::Staged b = st.stage(batch(), 4);
  BatchStager::Staged c = st.stage(batch(), 4);
  expect_compute_waits_exactly_for(d, a, 0);
  st.release(a);
  expect_compute_waits_exactly_for(d, b, 1);
  st.release(b);
  expect_compute_waits_exactly_for(d, c, 2);
  st.release(c);
  BatchStager::Staged e = st.stage(batch(), 4);  // slot 0 again, after c's release
  EXPECT_EQ(e.slot, 0);
  expect_compute_waits_exactly_for(d, e, 3);
  st.release(e);
}

}  // namespace
}  // namespace tessera
