// The cuDNN stand-in's core (cuda/emu/README.md, "Stand-in: cuDNN"): status strings, the handle,
// tensor descriptors, the live-object registry, the rule checker shared by every cuDNN stand-in,
// and the helpers that read and blend described tensors.
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_core_internal.h"
#include "cuda/emu/stream_model.h"
#include "host/core/error.h"

namespace tessera::emu::cudnn_standin {

namespace {

struct LiveRegistry {
  std::mutex mutex;
  std::map<const void*, ObjectKind> objects;
};
LiveRegistry& live_registry() {
  static auto* r = new LiveRegistry();  // never destroyed: descriptors may die in static dtors
  return *r;
}

// The status the last broken rule of this thread returned (cudnnGetErrorString names the rule
// only for that status).
thread_local cudnnStatus_t t_last_failed_status = CUDNN_STATUS_SUCCESS;

const char* kind_name(ObjectKind k) {
  switch (k) {
    case ObjectKind::Handle:
      return "handle";
    case ObjectKind::Tensor:
      return "tensor descriptor";
    case ObjectKind::Filter:
      return "filter descriptor";
    case ObjectKind::Convolution:
      return "convolution descriptor";
    case ObjectKind::Pooling:
      return "pooling descriptor";
    case ObjectKind::Other:
      return "descriptor";
  }
  return "object";
}

std::string ptr_str(const void* p) {
  std::ostringstream s;
  s << p;
  return s.str();
}

}  // namespace

void add_live(const void* object, ObjectKind kind) {
  LiveRegistry& r = live_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.objects[object] = kind;
}

void remove_live(const void* object) {
  LiveRegistry& r = live_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.objects.erase(object);
}

bool is_live(const void* object, ObjectKind kind) {
  if (!object) return false;
  LiveRegistry& r = live_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.objects.find(object);
  return it != r.objects.end() && it->second == kind;
}

// ---- Rules -------------------------------------------------------------------------------------

Rules::Rules(const char* entry_point) : entry_(entry_point) {
  record_call(kLibrary, entry_point);
  if (const int injected = take_injected_failure(entry_point)) {  // fail_next_calls
    status_ = static_cast<cudnnStatus_t>(injected);
    t_last_failed_status = status_;
  }
}

bool Rules::check(bool ok, cudnnStatus_t on_fail, const std::string& rule,
                  const std::string& detail) {
  if (status_ != CUDNN_STATUS_SUCCESS) return false;
  if (!check_rule(kLibrary, entry_, rule.c_str(), ok, detail)) {
    status_ = on_fail;
    t_last_failed_status = on_fail;
  }
  return status_ == CUDNN_STATUS_SUCCESS;
}

bool Rules::handle(cudnnHandle_t h) {
  return check(is_live(h, ObjectKind::Handle), CUDNN_STATUS_BAD_PARAM,
               "handle was created by cudnnCreate and not destroyed", "handle " + ptr_str(h));
}

bool Rules::launch(cudnnHandle_t h) {
  if (!handle(h)) return false;
  const int current = detail::current_device(), stream_device = detail::stream_device(h->stream);
  if (!check(current == h->device, CUDNN_STATUS_EXECUTION_FAILED,
             "the current device is the one the handle was created on",
             "handle device " + std::to_string(h->device) + ", current device " +
                 std::to_string(current)) ||
      !check(stream_device == h->device, CUDNN_STATUS_EXECUTION_FAILED,
             "the handle's stream exists and belongs to the handle's device",
             detail::stream_label(h->stream) + ", handle device " + std::to_string(h->device)))
    return false;
  device_ = h->device;
  return true;
}

namespace {
template <typename T>
bool described(Rules& r, const T* d, ObjectKind kind, const char* name) {
  const std::string what = std::string(name) + " is a " + kind_name(kind);
  return r.check(is_live(d, kind), CUDNN_STATUS_BAD_PARAM, what + " created and not destroyed",
                 std::string(name) + " " + ptr_str(d)) &&
         r.check(d->set, CUDNN_STATUS_BAD_PARAM, what + " whose dimensions were set",
                 std::string(name) + " was created but never set");
}
}  // namespace

bool Rules::tensor(cudnnTensorDescriptor_t d, const char* name) {
  return described(*this, d, ObjectKind::Tensor, name);
}
bool Rules::filter(cudnnFilterDescriptor_t d, const char* name) {
  return described(*this, d, ObjectKind::Filter, name);
}
bool Rules::convolution(cudnnConvolutionDescriptor_t d, const char* name) {
  return described(*this, d, ObjectKind::Convolution, name);
}
bool Rules::pooling(cudnnPoolingDescriptor_t d, const char* name) {
  return described(*this, d, ObjectKind::Pooling, name);
}

bool Rules::device_data(const void* p, size_t bytes, size_t align, const char* name) {
  const std::string n = name;
  const auto a = find_device_allocation(p);
  std::ostringstream where;
  where << n << " = " << p << ", " << bytes << " bytes needed";
  if (a)
    where << ", allocation of " << a->bytes << " bytes at " << static_cast<const void*>(a->base);
  return check(p != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, n + " is not NULL") &&
         check(is_device_range(p, bytes), CUDNN_STATUS_BAD_PARAM,
               n + " points to device memory holding all of its descriptor's elements",
               where.str()) &&
         (device_ < 0 || check(a->device == device_, CUDNN_STATUS_EXECUTION_FAILED,
                               n + " is memory of the handle's device (no peer access)",
                               "allocation on device " + std::to_string(a->device) +
                                   ", handle device " + std::to_string(device_))) &&
         check(reinterpret_cast<uintptr_t>(p) % align == 0,
               CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER,
               n + " is aligned to " + std::to_string(align) + " bytes",
               n + " = " + ptr_str(p) + " is " +
                   std::to_string(reinterpret_cast<uintptr_t>(p) % align) + " bytes past it");
}

bool Rules::float_type(cudnnDataType_t t, const char* name) {
  return check(t == CUDNN_DATA_FLOAT, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE,
               std::string(name) + " is CUDNN_DATA_FLOAT (the only type tessera uses)",
               "data type " + std::to_string(static_cast<int>(t)));
}

bool Rules::scaling(const void* alpha, const void* beta) {
  return check(alpha != nullptr && beta != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "alpha and beta point to host scaling factors");
}

// ---- tensors -----------------------------------------------------------------------------------

size_t data_type_bytes(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT:
      return 4;
    case CUDNN_DATA_DOUBLE:
      return 8;
    case CUDNN_DATA_HALF:
      return 2;
    case CUDNN_DATA_INT8:
      return 1;
    case CUDNN_DATA_INT32:
      return 4;
    case CUDNN_DATA_UINT8:
      return 1;
    case CUDNN_DATA_BFLOAT16:
      return 2;
    case CUDNN_DATA_INT64:
      return 8;
  }
  return 0;
}

