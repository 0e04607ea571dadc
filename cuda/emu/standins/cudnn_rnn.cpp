// cuDNN stand-in, RNN part: dropout, RNN and RNN data descriptors, the size queries and
// cudnnGetRNNWeightParams (cuda/emu/include/cudnn_rnn_standin.h; layouts in
// cudnn_rnn_internal.h). The rules are those cuDNN's documentation states for each call;
// "stand-in computes ..." rules mark what cuDNN accepts but the stand-in does not compute.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_rnn_internal.h"
#include "host/backend/host_backend.h"

namespace tessera::emu::cudnn_standin {

namespace {

// Bytes of device memory the stand-in's dropout "generator" state takes (cuDNN's depends on the
// GPU; the stand-in fills it from the seed so that a too-small buffer is an overrun).
constexpr size_t kDropoutStateBytes = 4096;
// Every weight-space block starts on this many floats (64 bytes).
constexpr int64_t kBlockAlignFloats = 16;

std::string ptr_text(const void* p) {
  std::ostringstream o;
  o << p;
  return o.str();
}

template <typename T>
bool described(Rules& r, const T* d, const char* kind, const char* name, bool need_set) {
  const std::string what = std::string(name) + " is " + kind;
  if (!r.check(is_live(d, ObjectKind::Other), CUDNN_STATUS_BAD_PARAM,
               what + " created and not destroyed", std::string(name) + " " + ptr_text(d)))
    return false;
  return !need_set || r.check(d->set, CUDNN_STATUS_BAD_PARAM, what + " that was set",
                              std::string(name) + " was created but never set");
}

template <typename T>
cudnnStatus_t create(const char* entry, T** out) {
  Rules r(entry);
  if (!r.check(out != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "the descriptor pointer is not NULL"))
    return r.status();
  *out = new T();
  add_live(*out, ObjectKind::Other);
  return CUDNN_STATUS_SUCCESS;
}

template <typename T>
cudnnStatus_t destroy(const char* entry, T* d, const char* kind) {
  Rules r(entry);
  if (d == nullptr) return CUDNN_STATUS_SUCCESS;  // as cuDNN: destroying NULL does nothing
  if (!described(r, d, kind, "descriptor", false)) return r.status();
  remove_live(d);
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

bool known_type(cudnnDataType_t t) {
  return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE || t == CUDNN_DATA_HALF;
}

}  // namespace

// ---- rule groups -------------------------------------------------------------------------------

bool dropout_desc(Rules& r, cudnnDropoutDescriptor_t d, const char* name) {
  return described(r, d, "a dropout descriptor", name, true);
}
bool rnn_desc(Rules& r, cudnnRNNDescriptor_t d, const char* name) {
  return described(r, d, "an RNN descriptor", name, true);
}
bool rnn_data_desc(Rules& r, cudnnRNNDataDescriptor_t d, const char* name) {
  return described(r, d, "an RNN data descriptor", name, true);
}

bool rnn_data_for(Rules& r, const cudnnRNNStruct& rnn, cudnnRNNDataDescriptor_t d, bool output,
                  const char* name) {
  if (!rnn_data_desc(r, d, name)) return false;
  const std::string n = name;
  const bool unpacked = d->layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED;
  const int want = output ? rnn.dirs() * rnn.proj : rnn.input;
  std::ostringstream got;
  got << n << " vectorSize " << d->vector << ", expected " << want;
  return r.check(d->type == rnn.type, CUDNN_STATUS_BAD_PARAM,
                 n + "'s data type is the RNN descriptor's dataType") &&
         r.check(!unpacked || (rnn.aux & CUDNN_RNN_PADDED_IO_ENABLED) != 0, CUDNN_STATUS_BAD_PARAM,
                 "an unpacked layout (SEQ_MAJOR_UNPACKED, BATCH_MAJOR_UNPACKED) needs "
                 "CUDNN_RNN_PADDED_IO_ENABLED in the RNN descriptor's auxFlags",
                 n + " layout " + std::to_string(d->layout) + ", auxFlags " +
                     std::to_string(rnn.aux)) &&
         r.check(d->vector == want, CUDNN_STATUS_BAD_PARAM,
                 output ? "yDesc's vectorSize is the RNN's projSize (hiddenSize) times directions"
                        : "xDesc's vectorSize is the RNN's inputSize",
                 got.str());
}

bool computable_data(Rules& r, const cudnnRNNDataStruct& d, const char* name) {
  const bool full =
      std::all_of(d.lengths.begin(), d.lengths.end(), [&](int len) { return len == d.max_seq; });
  return r.check(d.layout != CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, CUDNN_STATUS_NOT_SUPPORTED,
                 "stand-in computes sequence-major layouts only (tessera uses SEQ_MAJOR)",
                 std::string(name) + " is BATCH_MAJOR_UNPACKED") &&
         r.check(full, CUDNN_STATUS_NOT_SUPPORTED,
                 "stand-in computes batches whose sequences all have maxSeqLength steps "
                 "(tessera's)",
                 std::string(name) + " has a shorter sequence");
}

bool state_desc(Rules& r, const cudnnRNNStruct& rnn, int batch, cudnnTensorDescriptor_t d,
                const char* name) {
  if (!r.tensor(d, name)) return false;
  const std::string n = name;
  const int want[3] = {rnn.layers * rnn.dirs(), batch, rnn.hidden};
  const bool dims_ok = d->nb_dims == 3 && std::equal(want, want + 3, d->dims);
  const bool packed = dims_ok && d->strides[2] == 1 && d->strides[1] == want[2] &&
                      d->strides[0] == want[1] * want[2];
  std::ostringstream expected;
  expected << n << " is " << dims_str(*d) << ", expected [" << want[0] << ", " << want[1] << ", "
           << want[2] << "]";
  return r.check(d->type == rnn.type, CUDNN_STATUS_BAD_PARAM,
                 n + "'s data type is the RNN descriptor's dataType") &&
         r.check(dims_ok, CUDNN_STATUS_BAD_PARAM,
                 n + " is [numLayers * directions, batchSize, hiddenSize]", expected.str()) &&
         r.check(packed, CUDNN_STATUS_BAD_PARAM, n + " is fully packed",
                 n + " strides " + std::to_string(d->strides[0]) + ", " +
                     std::to_string(d->strides[1]) + ", " + std::to_string(d->strides[2]));
}

// ---- layouts -----------------------------------------------------------------------------------

LstmConfig lstm_config(const cudnnRNNStruct& rnn) {
  LstmConfig c;
  c.input_size = rnn.input;
  c.hidden_size = rnn.hidden;
  c.num_layers = rnn.layers;
  c.directions = rnn.dir == CUDNN_BIDIRECTIONAL ? LstmDirections::Bidirectional
                                                : LstmDirections::Unidirectional;
  c.dropout = rnn.has_dropout ? rnn.dropout : 0.f;
  c.dropout_seed = rnn.dropout_seed;
  return c;
}

CanonicalBlock canonical_matrix(const LstmConfig& c, int pseudo, int lin) {
  const int64_t layer = pseudo / c.dirs(), h = c.hidden_size;
  const LstmWeightOffsets o = lstm_weight_offsets(c, layer, pseudo % c.dirs());
  if (lin < 4) {
    const int64_t cols = c.layer_input_size(layer);
    return {o.w_ih + lin * h * cols, h * cols};
  }
  return {o.w_hh + (lin - 4) * h * h, h * h};
}

CanonicalBlock canonical_bias(const LstmConfig& c, int pseudo, int lin) {
  const LstmWeightOffsets o = lstm_weight_offsets(c, pseudo / c.dirs(), pseudo % c.dirs());
  const int64_t h = c.hidden_size;
  return {lin < 4 ? o.b_ih + lin * h : o.b_hh + (lin - 4) * h, h};
}

WeightLayout weight_layout(const LstmConfig& c) {
  WeightLayout l;
  const int pseudo_layers = static_cast<int>(c.num_layers) * c.dirs();
  auto place = [&](int64_t count) {
    const int64_t at = l.floats;
    l.floats = (at + count + kBlockAlignFloats - 1) / kBlockAlignFloats * kBlockAlignFloats;
    return at;
  };
  for (int p = 0; p < pseudo_layers; ++p)
    for (int lin = 0; lin < 8; ++lin) l.matrix.push_back(place(canonical_matrix(c, p, lin).count));
  for (int p = 0; p < pseudo_layers; ++p)
    for (int lin = 0; lin < 8; ++lin) l.bias.push_back(place(canonical_bias(c, p, lin).count));
  return l;
}

void space_to_canonical(const LstmConfig& c, const WeightLayout& l, const float* space,
                        float* canonical) {
  for (size_t i = 0; i < l.matrix.size(); ++i) {
    const int p = static_cast<int>(i / 8), lin = static_cast<int>(i % 8);
    const CanonicalBlock m = canonical_matrix(c, p, lin), b = canonical_bias(c, p, lin);
    std::memcpy(canonical + m.at, space + l.matrix[i], static_cast<size_t>(m.count) * 4);
    std::memcpy(canonical + b.at, space + l.bias[i], static_cast<size_t>(b.count) * 4);
  }
}

void add_canonical_to_space(const LstmConfig& c, const WeightLayout& l, const float* canonical,
                            float* space) {
  for (size_t i = 0; i < l.matrix.size(); ++i) {
    const int p = static_cast<int>(i / 8), lin = static_cast<int>(i % 8);
    for (const auto& [block, at] : {std::pair{canonical_matrix(c, p, lin), l.matrix[i]},
                                    std::pair{canonical_bias(c, p, lin), l.bias[i]}}) {
      for (int64_t k = 0; k < block.count; ++k) space[at + k] += canonical[block.at + k];
    }
  }
}

size_t weight_space_bytes(const LstmConfig& c) {
  return static_cast<size_t>(weight_layout(c).floats) * sizeof(float);
}

size_t workspace_bytes(const LstmConfig& c) {
  return static_cast<size_t>(lstm_weight_count(c)) * sizeof(float);
}

ReserveLayout reserve_layout(const LstmConfig& c, int64_t t, int64_t b) {
  ReserveLayout r;
  r.host = 0;
  r.x = host_lstm_reserve_floats(c, t, b);
  r.dw = r.x + t * b * c.input_size;
  r.floats = r.dw + lstm_weight_count(c);
  return r;
}

// ---- reserve spaces ----------------------------------------------------------------------------

namespace {
struct ReserveRecord {
  ReserveKey key;
  ReserveStage stage = ReserveStage::None;
};
struct ReserveRegistry {
  std::mutex mutex;
  std::map<const void*, ReserveRecord> records;
};
ReserveRegistry& reserves() {
  static auto* r = new ReserveRegistry();  // never destroyed
  return *r;
}
}  // namespace

void record_reserve(const void* reserve, const ReserveKey& key, ReserveStage stage) {
  ReserveRegistry& r = reserves();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.records[reserve] = {key, stage};
}

ReserveStage reserve_stage(const void* reserve, const ReserveKey& key) {
  ReserveRegistry& r = reserves();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.records.find(reserve);
  if (it == r.records.end()) return ReserveStage::None;
  const ReserveKey& k = it->second.key;
  const bool same = k.config == key.config && k.t == key.t && k.b == key.b;
  return same ? it->second.stage : ReserveStage::None;
}

namespace {
class DeviceView final : public HostMemoryBuffer {
 public:
  DeviceView(const void* p, size_t bytes) : HostMemoryBuffer(bytes) {
    ptr_ = const_cast<void*>(p);  // not freed: the caller's device memory
  }
};
}  // namespace

Tensor device_view(const void* p, const Shape& shape) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * sizeof(float);
  return Tensor(std::make_shared<DeviceView>(p, bytes), shape, DType::F32);
}

}  // namespace tessera::emu::cudnn_standin

