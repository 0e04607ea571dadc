// Host log-mel front-end ops (framing, power spectrum, log + transpose). Plain loops over the
// shared element math (host/core/log_mel_math.h); rows are split over the OpenMP threads only
// when the op is large enough to pay for the fork (host_loops::kParallelElements).
#include "host/backend/host_backend.h"
#include "host/backend/host_loops.h"
#include "host/core/log_mel_math.h"

namespace tessera {

void HostBackend::stft_frames_impl(const Tensor& waves, const Tensor& window, int64_t hop,
                                   Tensor& frames) {
  const int64_t n = waves.dim(1), n_fft = window.dim(0);
  const int64_t f = math::stft_frame_count(n, hop), rows = frames.dim(0);
  const float* x = waves.data<float>();
  const float* w = window.data<float>();
  float* out = frames.data<float>();
#pragma omp parallel for schedule(static) if (rows * n_fft >= host_loops::kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / f, t = r - b * f;
    for (int64_t i = 0; i < n_fft; ++i)
      out[r * n_fft + i] = math::stft_frame_value(x + b * n, n, w, n_fft, hop, t, i);
  }
}

void HostBackend::power_spectrum_impl(const Tensor& spectrum, Tensor& power) {
  const int64_t rows = power.dim(0), bins = power.dim(1);
  const float* s = spectrum.data<float>();
  float* p = power.data<float>();
#pragma omp parallel for schedule(static) if (rows * bins >= host_loops::kParallelElements)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < bins; ++k)
      p[r * bins + k] = math::power_of(s[r * 2 * bins + k], s[r * 2 * bins + bins + k]);
}

void HostBackend::log_mel_transpose_impl(const Tensor& mel, float log_floor, Tensor& out) {
  const int64_t b = out.dim(0), n_mels = out.dim(1), f = out.dim(2);
  const float* m = mel.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for collapse(2) \
    schedule(static) if (out.numel() >= host_loops::kParallelElements)
  for (int64_t u = 0; u < b; ++u)
    for (int64_t j = 0; j < n_mels; ++j)
      for (int64_t t = 0; t < f; ++t)
        o[(u * n_mels + j) * f + t] = math::log_with_floor(m[(u * f + t) * n_mels + j], log_floor);
}

}  // namespace tessera
