#include "cuda/cudnn_lstm.h"

#include <cudnn.h>

#include <algorithm>
#include <map>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cudnn_plans.h"
#include "cuda/cudnn_staging.h"
#include "cuda/device_buffer.h"
#include "cuda/device_guard.h"
#include "cuda/kernels/kernels.h"

namespace tessera::cuda {

namespace {

// Move-only owners of the cuDNN objects this file uses (destroyed with logging, never throwing).
struct LstmHandleDeleter {
  void operator()(cudnnContext* h) const noexcept {
    if (h) log_status(cudnnDestroy(h), CUDNN_STATUS_SUCCESS, "cudnnDestroy", __FILE__, __LINE__);
  }
};
struct RnnDescDeleter {
  void operator()(cudnnRNNStruct* d) const noexcept {
    if (d)
      log_status(cudnnDestroyRNNDescriptor(d), CUDNN_STATUS_SUCCESS, "cudnnDestroyRNNDescriptor",
                 __FILE__, __LINE__);
  }
};
struct RnnDataDescDeleter {
  void operator()(cudnnRNNDataStruct* d) const noexcept {
    if (d)
      log_status(cudnnDestroyRNNDataDescriptor(d), CUDNN_STATUS_SUCCESS,
                 "cudnnDestroyRNNDataDescriptor", __FILE__, __LINE__);
  }
};
struct StateDescDeleter {
  void operator()(cudnnTensorStruct* d) const noexcept {
    if (d)
      log_status(cudnnDestroyTensorDescriptor(d), CUDNN_STATUS_SUCCESS,
                 "cudnnDestroyTensorDescriptor", __FILE__, __LINE__);
  }
};
struct DropoutDescDeleter {
  void operator()(cudnnDropoutStruct* d) const noexcept {
    if (d)
      log_status(cudnnDestroyDropoutDescriptor(d), CUDNN_STATUS_SUCCESS,
                 "cudnnDestroyDropoutDescriptor", __FILE__, __LINE__);
  }
};
using LstmHandle = std::unique_ptr<cudnnContext, LstmHandleDeleter>;
using RnnDesc = std::unique_ptr<cudnnRNNStruct, RnnDescDeleter>;
using RnnDataDesc = std::unique_ptr<cudnnRNNDataStruct, RnnDataDescDeleter>;
using StateDesc = std::unique_ptr<cudnnTensorStruct, StateDescDeleter>;
using DropoutDesc = std::unique_ptr<cudnnDropoutStruct, DropoutDescDeleter>;

struct Dropout {
  DropoutDesc desc;
  std::unique_ptr<DeviceBuffer> states;
};

// What depends on the batch shape (T, B): data and state descriptors, temp sizes, the sequence
// lengths (host copy kept: its upload is asynchronous and reads it later).
struct ShapePlan {
  RnnDataDesc x, y;
  StateDesc state;  // [L*D, B, H], used for h and c
  size_t work_train = 0, reserve_train = 0, work_infer = 0, reserve_infer = 0;
  std::vector<int32_t> lengths;
  std::unique_ptr<DeviceBuffer> seq_lengths;
};

// What depends only on the layer: the RNN descriptor, the weight space and its gradient, and the
// weight block table (host copy kept for the same reason), uploaded once.
struct ConfigPlan {
  RnnDesc rnn;
  size_t weight_bytes = 0;
  std::unique_ptr<DeviceBuffer> weights, dweights, table;
  std::vector<int64_t> table_host;  // [blocks, 3]: canonical, cuDNN offset, count (floats)
  int64_t blocks = 0, max_count = 0;
  BoundedCache<LstmShapeKey, ShapePlan> shapes{64};
};

// Every x and y entry has the full length T, so no padding is ever written; cuDNN still takes the
// unpacked layouts only from an RNN descriptor with CUDNN_RNN_PADDED_IO_ENABLED (config_plan),
// and paddingFill (a host value of the data type) is what padded output positions would hold.
RnnDataDesc make_data_desc(int64_t t, int64_t b, int64_t width) {
  cudnnRNNDataDescriptor_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreateRNNDataDescriptor(&raw));
  RnnDataDesc d(raw);
  std::vector<int> lengths(static_cast<size_t>(b), static_cast<int>(t));
  float fill = 0.f;
  TESSERA_CUDA_CHECK(cudnnSetRNNDataDescriptor(
      raw, CUDNN_DATA_FLOAT, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED, static_cast<int>(t),
      static_cast<int>(b), static_cast<int>(width), lengths.data(), &fill));
  return d;
}

}  // namespace