// ---- the C API ---------------------------------------------------------------------------------

using namespace tessera::emu::cudnn_standin;  // NOLINT: the stand-in's own helpers
using tessera::LstmConfig;

cudnnStatus_t cudnnCreateDropoutDescriptor(cudnnDropoutDescriptor_t* dropoutDesc) {
  return create("cudnnCreateDropoutDescriptor", dropoutDesc);
}
cudnnStatus_t cudnnDestroyDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc) {
  return destroy("cudnnDestroyDropoutDescriptor", dropoutDesc, "a dropout descriptor");
}
cudnnStatus_t cudnnCreateRNNDescriptor(cudnnRNNDescriptor_t* rnnDesc) {
  return create("cudnnCreateRNNDescriptor", rnnDesc);
}
cudnnStatus_t cudnnDestroyRNNDescriptor(cudnnRNNDescriptor_t rnnDesc) {
  return destroy("cudnnDestroyRNNDescriptor", rnnDesc, "an RNN descriptor");
}
cudnnStatus_t cudnnCreateRNNDataDescriptor(cudnnRNNDataDescriptor_t* rnnDataDesc) {
  return create("cudnnCreateRNNDataDescriptor", rnnDataDesc);
}
cudnnStatus_t cudnnDestroyRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc) {
  return destroy("cudnnDestroyRNNDataDescriptor", rnnDataDesc, "an RNN data descriptor");
}

