#pragma once
// The host (CPU) backend: the specification every other backend is tested against, and the
// product for CPU scoring fleets. GEMM through oneDNN (it detects the CPU itself), element-wise
// and per-row ops with OpenMP over the shared math in host/core/math.h.
#include "host/backend/backend.h"

namespace tessera {

// Floats of the reserve the host LSTM's Training forward writes (host/backend/host_lstm.cpp), so
// a backend that runs the host LSTM over its own memory (cuda-emu) can allocate it there.
int64_t host_lstm_reserve_floats(const LstmConfig& c, int64_t steps, int64_t batch);

class HostBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device{}; }
  void synchronize() override {}

 protected:
  // The ops (backend_ops.h): host_backend.cpp, with the DLRM dot interaction in
  // host_interaction.cpp, the log-mel front end in host_log_mel.cpp, the LSTM in host_lstm.cpp,
  // and convolution, pooling and batch normalisation (oneDNN) in host_conv.cpp.
  TESSERA_BACKEND_OPS(TESSERA_BACKEND_OVERRIDE_IMPL)
  // The LSTM's GEMM + fused-gate path (the other one: host_lstm_dnnl.cpp; host_lstm_impl.h
  // chooses).
  void gemm_lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io);
  void gemm_lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g);
};

}  // namespace tessera
