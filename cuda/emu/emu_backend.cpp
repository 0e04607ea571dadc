#include "cuda/emu/emu_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>

#include "cuda/emu/device_memory.h"
#include "cuda/emu/grid_launch.h"
#include "cuda/emu/runtime_api.h"
#include "cuda/kernels/kernels.h"
#include "host/backend/host_backend.h"  // host_lstm_reserve_floats (the LSTM fallback)
#include "host/backend/rows_cols.h"
#include "host/core/enum_table.h"
#include "host/core/named_records.h"

namespace tessera::emu {

namespace {

// ---- op records --------------------------------------------------------------------------------

void record_op(const std::string& op, OpPath path, std::vector<std::string> kernels,
               const std::string& note) {
  std::sort(kernels.begin(), kernels.end());
  kernels.erase(std::unique(kernels.begin(), kernels.end()), kernels.end());
  NamedRecords<OpRecord>& log = process_records<OpRecord>();
  std::lock_guard<std::mutex> lock(log.mutex);
  OpRecord& r = log.by_name[op];
  r.op = op;
  r.path = path;
  r.note = note;
  for (const std::string& k : kernels)
    if (std::find(r.kernels.begin(), r.kernels.end(), k) == r.kernels.end()) r.kernels.push_back(k);
  std::sort(r.kernels.begin(), r.kernels.end());
  ++r.calls;
}

// Collects the kernels one op launches and records the op when it completes (not when it
// throws: a rejected input is not a run of the op).
class OpScope {
 public:
  explicit OpScope(std::string op) : op_(std::move(op)) { set_launch_sink(&kernels_); }
  ~OpScope() { set_launch_sink(nullptr); }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  void done(OpPath path = OpPath::Emulated, const std::string& note = "") {
    set_launch_sink(nullptr);
    record_op(op_, path, kernels_, note);
  }

 private:
  std::string op_;
  std::vector<std::string> kernels_;
};

// ---- memory ------------------------------------------------------------------------------------

ElementKind element_kind(DType t) {
  switch (t) {
    case DType::F32:
      return ElementKind::F32;
    case DType::I32:
      return ElementKind::I32;
    case DType::I64:
      return ElementKind::I64;
  }
  return ElementKind::Bytes;
}

// Emulated device memory behind a Tensor: exactly the tensor's bytes (AddressSanitizer guards
// the end), registered for the launch checks, reported as Device{Cuda, 0}.
class EmuBuffer final : public Buffer {
 public:
  EmuBuffer(size_t bytes, ElementKind kind, const std::string& label)
      : ptr_(device_alloc(bytes, kind, label)), bytes_(bytes) {}
  ~EmuBuffer() override { device_free(ptr_); }
  void* data() override { return ptr_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device{DeviceKind::Cuda, 0}; }

 private:
  void* ptr_;
  size_t bytes_;
};

// A host-side view of emulated memory, so the host backend can run a fallback op in place.
class HostView final : public Buffer {
 public:
  HostView(void* p, size_t bytes) : ptr_(p), bytes_(bytes) {}
  void* data() override { return ptr_; }
  size_t bytes() const override { return bytes_; }
  Device device() const override { return Device{}; }

 private:
  void* ptr_;
  size_t bytes_;
};

Tensor host_view(const float* p, int64_t rows, int64_t cols) {
  const size_t bytes = static_cast<size_t>(rows * cols) * sizeof(float);
  return Tensor(std::make_shared<HostView>(const_cast<float*>(p), bytes), Shape{rows, cols},
                DType::F32);
}

void check_cuda(cudaError_t st, const char* expr) {
  if (st != cudaSuccess)
    TESSERA_THROW(Backend, expr << " failed in the CUDA emulator: " << cudaGetErrorName(st) << ": "
                                << cudaGetErrorString(st));
}
#define TESSERA_EMU_CHECK(expr) check_cuda((expr), #expr)

// ---- the backend -------------------------------------------------------------------------------

class EmuBackend final : public Backend {
 public:
  EmuBackend()
      : host_(make_host_backend()),
        first_bad_(device_alloc(sizeof(unsigned long long), ElementKind::Bytes,
                                "first-bad-position flag")) {}
  ~EmuBackend() override { device_free(first_bad_); }
  EmuBackend(const EmuBackend&) = delete;
  EmuBackend& operator=(const EmuBackend&) = delete;

  std::string name() const override { return "cuda-emu (CUDA kernels emulated on the CPU)"; }
  Device device() const override { return Device{DeviceKind::Cuda, 0}; }
  void synchronize() override {}