size_t tensor_span_elements(const cudnnTensorStruct& d) {
  size_t span = 1;
  for (int i = 0; i < d.nb_dims; ++i)
    span += static_cast<size_t>(d.dims[i] - 1) * static_cast<size_t>(d.strides[i]);
  return span;
}

size_t tensor_bytes(const cudnnTensorStruct& d) {
  return tensor_span_elements(d) * data_type_bytes(d.type);
}

size_t filter_bytes(const cudnnFilterStruct& f) {
  return static_cast<size_t>(f.k) * f.c * f.h * f.w * data_type_bytes(f.type);
}

std::vector<int64_t> tensor_dims(const cudnnTensorStruct& d) {
  return std::vector<int64_t>(d.dims, d.dims + d.nb_dims);
}

std::string dims_str(const cudnnTensorStruct& d) {
  return shape_str(tensor_dims(d));
}

namespace {
// Calls f(packed index, element offset) for every element, in row-major order of the dims.
template <typename F>
void for_each_element(const cudnnTensorStruct& d, F f) {
  size_t count = 1;
  for (int i = 0; i < d.nb_dims; ++i) count *= static_cast<size_t>(d.dims[i]);
  std::vector<int> idx(static_cast<size_t>(d.nb_dims), 0);
  for (size_t n = 0; n < count; ++n) {
    size_t off = 0;
    for (int i = 0; i < d.nb_dims; ++i) off += static_cast<size_t>(idx[i]) * d.strides[i];
    f(n, off);
    for (int i = d.nb_dims - 1; i >= 0; --i) {
      if (++idx[i] < d.dims[i]) break;
      idx[i] = 0;
    }
  }
}
}  // namespace

std::vector<float> gather(const cudnnTensorStruct& d, const void* p) {
  const auto* src = static_cast<const float*>(p);
  std::vector<float> out;
  for_each_element(d, [&](size_t, size_t off) { out.push_back(src[off]); });
  return out;
}

void blend(const cudnnTensorStruct& d, void* p, const std::vector<float>& packed, float alpha,
           float beta) {
  auto* dst = static_cast<float*>(p);
  for_each_element(d, [&](size_t n, size_t off) {
    dst[off] = beta == 0.f ? alpha * packed[n] : alpha * packed[n] + beta * dst[off];
  });
}

