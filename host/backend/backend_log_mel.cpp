// Edge checks of the log-mel front-end ops (Backend::stft_frames, power_spectrum,
// log_mel_transpose).
#include <cmath>

#include "host/backend/backend.h"
#include "host/core/log_mel_math.h"

namespace tessera {

namespace {
void check_f32_rank(const Tensor& t, int rank, const char* op, const char* what,
                    const char* layout) {
  TESSERA_CHECK(t.defined() && t.dtype() == DType::F32 && t.rank() == rank,
                op << ": " << what << " must be f32 " << layout << ", got "
                   << (t.defined() ? t.describe() : std::string("undefined")));
}
}  // namespace

void Backend::stft_frames(const Tensor& waves, const Tensor& window, int64_t hop, Tensor& frames) {
  check_f32_rank(waves, 2, "stft_frames", "waves", "[B, n]");
  check_f32_rank(window, 1, "stft_frames", "window", "[n_fft]");
  check_f32_rank(frames, 2, "stft_frames", "frames", "[B*F, n_fft]");
  check_here(waves, "stft_frames waves");
  check_here(window, "stft_frames window");
  check_here(frames, "stft_frames frames");
  TESSERA_CHECK(hop >= 1, "stft_frames: hop " << hop << " must be >= 1");
  const int64_t n_fft = window.dim(0);
  TESSERA_CHECK(n_fft >= 2, "stft_frames: window length (n_fft) " << n_fft << " must be >= 2");
  const int64_t b = waves.dim(0), f = math::stft_frame_count(waves.dim(1), hop);
  TESSERA_CHECK(frames.dim(0) == b * f && frames.dim(1) == n_fft,
                "stft_frames: frames " << shape_str(frames.shape()) << " for " << b
                                       << " waveforms of " << waves.dim(1) << " samples, hop "
                                       << hop << " and n_fft " << n_fft << " must be [" << b * f
                                       << ", " << n_fft << "] (F = 1 + n / hop = " << f << ")");
  if (b == 0) return;
  stft_frames_impl(waves, window, hop, frames);
}

void Backend::power_spectrum(const Tensor& spectrum, Tensor& power) {
  check_f32_rank(spectrum, 2, "power_spectrum", "spectrum", "[R, 2*bins]");
  check_f32_rank(power, 2, "power_spectrum", "power", "[R, bins]");
  check_here(spectrum, "power_spectrum spectrum");
  check_here(power, "power_spectrum power");
  TESSERA_CHECK(
      power.dim(1) >= 1 && spectrum.dim(0) == power.dim(0) && spectrum.dim(1) == 2 * power.dim(1),
      "power_spectrum: spectrum " << shape_str(spectrum.shape()) << " and power "
                                  << shape_str(power.shape())
                                  << " must be [R, 2*bins] and [R, bins], bins >= 1");
  if (power.dim(0) == 0) return;
  power_spectrum_impl(spectrum, power);
}

void Backend::log_mel_transpose(const Tensor& mel, float log_floor, Tensor& out) {
  check_f32_rank(mel, 2, "log_mel_transpose", "mel", "[B*F, n_mels]");
  check_f32_rank(out, 3, "log_mel_transpose", "out", "[B, n_mels, F]");
  check_here(mel, "log_mel_transpose mel");
  check_here(out, "log_mel_transpose out");
  TESSERA_CHECK(std::isfinite(log_floor) && log_floor >= 0.f,
                "log_mel_transpose: log_floor " << log_floor << " must be finite and >= 0");
  TESSERA_CHECK(mel.dim(0) == out.dim(0) * out.dim(2) && mel.dim(1) == out.dim(1),
                "log_mel_transpose: mel " << shape_str(mel.shape()) << " and out "
                                          << shape_str(out.shape())
                                          << " must be [B*F, n_mels] and [B, n_mels, F]");
  if (out.numel() == 0) return;
  log_mel_transpose_impl(mel, log_floor, out);
}

}  // namespace tessera
