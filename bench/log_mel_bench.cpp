// The log-mel front end: the host specification (host/data/log_mel.cpp, one FFT per frame, one
// utterance at a time, as the audio pipeline runs it on a CPU) against the batched GEMM-DFT
// front end (host/data/log_mel_batch.h) on a backend, side by side in one run, on synthetic
// utterances with FSDD-like lengths (0.25-1.0 s at 8 kHz) and the audio pipeline's default
// MelConfig. Prints one JSON line: seconds of each, the ratio, and the largest log-domain
// difference (exits non-zero above 1e-3).
//   log_mel_bench [--device cpu|cuda|cuda-emu] [--n 2000]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/data/log_mel.h"
#include "host/data/log_mel_batch.h"

using namespace tessera;

int main(int argc, char** argv) {
  std::string device = "cpu";
  int n = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device = argv[i + 1];
    if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
  }
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> len(2000, 8000);
  std::normal_distribution<float> noise(0.f, 0.1f);
  std::vector<std::vector<float>> waves(static_cast<size_t>(n));
  for (auto& w : waves) {
    w.resize(static_cast<size_t>(len(gen)));
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = 0.3f * std::sin(0.07f * static_cast<float>(i)) + noise(gen);
  }
  const MelConfig c;  // the pipeline's defaults
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  std::vector<std::vector<float>> spec(waves.size());
  for (size_t i = 0; i < waves.size(); ++i) spec[i] = log_mel(waves[i], c);
  const double host_s = std::chrono::duration<double>(Clock::now() - t0).count();

  std::unique_ptr<Backend> be = make_backend(device);
  LogMelBatch fe(*be, c);
  fe.compute_all({waves[0]});  // warm-up (library initialisation, first allocations)
  t0 = Clock::now();
  const std::vector<std::vector<float>> got = fe.compute_all(waves);
  const double batch_s = std::chrono::duration<double>(Clock::now() - t0).count();
  double worst = 0;
  for (size_t i = 0; i < waves.size(); ++i)
    for (size_t j = 0; j < spec[i].size(); ++j)
      worst = std::max(worst, std::fabs(static_cast<double>(got[i][j]) - spec[i][j]));
  std::printf(
      "{\"bench\":\"log_mel\",\"utterances\":%d,\"device\":\"%s\",\"host_fft_per_utterance_s\":%."
      "4f,"
      "\"batched_gemm_dft_s\":%.4f,\"speedup_batched_vs_host\":%.3f,\"max_abs_log_diff\":%.3g}\n",
      n, be->name().c_str(), host_s, batch_s, host_s / batch_s, worst);
  return worst <= 1e-3 ? 0 : 1;
}
