// The cuDNN RNN stand-in of the emulation build (cuda/emu/include/cudnn_rnn_standin.h;
// cuda/emu/standins/cudnn_rnn*.cpp): the LSTM through the stand-in API, set up as
// cuda/cudnn_lstm.cpp sets it up, against the host backend's LSTM (forward, backward data, the
// added weight gradients; uni- and bidirectional, two layers), the weight space's own layout, the
// device sequence lengths read when the work runs, and the report. Every rule's negative case:
// tests/emu_standin_cudnn_rnn_rules_test.cpp.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/emu_standin_cudnn_rnn_fixture.h"

namespace tessera::emu_test::rnn {
namespace {

void expect_matches_host(const Dims& dims) {
  Lstm l(dims);
  const HostResult want = host_lstm(l);
  std::fill(l.y.data(), l.y.data() + l.y_count(), NAN);
  ASSERT_EQ(l.forward(CUDNN_FWD_MODE_TRAINING)(), CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
  EXPECT_TRUE(std::isnan(l.y[0])) << "the forward ran at the call, not on the handle's stream";
  ASSERT_EQ(l.backward_data()(), CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
  std::fill(l.dweights.data(), l.dweights.data() + l.dweights.size(), 1.f);  // ADD keeps the 1s
  ASSERT_EQ(l.backward_weights()(), CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
  sync();
  expect_near(download(l.y, l.y_count()), want.y, "y");
  expect_near(download(l.hy, l.state_count()), want.hn, "hy");
  expect_near(download(l.cy, l.state_count()), want.cn, "cy");
  expect_near(download(l.dx, l.x_count()), want.dx, "dx");
  expect_near(download(l.dhx, l.state_count()), want.dh0, "dhx");
  expect_near(download(l.dcx, l.state_count()), want.dc0, "dcx");
  std::vector<float> dw(l.weight_count(), 0.f);
  l.convert(dw, l.dweights.data(), false);
  std::vector<float> want_dw = want.dw;
  for (float& v : want_dw) v += 1.f;
  expect_near(dw, want_dw, "dweights (added to 1)");

  // Inference: without a reserve space, and none asked for.
  EXPECT_EQ(l.reserve_infer, 0u);
  std::fill(l.y.data(), l.y.data() + l.y_count(), 0.f);
  ASSERT_EQ(l.forward(CUDNN_FWD_MODE_INFERENCE)(), CUDNN_STATUS_SUCCESS)
      << emu::last_rule_failure();
  sync();
  expect_near(download(l.y, l.y_count()), want.inference_y, "inference y");
}

TEST(EmuStandinCudnnRnn, UnidirectionalTwoLayersMatchesTheHostLstm) {
  expect_matches_host(Dims{3, 4, 2, false, 5, 3});
}

TEST(EmuStandinCudnnRnn, BidirectionalTwoLayersMatchesTheHostLstm) {
  expect_matches_host(Dims{3, 4, 2, true, 4, 2});
}

TEST(EmuStandinCudnnRnn, DropoutBetweenLayersIsTheDropoutDescriptors) {
  // cudnnSetDropoutDescriptor's probability and seed reach the LSTM (the host's masks: CUDA
  // masks differ, lstm_types.h); a wrong probability or seed changes y.
  expect_matches_host(Dims{3, 4, 2, false, 4, 3, 0.4f});
}

TEST(EmuStandinCudnnRnn, WeightSpaceIsNotTheCanonicalLayout) {
  // A caller that skips cudnnGetRNNWeightParams and copies canonical weights in one piece gets
  // different numbers: the blocks are reordered and 64-byte aligned.
  Lstm l(Dims{3, 4, 1, false, 2, 2});
  EXPECT_GT(l.weight_bytes, l.weight_count() * 4);
  std::vector<float> straight(l.weights.data(), l.weights.data() + l.weight_count());
  EXPECT_NE(straight, l.canonical);
  std::vector<float> back(l.weight_count(), 0.f);
  l.convert(back, l.weights.data(), false);
  EXPECT_EQ(back, l.canonical);
}

TEST(EmuStandinCudnnRnn, PackedFullLengthDataNeedsNoPaddedIo) {
  // The padded-I/O rule is about the unpacked layouts only: SEQ_MAJOR_PACKED with every sequence
  // full length is the same memory and runs with auxFlags CUDNN_RNN_PADDED_IO_DISABLED.
  Lstm l(Dims{3, 4, 2, false, 3, 2});
  const HostResult want = host_lstm(l);
  cudnnRNNDescriptor_t rnn = nullptr;
  ASSERT_EQ(cudnnCreateRNNDescriptor(&rnn), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(l.set_rnn(rnn, CUDNN_RNN_PADDED_IO_DISABLED), CUDNN_STATUS_SUCCESS);
  cudnnRNNDataDescriptor_t xp =
      make_data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, 3, 2, 3, l.lengths);
  cudnnRNNDataDescriptor_t yp =
      make_data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED, 3, 2, 4, l.lengths);
  ForwardCall c = l.forward(CUDNN_FWD_MODE_TRAINING);
  c.rnn = rnn;
  c.x_desc = xp;
  c.y_desc = yp;
  EXPECT_EQ(c(), CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
  sync();
  expect_near(download(l.y, l.y_count()), want.y, "y");
  cudnnDestroyRNNDataDescriptor(yp);
  cudnnDestroyRNNDataDescriptor(xp);
  cudnnDestroyRNNDescriptor(rnn);
}

// devSeqLengths is read when the work runs (cuDNN's kernels read it on the device): lengths that
// differ from xDesc's are a device fault at the next synchronisation, naming the rule.
template <typename Call>
void expect_device_lengths_fault(const Call& call, const char* entry) {
  bool faulted = false;
  try {
    const cudnnStatus_t st = call();
    EXPECT_EQ(st, CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
    faulted = cudaDeviceSynchronize() != cudaSuccess;
  } catch (const Error& e) {
    faulted = true;
    EXPECT_NE(std::string(e.what()).find("devSeqLengths"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(faulted) << entry;
  expect_refused(CUDNN_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS, entry,
                 "devSeqLengths holds xDesc's seqLengthArray");
}

TEST(EmuStandinCudnnRnn, DeviceSequenceLengthsMustCopyTheDescriptors) {
  Lstm l(Dims{3, 4, 2, false, 3, 2});
  l.seq[1] = 2;
  expect_device_lengths_fault(l.forward(CUDNN_FWD_MODE_INFERENCE), "cudnnRNNForward");
  l.seq[1] = 3;
  ASSERT_EQ(l.forward(CUDNN_FWD_MODE_TRAINING)(), CUDNN_STATUS_SUCCESS);
  sync();
  l.seq[0] = 1;
  expect_device_lengths_fault(l.backward_data(), "cudnnRNNBackwardData_v8");
  expect_device_lengths_fault(l.backward_weights(), "cudnnRNNBackwardWeights_v8");
}

TEST(EmuStandinCudnnRnn, ReportListsTheEntryPointsAndRules) {
  Lstm l(Dims{3, 4, 1, false, 2, 2});
  ASSERT_EQ(l.forward(CUDNN_FWD_MODE_INFERENCE)(), CUDNN_STATUS_SUCCESS);
  sync();
  const std::string report = emu::format_standin_report();
  for (const char* entry : {"cudnnRNNForward", "cudnnSetRNNDescriptor_v8",
                            "cudnnSetRNNDataDescriptor", "cudnnGetRNNWeightParams"})
    EXPECT_NE(report.find(std::string("cuDNN ") + entry + ":"), std::string::npos) << entry;
  EXPECT_NE(report.find(kPaddedIoRule), std::string::npos) << report;
}

}  // namespace
}  // namespace tessera::emu_test::rnn

#endif  // TESSERA_CUDA_EMULATION
