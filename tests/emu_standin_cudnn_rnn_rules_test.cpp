// The cuDNN RNN stand-in's rules (cuda/emu/standins/cudnn_rnn*.cpp): for every argument rule it
// checks, a call that breaks it gets cuDNN's status, queues no work (its outputs keep their
// values), and last_rule_failure() names the entry point and the rule. The first: unpacked data
// without CUDNN_RNN_PADDED_IO_ENABLED, the defect issue 17 found in cuda/cudnn_lstm.cpp.
#include <gtest/gtest.h>

#if !defined(TESSERA_CUDA_EMULATION)
#error "emu_*_test.cpp are built only with -DTESSERA_CUDA_EMULATION=ON (cuda/emu/CMakeLists.txt)"
#else

#include <functional>
#include <string>
#include <vector>

#include "tests/emu_standin_cudnn_rnn_fixture.h"

namespace tessera::emu_test::rnn {
namespace {

struct Case {
  const char* entry;
  const char* rule;
  cudnnStatus_t status;
  std::function<cudnnStatus_t(Lstm&)> call;
};

void run_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.entry) + ": " + c.rule);
    Lstm l(Dims{3, 4, 2, true, 3, 2});
    expect_refused(c.call(l), c.status, c.entry, c.rule);
  }
}

// cudnnSetRNNDescriptor_v8 on a fresh descriptor with the fixture's arguments, one changed.
struct RnnArgs {
  cudnnRNNAlgo_t algo = CUDNN_RNN_ALGO_STANDARD;
  cudnnRNNMode_t cell = CUDNN_LSTM;
  cudnnRNNBiasMode_t bias = CUDNN_RNN_DOUBLE_BIAS;
  cudnnDirectionMode_t dir = CUDNN_BIDIRECTIONAL;
  cudnnRNNInputMode_t input_mode = CUDNN_LINEAR_INPUT;
  cudnnDataType_t type = CUDNN_DATA_FLOAT, math_prec = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  int32_t input = 3, hidden = 4, proj = 4, layers = 2;
  uint32_t aux = CUDNN_RNN_PADDED_IO_ENABLED;
};
std::function<cudnnStatus_t(Lstm&)> set_rnn_with(std::function<void(RnnArgs&)> change) {
  return [change](Lstm& l) {
    RnnArgs a;
    change(a);
    cudnnRNNDescriptor_t d = nullptr;
    EXPECT_EQ(cudnnCreateRNNDescriptor(&d), CUDNN_STATUS_SUCCESS);
    const cudnnStatus_t st = cudnnSetRNNDescriptor_v8(
        d, a.algo, a.cell, a.bias, a.dir, a.input_mode, a.type, a.math_prec, a.math, a.input,
        a.hidden, a.proj, a.layers, l.dropout, a.aux);
    cudnnDestroyRNNDescriptor(d);
    return st;
  };
}

