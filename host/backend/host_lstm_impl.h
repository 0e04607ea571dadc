#pragma once
// The host backend has two LSTM implementations with the same semantics
// (host/backend/lstm_types.h):
//   Gemm   - one GEMM for the input projection of all steps, a GEMM per step for the recurrent
//            term, the shared fused gate function (host_lstm.cpp): the specification;
//   OneDnn - oneDNN's LSTM primitive, one per layer (host_lstm_dnnl.cpp).
// Auto (the default) takes oneDNN for layers with enough work per call to pay its fixed costs
// (weight reorders, thread team start-up) and the GEMM path below that (measured: a tiny
// finite-difference case ran 4x slower through oneDNN single-threaded, and far slower with two
// threads on a loaded machine). TESSERA_HOST_LSTM=auto|gemm|onednn picks for the process (read at
// first use); set_host_lstm_impl switches it (tests compare the two; a Training forward and its
// backward must use the same one, their reserves differ). Empty inputs (T or B = 0) always take
// the GEMM path.
#include <cstdint>

#include "host/backend/backend.h"

namespace tessera {

enum class HostLstmImpl : uint8_t { Auto, Gemm, OneDnn };
HostLstmImpl host_lstm_impl();
void set_host_lstm_impl(HostLstmImpl impl);
const char* host_lstm_impl_name(HostLstmImpl impl);
// Whether this op call takes the oneDNN path under the current setting.
bool host_lstm_uses_onednn(const LstmConfig& c, int64_t steps, int64_t batch);

// Whether a call applies dropout between layers (Training, dropout > 0, more than one layer).
inline bool lstm_uses_dropout(const LstmConfig& c, LstmMode mode) {
  return mode == LstmMode::Training && c.dropout > 0.f && c.num_layers > 1;
}

// The inverted dropout between layer l-1 and layer l (Training, dropout > 0): out[e] = in[e] *
// 1/(1-p) where element e is kept, else 0. The same transform carries the gradient back through
// it. in == out is allowed. Both implementations use it, so their masks are the same.
void lstm_layer_dropout(const LstmConfig& c, int64_t layer, const float* in, float* out, int64_t n);

// Where a forward writes its reserve of `need` floats: io.reserve in Training (reallocated unless
// it already is f32 of that size), else `scratch`, allocated here (Inference keeps only what the
// next layer needs, in a scratch reserve of the same layout).
float* lstm_forward_reserve(LstmMode mode, int64_t need, LstmIo& io, Tensor& scratch);

// Throws unless io.reserve is the host reserve of `need` floats that a Training forward wrote.
void check_backward_reserve(const LstmIo& io, int64_t need);

int64_t dnnl_lstm_reserve_floats(const LstmConfig& c, int64_t steps, int64_t batch);
void dnnl_lstm_forward(const LstmConfig& c, LstmMode mode, LstmIo& io);
void dnnl_lstm_backward(const LstmConfig& c, const LstmIo& io, LstmGrads& g);

}  // namespace tessera