struct CudnnLstm::Impl {
  int device_index;
  cudaStream_t stream;
  LstmHandle handle;
  std::map<float, Dropout> dropouts;
  BoundedCache<LstmConfigKey, ConfigPlan> configs{16};
  std::unique_ptr<DeviceBuffer> workspace;
  std::unique_ptr<CudnnScratch> scratch;  // aligned copies of unaligned views

  cudnnDropoutDescriptor_t dropout_for(float p, uint64_t seed) {
    auto it = dropouts.find(p);
    if (it != dropouts.end()) return it->second.desc.get();
    cudnnDropoutDescriptor_t raw = nullptr;
    TESSERA_CUDA_CHECK(cudnnCreateDropoutDescriptor(&raw));
    Dropout d;
    d.desc.reset(raw);
    size_t bytes = 0;
    TESSERA_CUDA_CHECK(cudnnDropoutGetStatesSize(handle.get(), &bytes));
    d.states = std::make_unique<DeviceBuffer>(bytes, device_index);
    TESSERA_CUDA_CHECK(cudnnSetDropoutDescriptor(raw, handle.get(), p, d.states->data(), bytes,
                                                 static_cast<unsigned long long>(seed)));
    return dropouts.emplace(p, std::move(d)).first->second.desc.get();
  }

  // Asynchronous upload of a host vector that outlives the copy (it is kept in the plan).
  template <typename T>
  std::unique_ptr<DeviceBuffer> upload(const std::vector<T>& host) {
    const size_t bytes = host.size() * sizeof(T);
    auto d = std::make_unique<DeviceBuffer>(bytes, device_index);
    if (bytes)
      TESSERA_CUDA_CHECK(
          cudaMemcpyAsync(d->data(), host.data(), bytes, cudaMemcpyHostToDevice, stream));
    return d;
  }

  ConfigPlan& config_plan(const LstmConfig& c) {
    return configs.get(lstm_config_key(c), [&] {
      auto p = std::make_unique<ConfigPlan>();
      cudnnRNNDescriptor_t raw = nullptr;
      TESSERA_CUDA_CHECK(cudnnCreateRNNDescriptor(&raw));
      p->rnn.reset(raw);
      // PADDED_IO_ENABLED: required for the SEQ_MAJOR_UNPACKED data layout (make_data_desc).
      TESSERA_CUDA_CHECK(cudnnSetRNNDescriptor_v8(
          raw, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, CUDNN_RNN_DOUBLE_BIAS,
          c.dirs() == 2 ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT,
          CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, static_cast<int32_t>(c.input_size),
          static_cast<int32_t>(c.hidden_size), static_cast<int32_t>(c.hidden_size),
          static_cast<int32_t>(c.num_layers), dropout_for(c.dropout, c.dropout_seed),
          CUDNN_RNN_PADDED_IO_ENABLED));
      TESSERA_CUDA_CHECK(cudnnGetRNNWeightSpaceSize(handle.get(), raw, &p->weight_bytes));
      p->weights = std::make_unique<DeviceBuffer>(p->weight_bytes, device_index);
      p->dweights = std::make_unique<DeviceBuffer>(p->weight_bytes, device_index);
      p->table_host = weight_blocks(c, *p);
      p->blocks = static_cast<int64_t>(p->table_host.size() / 3);
      for (int64_t i = 0; i < p->blocks; ++i)
        p->max_count = std::max(p->max_count, p->table_host[static_cast<size_t>(3 * i + 2)]);
      p->table = upload(p->table_host);
      return p;
    });
  }

  ShapePlan& shape_plan(const LstmConfig& c, ConfigPlan& cp, int64_t t, int64_t b) {
    return cp.shapes.get(lstm_shape_key(t, b), [&] {
      auto p = std::make_unique<ShapePlan>();
      p->x = make_data_desc(t, b, c.input_size);
      p->y = make_data_desc(t, b, c.dirs() * c.hidden_size);
      cudnnTensorDescriptor_t sraw = nullptr;
      TESSERA_CUDA_CHECK(cudnnCreateTensorDescriptor(&sraw));
      p->state.reset(sraw);
      const int dims[3] = {static_cast<int>(c.num_layers * c.dirs()), static_cast<int>(b),
                           static_cast<int>(c.hidden_size)};
      const int strides[3] = {dims[1] * dims[2], dims[2], 1};
      TESSERA_CUDA_CHECK(cudnnSetTensorNdDescriptor(sraw, CUDNN_DATA_FLOAT, 3, dims, strides));
      TESSERA_CUDA_CHECK(cudnnGetRNNTempSpaceSizes(handle.get(), cp.rnn.get(),
                                                   CUDNN_FWD_MODE_TRAINING, p->x.get(),
                                                   &p->work_train, &p->reserve_train));
      TESSERA_CUDA_CHECK(cudnnGetRNNTempSpaceSizes(handle.get(), cp.rnn.get(),
                                                   CUDNN_FWD_MODE_INFERENCE, p->x.get(),
                                                   &p->work_infer, &p->reserve_infer));
      // Once per shape, without a host wait: the host copy stays in the plan.
      p->lengths.assign(static_cast<size_t>(b), static_cast<int32_t>(t));
      p->seq_lengths = upload(p->lengths);
      return p;
    });
  }