TEST(EmuStandinCudnnRnn, SetRNNDescriptorRefusesEachBrokenRule) {
  const char* e = "cudnnSetRNNDescriptor_v8";
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM;
  run_cases({
      {e, "algo is a cudnnRNNAlgo_t", bad,
       set_rnn_with([](RnnArgs& a) { a.algo = bad_enum<cudnnRNNAlgo_t>(9); })},
      {e, "cellMode is a cudnnRNNMode_t", bad,
       set_rnn_with([](RnnArgs& a) { a.cell = bad_enum<cudnnRNNMode_t>(9); })},
      {e, "biasMode is a cudnnRNNBiasMode_t", bad,
       set_rnn_with([](RnnArgs& a) { a.bias = bad_enum<cudnnRNNBiasMode_t>(9); })},
      {e, "dirMode is a cudnnDirectionMode_t", bad,
       set_rnn_with([](RnnArgs& a) { a.dir = bad_enum<cudnnDirectionMode_t>(9); })},
      {e, "inputMode is a cudnnRNNInputMode_t", bad,
       set_rnn_with([](RnnArgs& a) { a.input_mode = bad_enum<cudnnRNNInputMode_t>(9); })},
      {e, "dataType is FLOAT, DOUBLE or HALF", bad,
       set_rnn_with([](RnnArgs& a) { a.type = a.math_prec = CUDNN_DATA_INT8; })},
      {e, "mathPrec is dataType", bad,
       set_rnn_with([](RnnArgs& a) { a.math_prec = CUDNN_DATA_DOUBLE; })},
      {e, "mathType is a cudnnMathType_t", bad,
       set_rnn_with([](RnnArgs& a) { a.math = bad_enum<cudnnMathType_t>(9); })},
      {e, "inputSize, hiddenSize and numLayers > 0", bad,
       set_rnn_with([](RnnArgs& a) { a.layers = 0; })},
      {e, "0 < projSize <= hiddenSize", bad, set_rnn_with([](RnnArgs& a) { a.proj = 5; })},
      {e, "CUDNN_SKIP_INPUT needs inputSize == hiddenSize", bad,
       set_rnn_with([](RnnArgs& a) { a.input_mode = CUDNN_SKIP_INPUT; })},
      {e, "auxFlags holds only CUDNN_RNN_PADDED_IO_* bits", bad,
       set_rnn_with([](RnnArgs& a) { a.aux = 1u << 3; })},
      {e, "stand-in computes LSTM, CUDNN_RNN_DOUBLE_BIAS", CUDNN_STATUS_NOT_SUPPORTED,
       set_rnn_with([](RnnArgs& a) { a.cell = CUDNN_GRU; })},
      {e, "dataType is CUDNN_DATA_FLOAT", CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
       set_rnn_with([](RnnArgs& a) { a.type = a.math_prec = CUDNN_DATA_DOUBLE; })},
      {e, "rnnDesc is an RNN descriptor created and not destroyed", bad,
       [](Lstm& l) {
         cudnnRNNDescriptor_t d = nullptr;
         cudnnCreateRNNDescriptor(&d);
         cudnnDestroyRNNDescriptor(d);
         return l.set_rnn(d, CUDNN_RNN_PADDED_IO_ENABLED);
       }},
      {e, "dropoutDesc is a dropout descriptor that was set", bad,
       [](Lstm& l) {
         cudnnDropoutDescriptor_t unset = nullptr;
         cudnnCreateDropoutDescriptor(&unset);
         std::swap(unset, l.dropout);
         const cudnnStatus_t st = l.set_rnn(l.rnn, CUDNN_RNN_PADDED_IO_ENABLED);
         std::swap(unset, l.dropout);
         cudnnDestroyDropoutDescriptor(unset);
         return st;
       }},
  });
}

TEST(EmuStandinCudnnRnn, DescriptorLifetimeAndDropoutRulesAreChecked) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, null = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  auto set_dropout = [](float p, size_t bytes, bool host_states, bool null_states) {
    return [=](Lstm& l) {
      std::vector<unsigned char> host(bytes);
      void* states = null_states   ? nullptr
                     : host_states ? static_cast<void*>(host.data())
                                   : static_cast<void*>(l.states.data());
      return cudnnSetDropoutDescriptor(l.dropout, l.handle, p, states, bytes, 1);
    };
  };
  const size_t full = 4096;
  run_cases({
      {"cudnnCreateRNNDescriptor", "the descriptor pointer is not NULL", null,
       [](Lstm&) { return cudnnCreateRNNDescriptor(nullptr); }},
      {"cudnnCreateRNNDataDescriptor", "the descriptor pointer is not NULL", null,
       [](Lstm&) { return cudnnCreateRNNDataDescriptor(nullptr); }},
      {"cudnnCreateDropoutDescriptor", "the descriptor pointer is not NULL", null,
       [](Lstm&) { return cudnnCreateDropoutDescriptor(nullptr); }},
      {"cudnnDestroyRNNDescriptor", "created and not destroyed", bad,
       [](Lstm&) {
         cudnnRNNDescriptor_t d = nullptr;
         cudnnCreateRNNDescriptor(&d);
         cudnnDestroyRNNDescriptor(d);
         return cudnnDestroyRNNDescriptor(d);
       }},
      {"cudnnDestroyRNNDataDescriptor", "created and not destroyed", bad,
       [](Lstm&) {
         cudnnRNNDataDescriptor_t d = nullptr;
         cudnnCreateRNNDataDescriptor(&d);
         cudnnDestroyRNNDataDescriptor(d);
         return cudnnDestroyRNNDataDescriptor(d);
       }},
      {"cudnnDestroyDropoutDescriptor", "created and not destroyed", bad,
       [](Lstm&) {
         cudnnDropoutDescriptor_t d = nullptr;
         cudnnCreateDropoutDescriptor(&d);
         cudnnDestroyDropoutDescriptor(d);
         return cudnnDestroyDropoutDescriptor(d);
       }},
      {"cudnnDropoutGetStatesSize", "sizeInBytes is not NULL", null,
       [](Lstm& l) { return cudnnDropoutGetStatesSize(l.handle, nullptr); }},
      {"cudnnDropoutGetStatesSize", "handle was created by cudnnCreate", bad,
       [](Lstm&) {
         size_t bytes = 0;
         return cudnnDropoutGetStatesSize(nullptr, &bytes);
       }},
      {"cudnnSetDropoutDescriptor", "dropout is a probability in [0, 1)", bad,
       set_dropout(1.f, full, false, false)},
      {"cudnnSetDropoutDescriptor", "stateSizeInBytes >= cudnnDropoutGetStatesSize", bad,
       set_dropout(0.1f, full - 1, false, false)},
      {"cudnnSetDropoutDescriptor", "states is not NULL", null,
       set_dropout(0.1f, full, false, true)},
      {"cudnnSetDropoutDescriptor", "states points to device memory", bad,
       set_dropout(0.1f, full, true, false)},
      {"cudnnSetDropoutDescriptor", "dropoutDesc is a dropout descriptor created and not", bad,
       [](Lstm& l) {
         cudnnDropoutDescriptor_t d = nullptr;
         cudnnCreateDropoutDescriptor(&d);
         cudnnDestroyDropoutDescriptor(d);
         return cudnnSetDropoutDescriptor(d, l.handle, 0.f, l.states.data(), 4096, 1);
       }},
  });
}

