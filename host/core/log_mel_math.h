#pragma once
// Element math of the batched log-mel front end (Backend::stft_frames, power_spectrum,
// log_mel_transpose), shared by the host backend and the CUDA kernels so both compute the same
// numbers. Layouts: waves [B, n]; frames [B*F, n_fft] (row b*F + t); spectrum [B*F, 2*bins]
// (real parts, then imaginary parts); power [B*F, bins]; mel [B*F, n_mels];
// log-mel [B, n_mels, F].
#include <cmath>
#include <cstdint>

#include "host/core/hd.h"

namespace tessera::math {

// Frames of n samples with hop `hop`: 1 + n / hop (frame t is centred on sample t * hop).
TESSERA_HD int64_t stft_frame_count(int64_t n, int64_t hop) {
  return 1 + n / hop;
}

// Element i of frame t of one waveform x[0, n): the window times the sample at
// t * hop - n_fft / 2 + i, zero outside the signal (constant zero padding of n_fft / 2 on
// both sides, as host/data/log_mel.h documents).
TESSERA_HD float stft_frame_value(const float* x, int64_t n, const float* window, int64_t n_fft,
                                  int64_t hop, int64_t t, int64_t i) {
  const int64_t s = t * hop - n_fft / 2 + i;
  return (s >= 0 && s < n) ? x[s] * window[i] : 0.f;
}

// |X|^2 from the real and imaginary parts.
TESSERA_HD float power_of(float re, float im) {
  return re * re + im * im;
}

// The front end's final step: log(mel power + floor).
TESSERA_HD float log_with_floor(float v, float floor) {
  return logf(v + floor);
}

}  // namespace tessera::math