cudnnStatus_t cudnnDropoutGetStatesSize(cudnnHandle_t handle, size_t* sizeInBytes) {
  Rules r("cudnnDropoutGetStatesSize");
  if (!r.handle(handle) || !r.check(sizeInBytes != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
                                    "sizeInBytes is not NULL"))
    return r.status();
  *sizeInBytes = kDropoutStateBytes;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t dropoutDesc, cudnnHandle_t handle,
                                        float dropout, void* states, size_t stateSizeInBytes,
                                        unsigned long long seed) {
  Rules r("cudnnSetDropoutDescriptor");
  const bool ok =
      described(r, dropoutDesc, "a dropout descriptor", "dropoutDesc", false) && r.handle(handle) &&
      r.check(dropout >= 0.f && dropout < 1.f, CUDNN_STATUS_BAD_PARAM,
              "dropout is a probability in [0, 1)", "dropout " + std::to_string(dropout)) &&
      r.check(stateSizeInBytes >= kDropoutStateBytes, CUDNN_STATUS_BAD_PARAM,
              "stateSizeInBytes >= cudnnDropoutGetStatesSize",
              std::to_string(stateSizeInBytes) + " < " + std::to_string(kDropoutStateBytes)) &&
      r.device_data(states, stateSizeInBytes, 1, "states");
  if (!ok) return r.status();
  dropoutDesc->set = true;
  dropoutDesc->p = dropout;
  dropoutDesc->seed = seed;
  // cuDNN initialises the generator state with a kernel on the handle's stream.
  tessera::emu::enqueue(handle->stream, "cudnnSetDropoutDescriptor", [states, seed] {
    auto* bytes = static_cast<unsigned char*>(states);
    for (size_t i = 0; i < kDropoutStateBytes; ++i)
      bytes[i] = static_cast<unsigned char>((seed >> (8 * (i % 8))) ^ i);
  });
  return CUDNN_STATUS_SUCCESS;
}