// cudnnSetRNNDataDescriptor with the fixture's x arguments, one changed.
struct DataArgs {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnRNNDataLayout_t layout = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  int max_seq = 3, batch = 2, vector = 3;
  std::vector<int> lengths{3, 3};
  bool null_lengths = false;
};
std::function<cudnnStatus_t(Lstm&)> set_data_with(std::function<void(DataArgs&)> change) {
  return [change](Lstm& l) {
    DataArgs a;
    change(a);
    return cudnnSetRNNDataDescriptor(l.x_desc, a.type, a.layout, a.max_seq, a.batch, a.vector,
                                     a.null_lengths ? nullptr : a.lengths.data(), nullptr);
  };
}

TEST(EmuStandinCudnnRnn, SetRNNDataDescriptorRefusesEachBrokenRule) {
  const char* e = "cudnnSetRNNDataDescriptor";
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM;
  run_cases({
      {e, "dataType is FLOAT, DOUBLE or HALF", bad,
       set_data_with([](DataArgs& a) { a.type = CUDNN_DATA_INT32; })},
      {e, "layout is a cudnnRNNDataLayout_t", bad,
       set_data_with([](DataArgs& a) { a.layout = bad_enum<cudnnRNNDataLayout_t>(7); })},
      {e, "maxSeqLength, batchSize and vectorSize > 0", bad,
       set_data_with([](DataArgs& a) { a.vector = 0; })},
      {e, "seqLengthArray is not NULL", CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
       set_data_with([](DataArgs& a) { a.null_lengths = true; })},
      {e, "every seqLengthArray entry is in [1, maxSeqLength] (0 is refused)", bad,
       set_data_with([](DataArgs& a) {
         a.lengths = {3, 0};
       })},
      {e, "every seqLengthArray entry is in [1, maxSeqLength]", bad, set_data_with([](DataArgs& a) {
         a.lengths = {4, 3};
       })},
      {e, "a PACKED layout's seqLengthArray is non-increasing", bad, set_data_with([](DataArgs& a) {
         a.layout = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED;
         a.lengths = {2, 3};
       })},
      {e, "rnnDataDesc is an RNN data descriptor created and not destroyed", bad,
       [](Lstm&) {
         cudnnRNNDataDescriptor_t d = nullptr;
         cudnnCreateRNNDataDescriptor(&d);
         cudnnDestroyRNNDataDescriptor(d);
         const int lengths[1] = {1};
         return cudnnSetRNNDataDescriptor(d, CUDNN_DATA_FLOAT,
                                          CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, 1, 1, 1,
                                          lengths, nullptr);
       }},
  });
}

