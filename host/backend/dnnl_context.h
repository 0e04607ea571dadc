#pragma once
// The host backend's oneDNN CPU engine (one per process) and the calling thread's stream on it,
// shared by every oneDNN primitive the host backend runs (convolution, pooling, LSTM).
#include <oneapi/dnnl/dnnl.hpp>

namespace tessera {

inline dnnl::engine& dnnl_cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::stream& dnnl_cpu_stream() {
  thread_local dnnl::stream stream(dnnl_cpu_engine());
  return stream;
}

}  // namespace tessera
