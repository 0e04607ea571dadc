// cuDNN stand-in, RNN part: cudnnRNNForward, cudnnRNNBackwardData_v8 and
// cudnnRNNBackwardWeights_v8. Each checks its arguments against the rules of cuDNN's
// documentation (returning cuDNN's status and queuing nothing when one is broken), then queues the
// host backend's LSTM over the caller's device memory on the handle's stream. Layouts of the
// weight space, workspace and reserve: cudnn_rnn_internal.h.
#include <algorithm>
#include <cstring>
#include <sstream>

#include "cuda/emu/standin.h"
#include "cuda/emu/standins/cudnn_rnn_internal.h"
#include "host/core/error.h"

namespace tessera::emu::cudnn_standin {
namespace {

// The data and state descriptors of a call: x and y of the RNN, alike in shape; h (and c when
// given) states of their batch; then what the stand-in computes.
bool io_descs(Rules& r, cudnnRNNDescriptor_t rnn, cudnnRNNDataDescriptor_t x,
              cudnnRNNDataDescriptor_t y, cudnnTensorDescriptor_t h, cudnnTensorDescriptor_t c,
              bool with_c) {
  if (!rnn_desc(r, rnn, "rnnDesc") || !rnn_data_for(r, *rnn, x, false, "xDesc") ||
      !rnn_data_for(r, *rnn, y, true, "yDesc"))
    return false;
  std::ostringstream shapes;
  shapes << "xDesc: layout " << x->layout << ", maxSeqLength " << x->max_seq << ", batchSize "
         << x->batch << "; yDesc: layout " << y->layout << ", maxSeqLength " << y->max_seq
         << ", batchSize " << y->batch;
  const bool alike = x->layout == y->layout && x->max_seq == y->max_seq && x->batch == y->batch &&
                     x->lengths == y->lengths;
  return r.check(alike, CUDNN_STATUS_BAD_PARAM,
                 "xDesc and yDesc have the same layout, maxSeqLength, batchSize and "
                 "seqLengthArray",
                 shapes.str()) &&
         state_desc(r, *rnn, x->batch, h, "hDesc") &&
         (!with_c || state_desc(r, *rnn, x->batch, c, "cDesc")) && computable_data(r, *x, "xDesc");
}

bool seq_lengths_arg(Rules& r, const int32_t* dev, int batch) {
  return r.check(dev != nullptr, CUDNN_STATUS_BAD_PARAM_NULL_POINTER,
                 "devSeqLengths is not NULL") &&
         r.check(is_device_range(dev, static_cast<size_t>(batch) * sizeof(int32_t)),
                 CUDNN_STATUS_BAD_PARAM,
                 "devSeqLengths is device memory holding batchSize int32 lengths",
                 "batchSize " + std::to_string(batch));
}

// A state argument that may be NULL (zeros / not written).
bool optional_data(Rules& r, const void* p, size_t bytes, const char* name) {
  return p == nullptr || r.device_data(p, bytes, sizeof(float), name);
}

bool space_arg(Rules& r, size_t size, const void* p, size_t need, const char* size_rule,
               const char* name) {
  return r.check(size >= need, CUDNN_STATUS_BAD_PARAM, size_rule,
                 std::to_string(size) + " < " + std::to_string(need)) &&
         (need == 0 || r.device_data(p, size, sizeof(float), name));
}

// The sizes and pointers the three calls share.
struct Shapes {
  LstmConfig c;
  int64_t t = 0, b = 0;
  size_t x_bytes = 0, y_bytes = 0, state_bytes = 0;
  ReserveLayout reserve;

