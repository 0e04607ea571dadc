#pragma once
// The CUDA backend's LSTM: cuDNN 9's RNN API (cudnnRNNForward, cudnnRNNBackwardData_v8,
// cudnnRNNBackwardWeights_v8), in its own file, vendor-library code apart from the kernels.
//   - Plans (cuda/cudnn_plans.h): per config (sizes, layers, directions, dropout) the RNN
//     descriptor (auxFlags CUDNN_RNN_PADDED_IO_ENABLED, which the SEQ_MAJOR_UNPACKED data layout
//     requires), the weight space, its gradient and the weight block table; inside it, per batch
//     shape (T, B), the data and state descriptors, temp sizes and the device sequence lengths.
//     Variable-length text makes new shape entries only. Host data a plan uploads (the table,
//     the lengths) is copied asynchronously, once per plan, from host vectors the plan keeps:
//     no host wait. One workspace buffer per backend grows to the largest need.
//   - Weights: the canonical layout (host/backend/lstm_types.h) is copied into cuDNN's weight
//     space before every forward and backward, and dw back the same way, each in ONE kernel
//     launch (cuda/kernels/lstm_weights.cu) over the config's block table: each gate's W_ih,
//     W_hh rows and biases are contiguous in both layouts (cuDNN orders the gates i, f, g, o too);
//     the blocks' places are queried from cuDNN (cudnnGetRNNWeightParams) once per config.
//   - Dropout between layers uses cuDNN's generator (one dropout descriptor per probability,
//     seeded from the first dropout_seed seen), so its masks differ from the host backend's.
//   - Math is FP32 with FMA (no TF32), so results stay close to the host backend.
//   - Data pointers (x, y, h, c, their gradients, the reserve) are passed cudnn_aligned (16
//     bytes), unaligned views through aligned scratch copies on the stream (cuda/cudnn_staging.h,
//     as the convolutions); the weight spaces are allocations of their own. cuDNN's RNN
//     documentation states no alignment of its own: this is the convolutions' rule kept for
//     every cuDNN call, as its kernels use vector loads and the emulator's stand-in checks it.
#include <cuda_runtime_api.h>

#include <memory>

#include "host/backend/backend.h"

namespace tessera::cuda {

class CudnnLstm {
 public:
  CudnnLstm(int device_index, cudaStream_t stream);
  ~CudnnLstm();
  CudnnLstm(const CudnnLstm&) = delete;
  CudnnLstm& operator=(const CudnnLstm&) = delete;

  // The Backend ops, arguments checked at the Backend edge (host/backend/backend_lstm.cpp).
  // Training allocates io.reserve (cuDNN's reserve space) when it is undefined or too small.
  void forward(const LstmConfig& c, LstmMode mode, LstmIo& io);
  void backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::cuda
