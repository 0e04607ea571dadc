#pragma once
// cuDNN stand-in, RNN part (see cudnn.h): the RNN, RNN data and dropout descriptors and the v8
// RNN calls tessera's LSTM makes (cuda/cudnn_lstm.cpp). Names, enumerator values and signatures
// are cuDNN 9's so that the CUDA backend compiles unchanged against them; the behaviour is ours
// (cuda/emu/standins/cudnn_rnn*.cpp, cuda/emu/README.md "Stand-in: cuDNN RNN"): each entry point
// checks the argument rules cuDNN's documentation states and returns cuDNN's status when one is
// broken, without queuing work; otherwise the LSTM runs through the host backend, queued on the
// handle's stream. What the stand-in computes: LSTM cells, linear input, two bias vectors, no
// recurrent projection, f32, sequence-major data with every sequence of full length (anything else
// that cuDNN accepts is refused with CUDNN_STATUS_NOT_SUPPORTED and a "stand-in computes ..."
// rule, never computed wrongly).
#include <cstddef>
#include <cstdint>

#include "cudnn_core_standin.h"

// ---- enumerations ----------------------------------------------------------------------------

enum cudnnRNNAlgo_t : int {
  CUDNN_RNN_ALGO_STANDARD = 0,
  CUDNN_RNN_ALGO_PERSIST_STATIC = 1,
  CUDNN_RNN_ALGO_PERSIST_DYNAMIC = 2,
  CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H = 3,
};

// Training keeps what the backward calls need in the reserve space; inference needs none.
enum cudnnForwardMode_t : int {
  CUDNN_FWD_MODE_INFERENCE = 0,
  CUDNN_FWD_MODE_TRAINING = 1,
};

enum cudnnRNNMode_t : int {
  CUDNN_RNN_RELU = 0,
  CUDNN_RNN_TANH = 1,
  CUDNN_LSTM = 2,
  CUDNN_GRU = 3,
};

enum cudnnRNNBiasMode_t : int {
  CUDNN_RNN_NO_BIAS = 0,
  CUDNN_RNN_SINGLE_INP_BIAS = 1,
  CUDNN_RNN_DOUBLE_BIAS = 2,
  CUDNN_RNN_SINGLE_REC_BIAS = 3,
};

enum cudnnDirectionMode_t : int {
  CUDNN_UNIDIRECTIONAL = 0,
  CUDNN_BIDIRECTIONAL = 1,
};

enum cudnnRNNInputMode_t : int {
  CUDNN_LINEAR_INPUT = 0,
  CUDNN_SKIP_INPUT = 1,
};

// How an RNN data descriptor's vectors lie in memory. The two UNPACKED layouts hold every
// sequence padded to maxSeqLength and are accepted only by an RNN descriptor whose auxFlags
// include CUDNN_RNN_PADDED_IO_ENABLED.
enum cudnnRNNDataLayout_t : int {
  CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED = 0,    // [maxSeqLength][batch][vector]
  CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED = 1,      // per step, the sequences still running
  CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED = 2,  // [batch][maxSeqLength][vector]
};

// Whether cudnnRNNBackwardWeights_v8 adds to the weight gradients or overwrites them.
enum cudnnWgradMode_t : int {
  CUDNN_WGRAD_MODE_ADD = 0,
  CUDNN_WGRAD_MODE_SET = 1,
};

// Bits of cudnnSetRNNDescriptor_v8's auxFlags.
#define CUDNN_RNN_PADDED_IO_DISABLED 0
#define CUDNN_RNN_PADDED_IO_ENABLED (1U << 0)

// ---- descriptors (the structs are the stand-in's: cuda/emu/standins/cudnn_rnn_internal.h) ------

struct cudnnDropoutStruct;
using cudnnDropoutDescriptor_t = cudnnDropoutStruct*;
struct cudnnRNNStruct;
using cudnnRNNDescriptor_t = cudnnRNNStruct*;
struct cudnnRNNDataStruct;
using cudnnRNNDataDescriptor_t = cudnnRNNDataStruct*;

cudnnStatus_t cudnnCreateDropoutDescriptor(cudnnDropoutDescriptor_t* dropoutDesc);
cudnnStatus_t cudnnDestroyDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc);
// Bytes of device memory the dropout generator's state needs.
cudnnStatus_t cudnnDropoutGetStatesSize(cudnnHandle_t handle, size_t* sizeInBytes);
// Dropout probability in [0, 1); `states` is device memory of at least
// cudnnDropoutGetStatesSize bytes, initialised from `seed` on the handle's stream.
cudnnStatus_t cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc, cudnnHandle_t handle,
                                        float dropout, void* states, size_t stateSizeInBytes,
                                        unsigned long long seed);

