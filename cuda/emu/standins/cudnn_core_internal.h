#pragma once
// What the cuDNN stand-ins (cuda/emu/standins/cudnn_*.cpp) share: the descriptor structs behind
// the opaque handles of cudnn_core_standin.h, the registry of live objects (a destroyed or never
// created handle/descriptor is a broken rule, not a crash), the rule checker, and the helpers
// that move data between a described device tensor and a packed host tensor.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "cuda/emu/include/cudnn.h"
#include "host/backend/backend.h"

// ---- the opaque structs (global namespace, as cuDNN names them) --------------------------------

struct cudnnContext {
  cudaStream_t stream = nullptr;  // cudnnSetStream; the legacy default stream until then
  int device = 0;                 // current at cudnnCreate: cuDNN ties the handle to it
};

struct cudnnTensorStruct {
  bool set = false;  // a cudnnSet*Descriptor call succeeded
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int nb_dims = 0;
  int dims[CUDNN_DIM_MAX] = {};
  int strides[CUDNN_DIM_MAX] = {};  // in elements
};

struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;  // c: input maps per group
};

struct cudnnConvolutionStruct {
  bool set = false;
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

struct cudnnPoolingStruct {
  bool set = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int window_h = 0, window_w = 0, pad_h = 0, pad_w = 0, stride_h = 0, stride_w = 0;
};

namespace tessera::emu::cudnn_standin {

inline constexpr const char* kLibrary = "cuDNN";

// ---- live objects ------------------------------------------------------------------------------

enum class ObjectKind : uint8_t { Handle, Tensor, Filter, Convolution, Pooling, Other };
void add_live(const void* object, ObjectKind kind);
void remove_live(const void* object);
bool is_live(const void* object, ObjectKind kind);

// ---- rules -------------------------------------------------------------------------------------

// The rules of one call, checked in order: the first broken one decides the call's status, and
// later checks are skipped (not counted), as a library stops at its first error.
class Rules {
 public:
  explicit Rules(const char* entry_point);  // records the call
  // Checks `rule` (unless one already failed); on failure the call's status becomes `on_fail`
  // and cudnnGetErrorString(on_fail) names the rule. Returns whether every rule so far held.
  bool check(bool ok, cudnnStatus_t on_fail, const std::string& rule,
             const std::string& detail = "");
  bool ok() const { return status_ == CUDNN_STATUS_SUCCESS; }
  cudnnStatus_t status() const { return status_; }
  const char* entry_point() const { return entry_; }

  // Shared rule groups (each a few check() calls).
  bool handle(cudnnHandle_t h);  // created by cudnnCreate and not destroyed
  // For a call that launches work: handle() and the device rules (the current device and the
  // handle's stream are the handle's device); device_data() then also requires the handle's
  // device.
  bool launch(cudnnHandle_t h);
  // `d` created, not destroyed and set; `name` is the argument's name in cuDNN's signature.
  bool tensor(cudnnTensorDescriptor_t d, const char* name);
  bool filter(cudnnFilterDescriptor_t d, const char* name);
  bool convolution(cudnnConvolutionDescriptor_t d, const char* name);
  bool pooling(cudnnPoolingDescriptor_t d, const char* name);
  // Non-null, in one device allocation with `bytes` from p on, aligned to `align` bytes.
  bool device_data(const void* p, size_t bytes, size_t align, const char* name);
  bool float_type(cudnnDataType_t t, const char* name);  // the stand-in computes f32 only
  bool scaling(const void* alpha, const void* beta);     // host pointers, non-null

