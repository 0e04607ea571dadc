#pragma once
// The cuDNN RNN stand-in's tests' fixture (tests/emu_standin_cudnn_rnn_test.cpp: the computation;
// tests/emu_standin_cudnn_rnn_rules_test.cpp: every rule): an LSTM set up through the stand-in
// API as cuda/cudnn_lstm.cpp sets it up, each call's arguments as a struct a negative case changes
// one field of, and the host backend's results for the same inputs. Emulation build only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/include/cudnn.h"
#include "cuda/emu/standin.h"
#include "host/backend/backend.h"
#include "host/core/error.h"

namespace tessera::emu_test::rnn {

using emu::DeviceArray;
using emu::ElementKind;

// Runs every stream's queued work (the fixture's LSTM works on a stream of its own, so the
// stand-in's work is deferred as on a device).
inline void sync() {
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

inline DeviceArray<float> device_floats(size_t n, const char* label) {
  return DeviceArray<float>(std::max<size_t>(n, 1), ElementKind::F32, label);
}
inline void upload(const DeviceArray<float>& d, const std::vector<float>& v) {
  std::copy(v.begin(), v.end(), d.data());
}
inline std::vector<float> download(const DeviceArray<float>& d, size_t n) {
  return std::vector<float>(d.data(), d.data() + n);
}

inline void expect_near(const std::vector<float>& got, const std::vector<float>& want,
                        const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-4f * std::fabs(want[i])) << what << "[" << i << "]";
}

struct Dims {
  int64_t input = 3, hidden = 4, layers = 2;
  bool bidirectional = false;
  int64_t t = 5, b = 3;
  float dropout = 0.f;  // between layers, training only; the dropout descriptor's seed is 7
  LstmConfig config() const {
    LstmConfig c;
    c.input_size = input;
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.directions = bidirectional ? LstmDirections::Bidirectional : LstmDirections::Unidirectional;
    c.dropout = dropout;
    c.dropout_seed = 7;
    return c;
  }
};

// The arguments of one stand-in call, good by default, changed one at a time by the negative
// cases.
struct ForwardCall {
  cudnnHandle_t handle;
  cudnnRNNDescriptor_t rnn;
  cudnnForwardMode_t mode;
  const int32_t* seq;
  cudnnRNNDataDescriptor_t x_desc;
  const void* x;
  cudnnRNNDataDescriptor_t y_desc;
  void* y;
  cudnnTensorDescriptor_t h_desc;
  const void* hx;
  void* hy;
  cudnnTensorDescriptor_t c_desc;
  const void* cx;
  void* cy;
  size_t weight_bytes;
  const void* weights;
  size_t work_bytes;
  void* work;
  size_t reserve_bytes;
  void* reserve;
  cudnnStatus_t operator()() const {
    return cudnnRNNForward(handle, rnn, mode, seq, x_desc, x, y_desc, y, h_desc, hx, hy, c_desc, cx,
                           cy, weight_bytes, weights, work_bytes, work, reserve_bytes, reserve);
  }
};

struct BackwardDataCall {
  cudnnHandle_t handle;
  cudnnRNNDescriptor_t rnn;
  const int32_t* seq;
  cudnnRNNDataDescriptor_t y_desc;
  const void* y;
  const void* dy;
  cudnnRNNDataDescriptor_t x_desc;
  void* dx;
  cudnnTensorDescriptor_t h_desc;
  const void* hx;
  const void* dhy;
  void* dhx;
  cudnnTensorDescriptor_t c_desc;
  const void* cx;
  const void* dcy;
  void* dcx;
  size_t weight_bytes;
  const void* weights;
  size_t work_bytes;
  void* work;
  size_t reserve_bytes;
  void* reserve;
  cudnnStatus_t operator()() const {
    return cudnnRNNBackwardData_v8(handle, rnn, seq, y_desc, y, dy, x_desc, dx, h_desc, hx, dhy,
                                   dhx, c_desc, cx, dcy, dcx, weight_bytes, weights, work_bytes,
                                   work, reserve_bytes, reserve);
  }
};

struct BackwardWeightsCall {
  cudnnHandle_t handle;
  cudnnRNNDescriptor_t rnn;
  cudnnWgradMode_t mode;
  const int32_t* seq;
  cudnnRNNDataDescriptor_t x_desc;
  const void* x;
  cudnnTensorDescriptor_t h_desc;
  const void* hx;
  cudnnRNNDataDescriptor_t y_desc;
  const void* y;
  size_t weight_bytes;
  void* dweights;
  size_t work_bytes;
  void* work;
  size_t reserve_bytes;
  void* reserve;
  cudnnStatus_t operator()() const {
    return cudnnRNNBackwardWeights_v8(handle, rnn, mode, seq, x_desc, x, h_desc, hx, y_desc, y,
                                      weight_bytes, dweights, work_bytes, work, reserve_bytes,
                                      reserve);
  }
};

inline cudnnRNNDataDescriptor_t make_data_desc(cudnnRNNDataLayout_t layout, int t, int b, int width,
                                               const std::vector<int>& lengths) {
  cudnnRNNDataDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateRNNDataDescriptor(&d), CUDNN_STATUS_SUCCESS);
  float fill = 0.f;
  EXPECT_EQ(
      cudnnSetRNNDataDescriptor(d, CUDNN_DATA_FLOAT, layout, t, b, width, lengths.data(), &fill),
      CUDNN_STATUS_SUCCESS)
      << emu::last_rule_failure();
  return d;
}