cudnnStatus_t cudnnCreateRNNDescriptor(cudnnRNNDescriptor_t* rnnDesc);
cudnnStatus_t cudnnDestroyRNNDescriptor(cudnnRNNDescriptor_t rnnDesc);
// The whole RNN: cell, biases, directions, sizes, layers, dropout between layers, aux flags.
cudnnStatus_t cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t rnnDesc, cudnnRNNAlgo_t algo,
                                       cudnnRNNMode_t cellMode, cudnnRNNBiasMode_t biasMode,
                                       cudnnDirectionMode_t dirMode, cudnnRNNInputMode_t inputMode,
                                       cudnnDataType_t dataType, cudnnDataType_t mathPrec,
                                       cudnnMathType_t mathType, int32_t inputSize,
                                       int32_t hiddenSize, int32_t projSize, int32_t numLayers,
                                       cudnnDropoutDescriptor_t dropoutDesc, uint32_t auxFlags);

cudnnStatus_t cudnnCreateRNNDataDescriptor(cudnnRNNDataDescriptor_t* rnnDataDesc);
cudnnStatus_t cudnnDestroyRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc);
// A batch of sequences: batchSize host lengths in [1, maxSeqLength]; `paddingFill` (a host value
// of dataType, or NULL) is written to the padding positions of outputs.
cudnnStatus_t cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc,
                                        cudnnDataType_t dataType, cudnnRNNDataLayout_t layout,
                                        int maxSeqLength, int batchSize, int vectorSize,
                                        const int seqLengthArray[], void* paddingFill);

// ---- sizes and the weight space ----------------------------------------------------------------

cudnnStatus_t cudnnGetRNNWeightSpaceSize(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                         size_t* weightSpaceSize);
// Work and reserve bytes the calls with `fwdMode` need for data shaped like xDesc (the reserve of
// a training forward is what the backward calls read).
cudnnStatus_t cudnnGetRNNTempSpaceSizes(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                        cudnnForwardMode_t fwdMode, cudnnRNNDataDescriptor_t xDesc,
                                        size_t* workSpaceSize, size_t* reserveSpaceSize);
// Where the matrix and bias of one linear layer of one pseudo-layer lie in `weightSpace`, with
// their shapes written to mDesc and bDesc. Pseudo-layer l*D + d (d = 1: the reverse direction);
// for LSTM linLayerID 0-3 are the input weights of gates i, f, g, o, 4-7 the recurrent ones.
cudnnStatus_t cudnnGetRNNWeightParams(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                      int32_t pseudoLayer, size_t weightSpaceSize,
                                      const void* weightSpace, int32_t linLayerID,
                                      cudnnTensorDescriptor_t mDesc, void** mAddr,
                                      cudnnTensorDescriptor_t bDesc, void** bAddr);

// ---- the computation ---------------------------------------------------------------------------

// y and the final states (hy, cy; NULL: not written) from x and the initial states (hx, cx; NULL:
// zeros). devSeqLengths: device copy of xDesc's sequence lengths.
cudnnStatus_t cudnnRNNForward(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                              cudnnForwardMode_t fwdMode, const int32_t devSeqLengths[],
                              cudnnRNNDataDescriptor_t xDesc, const void* x,
                              cudnnRNNDataDescriptor_t yDesc, void* y,
                              cudnnTensorDescriptor_t hDesc, const void* hx, void* hy,
                              cudnnTensorDescriptor_t cDesc, const void* cx, void* cy,
                              size_t weightSpaceSize, const void* weightSpace, size_t workSpaceSize,
                              void* workSpace, size_t reserveSpaceSize, void* reserveSpace);

// dx and the initial-state gradients (dhx, dcx; NULL: not written) from dy and the final-state
// gradients (dhy, dcy; NULL: zeros), after a training forward that wrote reserveSpace.
cudnnStatus_t cudnnRNNBackwardData_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                      const int32_t devSeqLengths[], cudnnRNNDataDescriptor_t yDesc,
                                      const void* y, const void* dy, cudnnRNNDataDescriptor_t xDesc,
                                      void* dx, cudnnTensorDescriptor_t hDesc, const void* hx,
                                      const void* dhy, void* dhx, cudnnTensorDescriptor_t cDesc,
                                      const void* cx, const void* dcy, void* dcx,
                                      size_t weightSpaceSize, const void* weightSpace,
                                      size_t workSpaceSize, void* workSpace,
                                      size_t reserveSpaceSize, void* reserveSpace);

// Adds the weight gradients of the preceding cudnnRNNBackwardData_v8 on the same reserve space to
// dweightSpace (cuDNN documents CUDNN_WGRAD_MODE_ADD as the only mode this call supports).
cudnnStatus_t cudnnRNNBackwardWeights_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                         cudnnWgradMode_t addGrad, const int32_t devSeqLengths[],
                                         cudnnRNNDataDescriptor_t xDesc, const void* x,
                                         cudnnTensorDescriptor_t hDesc, const void* hx,
                                         cudnnRNNDataDescriptor_t yDesc, const void* y,
                                         size_t weightSpaceSize, void* dweightSpace,
                                         size_t workSpaceSize, void* workSpace,
                                         size_t reserveSpaceSize, void* reserveSpace);