 protected:
  Tensor empty_impl(const Shape& shape, DType dtype) override {
    for (int64_t d : shape) TESSERA_CHECK(d >= 0, "negative dimension in " << shape_str(shape));
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    auto buffer = std::make_shared<EmuBuffer>(
        bytes, element_kind(dtype), std::string(dtype_name(dtype)) + " " + shape_str(shape));
    if (bytes) TESSERA_EMU_CHECK(cudaMemsetAsync(buffer->data(), 0, bytes, stream_));
    return Tensor(std::move(buffer), shape, dtype);
  }

  void copy_impl(const Tensor& src, Tensor& dst) override {
    const size_t bytes = src.bytes();
    TESSERA_CHECK(bytes == dst.bytes(), "copy " << src.describe() << " -> " << dst.describe());
    if (bytes == 0 || src.raw() == dst.raw()) return;
    const cudaMemcpyKind kind =
        src.is_host() ? (dst.is_host() ? cudaMemcpyHostToHost : cudaMemcpyHostToDevice)
                      : (dst.is_host() ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice);
    TESSERA_EMU_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), bytes, kind, stream_));
    record_op("copy", OpPath::Runtime, {}, "cudaMemcpy (runtime API, no kernel)");
  }

  void fill_impl(Tensor& t, float value) override {
    OpScope op("fill");
    cuda::launch_fill(t.data<float>(), t.numel(), value, stream_);
    op.done();
  }

  void gemm_impl(Transpose ta, Transpose tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) override {
    if (k == 0) {
      // cuda/cublas_gemm.cpp does C = beta * C with the scale kernel when K = 0.
      OpScope op("gemm (K = 0)");
      TESSERA_CHECK(ldc == n,
                    "gemm with K = 0 expects a contiguous C (ldc " << ldc << ", n " << n << ")");
      cuda::launch_scale(c, m * n, beta, stream_);
      op.done();
      return;
    }
    OpScope op("gemm");
    const Tensor av = host_view(a, ta == Transpose::No ? m : k, lda);
    const Tensor bv = host_view(b, tb == Transpose::No ? k : n, ldb);
    Tensor cv = host_view(c, m, ldc);
    host_->gemm(ta, tb, alpha, av, bv, beta, cv);
    op.done(OpPath::HostFallback,
            "cuBLAS is a vendor library: not emulated, run on the host backend");
  }

  void bias_act_forward_impl(Activation act, const Tensor& x, const Tensor& bias,
                             Tensor& y) override {
    OpScope op("bias_act_forward");
    const RowsCols rc = rows_cols(x);
    cuda::launch_bias_act_forward(act, x.data<float>(),
                                  bias.defined() ? bias.data<float>() : nullptr, y.data<float>(),
                                  rc.rows, rc.cols, stream_);
    op.done();
  }

  void bias_act_backward_impl(Activation act, const Tensor& y, const Tensor& dy, Tensor& dx,
                              Tensor& dbias) override {
    OpScope op("bias_act_backward");
    const RowsCols rc = rows_cols(y);
    cuda::launch_bias_act_backward(act, y.data<float>(), dy.data<float>(), dx.data<float>(),
                                   dbias.defined() ? dbias.data<float>() : nullptr, rc.rows,
                                   rc.cols, stream_);
    op.done();
  }

  void dropout_forward_impl(const DropoutParams& d, const Tensor& x, Tensor& y) override {
    dropout("dropout_forward", d, x, y);
  }

  void dropout_backward_impl(const DropoutParams& d, const Tensor& dy, Tensor& dx) override {
    dropout("dropout_backward", d, dy, dx);
  }

  void embedding_forward_impl(const Tensor& table, const Tensor& ids, Tensor& out) override {
    OpScope op("embedding_forward");
    check_embedding_ids(ids, table.dim(0));
    cuda::launch_embedding_forward(table.data<float>(), ids.data<int64_t>(), out.data<float>(),
                                   ids.numel(), table.dim(1), stream_);
    op.done();
  }

  void embedding_backward_impl(const Tensor& ids, const Tensor& dout, Tensor& dtable) override {
    OpScope op("embedding_backward");
    check_embedding_ids(ids, dtable.dim(0));
    cuda::launch_embedding_backward(ids.data<int64_t>(), dout.data<float>(), dtable.data<float>(),
                                    ids.numel(), dtable.dim(1), stream_);
    op.done();
  }

  void dot_interaction_forward_impl(const Tensor& dense, const Tensor& emb, Tensor& y) override {
    OpScope op("dot_interaction_forward");
    const int64_t d = dense.dim(1);
    cuda::launch_dot_interaction_forward(dense.data<float>(), emb.data<float>(), y.data<float>(),
                                         dense.dim(0), d, emb.dim(1) / d, stream_);
    op.done();
  }

  void dot_interaction_backward_impl(const Tensor& dense, const Tensor& emb, const Tensor& dy,
                                     Tensor& ddense, Tensor& demb) override {
    OpScope op("dot_interaction_backward");
    const int64_t d = dense.dim(1);
    cuda::launch_dot_interaction_backward(dense.data<float>(), emb.data<float>(), dy.data<float>(),
                                          ddense.data<float>(), demb.data<float>(), dense.dim(0), d,
                                          emb.dim(1) / d, stream_);
    op.done();
  }

  void stft_frames_impl(const Tensor& waves, const Tensor& window, int64_t hop,
                        Tensor& frames) override {
    OpScope op("stft_frames");
    cuda::launch_stft_frames(waves.data<float>(), window.data<float>(), frames.data<float>(),
                             waves.dim(0), waves.dim(1), window.dim(0), hop, stream_);
    op.done();
  }

  void power_spectrum_impl(const Tensor& spectrum, Tensor& power) override {
    OpScope op("power_spectrum");
    cuda::launch_power_spectrum(spectrum.data<float>(), power.data<float>(), power.dim(0),
                                power.dim(1), stream_);
    op.done();
  }

  void log_mel_transpose_impl(const Tensor& mel, float log_floor, Tensor& out) override {
    OpScope op("log_mel_transpose");
    cuda::launch_log_mel_transpose(mel.data<float>(), out.data<float>(), out.dim(0), out.dim(1),
                                   out.dim(2), log_floor, stream_);
    op.done();
  }

  void bce_with_logits_impl(const Tensor& logits, const Tensor& labels, float grad_scale,
                            Tensor& loss, Tensor& dlogits) override {
    OpScope op("bce_with_logits");
    cuda::launch_bce_with_logits(logits.data<float>(), labels.data<float>(), grad_scale,
                                 loss.data<float>(), dlogits.data<float>(), logits.numel(),
                                 stream_);
    op.done();
  }

  void softmax_xent_impl(const Tensor& logits, const Tensor& labels, float grad_scale, Tensor& loss,
                         Tensor& dlogits) override {
    OpScope op("softmax_xent");
    const int64_t n = logits.dim(0);
    const int64_t c = logits.dim(1);
    const unsigned long long first_bad = first_bad_position([&](unsigned long long* flag) {
      cuda::launch_check_class_labels(labels.data<int32_t>(), n, c, flag, stream_);
    });
    if (first_bad != cuda::kNoBadPosition) {
      const int64_t row = static_cast<int64_t>(first_bad);
      const int32_t label = read_device_value(labels.data<int32_t>() + row);
      TESSERA_THROW(Data,
                    "class label " << label << " at row " << row << " is outside [0, " << c << ")");
    }
    cuda::launch_softmax_xent(logits.data<float>(), labels.data<int32_t>(), grad_scale,
                              loss.data<float>(), dlogits.data<float>(), n, c, stream_);
    op.done();
  }

  void sgd_update_impl(const math::SgdParams& p, Tensor& param, const Tensor& grad,
                       Tensor& velocity) override {
    OpScope op("sgd_update");
    float* vel = p.momentum != 0.f ? velocity.data<float>() : nullptr;
    cuda::launch_sgd_update(p, param.data<float>(), grad.data<float>(), vel, param.numel(),
                            stream_);
    op.done();
  }

  void adam_update_impl(const math::AdamParams& p, Tensor& param, const Tensor& grad, Tensor& m,
                        Tensor& v) override {
    OpScope op("adam_update");
    cuda::launch_adam_update(p, param.data<float>(), grad.data<float>(), m.data<float>(),
                             v.data<float>(), param.numel(), stream_);
    op.done();
  }

  // ---- LSTM: cuDNN on a GPU (cuda/cudnn_lstm.cpp), a vendor library, so run on the host
  // backend over the same memory; the reserve is the host's layout, allocated in emulated memory.
  static Tensor lstm_view(const Tensor& t) {
    if (!t.defined()) return Tensor();
    return Tensor(std::make_shared<HostView>(t.raw(), t.bytes()), t.shape(), t.dtype());
  }
  void lstm_forward_impl(const LstmConfig& c, LstmMode mode, LstmIo& io) override {
    OpScope op("lstm_forward");
    if (mode == LstmMode::Training) {
      const int64_t need = host_lstm_reserve_floats(c, io.x.dim(0), io.x.dim(1));
      if (!io.reserve.defined() || io.reserve.numel() != need)
        io.reserve = empty_impl({need}, DType::F32);
    }
    LstmIo v{lstm_view(io.x),  lstm_view(io.h0),
             lstm_view(io.c0), lstm_view(io.w),
             lstm_view(io.y),  lstm_view(io.hn),
             lstm_view(io.cn), mode == LstmMode::Training ? lstm_view(io.reserve) : Tensor()};
    host_->lstm_forward(c, mode, v);
    op.done(OpPath::HostFallback,
            "cuDNN is a vendor library: not emulated, run on the host backend");
  }
  void lstm_backward_impl(const LstmConfig& c, const LstmIo& io, LstmGrads& g) override {
    OpScope op("lstm_backward");
    const LstmIo v{lstm_view(io.x), lstm_view(io.h0), lstm_view(io.c0), lstm_view(io.w),
                   lstm_view(io.y), lstm_view(io.hn), lstm_view(io.cn), lstm_view(io.reserve)};
    LstmGrads gv{lstm_view(g.dy),  lstm_view(g.dhn), lstm_view(g.dcn), lstm_view(g.dx),
                 lstm_view(g.dh0), lstm_view(g.dc0), lstm_view(g.dw)};
    host_->lstm_backward(c, v, gv);
    op.done(OpPath::HostFallback,
            "cuDNN is a vendor library: not emulated, run on the host backend");
  }

  // ---- convolution / pooling / batch normalisation: cuDNN on a GPU (cuda/cudnn_*.cpp), so
  // vendor-library ops, run on the host backend over the same memory ----
  void conv2d_forward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                           const Tensor& bias, Tensor& y) override {
    OpScope op("conv2d_forward");
    Tensor yv = host_view_of(y);
    host_->conv2d_forward(p, host_view_of(x), host_view_of(w), host_view_of(bias), yv);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }
  void conv2d_backward_impl(const Conv2dParams& p, const Tensor& x, const Tensor& w,
                            const Tensor& dy, Tensor& dx, Tensor& dw, Tensor& dbias) override {
    OpScope op("conv2d_backward");
    Tensor dxv = host_view_of(dx), dwv = host_view_of(dw), dbv = host_view_of(dbias);
    host_->conv2d_backward(p, host_view_of(x), host_view_of(w), host_view_of(dy), dxv, dwv, dbv);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }
  void pool2d_forward_impl(const Pool2dParams& p, const Tensor& x, Tensor& y) override {
    OpScope op("pool2d_forward");
    Tensor yv = host_view_of(y);
    host_->pool2d_forward(p, host_view_of(x), yv);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }
  void pool2d_backward_impl(const Pool2dParams& p, const Tensor& x, const Tensor& y,
                            const Tensor& dy, Tensor& dx) override {
    OpScope op("pool2d_backward");
    Tensor dxv = host_view_of(dx);
    host_->pool2d_backward(p, host_view_of(x), host_view_of(y), host_view_of(dy), dxv);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }
  void batchnorm_forward_impl(const BatchNormParams& p, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                              Tensor& y, Tensor& saved_mean, Tensor& saved_invstd) override {
    OpScope op("batchnorm_forward");
    Tensor rm = host_view_of(running_mean), rv = host_view_of(running_var), yv = host_view_of(y);
    Tensor sm = host_view_of(saved_mean), si = host_view_of(saved_invstd);
    host_->batchnorm_forward(p, host_view_of(x), host_view_of(gamma), host_view_of(beta), rm, rv,
                             yv, sm, si);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }
  void batchnorm_backward_impl(const BatchNormParams& p, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& saved_mean,
                               const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                               Tensor& dbeta) override {
    OpScope op("batchnorm_backward");
    Tensor dxv = host_view_of(dx), dg = host_view_of(dgamma), db = host_view_of(dbeta);
    host_->batchnorm_backward(p, host_view_of(x), host_view_of(dy), host_view_of(gamma),
                              host_view_of(saved_mean), host_view_of(saved_invstd), dxv, dg, db);
    op.done(OpPath::HostFallback, kCudnnFallback);
  }

 private:
  static constexpr const char* kCudnnFallback =
      "cuDNN is a vendor library: not emulated, run on the host backend";
  // A host view of a whole emulated tensor (undefined stays undefined).
  static Tensor host_view_of(const Tensor& t) {
    if (!t.defined()) return Tensor();
    return Tensor(std::make_shared<HostView>(t.raw(), t.bytes()), t.shape(), t.dtype());
  }

  // One value copied from (emulated) device memory to the host.
  template <typename T>
  T read_device_value(const T* device_value) {
    T value{};
    TESSERA_EMU_CHECK(
        cudaMemcpyAsync(&value, device_value, sizeof(value), cudaMemcpyDeviceToHost, stream_));
    return value;
  }

  // As cuda::CudaBackend: runs a validation kernel, `launch(flag)`, with the flag reset to
  // kNoBadPosition, and returns the smallest bad position it recorded (kNoBadPosition: none).
  template <typename Launch>
  unsigned long long first_bad_position(Launch launch) {
    auto* flag = static_cast<unsigned long long*>(first_bad_);
    TESSERA_EMU_CHECK(cudaMemsetAsync(flag, 0xFF, sizeof(*flag), stream_));
    launch(flag);
    return read_device_value(flag);
  }

  // Both directions are one kernel: `out` = `in` where the seed's mask keeps an element (scaled by
  // 1 / (1 - p)), else 0.
  void dropout(const char* op_name, const DropoutParams& d, const Tensor& in, Tensor& out) {
    OpScope op(op_name);
    const float scale = 1.f / (1.f - d.p);
    cuda::launch_dropout(d.seed, d.p, scale, in.data<float>(), out.data<float>(), in.numel(),
                         stream_);
    op.done();
  }

  // As cuda::CudaBackend::check_embedding_ids: the same flag protocol and message.
  void check_embedding_ids(const Tensor& ids, int64_t rows) {
    const unsigned long long first_bad = first_bad_position([&](unsigned long long* flag) {
      cuda::launch_embedding_check_ids(ids.data<int64_t>(), ids.numel(), rows, flag, stream_);
    });
    if (first_bad == cuda::kNoBadPosition) return;
    const int64_t position = static_cast<int64_t>(first_bad);
    const int64_t id = read_device_value(ids.data<int64_t>() + position);
    TESSERA_THROW(Data, "embedding id " << id << " at position " << position
                                        << " is outside the table's rows [0, " << rows << ")");
  }

  std::unique_ptr<Backend> host_;  // vendor-library fallbacks
  void* first_bad_;                // one unsigned long long: the validation kernels' flag
  cudaStream_t stream_ = nullptr;  // emulated launches are synchronous
};