TEST(EmuStandinCudnnRnn, SizeQueriesAndWeightParamsRefuseEachBrokenRule) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, null = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  const char* ws = "cudnnGetRNNWeightSpaceSize";
  const char* tmp = "cudnnGetRNNTempSpaceSizes";
  const char* wp = "cudnnGetRNNWeightParams";
  auto temp_sizes = [](std::function<cudnnRNNDataDescriptor_t(Lstm&, Owned&)> x_desc,
                       bool unpadded = false, int mode = CUDNN_FWD_MODE_TRAINING) {
    return [=](Lstm& l) {
      Owned own;
      size_t work = 0, reserve = 0;
      return cudnnGetRNNTempSpaceSizes(l.handle, unpadded ? own.rnn_without_padded_io(l) : l.rnn,
                                       bad_enum<cudnnForwardMode_t>(mode), x_desc(l, own), &work,
                                       &reserve);
    };
  };
  auto fixture_x = [](Lstm& l, Owned&) { return l.x_desc; };
  auto params = [](int pseudo, int lin, size_t shrink, bool dead_m, bool dead_b) {
    return [=](Lstm& l) {
      cudnnTensorDescriptor_t m = make_tensor({1, 1, 1}, {1, 1, 1});
      cudnnTensorDescriptor_t b = make_tensor({1, 1, 1}, {1, 1, 1});
      if (dead_m) cudnnDestroyTensorDescriptor(m);
      if (dead_b) cudnnDestroyTensorDescriptor(b);
      void *maddr = nullptr, *baddr = nullptr;
      const cudnnStatus_t st =
          cudnnGetRNNWeightParams(l.handle, l.rnn, pseudo, l.weight_bytes - shrink,
                                  l.weights.data(), lin, m, &maddr, b, &baddr);
      if (!dead_m) cudnnDestroyTensorDescriptor(m);
      if (!dead_b) cudnnDestroyTensorDescriptor(b);
      return st;
    };
  };
  run_cases({
      {ws, "weightSpaceSize is not NULL", null,
       [](Lstm& l) { return cudnnGetRNNWeightSpaceSize(l.handle, l.rnn, nullptr); }},
      {ws, "rnnDesc is an RNN descriptor that was set", bad,
       [](Lstm& l) {
         cudnnRNNDescriptor_t unset = nullptr;
         cudnnCreateRNNDescriptor(&unset);
         size_t bytes = 0;
         const cudnnStatus_t st = cudnnGetRNNWeightSpaceSize(l.handle, unset, &bytes);
         cudnnDestroyRNNDescriptor(unset);
         return st;
       }},
      {tmp, "fwdMode is a cudnnForwardMode_t", bad, temp_sizes(fixture_x, false, 5)},
      {tmp, kPaddedIoRule, bad, temp_sizes(fixture_x, true)},
      {tmp, "xDesc's vectorSize is the RNN's inputSize", bad, temp_sizes([](Lstm&, Owned& o) {
         return o.data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, 3, 2, 4, {3, 3});
       })},
      {tmp, "xDesc's data type is the RNN descriptor's dataType", bad,
       temp_sizes([](Lstm&, Owned& o) {
         return o.data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, 3, 2, 3, {3, 3},
                            CUDNN_DATA_DOUBLE);
       })},
      {tmp, "xDesc is an RNN data descriptor that was set", bad, temp_sizes([](Lstm&, Owned& o) {
         cudnnRNNDataDescriptor_t d = nullptr;
         cudnnCreateRNNDataDescriptor(&d);
         o.data.push_back(d);
         return d;
       })},
      {tmp, "workSpaceSize is not NULL", null,
       [](Lstm& l) {
         size_t reserve = 0;
         return cudnnGetRNNTempSpaceSizes(l.handle, l.rnn, CUDNN_FWD_MODE_TRAINING, l.x_desc,
                                          nullptr, &reserve);
       }},
      {wp, "pseudoLayer is in [0, numLayers * directions)", bad, params(4, 0, 0, false, false)},
      {wp, "pseudoLayer is in [0, numLayers * directions)", bad, params(-1, 0, 0, false, false)},
      {wp, "linLayerID is in [0, 7] for LSTM", bad, params(0, 8, 0, false, false)},
      {wp, "weightSpaceSize >= cudnnGetRNNWeightSpaceSize", bad, params(0, 0, 4, false, false)},
      {wp, "mDesc is a tensor descriptor created and not destroyed", bad,
       params(0, 0, 0, true, false)},
      {wp, "bDesc is a tensor descriptor created and not destroyed", bad,
       params(0, 0, 0, false, true)},
  });
}

