// STFT, mel filterbank and log on the host (the specification the other front ends match).
#include "host/data/log_mel.h"

#include <algorithm>
#include <cmath>
#include <complex>

#include "host/core/error.h"

namespace tessera {

namespace {

bool is_pow2(int n) {
  return n > 0 && (n & (n - 1)) == 0;
}

// In-place iterative radix-2 FFT (n a power of two).
void fft(std::vector<std::complex<double>>& a) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = -2 * M_PI / static_cast<double>(len);
    const std::complex<double> wl(std::cos(ang), std::sin(ang));
    for (size_t i = 0; i < n; i += len) {
      std::complex<double> w(1, 0);
      for (size_t k = 0; k < len / 2; ++k) {
        const std::complex<double> u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
        w *= wl;
      }
    }
  }
}

void check(const MelConfig& c) {
  TESSERA_CHECK(c.sample_rate > 0 && c.n_fft >= 2 && c.hop_length > 0 && c.n_mels > 0,
                "bad mel config");
  TESSERA_CHECK(c.window() <= c.n_fft, "win_length exceeds n_fft");
  TESSERA_CHECK(c.fmin >= 0 && c.top() > c.fmin && c.top() <= c.sample_rate / 2.0 + 1e-9,
                "bad mel frequency range");
}

}  // namespace

double hz_to_mel(double hz) {
  return 2595.0 * std::log10(1.0 + hz / 700.0);
}
double mel_to_hz(double mel) {
  return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
}

namespace {
// n_mels + 2 points equally spaced in mel from fmin to fmax, in Hz.
std::vector<double> mel_points(const MelConfig& c) {
  const double lo = hz_to_mel(c.fmin), hi = hz_to_mel(c.top());
  std::vector<double> f(static_cast<size_t>(c.n_mels + 2));
  for (int i = 0; i < c.n_mels + 2; ++i) f[i] = mel_to_hz(lo + (hi - lo) * i / (c.n_mels + 1));
  return f;
}
}  // namespace

std::vector<double> mel_centers(const MelConfig& c) {
  check(c);
  const std::vector<double> f = mel_points(c);
  return std::vector<double>(f.begin() + 1, f.end() - 1);
}

std::vector<float> mel_filterbank(const MelConfig& c) {
  check(c);
  const std::vector<double> f = mel_points(c);
  const int bins = c.bins();
  std::vector<float> fb(static_cast<size_t>(c.n_mels) * bins, 0.f);
  for (int m = 0; m < c.n_mels; ++m)
    for (int b = 0; b < bins; ++b) {
      const double hz = static_cast<double>(b) * c.sample_rate / c.n_fft;
      const double up = (hz - f[m]) / (f[m + 1] - f[m]);
      const double down = (f[m + 2] - hz) / (f[m + 2] - f[m + 1]);
      fb[static_cast<size_t>(m) * bins + b] = static_cast<float>(std::max(0.0, std::min(up, down)));
    }
  return fb;
}

std::vector<float> stft_window(const MelConfig& c) {
  check(c);
  const int win = c.window(), off = (c.n_fft - win) / 2;
  std::vector<float> w(static_cast<size_t>(c.n_fft), 0.f);
  for (int i = 0; i < win; ++i)
    w[off + i] = static_cast<float>(0.5 - 0.5 * std::cos(2 * M_PI * i / win));
  return w;
}

int64_t stft_frames(int64_t n, const MelConfig& c) {
  return 1 + n / c.hop_length;
}

std::vector<float> stft_power(const std::vector<float>& x, const MelConfig& c) {
  check(c);
  const int n_fft = c.n_fft, bins = c.bins(), pad = n_fft / 2;
  const int64_t n = static_cast<int64_t>(x.size()), frames = stft_frames(n, c);
  const std::vector<float> w = stft_window(c);
  std::vector<float> out(static_cast<size_t>(frames) * bins);
  std::vector<std::complex<double>> buf(static_cast<size_t>(n_fft));
  std::vector<double> frame(static_cast<size_t>(n_fft));
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t start = t * c.hop_length - pad;  // frame t is centred on sample t * hop
    for (int i = 0; i < n_fft; ++i) {
      const int64_t s = start + i;
      frame[i] = (s >= 0 && s < n) ? static_cast<double>(x[static_cast<size_t>(s)]) * w[i] : 0.0;
    }
    float* o = &out[static_cast<size_t>(t) * bins];
    if (is_pow2(n_fft)) {
      for (int i = 0; i < n_fft; ++i) buf[i] = frame[i];
      fft(buf);
      for (int b = 0; b < bins; ++b) o[b] = static_cast<float>(std::norm(buf[b]));
    } else {
      for (int b = 0; b < bins; ++b) {
        double re = 0, im = 0;
        for (int i = 0; i < n_fft; ++i) {
          const double ang = -2 * M_PI * static_cast<double>(b) * i / n_fft;
          re += frame[i] * std::cos(ang);
          im += frame[i] * std::sin(ang);
        }
        o[b] = static_cast<float>(re * re + im * im);
      }
    }
  }
  return out;
}