namespace {

// cudnnSetRNNDescriptor_v8's enumerations and sizes (BAD_PARAM) and what the stand-in computes
// (NOT_SUPPORTED).
bool rnn_settings(Rules& r, const cudnnRNNStruct& s, cudnnDataType_t math_prec,
                  cudnnMathType_t math) {
  const std::string sizes = "inputSize " + std::to_string(s.input) + ", hiddenSize " +
                            std::to_string(s.hidden) + ", projSize " + std::to_string(s.proj) +
                            ", numLayers " + std::to_string(s.layers);
  const bool math_prec_ok = s.type == CUDNN_DATA_HALF
                                ? (math_prec == CUDNN_DATA_HALF || math_prec == CUDNN_DATA_FLOAT)
                                : math_prec == s.type;
  return r.check(
             s.algo >= CUDNN_RNN_ALGO_STANDARD && s.algo <= CUDNN_RNN_ALGO_PERSIST_STATIC_SMALL_H,
             CUDNN_STATUS_BAD_PARAM, "algo is a cudnnRNNAlgo_t") &&
         r.check(s.cell >= CUDNN_RNN_RELU && s.cell <= CUDNN_GRU, CUDNN_STATUS_BAD_PARAM,
                 "cellMode is a cudnnRNNMode_t") &&
         r.check(s.bias >= CUDNN_RNN_NO_BIAS && s.bias <= CUDNN_RNN_SINGLE_REC_BIAS,
                 CUDNN_STATUS_BAD_PARAM, "biasMode is a cudnnRNNBiasMode_t") &&
         r.check(s.dir == CUDNN_UNIDIRECTIONAL || s.dir == CUDNN_BIDIRECTIONAL,
                 CUDNN_STATUS_BAD_PARAM, "dirMode is a cudnnDirectionMode_t") &&
         r.check(s.input_mode == CUDNN_LINEAR_INPUT || s.input_mode == CUDNN_SKIP_INPUT,
                 CUDNN_STATUS_BAD_PARAM, "inputMode is a cudnnRNNInputMode_t") &&
         r.check(known_type(s.type), CUDNN_STATUS_BAD_PARAM, "dataType is FLOAT, DOUBLE or HALF") &&
         r.check(math_prec_ok, CUDNN_STATUS_BAD_PARAM,
                 "mathPrec is dataType (FLOAT also allowed for HALF data)") &&
         r.check(math >= CUDNN_DEFAULT_MATH && math <= CUDNN_FMA_MATH, CUDNN_STATUS_BAD_PARAM,
                 "mathType is a cudnnMathType_t") &&
         r.check(s.input > 0 && s.hidden > 0 && s.layers > 0, CUDNN_STATUS_BAD_PARAM,
                 "inputSize, hiddenSize and numLayers > 0", sizes) &&
         r.check(s.proj > 0 && s.proj <= s.hidden && (s.cell == CUDNN_LSTM || s.proj == s.hidden),
                 CUDNN_STATUS_BAD_PARAM,
                 "0 < projSize <= hiddenSize (projSize == hiddenSize unless LSTM)", sizes) &&
         r.check(s.input_mode != CUDNN_SKIP_INPUT || s.input == s.hidden, CUDNN_STATUS_BAD_PARAM,
                 "CUDNN_SKIP_INPUT needs inputSize == hiddenSize", sizes) &&
         r.check((s.aux & ~CUDNN_RNN_PADDED_IO_ENABLED) == 0, CUDNN_STATUS_BAD_PARAM,
                 "auxFlags holds only CUDNN_RNN_PADDED_IO_* bits",
                 "auxFlags " + std::to_string(s.aux));
}

// What the stand-in computes of the RNNs cuDNN accepts.
bool rnn_computable(Rules& r, const cudnnRNNStruct& s) {
  return r.check(s.cell == CUDNN_LSTM && s.bias == CUDNN_RNN_DOUBLE_BIAS &&
                     s.input_mode == CUDNN_LINEAR_INPUT && s.proj == s.hidden,
                 CUDNN_STATUS_NOT_SUPPORTED,
                 "stand-in computes LSTM, CUDNN_RNN_DOUBLE_BIAS, CUDNN_LINEAR_INPUT, projSize == "
                 "hiddenSize (tessera's LSTM)") &&
         r.float_type(s.type, "dataType");
}

}  // namespace