inline cudnnTensorDescriptor_t make_tensor(std::vector<int> dims, std::vector<int> strides,
                                           cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  cudnnTensorDescriptor_t d = nullptr;
  EXPECT_EQ(cudnnCreateTensorDescriptor(&d), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(cudnnSetTensorNdDescriptor(d, type, static_cast<int>(dims.size()), dims.data(),
                                       strides.data()),
            CUDNN_STATUS_SUCCESS);
  return d;
}

inline cudnnTensorDescriptor_t make_state_desc(int rows, int b, int h) {
  return make_tensor({rows, b, h}, {b * h, h, 1});
}

// One LSTM set up through the stand-in API as cuda/cudnn_lstm.cpp does (padded I/O enabled,
// sequence-major unpacked data, full-length sequences), with every buffer in emulated device
// memory and random inputs, states, output gradients and canonical weights.
class Lstm {
 public:
  explicit Lstm(const Dims& d, uint32_t auxFlags = CUDNN_RNN_PADDED_IO_ENABLED)
      : dims(d), config(d.config()), lengths(static_cast<size_t>(d.b), static_cast<int>(d.t)) {
    EXPECT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudnnSetStream(handle, stream), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateDropoutDescriptor(&dropout), CUDNN_STATUS_SUCCESS);
    size_t state_bytes = 0;
    EXPECT_EQ(cudnnDropoutGetStatesSize(handle, &state_bytes), CUDNN_STATUS_SUCCESS);
    states = DeviceArray<unsigned char>(state_bytes, ElementKind::Bytes, "dropout states");
    EXPECT_EQ(cudnnSetDropoutDescriptor(dropout, handle, d.dropout, states.data(), state_bytes, 7),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnCreateRNNDescriptor(&rnn), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(set_rnn(rnn, auxFlags), CUDNN_STATUS_SUCCESS) << emu::last_rule_failure();
    const int t = static_cast<int>(d.t), b = static_cast<int>(d.b);
    x_desc = make_data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, t, b,
                            static_cast<int>(d.input), lengths);
    y_desc = make_data_desc(CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, t, b, out_width(), lengths);
    h_desc = make_state_desc(state_rows(), b, static_cast<int>(d.hidden));
    EXPECT_EQ(cudnnGetRNNWeightSpaceSize(handle, rnn, &weight_bytes), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnGetRNNTempSpaceSizes(handle, rnn, CUDNN_FWD_MODE_TRAINING, x_desc, &work_bytes,
                                        &reserve_bytes),
              CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(cudnnGetRNNTempSpaceSizes(handle, rnn, CUDNN_FWD_MODE_INFERENCE, x_desc, &work_infer,
                                        &reserve_infer),
              CUDNN_STATUS_SUCCESS);
    allocate();
  }
  ~Lstm() {
    cudnnDestroyTensorDescriptor(h_desc);
    cudnnDestroyRNNDataDescriptor(y_desc);
    cudnnDestroyRNNDataDescriptor(x_desc);
    cudnnDestroyRNNDescriptor(rnn);
    cudnnDestroyDropoutDescriptor(dropout);
    cudnnDestroy(handle);
    (void)cudaStreamSynchronize(stream);  // a test's deliberate fault was reported already
    cudaStreamDestroy(stream);
  }
  Lstm(const Lstm&) = delete;
  Lstm& operator=(const Lstm&) = delete;

  cudnnStatus_t set_rnn(cudnnRNNDescriptor_t d, uint32_t aux) const {
    return cudnnSetRNNDescriptor_v8(
        d, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, CUDNN_RNN_DOUBLE_BIAS,
        dims.bidirectional ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT,
        CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, static_cast<int32_t>(dims.input),
        static_cast<int32_t>(dims.hidden), static_cast<int32_t>(dims.hidden),
        static_cast<int32_t>(dims.layers), dropout, aux);
  }
  int state_rows() const { return static_cast<int>(dims.layers * config.dirs()); }
  int out_width() const { return static_cast<int>(config.dirs() * dims.hidden); }
  size_t x_count() const { return static_cast<size_t>(dims.t * dims.b * dims.input); }
  size_t y_count() const { return static_cast<size_t>(dims.t * dims.b) * out_width(); }
  size_t state_count() const { return static_cast<size_t>(state_rows() * dims.b * dims.hidden); }
  size_t weight_count() const { return static_cast<size_t>(lstm_weight_count(config)); }

  // Canonical weights into the weight space (or back), block by block through
  // cudnnGetRNNWeightParams, as tessera's conversion table is built.
  void convert(std::vector<float>& canonical, float* space, bool to_space) const {
    cudnnTensorDescriptor_t m = make_tensor({1, 1, 1}, {1, 1, 1});
    cudnnTensorDescriptor_t bias = make_tensor({1, 1, 1}, {1, 1, 1});
    const int64_t h = dims.hidden;
    for (int64_t l = 0; l < dims.layers; ++l) {
      for (int d = 0; d < config.dirs(); ++d) {
        const LstmWeightOffsets o = lstm_weight_offsets(config, l, d);
        const int64_t cols_ih = config.layer_input_size(l);
        for (int lin = 0; lin < 8; ++lin) {
          void *maddr = nullptr, *baddr = nullptr;
          ASSERT_EQ(
              cudnnGetRNNWeightParams(handle, rnn, static_cast<int32_t>(l * config.dirs() + d),
                                      weight_bytes, space, lin, m, &maddr, bias, &baddr),
              CUDNN_STATUS_SUCCESS);
          const bool rec = lin >= 4;
          const int64_t cols = rec ? h : cols_ih, gate = lin % 4;
          float* mat = canonical.data() + (rec ? o.w_hh : o.w_ih) + gate * h * cols;
          float* vec = canonical.data() + (rec ? o.b_hh : o.b_ih) + gate * h;
          const auto mcount = static_cast<size_t>(h * cols), bcount = static_cast<size_t>(h);
          if (to_space) {
            std::memcpy(maddr, mat, mcount * 4);
            std::memcpy(baddr, vec, bcount * 4);
          } else {
            std::memcpy(mat, maddr, mcount * 4);
            std::memcpy(vec, baddr, bcount * 4);
          }
        }
      }
    }
    cudnnDestroyTensorDescriptor(m);
    cudnnDestroyTensorDescriptor(bias);
  }

  ForwardCall forward(cudnnForwardMode_t mode) {
    const bool training = mode == CUDNN_FWD_MODE_TRAINING;
    return {handle,
            rnn,
            mode,
            seq.data(),
            x_desc,
            x.data(),
            y_desc,
            y.data(),
            h_desc,
            hx.data(),
            hy.data(),
            h_desc,
            cx.data(),
            cy.data(),
            weight_bytes,
            weights.data(),
            training ? work_bytes : work_infer,
            work.data(),
            training ? reserve_bytes : 0,
            training ? reserve.data() : nullptr};
  }
  BackwardDataCall backward_data() {
    return {handle,     rnn,         seq.data(),    y_desc,        y.data(),     dy.data(),
            x_desc,     dx.data(),   h_desc,        hx.data(),     dhy.data(),   dhx.data(),
            h_desc,     cx.data(),   dcy.data(),    dcx.data(),    weight_bytes, weights.data(),
            work_bytes, work.data(), reserve_bytes, reserve.data()};
  }
  BackwardWeightsCall backward_weights() {
    return {handle,        rnn,          CUDNN_WGRAD_MODE_ADD,
            seq.data(),    x_desc,       x.data(),
            h_desc,        hx.data(),    y_desc,
            y.data(),      weight_bytes, dweights.data(),
            work_bytes,    work.data(),  reserve_bytes,
            reserve.data()};
  }

  Dims dims;
  LstmConfig config;
  std::vector<int> lengths;
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnRNNDataDescriptor_t x_desc = nullptr, y_desc = nullptr;
  cudnnTensorDescriptor_t h_desc = nullptr;
  size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0, work_infer = 0, reserve_infer = 0;
  DeviceArray<unsigned char> states;
  DeviceArray<int32_t> seq;
  DeviceArray<float> weights, dweights, work, reserve, x, y, hx, cx, hy, cy, dy, dx, dhy, dcy, dhx,
      dcx;
  std::vector<float> canonical;

 private:
  void allocate() {
    seq = DeviceArray<int32_t>(lengths.size(), ElementKind::I32, "devSeqLengths");
    std::copy(lengths.begin(), lengths.end(), seq.data());
    weights = device_floats(weight_bytes / 4, "weight space");
    dweights = device_floats(weight_bytes / 4, "dweight space");
    work = device_floats(work_bytes / 4, "workspace");
    reserve = device_floats(reserve_bytes / 4, "reserve");
    x = device_floats(x_count(), "x");
    y = device_floats(y_count(), "y");
    dy = device_floats(y_count(), "dy");
    dx = device_floats(x_count(), "dx");
    for (auto* s : {&hx, &cx, &hy, &cy, &dhy, &dcy, &dhx, &dcx})
      *s = device_floats(state_count(), "state");
    upload(x, random_floats(x_count(), 1, 1.f));
    upload(dy, random_floats(y_count(), 2, 1.f));
    upload(hx, random_floats(state_count(), 3));
    upload(cx, random_floats(state_count(), 4));
    upload(dhy, random_floats(state_count(), 5));
    upload(dcy, random_floats(state_count(), 6));
    canonical = random_floats(weight_count(), 8);
    std::fill(weights.data(), weights.data() + weights.size(), NAN);  // gaps stay NaN
    convert(canonical, weights.data(), true);
  }
};

// ---- the computation against the host backend --------------------------------------------------

struct HostResult {
  std::vector<float> y, hn, cn, dx, dh0, dc0, dw;
  std::vector<float> inference_y;  // differs from y with dropout
};

inline HostResult host_lstm(const Lstm& l) {
  auto host = make_host_backend();
  const Dims& d = l.dims;
  const Shape state{l.state_rows(), d.b, d.hidden};
  const Shape xs{d.t, d.b, d.input}, ys{d.t, d.b, l.out_width()};
  LstmIo io{Tensor::host_from(xs, download(l.x, l.x_count())),
            Tensor::host_from(state, download(l.hx, l.state_count())),
            Tensor::host_from(state, download(l.cx, l.state_count())),
            Tensor::host_from({static_cast<int64_t>(l.weight_count())}, l.canonical),
            Tensor::host(ys),
            Tensor::host(state),
            Tensor::host(state),
            Tensor()};
  host->lstm_forward(l.config, LstmMode::Training, io);
  LstmGrads g{Tensor::host_from(ys, download(l.dy, l.y_count())),
              Tensor::host_from(state, download(l.dhy, l.state_count())),
              Tensor::host_from(state, download(l.dcy, l.state_count())),
              Tensor::host(xs),
              Tensor::host(state),
              Tensor::host(state),
              Tensor::host({static_cast<int64_t>(l.weight_count())})};
  host->lstm_backward(l.config, io, g);
  auto values = [](const Tensor& t) {
    return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
  };
  HostResult r{values(io.y),  values(io.hn), values(io.cn), values(g.dx),
               values(g.dh0), values(g.dc0), values(g.dw),  {}};
  LstmIo infer = io;
  infer.y = Tensor::host(ys);
  infer.hn = infer.cn = infer.reserve = Tensor();
  host->lstm_forward(l.config, LstmMode::Inference, infer);
  r.inference_y = values(infer.y);
  return r;
}

inline void expect_refused(cudnnStatus_t got, cudnnStatus_t want, const std::string& entry,
                           const std::string& rule) {
  EXPECT_EQ(got, want) << emu::last_rule_failure();
  const std::string& failure = emu::last_rule_failure();
  EXPECT_EQ(failure.rfind(entry + ": ", 0), 0u) << failure;
  EXPECT_NE(failure.find(rule), std::string::npos)
      << "last rule failure \"" << failure << "\", expected \"" << rule << "\"";
}

template <typename E>
E bad_enum(int v) {
  return static_cast<E>(v);
}

// A data descriptor like the fixture's x (or y) with one setting changed; destroyed with `l`'s
// test by the caller through keep().
struct Owned {
  std::vector<cudnnRNNDataDescriptor_t> data;
  std::vector<cudnnTensorDescriptor_t> tensors;
  std::vector<cudnnRNNDescriptor_t> rnns;
  ~Owned() {
    for (auto d : data) cudnnDestroyRNNDataDescriptor(d);
    for (auto d : tensors) cudnnDestroyTensorDescriptor(d);
    for (auto d : rnns) cudnnDestroyRNNDescriptor(d);
  }
  cudnnRNNDataDescriptor_t data_desc(cudnnRNNDataLayout_t layout, int t, int b, int width,
                                     std::vector<int> lengths,
                                     cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    cudnnRNNDataDescriptor_t d = nullptr;
    cudnnCreateRNNDataDescriptor(&d);
    EXPECT_EQ(cudnnSetRNNDataDescriptor(d, type, layout, t, b, width, lengths.data(), nullptr),
              CUDNN_STATUS_SUCCESS);
    data.push_back(d);
    return d;
  }
  cudnnTensorDescriptor_t tensor(std::vector<int> dims, std::vector<int> strides,
                                 cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    tensors.push_back(make_tensor(std::move(dims), std::move(strides), type));
    return tensors.back();
  }
  // The fixture's RNN with padded I/O disabled (cuda/cudnn_lstm.cpp's defect).
  cudnnRNNDescriptor_t rnn_without_padded_io(const Lstm& l) {
    cudnnRNNDescriptor_t d = nullptr;
    cudnnCreateRNNDescriptor(&d);
    EXPECT_EQ(l.set_rnn(d, CUDNN_RNN_PADDED_IO_DISABLED), CUDNN_STATUS_SUCCESS);
    rnns.push_back(d);
    return d;
  }
};

inline constexpr const char* kPaddedIoRule =
    "an unpacked layout (SEQ_MAJOR_UNPACKED, BATCH_MAJOR_UNPACKED) needs "
    "CUDNN_RNN_PADDED_IO_ENABLED in the RNN descriptor's auxFlags";

// ---- the three compute calls: refused, and nothing written ------------------------------------

template <typename Call>
void expect_call_refused(const Call& call, const DeviceArray<float>& output, size_t n,
                         cudnnStatus_t want, const char* entry, const std::string& rule) {
  SCOPED_TRACE(std::string(entry) + ": " + rule);
  std::fill(output.data(), output.data() + n, 7.f);
  expect_refused(call(), want, entry, rule);
  sync();
  EXPECT_TRUE(std::all_of(output.data(), output.data() + n, [](float v) { return v == 7.f; }))
      << "a refused call wrote its output";
}

}  // namespace tessera::emu_test::rnn
