#pragma once
// The audio front end on the host: short-time Fourier transform (Hann window, centred frames
// with zero padding of n_fft/2 on both sides, like librosa's pad_mode="constant"), power
// spectrum, a triangular mel filterbank (HTK mel scale, peak 1, no area normalisation, like
// torchaudio's melscale_fbanks(norm=None, mel_scale="htk")), natural log with a floor; then the
// pieces the classifier needs: a fixed number of frames (centre crop or centre pad with the
// utterance's quietest value), per-utterance normalisation (zero mean, unit variance) and
// SpecAugment-style masking.
//
// Layout: a log-mel image is row-major [n_mels, frames] (mel bin = the CNN's height, time = its
// width); an STFT power spectrum is [frames, n_fft/2 + 1].
#include <cstdint>
#include <random>
#include <vector>

namespace tessera {

struct MelConfig {
  int sample_rate = 8000;
  int n_fft = 256;     // any size (radix-2 FFT for powers of two, else a direct DFT)
  int win_length = 0;  // Hann window length, <= n_fft, centred in the frame; 0 = n_fft
  int hop_length = 80;
  int n_mels = 40;
  double fmin = 0;          // Hz
  double fmax = 0;          // Hz; 0 = sample_rate / 2
  double log_floor = 1e-6;  // log(mel power + floor)
  int bins() const { return n_fft / 2 + 1; }
  int window() const { return win_length > 0 ? win_length : n_fft; }
  double top() const { return fmax > 0 ? fmax : sample_rate / 2.0; }
};

double hz_to_mel(double hz);  // 2595 log10(1 + hz / 700)
double mel_to_hz(double mel);
// Centre frequency (Hz) of each of the n_mels filters.
std::vector<double> mel_centers(const MelConfig& c);
// [n_mels, bins] triangular filters.
std::vector<float> mel_filterbank(const MelConfig& c);
// The periodic Hann window of win_length, zero-padded (centred) to n_fft.
std::vector<float> stft_window(const MelConfig& c);
// Frames of a signal of n samples: 1 + n / hop_length.
int64_t stft_frames(int64_t n, const MelConfig& c);
// [frames, bins] |X|^2.
std::vector<float> stft_power(const std::vector<float>& x, const MelConfig& c);
// [n_mels, frames] log(mel power + log_floor).
std::vector<float> log_mel(const std::vector<float>& x, const MelConfig& c);

enum class FitMode : uint8_t { Center, Start };
// [n_mels, frames_in] -> [n_mels, frames]: a longer input is cropped (its middle, or its start),
// a shorter one padded (around it, or after it) with its minimum value (silence).
std::vector<float> fit_frames(const std::vector<float>& img, int n_mels, int64_t frames_in,
                              int64_t frames, FitMode mode);
// In place: zero mean, unit variance over the whole image (variance floored at 1e-10).
void normalize_utterance(std::vector<float>& img);

struct SpecAugmentConfig {
  int time_masks = 0, time_mask_width = 0;  // masks of 0..width frames
  int freq_masks = 0, freq_mask_width = 0;  // masks of 0..width mel bins
  bool enabled() const {
    return (time_masks > 0 && time_mask_width > 0) || (freq_masks > 0 && freq_mask_width > 0);
  }
};
// Sets random bands of a normalised [n_mels, frames] image to 0 (its mean).
void spec_augment(float* img, int n_mels, int64_t frames, const SpecAugmentConfig& c,
                  std::mt19937_64& rng);

}  // namespace tessera
