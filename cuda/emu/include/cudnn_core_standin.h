#pragma once
// cuDNN stand-in, core part (see cudnn.h): status codes, handle, data types, tensor descriptors
// (this block), then filter, convolution and pooling descriptors, convolution, pooling and batch
// normalisation. Names, enumerator values and signatures are those of cuDNN 9 so that tessera's
// CUDA backend compiles unchanged against them; the behaviour is ours
// (cuda/emu/standins/cudnn_core.cpp and its siblings): every entry point checks the argument
// rules the cuDNN documentation states and returns cuDNN's status when one is broken
// (cudnnGetErrorString then names the rule), and queues the computation on the handle's stream.
#include <cstddef>
#include <cstdint>

#include "cuda/emu/runtime_api.h"

// ---- status, version -------------------------------------------------------------------------

#define CUDNN_MAJOR 9
#define CUDNN_MINOR 0
#define CUDNN_PATCHLEVEL 0
#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)

size_t cudnnGetVersion();

// The values of cuDNN 9's cudnnStatus_t (the sub-codes tessera can meet; the others are absent).
enum cudnnStatus_t : int {
  CUDNN_STATUS_SUCCESS = 0,
  CUDNN_STATUS_NOT_INITIALIZED = 1001,
  CUDNN_STATUS_BAD_PARAM = 2000,
  CUDNN_STATUS_BAD_PARAM_NULL_POINTER = 2002,
  CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER = 2003,
  CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND = 2005,
  CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT = 2006,
  CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH = 2008,
  CUDNN_STATUS_NOT_SUPPORTED = 3000,
  CUDNN_STATUS_NOT_SUPPORTED_SHAPE = 3002,
  CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE = 3003,
  CUDNN_STATUS_NOT_SUPPORTED_LAYOUT = 3004,
  CUDNN_STATUS_INTERNAL_ERROR = 4000,
  CUDNN_STATUS_EXECUTION_FAILED = 5000,
};

// The vendor's name of `status`; for a status returned by a stand-in because a rule was broken,
// followed by that rule and the values involved (tessera::emu::last_rule_failure()).
const char* cudnnGetErrorString(cudnnStatus_t status);

// ---- handle ----------------------------------------------------------------------------------

struct cudnnContext;  // defined by the stand-in (cuda/emu/standins/cudnn_core_internal.h)
using cudnnHandle_t = cudnnContext*;

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle);
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle);
cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream);
cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* stream);

// ---- data types, math, layout ----------------------------------------------------------------

enum cudnnDataType_t : int {
  CUDNN_DATA_FLOAT = 0,
  CUDNN_DATA_DOUBLE = 1,
  CUDNN_DATA_HALF = 2,
  CUDNN_DATA_INT8 = 3,
  CUDNN_DATA_INT32 = 4,
  CUDNN_DATA_UINT8 = 6,
  CUDNN_DATA_BFLOAT16 = 9,
  CUDNN_DATA_INT64 = 10,
};

enum cudnnMathType_t : int {
  CUDNN_DEFAULT_MATH = 0,
  CUDNN_TENSOR_OP_MATH = 1,
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
  CUDNN_FMA_MATH = 3,
};

enum cudnnNanPropagation_t : int {
  CUDNN_NOT_PROPAGATE_NAN = 0,
  CUDNN_PROPAGATE_NAN = 1,
};

enum cudnnTensorFormat_t : int {
  CUDNN_TENSOR_NCHW = 0,
  CUDNN_TENSOR_NHWC = 1,
  CUDNN_TENSOR_NCHW_VECT_C = 2,
};

// The most dimensions a tensor or filter descriptor may have.
#define CUDNN_DIM_MAX 8

// ---- tensor descriptors ----------------------------------------------------------------------

struct cudnnTensorStruct;  // defined by the stand-in
using cudnnTensorDescriptor_t = cudnnTensorStruct*;

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc);
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc);
// A packed 4-d tensor in `format` (NCHW or NHWC).
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w);
// An nbDims-d tensor (3 <= nbDims <= CUDNN_DIM_MAX) with explicit strides, in elements.
cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t desc, cudnnDataType_t type,
                                         int nbDims, const int dims[], const int strides[]);
// Reads back up to nbDimsRequested dims and strides; *nbDims is the descriptor's count.
cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t desc, int nbDimsRequested,
                                         cudnnDataType_t* type, int* nbDims, int dims[],
                                         int strides[]);