// Changes one argument of a good call.
template <typename Call>
using Change = std::function<void(Call&, Lstm&, Owned&)>;

struct ForwardCase {
  const char* rule;
  cudnnStatus_t status;
  Change<ForwardCall> change;
};

void run_forward_cases(const std::vector<ForwardCase>& cases) {
  for (const ForwardCase& c : cases) {
    Lstm l(Dims{3, 4, 2, true, 3, 2});
    Owned own;
    ForwardCall call = l.forward(CUDNN_FWD_MODE_TRAINING);
    c.change(call, l, own);
    expect_call_refused(call, l.y, l.y_count(), c.status, "cudnnRNNForward", c.rule);
  }
}

TEST(EmuStandinCudnnRnn, ForwardRefusesUnpackedDataWithoutPaddedIo) {
  // The defect of issue 17: SEQ_MAJOR_UNPACKED data with auxFlags CUDNN_RNN_PADDED_IO_DISABLED.
  run_forward_cases({
      {kPaddedIoRule, CUDNN_STATUS_BAD_PARAM,
       [](ForwardCall& c, Lstm& l, Owned& o) { c.rnn = o.rnn_without_padded_io(l); }},
      {kPaddedIoRule, CUDNN_STATUS_BAD_PARAM,
       [](ForwardCall& c, Lstm& l, Owned& o) {
         c.rnn = o.rnn_without_padded_io(l);
         c.x_desc = o.data_desc(CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, 3, 2, 3, {3, 3});
         c.y_desc = o.data_desc(CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, 3, 2, 8, {3, 3});
       }},
  });
}

TEST(EmuStandinCudnnRnn, ForwardRefusesBrokenDescriptors) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, unsupported = CUDNN_STATUS_NOT_SUPPORTED;
  using L = cudnnRNNDataLayout_t;
  const L unpacked = CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  run_forward_cases({
      {"handle was created by cudnnCreate", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.handle = nullptr; }},
      {"fwdMode is a cudnnForwardMode_t", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.mode = bad_enum<cudnnForwardMode_t>(3); }},
      {"rnnDesc is an RNN descriptor created and not destroyed", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.rnn = nullptr; }},
      {"yDesc's vectorSize is the RNN's projSize (hiddenSize) times directions", bad,
       [=](ForwardCall& c, Lstm&, Owned& o) {
         c.y_desc = o.data_desc(unpacked, 3, 2, 4, {3, 3});
       }},
      {"xDesc and yDesc have the same layout, maxSeqLength, batchSize and seqLengthArray", bad,
       [=](ForwardCall& c, Lstm&, Owned& o) {
         c.y_desc = o.data_desc(unpacked, 4, 2, 8, {4, 4});
       }},
      {"hDesc is [numLayers * directions, batchSize, hiddenSize]", bad,
       [](ForwardCall& c, Lstm&, Owned& o) {
         c.h_desc = o.tensor({4, 3, 4}, {12, 4, 1});
       }},
      {"hDesc is fully packed", bad,
       [](ForwardCall& c, Lstm&, Owned& o) {
         c.h_desc = o.tensor({4, 2, 4}, {16, 8, 1});
       }},
      {"hDesc's data type is the RNN descriptor's dataType", bad,
       [](ForwardCall& c, Lstm&, Owned& o) {
         c.h_desc = o.tensor({4, 2, 4}, {8, 4, 1}, CUDNN_DATA_DOUBLE);
       }},
      {"cDesc is [numLayers * directions, batchSize, hiddenSize]", bad,
       [](ForwardCall& c, Lstm&, Owned& o) {
         c.c_desc = o.tensor({2, 2, 4}, {8, 4, 1});
       }},
      {"cDesc is a tensor descriptor created and not destroyed", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.c_desc = nullptr; }},
      {"stand-in computes sequence-major layouts only", unsupported,
       [](ForwardCall& c, Lstm&, Owned& o) {
         c.x_desc = o.data_desc(CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, 3, 2, 3, {3, 3});
         c.y_desc = o.data_desc(CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, 3, 2, 8, {3, 3});
       }},
      {"stand-in computes batches whose sequences all have maxSeqLength steps", unsupported,
       [=](ForwardCall& c, Lstm&, Owned& o) {
         c.x_desc = o.data_desc(unpacked, 3, 2, 3, {3, 2});
         c.y_desc = o.data_desc(unpacked, 3, 2, 8, {3, 2});
       }},
  });
}

