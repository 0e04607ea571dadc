// LSTM training throughput on a backend: forward (Training) + backward of one TBPTT segment, in
// tokens (T * B) per second, the shape given on the command line. One JSON line.
//   lstm_bench [--device D] [--t T] [--b B] [--input I] [--hidden H] [--layers L]
//              [--min-time SEC]
// --device: auto (default: cuDNN when a GPU is present, so tools/gpu-check.sh measures the GPU
// variant), cpu, cuda. bench/lstm_vs_torch.sh runs it with --device cpu beside PyTorch nn.LSTM.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>

#include <omp.h>

#include "host/backend/backend.h"
#include "host/backend/host_lstm_impl.h"

int main(int argc, char** argv) {
  using namespace tessera;
  int64_t t = 64, b = 64, in = 64, hid = 384, layers = 2;
  double min_time = 3.0;
  std::string device = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const double v = std::atof(argv[i + 1]);
    if (k == "--device")
      device = argv[i + 1];
    else if (k == "--t")
      t = static_cast<int64_t>(v);
    else if (k == "--b")
      b = static_cast<int64_t>(v);
    else if (k == "--input")
      in = static_cast<int64_t>(v);
    else if (k == "--hidden")
      hid = static_cast<int64_t>(v);
    else if (k == "--layers")
      layers = static_cast<int64_t>(v);
    else if (k == "--min-time")
      min_time = v;
    else {
      std::fprintf(stderr, "lstm_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    auto be = make_backend(device);
    LstmConfig c;
    c.input_size = in;
    c.hidden_size = hid;
    c.num_layers = layers;
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    auto rnd = [&](const Shape& s) {
      Tensor x = Tensor::host(s);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(gen);
      return be->to_device(x);
    };
    LstmIo io;
    io.x = rnd({t, b, in});
    io.w = rnd({lstm_weight_count(c)});
    io.y = be->empty({t, b, hid});
    io.h0 = rnd({layers, b, hid});
    io.c0 = rnd({layers, b, hid});
    io.hn = be->empty({layers, b, hid});
    io.cn = be->empty({layers, b, hid});
    LstmGrads g;
    g.dy = rnd({t, b, hid});
    g.dx = be->empty({t, b, in});
    g.dw = be->empty({lstm_weight_count(c)});
    auto once = [&] {
      be->lstm_forward(c, LstmMode::Training, io);
      be->lstm_backward(c, io, g);
      be->synchronize();
    };
    once();  // warm-up
    const Tensor dw = be->to_host(g.dw);
    for (int64_t i = 0; i < dw.numel(); ++i)
      if (!std::isfinite(dw.data<float>()[i])) {
        std::fprintf(stderr, "lstm_bench: non-finite gradient\n");
        return 1;
      }
    int iters = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double secs = 0;
    while (secs < min_time || iters < 3) {
      once();
      ++iters;
      secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    // Which host implementation ran (host/backend/host_lstm_impl.h); "-" on other backends.
    const char* host_impl = be->name() != "cpu"              ? "-"
                            : host_lstm_uses_onednn(c, t, b) ? "onednn"
                                                             : "gemm";
    std::printf(
        "{\"bench\":\"lstm_train\",\"backend\":\"%s\",\"host_lstm\":\"%s\",\"threads\":%d,\"t\":%"
        "lld,"
        "\"b\":%lld,\"input\":%lld,\"hidden\":%lld,\"layers\":%lld,\"iters\":%d,"
        "\"ms_per_iter\":%.3f,\"tokens_per_s\":%.1f}\n",
        be->name().c_str(), host_impl, omp_get_max_threads(), static_cast<long long>(t),
        static_cast<long long>(b), static_cast<long long>(in), static_cast<long long>(hid),
        static_cast<long long>(layers), iters, 1e3 * secs / iters,
        static_cast<double>(t * b) * iters / secs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lstm_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