  Shapes(const cudnnRNNStruct& rnn, const cudnnRNNDataStruct& x)
      : c(lstm_config(rnn)), t(x.max_seq), b(x.batch), reserve(reserve_layout(c, t, b)) {
    x_bytes = static_cast<size_t>(t * b * c.input_size) * 4;
    y_bytes = static_cast<size_t>(t * b * c.dirs() * c.hidden_size) * 4;
    state_bytes = static_cast<size_t>(c.num_layers * c.dirs() * b * c.hidden_size) * 4;
  }
  Shape x_shape() const { return {t, b, c.input_size}; }
  Shape y_shape() const { return {t, b, c.dirs() * c.hidden_size}; }
  Shape state_shape() const { return {c.num_layers * c.dirs(), b, c.hidden_size}; }
  size_t reserve_bytes() const { return static_cast<size_t>(reserve.floats) * 4; }
  ReserveKey key() const { return {c, t, b}; }
};

Tensor optional_view(const void* p, const Shape& shape) {
  return p ? device_view(p, shape) : Tensor();
}

float* floats_at(void* base, int64_t offset) {
  return static_cast<float*>(base) + offset;
}

// Run by the queued work: cuDNN's kernels read devSeqLengths when they run, not at the call.
void check_device_lengths(const char* entry, const int32_t* dev, const std::vector<int>& lengths) {
  const bool same = std::equal(lengths.begin(), lengths.end(), dev);
  std::string detail;
  if (!same) {
    const auto at = std::mismatch(lengths.begin(), lengths.end(), dev).first - lengths.begin();
    detail = "devSeqLengths[" + std::to_string(at) + "] = " + std::to_string(dev[at]) +
             ", seqLengthArray[" + std::to_string(at) + "] = " + std::to_string(lengths[at]);
  }
  if (!check_rule(kLibrary, entry,
                  "devSeqLengths holds xDesc's seqLengthArray (read when the work runs)", same,
                  detail))
    TESSERA_THROW(Backend, entry << ": devSeqLengths is not a copy of xDesc's seqLengthArray ("
                                 << detail << "): cuDNN reads it on the device");
}

// The weight, work and reserve spaces of one call against the sizes cuDNN reports; the reserve
// only when `with_reserve` (a training call), under `reserve_rule`.
bool spaces_arg(Rules& r, const Shapes& s, size_t weight_size, const void* weights,
                const char* weights_name, size_t work_size, const void* work, size_t reserve_size,
                const void* reserve, bool with_reserve, const char* reserve_rule) {
  return space_arg(r, weight_size, weights, weight_space_bytes(s.c),
                   "weightSpaceSize >= cudnnGetRNNWeightSpaceSize", weights_name) &&
         space_arg(r, work_size, work, workspace_bytes(s.c),
                   "workSpaceSize >= cudnnGetRNNTempSpaceSizes' for the mode", "workSpace") &&
         (!with_reserve ||
          space_arg(r, reserve_size, reserve, s.reserve_bytes(), reserve_rule, "reserveSpace"));
}

struct ForwardJob {
  explicit ForwardJob(const Shapes& shapes) : s(shapes) {}
  Shapes s;
  bool training = false;
  std::vector<int> lengths;
  const int32_t* dev_lengths = nullptr;
  const void *x = nullptr, *hx = nullptr, *cx = nullptr, *weights = nullptr;
  void *y = nullptr, *hy = nullptr, *cy = nullptr, *work = nullptr, *reserve = nullptr;
};

void run_forward(const ForwardJob& j) {
  check_device_lengths("cudnnRNNForward", j.dev_lengths, j.lengths);
  const LstmConfig& c = j.s.c;
  float* canonical = static_cast<float*>(j.work);
  space_to_canonical(c, weight_layout(c), static_cast<const float*>(j.weights), canonical);
  LstmIo io{device_view(j.x, j.s.x_shape()),
            optional_view(j.hx, j.s.state_shape()),
            optional_view(j.cx, j.s.state_shape()),
            device_view(canonical, {lstm_weight_count(c)}),
            device_view(j.y, j.s.y_shape()),
            optional_view(j.hy, j.s.state_shape()),
            optional_view(j.cy, j.s.state_shape()),
            j.training ? device_view(j.reserve, {j.s.reserve.x}) : Tensor()};
  host().lstm_forward(c, j.training ? LstmMode::Training : LstmMode::Inference, io);
  if (!j.training) return;
  TESSERA_CHECK(io.reserve.raw() == j.reserve,
                "cuDNN RNN stand-in: the host LSTM did not write the reserve space in place");
  std::memcpy(floats_at(j.reserve, j.s.reserve.x), j.x, j.s.x_bytes);  // for BackwardData
}

struct BackwardDataJob {
  explicit BackwardDataJob(const Shapes& shapes) : s(shapes) {}
  Shapes s;
  std::vector<int> lengths;
  const int32_t* dev_lengths = nullptr;
  const void *y = nullptr, *dy = nullptr, *hx = nullptr, *dhy = nullptr, *cx = nullptr,
             *dcy = nullptr, *weights = nullptr;
  void *dx = nullptr, *dhx = nullptr, *dcx = nullptr, *work = nullptr, *reserve = nullptr;
};

void run_backward_data(const BackwardDataJob& j) {
  check_device_lengths("cudnnRNNBackwardData_v8", j.dev_lengths, j.lengths);
  const LstmConfig& c = j.s.c;
  const Shape state = j.s.state_shape(), weights{lstm_weight_count(c)};
  float* canonical = static_cast<float*>(j.work);
  space_to_canonical(c, weight_layout(c), static_cast<const float*>(j.weights), canonical);
  const LstmIo io{device_view(floats_at(j.reserve, j.s.reserve.x), j.s.x_shape()),
                  optional_view(j.hx, state),
                  optional_view(j.cx, state),
                  device_view(canonical, weights),
                  device_view(j.y, j.s.y_shape()),
                  Tensor(),
                  Tensor(),
                  device_view(j.reserve, {j.s.reserve.x})};
  LstmGrads g{device_view(j.dy, j.s.y_shape()),
              optional_view(j.dhy, state),
              optional_view(j.dcy, state),
              device_view(j.dx, j.s.x_shape()),
              optional_view(j.dhx, state),
              optional_view(j.dcx, state),
              device_view(floats_at(j.reserve, j.s.reserve.dw), weights)};
  host().lstm_backward(c, io, g);
}

// The reserve space's history: written by a training forward of this RNN and shape (and, for
// BackwardWeights, read by BackwardData since).
bool reserve_history(Rules& r, const void* reserve, const Shapes& s, bool after_data) {
  const ReserveStage stage = reserve_stage(reserve, s.key());
  if (!after_data) {
    return r.check(stage != ReserveStage::None, CUDNN_STATUS_BAD_PARAM,
                   "reserveSpace holds a training cudnnRNNForward of this RNN and shape");
  }
  return r.check(stage == ReserveStage::BackwardData, CUDNN_STATUS_BAD_PARAM,
                 "cudnnRNNBackwardData_v8 ran on reserveSpace before "
                 "cudnnRNNBackwardWeights_v8");
}

}  // namespace
}  // namespace tessera::emu::cudnn_standin