  // Where each canonical block lives in cuDNN's weight space, as table rows (canonical offset,
  // cuDNN offset, count). Pseudo-layer l*D + d; linear layer ids 0-3 are W_ih's gates i, f, g, o
  // (with b_ih), 4-7 W_hh's (with b_hh).
  std::vector<int64_t> weight_blocks(const LstmConfig& c, ConfigPlan& p) {
    std::vector<int64_t> table;
    const int64_t h = c.hidden_size;
    const char* base = static_cast<const char*>(p.weights->data());
    cudnnTensorDescriptor_t mdesc = nullptr, bdesc = nullptr;
    TESSERA_CUDA_CHECK(cudnnCreateTensorDescriptor(&mdesc));
    StateDesc mown(mdesc);
    TESSERA_CUDA_CHECK(cudnnCreateTensorDescriptor(&bdesc));
    StateDesc bown(bdesc);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      for (int d = 0; d < c.dirs(); ++d) {
        const LstmWeightOffsets o = lstm_weight_offsets(c, l, d);
        const int64_t il = c.layer_input_size(l);
        for (int lin = 0; lin < 8; ++lin) {
          void* maddr = nullptr;
          void* baddr = nullptr;
          TESSERA_CUDA_CHECK(cudnnGetRNNWeightParams(
              handle.get(), p.rnn.get(), static_cast<int32_t>(l * c.dirs() + d), p.weight_bytes,
              p.weights->data(), lin, mdesc, &maddr, bdesc, &baddr));
          const int gate = lin % 4;
          const bool recurrent = lin >= 4;
          const int64_t cols = recurrent ? h : il;
          // The matrix must be [H, cols]: check cuDNN agrees before trusting the offsets.
          cudnnDataType_t dt;
          int nd = 0, dims[3] = {0, 0, 0}, strides[3] = {0, 0, 0};
          TESSERA_CUDA_CHECK(cudnnGetTensorNdDescriptor(mdesc, 3, &dt, &nd, dims, strides));
          TESSERA_CHECK(static_cast<int64_t>(dims[0]) * dims[1] * dims[2] == h * cols,
                        "cuDNN LSTM weight block (pseudo-layer "
                            << l * c.dirs() + d << ", id " << lin << ") has "
                            << dims[0] * dims[1] * dims[2] << " elements, "
                            << "expected " << h * cols);
          const int64_t moff = (static_cast<const char*>(maddr) - base) / 4;
          const int64_t boff = (static_cast<const char*>(baddr) - base) / 4;
          table.insert(table.end(),
                       {(recurrent ? o.w_hh : o.w_ih) + gate * h * cols, moff, h * cols});
          table.insert(table.end(), {(recurrent ? o.b_hh : o.b_ih) + gate * h, boff, h});
        }
      }
    }
    return table;
  }

  // canonical -> weight space (to_cudnn) or weight space -> canonical: one kernel launch.
  void convert(const ConfigPlan& p, float* canonical, float* space, bool to_cudnn) {
    launch_lstm_weights_convert(static_cast<const int64_t*>(p.table->data()), p.blocks, p.max_count,
                                canonical, space, to_cudnn, stream);
  }

  void* workspace_of(size_t bytes) {
    if (!workspace || workspace->bytes() < bytes)
      workspace = std::make_unique<DeviceBuffer>(bytes, device_index);
    return workspace->data();
  }
};

CudnnLstm::CudnnLstm(int device_index, cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  DeviceGuard guard(device_index);
  impl_->device_index = device_index;
  impl_->stream = stream;
  cudnnHandle_t raw = nullptr;
  TESSERA_CUDA_CHECK(cudnnCreate(&raw));
  impl_->handle.reset(raw);
  TESSERA_CUDA_CHECK(cudnnSetStream(raw, stream));
  impl_->scratch = std::make_unique<CudnnScratch>(device_index, stream);
}

CudnnLstm::~CudnnLstm() = default;