cudnnTensorStruct filter_as_tensor(const cudnnFilterStruct& f) {
  cudnnTensorStruct t;
  t.set = true;
  t.type = f.type;
  t.nb_dims = 4;
  const int dims[4] = {f.k, f.c, f.h, f.w};
  // NHWC filters are stored k, h, w, c: the strides reorder them into [K, C, H, W].
  const int nchw[4] = {f.c * f.h * f.w, f.h * f.w, f.w, 1};
  const int nhwc[4] = {f.h * f.w * f.c, 1, f.w * f.c, f.c};
  for (int i = 0; i < 4; ++i) {
    t.dims[i] = dims[i];
    t.strides[i] = f.format == CUDNN_TENSOR_NHWC ? nhwc[i] : nchw[i];
  }
  return t;
}

// ---- the computation ---------------------------------------------------------------------------

Backend& host() {
  static Backend* b = make_host_backend().release();  // never destroyed (static-dtor order)
  return *b;
}

Tensor host_tensor(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  if (values.empty()) return Tensor::host(shape);
  return Tensor::host_from(shape, values);
}

std::vector<float> host_values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

float scale(const void* p) {
  return *static_cast<const float*>(p);
}

cudnnStatus_t last_failed_status() {
  return t_last_failed_status;
}

void require_allocated(const char* entry_point, std::initializer_list<Operand> operands) {
  const char* rule = "the operands stay allocated until the queued work has run";
  for (const Operand& o : operands) {
    if (o.p == nullptr || is_device_range(o.p, o.bytes)) continue;
    const std::string detail = std::string(o.name) + " was released before the work ran";
    check_rule(kLibrary, entry_point, rule, false, detail);
    TESSERA_THROW(Backend, entry_point << " (cuDNN stand-in, queued work): " << rule << " ("
                                       << detail << ")");
  }
  check_rule(kLibrary, entry_point, rule, true);
}

}  // namespace tessera::emu::cudnn_standin

// ---- the C entry points: version, status, handle, tensor descriptors ---------------------------

using tessera::emu::cudnn_standin::ObjectKind;
using tessera::emu::cudnn_standin::Rules;
namespace sd = tessera::emu::cudnn_standin;

size_t cudnnGetVersion() {
  return CUDNN_VERSION;
}

namespace {
const char* status_name(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
      return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER:
      return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER:
      return "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER";
    case CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND:
      return "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND";
    case CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT:
      return "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT";
    case CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH:
      return "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH";
    case CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH:
      return "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE:
      return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
    case CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE:
      return "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE";
    case CUDNN_STATUS_NOT_SUPPORTED_LAYOUT:
      return "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}
}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t status) {
  thread_local std::string message;
  message = status_name(status);
  const std::string& rule = tessera::emu::last_rule_failure();
  if (status != CUDNN_STATUS_SUCCESS && status == sd::last_failed_status() && !rule.empty())
    message += ": broke the rule " + rule;
  return message.c_str();
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  Rules r("cudnnCreate");
  if (!r.check(handle != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "handle is not NULL"))
    return r.status();
  *handle = new cudnnContext();
  (*handle)->device = tessera::emu::detail::current_device();
  sd::add_live(*handle, ObjectKind::Handle);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  Rules r("cudnnDestroy");
  if (!r.handle(handle)) return r.status();
  sd::remove_live(handle);
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  Rules r("cudnnSetStream");
  const auto stream_device = [&] { return tessera::emu::detail::stream_device(stream); };
  if (!r.handle(handle) ||
      !r.check(stream_device() == handle->device, CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH,
               "streamId exists and belongs to the handle's device",
               tessera::emu::detail::stream_label(stream) + ", handle device " +
                   std::to_string(handle->device)))
    return r.status();
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* stream) {
  Rules r("cudnnGetStream");
  if (!r.handle(handle) ||
      !r.check(stream != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "streamId is not NULL"))
    return r.status();
  *stream = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
  Rules r("cudnnCreateTensorDescriptor");
  if (!r.check(desc != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "tensorDesc is not NULL"))
    return r.status();
  *desc = new cudnnTensorStruct();
  sd::add_live(*desc, ObjectKind::Tensor);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
  Rules r("cudnnDestroyTensorDescriptor");
  if (desc == nullptr) return CUDNN_STATUS_SUCCESS;  // cuDNN: destroying NULL is a no-op
  if (!r.check(sd::is_live(desc, ObjectKind::Tensor), CUDNN_STATUS_BAD_PARAM,
               "tensorDesc is a tensor descriptor created and not destroyed"))
    return r.status();
  sd::remove_live(desc);
  delete desc;
  return CUDNN_STATUS_SUCCESS;
}