TEST(EmuStandinCudnnRnn, ForwardRefusesBrokenBuffers) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, null = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  static std::vector<float> host(4096);
  static std::vector<int32_t> host_lengths{3, 3};
  static DeviceArray<float> small(4, ElementKind::F32, "small");
  static DeviceArray<float> roomy(64, ElementKind::F32, "roomy");
  const void* misaligned = reinterpret_cast<const char*>(roomy.data()) + 2;
  run_forward_cases({
      {"devSeqLengths is not NULL", null, [](ForwardCall& c, Lstm&, Owned&) { c.seq = nullptr; }},
      {"devSeqLengths is device memory holding batchSize int32 lengths", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.seq = host_lengths.data(); }},
      {"x is not NULL", null, [](ForwardCall& c, Lstm&, Owned&) { c.x = nullptr; }},
      {"x is aligned to 4 bytes", CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER,
       [=](ForwardCall& c, Lstm&, Owned&) { c.x = misaligned; }},
      {"y points to device memory holding all of its descriptor's elements", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.y = small.data(); }},
      {"hx points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.hx = host.data(); }},
      {"hy points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.hy = host.data(); }},
      {"cx points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.cx = host.data(); }},
      {"cy points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.cy = host.data(); }},
      {"weightSpaceSize >= cudnnGetRNNWeightSpaceSize", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.weight_bytes -= 4; }},
      {"weightSpace points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.weights = host.data(); }},
      {"workSpaceSize >= cudnnGetRNNTempSpaceSizes' for the mode", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.work_bytes -= 4; }},
      {"workSpace points to device memory", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.work = small.data(); }},
      {"a training forward's reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)", bad,
       [](ForwardCall& c, Lstm&, Owned&) { c.reserve_bytes = 0; }},
      {"reserveSpace is not NULL", null,
       [](ForwardCall& c, Lstm&, Owned&) { c.reserve = nullptr; }},
  });
}

struct BackwardCase {
  const char* rule;
  cudnnStatus_t status;
  Change<BackwardDataCall> data;        // set: a BackwardData case
  Change<BackwardWeightsCall> weights;  // set: a BackwardWeights case
};

// Each case after a good training forward (and, for BackwardWeights, a good BackwardData).
void run_backward_cases(const std::vector<BackwardCase>& cases) {
  for (const BackwardCase& c : cases) {
    Lstm l(Dims{3, 4, 2, true, 3, 2});
    Owned own;
    ASSERT_EQ(l.forward(CUDNN_FWD_MODE_TRAINING)(), CUDNN_STATUS_SUCCESS);
    if (c.data) {
      BackwardDataCall call = l.backward_data();
      c.data(call, l, own);
      expect_call_refused(call, l.dx, l.x_count(), c.status, "cudnnRNNBackwardData_v8", c.rule);
    } else {
      ASSERT_EQ(l.backward_data()(), CUDNN_STATUS_SUCCESS);
      BackwardWeightsCall call = l.backward_weights();
      c.weights(call, l, own);
      expect_call_refused(call, l.dweights, l.weight_bytes / 4, c.status,
                          "cudnnRNNBackwardWeights_v8", c.rule);
    }
  }
}