void CudnnLstm::forward(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  DeviceGuard guard(impl_->device_index);
  const int64_t t = io.x.dim(0), b = io.x.dim(1);
  ConfigPlan& cp = impl_->config_plan(c);
  ShapePlan& p = impl_->shape_plan(c, cp, t, b);
  const bool training = mode == LstmMode::Training;
  const size_t work = training ? p.work_train : p.work_infer;
  void* reserve = nullptr;
  size_t reserve_bytes = 0;
  if (training) {
    reserve_bytes = p.reserve_train;
    const int64_t floats = static_cast<int64_t>((reserve_bytes + 3) / 4);
    if (!io.reserve.defined() || io.reserve.numel() != floats) {
      io.reserve = Tensor(
          std::make_shared<DeviceBuffer>(static_cast<size_t>(floats) * 4, impl_->device_index),
          {floats}, DType::F32);
    }
  }
  impl_->convert(cp, io.w.data<float>(), static_cast<float*>(cp.weights->data()), true);
  void* ws = impl_->workspace_of(work);
  // Every data pointer cudnn_aligned, like the convolutions' (the weight spaces are our own).
  CudnnAligned a(*impl_->scratch);
  const void* x = a.in(io.x);
  void* y = a.out(io.y);
  const void* h0 = a.in(io.h0);
  const void* c0 = a.in(io.c0);
  void* hn = a.out(io.hn);
  void* cn = a.out(io.cn);
  if (training) reserve = a.out(io.reserve);
  TESSERA_CUDA_CHECK(cudnnRNNForward(impl_->handle.get(), cp.rnn.get(),
                                     training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                     static_cast<const int32_t*>(p.seq_lengths->data()), p.x.get(),
                                     x, p.y.get(), y, p.state.get(), h0, hn, p.state.get(), c0, cn,
                                     cp.weight_bytes, cp.weights->data(), work, ws, reserve_bytes,
                                     reserve));
  a.finish();
}

void CudnnLstm::backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  DeviceGuard guard(impl_->device_index);
  const int64_t t = io.x.dim(0), b = io.x.dim(1);
  ConfigPlan& cp = impl_->config_plan(c);
  ShapePlan& p = impl_->shape_plan(c, cp, t, b);
  TESSERA_CHECK(io.reserve.bytes() >= p.reserve_train,
                "LSTM reserve " << io.reserve.describe() << " is smaller than cuDNN's "
                                << p.reserve_train << " bytes: run a Training forward first");
  // The weights again: another LSTM of the same config may have used this weight space since.
  impl_->convert(cp, io.w.data<float>(), static_cast<float*>(cp.weights->data()), true);
  void* ws = impl_->workspace_of(p.work_train);
  const int32_t* lengths = static_cast<const int32_t*>(p.seq_lengths->data());
  CudnnAligned a(*impl_->scratch);
  const void* x = a.in(io.x);
  const void* y = a.in(io.y);
  const void* h0 = a.in(io.h0);
  const void* c0 = a.in(io.c0);
  const void* dy = a.in(g.dy);
  const void* dhn = a.in(g.dhn);
  const void* dcn = a.in(g.dcn);
  void* dx = a.out(g.dx);
  void* dh0 = a.out(g.dh0);
  void* dc0 = a.out(g.dc0);
  void* reserve = a.inout(const_cast<Tensor&>(io.reserve));  // cuDNN takes it writable
  TESSERA_CUDA_CHECK(cudnnRNNBackwardData_v8(
      impl_->handle.get(), cp.rnn.get(), lengths, p.y.get(), y, dy, p.x.get(), dx, p.state.get(),
      h0, dhn, dh0, p.state.get(), c0, dcn, dc0, cp.weight_bytes, cp.weights->data(), p.work_train,
      ws, p.reserve_train, reserve));
  // BackwardWeights only accumulates (CUDNN_WGRAD_MODE_ADD): start from zero, as dw is
  // overwritten.
  TESSERA_CUDA_CHECK(cudaMemsetAsync(cp.dweights->data(), 0, cp.weight_bytes, impl_->stream));
  TESSERA_CUDA_CHECK(
      cudnnRNNBackwardWeights_v8(impl_->handle.get(), cp.rnn.get(), CUDNN_WGRAD_MODE_ADD, lengths,
                                 p.x.get(), x, p.state.get(), h0, p.y.get(), y, cp.weight_bytes,
                                 cp.dweights->data(), p.work_train, ws, p.reserve_train, reserve));
  a.finish();
  impl_->convert(cp, g.dw.data<float>(), static_cast<float*>(cp.dweights->data()), false);
}

// ---- CudaBackend's LSTM ops (declared in cuda/cuda_backend.h) ----

void CudaBackend::lstm_forward_impl(const LstmConfig& c, LstmMode mode, LstmIo& io) {
  if (!lstm_) lstm_ = std::make_unique<CudnnLstm>(device_index_, stream());
  lstm_->forward(c, mode, io);
}

void CudaBackend::lstm_backward_impl(const LstmConfig& c, const LstmIo& io, LstmGrads& g) {
  if (!lstm_) lstm_ = std::make_unique<CudnnLstm>(device_index_, stream());
  lstm_->backward(c, io, g);
}

}  // namespace tessera::cuda