std::vector<float> log_mel(const std::vector<float>& x, const MelConfig& c) {
  const std::vector<float> p = stft_power(x, c), fb = mel_filterbank(c);
  const int bins = c.bins();
  const int64_t frames = static_cast<int64_t>(p.size()) / bins;
  std::vector<float> out(static_cast<size_t>(c.n_mels) * frames);
  for (int m = 0; m < c.n_mels; ++m) {
    const float* f = &fb[static_cast<size_t>(m) * bins];
    // Only the filter's non-zero span contributes.
    int lo = 0, hi = bins;
    while (lo < bins && f[lo] == 0.f) ++lo;
    while (hi > lo && f[hi - 1] == 0.f) --hi;
    for (int64_t t = 0; t < frames; ++t) {
      const float* pt = &p[static_cast<size_t>(t) * bins];
      double s = 0;
      for (int b = lo; b < hi; ++b) s += static_cast<double>(f[b]) * pt[b];
      out[static_cast<size_t>(m) * frames + t] = static_cast<float>(std::log(s + c.log_floor));
    }
  }
  return out;
}

std::vector<float> fit_frames(const std::vector<float>& img, int n_mels, int64_t frames_in,
                              int64_t frames, FitMode mode) {
  TESSERA_CHECK(static_cast<int64_t>(img.size()) == n_mels * frames_in, "image size");
  const float fill = img.empty() ? 0.f : *std::min_element(img.begin(), img.end());
  std::vector<float> out(static_cast<size_t>(n_mels) * frames, fill);
  // Output column j takes input column j + shift (negative shift: padding before).
  const int64_t diff = frames_in - frames;
  const int64_t shift = mode == FitMode::Center ? (diff >= 0 ? diff / 2 : -((-diff) / 2)) : 0;
  for (int m = 0; m < n_mels; ++m)
    for (int64_t j = 0; j < frames; ++j) {
      const int64_t s = j + shift;
      if (s >= 0 && s < frames_in)
        out[static_cast<size_t>(m) * frames + j] = img[static_cast<size_t>(m) * frames_in + s];
    }
  return out;
}

void normalize_utterance(std::vector<float>& img) {
  if (img.empty()) return;
  double sum = 0, sq = 0;
  for (float v : img) sum += v;
  const double mean = sum / img.size();
  for (float v : img) sq += (v - mean) * (v - mean);
  const double inv = 1.0 / std::sqrt(std::max(sq / img.size(), 1e-10));
  for (float& v : img) v = static_cast<float>((v - mean) * inv);
}

void spec_augment(float* img, int n_mels, int64_t frames, const SpecAugmentConfig& c,
                  std::mt19937_64& rng) {
  auto band = [&](int64_t extent, int max_width, int64_t& start, int64_t& width) {
    width = std::uniform_int_distribution<int64_t>(0, std::min<int64_t>(max_width, extent))(rng);
    start = std::uniform_int_distribution<int64_t>(0, extent - width)(rng);
  };
  for (int k = 0; k < c.time_masks && c.time_mask_width > 0; ++k) {
    int64_t s, w;
    band(frames, c.time_mask_width, s, w);
    for (int m = 0; m < n_mels; ++m) std::fill_n(img + m * frames + s, w, 0.f);
  }
  for (int k = 0; k < c.freq_masks && c.freq_mask_width > 0; ++k) {
    int64_t s, w;
    band(n_mels, c.freq_mask_width, s, w);
    std::fill_n(img + s * frames, w * frames, 0.f);
  }
}

}  // namespace tessera