cudnnStatus_t cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t rnnDesc, cudnnRNNAlgo_t algo,
                                       cudnnRNNMode_t cellMode, cudnnRNNBiasMode_t biasMode,
                                       cudnnDirectionMode_t dirMode, cudnnRNNInputMode_t inputMode,
                                       cudnnDataType_t dataType, cudnnDataType_t mathPrec,
                                       cudnnMathType_t mathType, int32_t inputSize,
                                       int32_t hiddenSize, int32_t projSize, int32_t numLayers,
                                       cudnnDropoutDescriptor_t dropoutDesc, uint32_t auxFlags) {
  Rules r("cudnnSetRNNDescriptor_v8");
  cudnnRNNStruct s;
  s.algo = algo;
  s.cell = cellMode;
  s.bias = biasMode;
  s.dir = dirMode;
  s.input_mode = inputMode;
  s.type = dataType;
  s.input = inputSize;
  s.hidden = hiddenSize;
  s.proj = projSize;
  s.layers = numLayers;
  s.aux = auxFlags;
  const bool ok = described(r, rnnDesc, "an RNN descriptor", "rnnDesc", false) &&
                  rnn_settings(r, s, mathPrec, mathType) &&
                  (dropoutDesc == nullptr || dropout_desc(r, dropoutDesc, "dropoutDesc")) &&
                  rnn_computable(r, s);
  if (!ok) return r.status();
  s.has_dropout = dropoutDesc != nullptr;
  if (dropoutDesc) {
    s.dropout = dropoutDesc->p;
    s.dropout_seed = dropoutDesc->seed;
  }
  s.set = true;
  *rnnDesc = s;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t rnnDataDesc,
                                        cudnnDataType_t dataType, cudnnRNNDataLayout_t layout,
                                        int maxSeqLength, int batchSize, int vectorSize,
                                        const int seqLengthArray[], void* paddingFill) {
  Rules r("cudnnSetRNNDataDescriptor");
  const std::string sizes = "maxSeqLength " + std::to_string(maxSeqLength) + ", batchSize " +
                            std::to_string(batchSize) + ", vectorSize " +
                            std::to_string(vectorSize);
  bool ok =
      described(r, rnnDataDesc, "an RNN data descriptor", "rnnDataDesc", false) &&
      r.check(known_type(dataType), CUDNN_STATUS_BAD_PARAM, "dataType is FLOAT, DOUBLE or HALF") &&
      r.check(layout >= CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED &&
                  layout <= CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED,
              CUDNN_STATUS_BAD_PARAM, "layout is a cudnnRNNDataLayout_t") &&
      r.check(maxSeqLength > 0 && batchSize > 0 && vectorSize > 0, CUDNN_STATUS_BAD_PARAM,
              "maxSeqLength, batchSize and vectorSize > 0", sizes) &&
      r.check(seqLengthArray != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
              "seqLengthArray is not NULL");
  if (!ok) return r.status();
  std::vector<int> lengths(seqLengthArray, seqLengthArray + batchSize);
  const auto bad = std::find_if(lengths.begin(), lengths.end(),
                                [&](int len) { return len < 1 || len > maxSeqLength; });
  ok = r.check(bad == lengths.end(), CUDNN_STATUS_BAD_PARAM,
               "every seqLengthArray entry is in [1, maxSeqLength] (0 is refused)",
               bad == lengths.end() ? ""
                                    : "seqLengthArray[" + std::to_string(bad - lengths.begin()) +
                                          "] = " + std::to_string(*bad)) &&
       r.check(layout != CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED ||
                   std::is_sorted(lengths.rbegin(), lengths.rend()),
               CUDNN_STATUS_BAD_PARAM, "a PACKED layout's seqLengthArray is non-increasing");
  if (!ok) return r.status();
  (void)paddingFill;  // the stand-in computes full-length sequences only: no padding to fill
  rnnDataDesc->set = true;
  rnnDataDesc->type = dataType;
  rnnDataDesc->layout = layout;
  rnnDataDesc->max_seq = maxSeqLength;
  rnnDataDesc->batch = batchSize;
  rnnDataDesc->vector = vectorSize;
  rnnDataDesc->lengths = std::move(lengths);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetRNNWeightSpaceSize(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                         size_t* weightSpaceSize) {
  Rules r("cudnnGetRNNWeightSpaceSize");
  if (!r.handle(handle) || !rnn_desc(r, rnnDesc, "rnnDesc") ||
      !r.check(weightSpaceSize != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
               "weightSpaceSize is not NULL"))
    return r.status();
  *weightSpaceSize = weight_space_bytes(lstm_config(*rnnDesc));
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetRNNTempSpaceSizes(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                        cudnnForwardMode_t fwdMode, cudnnRNNDataDescriptor_t xDesc,
                                        size_t* workSpaceSize, size_t* reserveSpaceSize) {
  Rules r("cudnnGetRNNTempSpaceSizes");
  const bool ok = r.handle(handle) && rnn_desc(r, rnnDesc, "rnnDesc") &&
                  r.check(fwdMode == CUDNN_FWD_MODE_INFERENCE || fwdMode == CUDNN_FWD_MODE_TRAINING,
                          CUDNN_STATUS_BAD_PARAM, "fwdMode is a cudnnForwardMode_t") &&
                  rnn_data_for(r, *rnnDesc, xDesc, false, "xDesc") &&
                  r.check(workSpaceSize != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
                          "workSpaceSize is not NULL");
  if (!ok) return r.status();
  const LstmConfig c = lstm_config(*rnnDesc);
  *workSpaceSize = workspace_bytes(c);
  if (reserveSpaceSize) {
    *reserveSpaceSize =
        fwdMode == CUDNN_FWD_MODE_TRAINING
            ? static_cast<size_t>(reserve_layout(c, xDesc->max_seq, xDesc->batch).floats) * 4
            : 0;
  }
  return CUDNN_STATUS_SUCCESS;
}

namespace {
void set_block_desc(cudnnTensorDescriptor_t d, int rows, int cols) {
  d->set = true;
  d->type = CUDNN_DATA_FLOAT;
  d->nb_dims = 3;
  const int dims[3] = {1, rows, cols}, strides[3] = {rows * cols, cols, 1};
  std::copy(dims, dims + 3, d->dims);
  std::copy(strides, strides + 3, d->strides);
}
void* address_in(const void* base, int64_t floats) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(base) +
                                 static_cast<uintptr_t>(floats) * sizeof(float));
}
}  // namespace