TEST(EmuStandinCudnnRnn, BackwardDataRefusesEachBrokenRule) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, null = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  static std::vector<float> host(4096);
  static DeviceArray<float> fresh(1 << 14, ElementKind::F32, "never-forwarded reserve");
  using D = BackwardDataCall;
  std::vector<BackwardCase> cases = {
      {kPaddedIoRule, bad, [](D& c, Lstm& l, Owned& o) { c.rnn = o.rnn_without_padded_io(l); }},
      {"reserveSpace holds a training cudnnRNNForward of this RNN and shape", bad,
       [](D& c, Lstm&, Owned&) { c.reserve = fresh.data(); }},
      {"reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)", bad,
       [](D& c, Lstm&, Owned&) { c.reserve_bytes -= 4; }},
      {"workSpaceSize >= cudnnGetRNNTempSpaceSizes' for the mode", bad,
       [](D& c, Lstm&, Owned&) { c.work_bytes = 0; }},
      {"weightSpaceSize >= cudnnGetRNNWeightSpaceSize", bad,
       [](D& c, Lstm&, Owned&) { c.weight_bytes /= 2; }},
      {"devSeqLengths is not NULL", null, [](D& c, Lstm&, Owned&) { c.seq = nullptr; }},
      {"y is not NULL", null, [](D& c, Lstm&, Owned&) { c.y = nullptr; }},
      {"dy is not NULL", null, [](D& c, Lstm&, Owned&) { c.dy = nullptr; }},
      {"dx points to device memory", bad, [](D& c, Lstm&, Owned&) { c.dx = host.data(); }},
      {"hx points to device memory", bad, [](D& c, Lstm&, Owned&) { c.hx = host.data(); }},
      {"dhy points to device memory", bad, [](D& c, Lstm&, Owned&) { c.dhy = host.data(); }},
      {"dhx points to device memory", bad, [](D& c, Lstm&, Owned&) { c.dhx = host.data(); }},
      {"cx points to device memory", bad, [](D& c, Lstm&, Owned&) { c.cx = host.data(); }},
      {"dcy points to device memory", bad, [](D& c, Lstm&, Owned&) { c.dcy = host.data(); }},
      {"dcx points to device memory", bad, [](D& c, Lstm&, Owned&) { c.dcx = host.data(); }},
  };
  run_backward_cases(cases);
}

TEST(EmuStandinCudnnRnn, BackwardWeightsRefusesEachBrokenRule) {
  const cudnnStatus_t bad = CUDNN_STATUS_BAD_PARAM, null = CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  static std::vector<float> host(4096);
  using W = BackwardWeightsCall;
  const Change<BackwardDataCall> none;
  std::vector<BackwardCase> cases = {
      {"addGrad is CUDNN_WGRAD_MODE_ADD", CUDNN_STATUS_NOT_SUPPORTED, none,
       [](W& c, Lstm&, Owned&) { c.mode = CUDNN_WGRAD_MODE_SET; }},
      {kPaddedIoRule, bad, none,
       [](W& c, Lstm& l, Owned& o) { c.rnn = o.rnn_without_padded_io(l); }},
      {"cudnnRNNBackwardData_v8 ran on reserveSpace before cudnnRNNBackwardWeights_v8", bad, none,
       [](W& c, Lstm& l, Owned&) {
         ASSERT_EQ(l.forward(CUDNN_FWD_MODE_TRAINING)(), CUDNN_STATUS_SUCCESS);  // a new forward
       }},
      {"weightSpaceSize >= cudnnGetRNNWeightSpaceSize", bad, none,
       [](W& c, Lstm&, Owned&) { c.weight_bytes -= 4; }},
      {"dweightSpace points to device memory", bad, none,
       [](W& c, Lstm&, Owned&) { c.dweights = host.data(); }},
      {"reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)", bad, none,
       [](W& c, Lstm&, Owned&) { c.reserve_bytes = 8; }},
      {"workSpaceSize >= cudnnGetRNNTempSpaceSizes' for the mode", bad, none,
       [](W& c, Lstm&, Owned&) { c.work_bytes = 0; }},
      {"devSeqLengths is not NULL", null, none, [](W& c, Lstm&, Owned&) { c.seq = nullptr; }},
      {"x is not NULL", null, none, [](W& c, Lstm&, Owned&) { c.x = nullptr; }},
      {"y points to device memory", bad, none, [](W& c, Lstm&, Owned&) { c.y = host.data(); }},
      {"hx points to device memory", bad, none, [](W& c, Lstm&, Owned&) { c.hx = host.data(); }},
      {"hDesc is [numLayers * directions, batchSize, hiddenSize]", bad, none,
       [](W& c, Lstm&, Owned& o) {
         c.h_desc = o.tensor({1, 2, 4}, {8, 4, 1});
       }},
  };
  run_backward_cases(cases);
}

}  // namespace
}  // namespace tessera::emu_test::rnn

#endif  // TESSERA_CUDA_EMULATION