namespace {
constexpr long long kMaxTensorElements = (1LL << 31) - 1;  // cuDNN's 2 Giga-element limit

// The rules shared by the 4-d and N-d setters, on dims/strides already copied.
bool check_tensor_dims(Rules& r, cudnnDataType_t type, int nb, const int* dims,
                       const int* strides) {
  long long elements = 1;
  bool positive = true, strides_ok = true;
  std::string shown;
  for (int i = 0; i < nb; ++i) {
    positive = positive && dims[i] > 0;
    strides_ok = strides_ok && strides[i] > 0;
    if (dims[i] > 0) elements *= dims[i];
    shown += (i ? "," : "") + std::to_string(dims[i]) + "/" + std::to_string(strides[i]);
  }
  return r.check(sd::data_type_bytes(type) != 0, CUDNN_STATUS_BAD_PARAM,
                 "dataType is a valid cudnnDataType_t", std::to_string(static_cast<int>(type))) &&
         r.check(positive, CUDNN_STATUS_BAD_PARAM, "every dimension is > 0",
                 "dims/strides " + shown) &&
         r.check(strides_ok, CUDNN_STATUS_BAD_PARAM, "every stride is > 0",
                 "dims/strides " + shown) &&
         r.check(elements <= kMaxTensorElements, CUDNN_STATUS_NOT_SUPPORTED,
                 "the tensor has at most 2^31 - 1 elements", std::to_string(elements));
}

void store_tensor(cudnnTensorDescriptor_t d, cudnnDataType_t type, int nb, const int* dims,
                  const int* strides) {
  d->type = type;
  d->nb_dims = nb;
  for (int i = 0; i < nb; ++i) {
    d->dims[i] = dims[i];
    d->strides[i] = strides[i];
  }
  d->set = true;
}
}  // namespace

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  Rules r("cudnnSetTensor4dDescriptor");
  if (!r.check(sd::is_live(desc, ObjectKind::Tensor), CUDNN_STATUS_BAD_PARAM,
               "tensorDesc is a tensor descriptor created and not destroyed") ||
      !r.check(format == CUDNN_TENSOR_NCHW || format == CUDNN_TENSOR_NHWC, CUDNN_STATUS_BAD_PARAM,
               "format is CUDNN_TENSOR_NCHW or CUDNN_TENSOR_NHWC (VECT_C needs vector types)",
               std::to_string(static_cast<int>(format))))
    return r.status();
  const int dims[4] = {n, c, h, w};
  // Products in 64 bits: a too-large tensor is refused by the element-count rule below.
  const auto i = [](long long v) { return static_cast<int>(v); };
  const long long hw = 1LL * h * w;
  int strides[4] = {i(c * hw), i(hw), w, 1};
  if (format == CUDNN_TENSOR_NHWC) {
    strides[0] = i(hw * c);
    strides[1] = 1;
    strides[2] = i(1LL * w * c);
    strides[3] = c;
  }
  if (!check_tensor_dims(r, type, 4, dims, strides)) return r.status();
  store_tensor(desc, type, 4, dims, strides);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t desc, cudnnDataType_t type,
                                         int nbDims, const int dims[], const int strides[]) {
  Rules r("cudnnSetTensorNdDescriptor");
  if (!r.check(sd::is_live(desc, ObjectKind::Tensor), CUDNN_STATUS_BAD_PARAM,
               "tensorDesc is a tensor descriptor created and not destroyed") ||
      !r.check(nbDims >= 3 && nbDims <= CUDNN_DIM_MAX, CUDNN_STATUS_NOT_SUPPORTED,
               "3 <= nbDims <= CUDNN_DIM_MAX (8)", "nbDims " + std::to_string(nbDims)) ||
      !r.check(dims != nullptr && strides != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "dimA and strideA are not NULL") ||
      !check_tensor_dims(r, type, nbDims, dims, strides))
    return r.status();
  store_tensor(desc, type, nbDims, dims, strides);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t desc, int nbDimsRequested,
                                         cudnnDataType_t* type, int* nbDims, int dims[],
                                         int strides[]) {
  Rules r("cudnnGetTensorNdDescriptor");
  if (!r.tensor(desc, "tensorDesc") ||
      !r.check(nbDimsRequested >= 0, CUDNN_STATUS_BAD_PARAM, "nbDimsRequested >= 0",
               std::to_string(nbDimsRequested)) ||
      !r.check(type && nbDims && (nbDimsRequested == 0 || (dims && strides)),
               CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "dataType, nbDims and (for nbDimsRequested > 0) dimA, strideA are not NULL"))
    return r.status();
  *type = desc->type;
  *nbDims = desc->nb_dims;
  for (int i = 0; i < nbDimsRequested && i < desc->nb_dims; ++i) {
    dims[i] = desc->dims[i];
    strides[i] = desc->strides[i];
  }
  return CUDNN_STATUS_SUCCESS;
}