const char* path_name(OpPath p) {
  static constexpr const char* kNames[] = {"emulated", "host fallback", "runtime"};
  return enum_entry<OpPath::Runtime>(p, kNames, "emulated");
}

void write_report_at_exit() {
  const char* where = std::getenv("TESSERA_EMU_REPORT");
  if (!where || !*where) return;
  const std::string report = format_report();
  if (std::strcmp(where, "stderr") == 0) {
    std::fputs(report.c_str(), stderr);
    return;
  }
  std::ofstream out(where, std::ios::app);
  if (out)
    out << report;
  else
    std::fprintf(stderr, "tessera: cannot write the CUDA emulator report to %s\n", where);
}

}  // namespace

std::unique_ptr<Backend> create_backend() {
  static std::once_flag once;
  std::call_once(once, [] { std::atexit(&write_report_at_exit); });
  return std::make_unique<EmuBackend>();
}

std::vector<OpRecord> op_records() {
  return process_records<OpRecord>().values();
}

std::string format_report() {
  std::ostringstream out;
  const std::vector<OpRecord> ops = op_records();
  out << "CUDA emulator op report (" << ops.size() << " ops)\n";
  out << std::left << std::setw(22) << "op" << std::right << std::setw(8) << "calls"
      << "  path\n";
  for (const OpRecord& r : ops) {
    out << std::left << std::setw(22) << r.op << std::right << std::setw(8) << r.calls << "  "
        << path_name(r.path);
    if (!r.kernels.empty()) {
      out << ": ";
      for (size_t i = 0; i < r.kernels.size(); ++i) out << (i ? ", " : "") << r.kernels[i];
    }
    if (!r.note.empty())
      out << (r.kernels.empty() ? ": " : " (") << r.note << (r.kernels.empty() ? "" : ")");
    out << "\n";
  }
  out << format_kernel_report();
  return out.str();
}

}  // namespace tessera::emu