 private:
  const char* entry_;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
  int device_ = -1;  // the handle's device once launch() checked it
};

// ---- tensors -----------------------------------------------------------------------------------

size_t data_type_bytes(cudnnDataType_t t);  // 0 for a type outside the enum
// Elements the described tensor covers (1 + sum (dim - 1) * stride) and its byte span.
size_t tensor_span_elements(const cudnnTensorStruct& d);
size_t tensor_bytes(const cudnnTensorStruct& d);
size_t filter_bytes(const cudnnFilterStruct& d);
// The dims as a vector; a 4-d tensor is [N, C, H, W].
std::vector<int64_t> tensor_dims(const cudnnTensorStruct& d);
std::string dims_str(const cudnnTensorStruct& d);

// Reads the described f32 tensor at `p` into packed row-major order of its dims.
std::vector<float> gather(const cudnnTensorStruct& d, const void* p);
// out[i] = alpha * packed[i] + beta * out[i] over the described tensor at `p` (beta == 0: `out`
// is not read, so NaN there is overwritten, as cuDNN's blending).
void blend(const cudnnTensorStruct& d, void* p, const std::vector<float>& packed, float alpha,
           float beta);
// A filter as a packed NCHW tensor description (the stand-in reads NHWC filters as cuDNN does).
cudnnTensorStruct filter_as_tensor(const cudnnFilterStruct& f);

// ---- the computation ---------------------------------------------------------------------------

// The host backend every cuDNN stand-in computes with (created once, never destroyed).
Backend& host();
// A host f32 tensor of `shape` holding `values` (zeros when empty).
Tensor host_tensor(const std::vector<int64_t>& shape, const std::vector<float>& values = {});
std::vector<float> host_values(const Tensor& t);
// The status the calling thread's last broken rule returned (SUCCESS if none).
cudnnStatus_t last_failed_status();
// One operand of queued work: its argument name, pointer (NULL: optional and absent) and bytes.
struct Operand {
  const char* name;
  const void* p;
  size_t bytes;
};
// In queued work, before anything is read: every operand is still allocated (one released before
// the stream ran the work would be a use after free on the device). Throws tessera::Error
// (Backend) naming the operand, which the stream reports at its synchronisation.
void require_allocated(const char* entry_point, std::initializer_list<Operand> operands);
// Reads *alpha / *beta (f32 scaling factors of an f32 call) at call time.
float scale(const void* p);

// ---- convolution (cudnn_conv.cpp) --------------------------------------------------------------

// The shape of one 2-d convolution, from validated descriptors.
struct ConvGeometry {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0, r = 0, s = 0;         // filter: K output maps, R x S window (C/groups input maps)
  int p = 0, q = 0;                // output height and width
  cudnnConvolutionStruct conv;
};
// The rules that bind x, w, conv and y of one convolution (checked by every convolution call and
// by cudnnFind*); fills `g` when they hold. Names are the call's argument names.
bool check_conv_shapes(Rules& r, const cudnnTensorStruct* x, const char* x_name,
                       const cudnnFilterStruct* w, const char* w_name,
                       const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y,
                       const char* y_name, ConvGeometry& g);
// The descriptors of one convolution call, in the roles x (input), w, conv, y (output), with their
// argument names in the call; check_conv_args checks the handle, each descriptor and the shapes.
struct ConvArgs {
  cudnnTensorStruct* x;
  cudnnFilterStruct* w;
  cudnnConvolutionStruct* conv;
  cudnnTensorStruct* y;
  const char* x_name;
  const char* w_name;
  const char* y_name;
};
bool check_conv_args(Rules& r, cudnnHandle_t handle, const ConvArgs& a, ConvGeometry& g);

enum class ConvDirection : uint8_t { Forward, BackwardData, BackwardFilter };
// The arguments of a call of direction `d` in their roles, named as that direction's calls name
// them (forward: xDesc, wDesc, yDesc; backward data: dxDesc, wDesc, dyDesc; backward filter:
// xDesc, dwDesc, dyDesc).
ConvArgs conv_args(ConvDirection d, cudnnTensorStruct* x, cudnnFilterStruct* w,
                   cudnnConvolutionStruct* conv, cudnnTensorStruct* y);

// The stand-in's model of one algorithm for one geometry (cuda/emu/README.md, "Stand-in:
// cuDNN"): whether it supports it (and why not), its workspace, the pointer alignment it needs,
// its determinism and a modelled time.
struct AlgoModel {
  bool supported = true;
  std::string why_not;
  size_t workspace = 0;
  size_t alignment = 4;
  bool deterministic = true;
  float time_ms = 0.f;
};
int algo_count(ConvDirection d);
AlgoModel model_algo(ConvDirection d, int algo, const ConvGeometry& g);
// The rules on an algorithm and its workspace at execution time: a valid enumerant, supported
// for this geometry, workSpaceSizeInBytes >= its workspace, the workspace in device memory.
bool check_algo(Rules& r, ConvDirection d, int algo, const ConvGeometry& g, const void* workspace,
                size_t workspace_bytes, AlgoModel& model);

}  // namespace tessera::emu::cudnn_standin