cudnnStatus_t cudnnGetRNNWeightParams(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                      int32_t pseudoLayer, size_t weightSpaceSize,
                                      const void* weightSpace, int32_t linLayerID,
                                      cudnnTensorDescriptor_t mDesc, void** mAddr,
                                      cudnnTensorDescriptor_t bDesc, void** bAddr) {
  Rules r("cudnnGetRNNWeightParams");
  if (!r.handle(handle) || !rnn_desc(r, rnnDesc, "rnnDesc")) return r.status();
  const LstmConfig c = lstm_config(*rnnDesc);
  const int pseudo_layers = rnnDesc->layers * rnnDesc->dirs();
  const size_t need = weight_space_bytes(c);
  const bool ok =
      r.check(pseudoLayer >= 0 && pseudoLayer < pseudo_layers, CUDNN_STATUS_BAD_PARAM,
              "pseudoLayer is in [0, numLayers * directions)",
              "pseudoLayer " + std::to_string(pseudoLayer) + ", " + std::to_string(pseudo_layers) +
                  " pseudo-layers") &&
      r.check(linLayerID >= 0 && linLayerID < 8, CUDNN_STATUS_BAD_PARAM,
              "linLayerID is in [0, 7] for LSTM", "linLayerID " + std::to_string(linLayerID)) &&
      r.check(weightSpaceSize >= need, CUDNN_STATUS_BAD_PARAM,
              "weightSpaceSize >= cudnnGetRNNWeightSpaceSize",
              std::to_string(weightSpaceSize) + " < " + std::to_string(need)) &&
      (mDesc == nullptr || r.check(is_live(mDesc, ObjectKind::Tensor), CUDNN_STATUS_BAD_PARAM,
                                   "mDesc is a tensor descriptor created and not destroyed")) &&
      (bDesc == nullptr || r.check(is_live(bDesc, ObjectKind::Tensor), CUDNN_STATUS_BAD_PARAM,
                                   "bDesc is a tensor descriptor created and not destroyed"));
  if (!ok) return r.status();
  const WeightLayout l = weight_layout(c);
  const size_t i = static_cast<size_t>(pseudoLayer) * 8 + static_cast<size_t>(linLayerID);
  const int64_t h = c.hidden_size;
  const int64_t cols = canonical_matrix(c, pseudoLayer, linLayerID).count / h;
  if (mDesc) set_block_desc(mDesc, static_cast<int>(h), static_cast<int>(cols));
  if (mAddr) *mAddr = address_in(weightSpace, l.matrix[i]);
  if (bDesc) set_block_desc(bDesc, static_cast<int>(h), 1);
  if (bAddr) *bAddr = address_in(weightSpace, l.bias[i]);
  return CUDNN_STATUS_SUCCESS;
}