using namespace tessera::emu::cudnn_standin;  // NOLINT: the stand-in's own helpers
using tessera::LstmConfig;

cudnnStatus_t cudnnRNNForward(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                              cudnnForwardMode_t fwdMode, const int32_t devSeqLengths[],
                              cudnnRNNDataDescriptor_t xDesc, const void* x,
                              cudnnRNNDataDescriptor_t yDesc, void* y,
                              cudnnTensorDescriptor_t hDesc, const void* hx, void* hy,
                              cudnnTensorDescriptor_t cDesc, const void* cx, void* cy,
                              size_t weightSpaceSize, const void* weightSpace, size_t workSpaceSize,
                              void* workSpace, size_t reserveSpaceSize, void* reserveSpace) {
  Rules r("cudnnRNNForward");
  if (!r.handle(handle) ||
      !r.check(fwdMode == CUDNN_FWD_MODE_INFERENCE || fwdMode == CUDNN_FWD_MODE_TRAINING,
               CUDNN_STATUS_BAD_PARAM, "fwdMode is a cudnnForwardMode_t") ||
      !io_descs(r, rnnDesc, xDesc, yDesc, hDesc, cDesc, true))
    return r.status();
  ForwardJob j(Shapes(*rnnDesc, *xDesc));
  const Shapes& s = j.s;
  j.training = fwdMode == CUDNN_FWD_MODE_TRAINING;
  const bool ok =
      seq_lengths_arg(r, devSeqLengths, xDesc->batch) &&
      r.device_data(x, s.x_bytes, sizeof(float), "x") &&
      r.device_data(y, s.y_bytes, sizeof(float), "y") &&
      optional_data(r, hx, s.state_bytes, "hx") && optional_data(r, hy, s.state_bytes, "hy") &&
      optional_data(r, cx, s.state_bytes, "cx") && optional_data(r, cy, s.state_bytes, "cy") &&
      spaces_arg(r, s, weightSpaceSize, weightSpace, "weightSpace", workSpaceSize, workSpace,
                 reserveSpaceSize, reserveSpace, j.training,
                 "a training forward's reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)");
  if (!ok) return r.status();
  j.lengths = xDesc->lengths;
  j.dev_lengths = devSeqLengths;
  j.x = x;
  j.hx = hx;
  j.cx = cx;
  j.weights = weightSpace;
  j.y = y;
  j.hy = hy;
  j.cy = cy;
  j.work = workSpace;
  j.reserve = j.training ? reserveSpace : nullptr;
  if (j.training) record_reserve(reserveSpace, s.key(), ReserveStage::Forward);
  tessera::emu::enqueue(handle->stream, "cudnnRNNForward", [j] { run_forward(j); });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnRNNBackwardData_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                      const int32_t devSeqLengths[], cudnnRNNDataDescriptor_t yDesc,
                                      const void* y, const void* dy, cudnnRNNDataDescriptor_t xDesc,
                                      void* dx, cudnnTensorDescriptor_t hDesc, const void* hx,
                                      const void* dhy, void* dhx, cudnnTensorDescriptor_t cDesc,
                                      const void* cx, const void* dcy, void* dcx,
                                      size_t weightSpaceSize, const void* weightSpace,
                                      size_t workSpaceSize, void* workSpace,
                                      size_t reserveSpaceSize, void* reserveSpace) {
  Rules r("cudnnRNNBackwardData_v8");
  if (!r.handle(handle) || !io_descs(r, rnnDesc, xDesc, yDesc, hDesc, cDesc, true))
    return r.status();
  BackwardDataJob j(Shapes(*rnnDesc, *xDesc));
  const Shapes& s = j.s;
  const size_t sb = s.state_bytes;
  const bool ok = seq_lengths_arg(r, devSeqLengths, xDesc->batch) &&
                  r.device_data(y, s.y_bytes, sizeof(float), "y") &&
                  r.device_data(dy, s.y_bytes, sizeof(float), "dy") &&
                  r.device_data(dx, s.x_bytes, sizeof(float), "dx") &&
                  optional_data(r, hx, sb, "hx") && optional_data(r, dhy, sb, "dhy") &&
                  optional_data(r, dhx, sb, "dhx") && optional_data(r, cx, sb, "cx") &&
                  optional_data(r, dcy, sb, "dcy") && optional_data(r, dcx, sb, "dcx") &&
                  spaces_arg(r, s, weightSpaceSize, weightSpace, "weightSpace", workSpaceSize,
                             workSpace, reserveSpaceSize, reserveSpace, true,
                             "reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)") &&
                  reserve_history(r, reserveSpace, s, false);
  if (!ok) return r.status();
  j.lengths = xDesc->lengths;
  j.dev_lengths = devSeqLengths;
  j.y = y;
  j.dy = dy;
  j.hx = hx;
  j.dhy = dhy;
  j.cx = cx;
  j.dcy = dcy;
  j.weights = weightSpace;
  j.dx = dx;
  j.dhx = dhx;
  j.dcx = dcx;
  j.work = workSpace;
  j.reserve = reserveSpace;
  record_reserve(reserveSpace, s.key(), ReserveStage::BackwardData);
  tessera::emu::enqueue(handle->stream, "cudnnRNNBackwardData_v8", [j] { run_backward_data(j); });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnRNNBackwardWeights_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t rnnDesc,
                                         cudnnWgradMode_t addGrad, const int32_t devSeqLengths[],
                                         cudnnRNNDataDescriptor_t xDesc, const void* x,
                                         cudnnTensorDescriptor_t hDesc, const void* hx,
                                         cudnnRNNDataDescriptor_t yDesc, const void* y,
                                         size_t weightSpaceSize, void* dweightSpace,
                                         size_t workSpaceSize, void* workSpace,
                                         size_t reserveSpaceSize, void* reserveSpace) {
  Rules r("cudnnRNNBackwardWeights_v8");
  if (!r.handle(handle) ||
      !r.check(addGrad == CUDNN_WGRAD_MODE_ADD, CUDNN_STATUS_NOT_SUPPORTED,
               "addGrad is CUDNN_WGRAD_MODE_ADD (the only mode this call supports)",
               "addGrad " + std::to_string(addGrad)) ||
      !io_descs(r, rnnDesc, xDesc, yDesc, hDesc, nullptr, false))
    return r.status();
  const Shapes s(*rnnDesc, *xDesc);
  const bool ok = seq_lengths_arg(r, devSeqLengths, xDesc->batch) &&
                  r.device_data(x, s.x_bytes, sizeof(float), "x") &&
                  r.device_data(y, s.y_bytes, sizeof(float), "y") &&
                  optional_data(r, hx, s.state_bytes, "hx") &&
                  spaces_arg(r, s, weightSpaceSize, dweightSpace, "dweightSpace", workSpaceSize,
                             workSpace, reserveSpaceSize, reserveSpace, true,
                             "reserveSpaceSize >= cudnnGetRNNTempSpaceSizes' (training)") &&
                  reserve_history(r, reserveSpace, s, true);
  if (!ok) return r.status();
  // BackwardData computed dW with dx (the host LSTM's backward gives both) and left it in the
  // reserve; this call adds it to the caller's gradient space.
  tessera::emu::enqueue(
      handle->stream, "cudnnRNNBackwardWeights_v8",
      [s, lengths = xDesc->lengths, dev = devSeqLengths, reserveSpace, dweightSpace] {
        check_device_lengths("cudnnRNNBackwardWeights_v8", dev, lengths);
        add_canonical_to_space(s.c, weight_layout(s.c), floats_at(reserveSpace, s.reserve.dw),
                               static_cast<float*>(dweightSpace));
      });
  return CUDNN_STATUS_SUCCESS;
}
