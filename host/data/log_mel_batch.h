#pragma once
// The batched log-mel front end on any Backend (host, CUDA, emulated CUDA), the same numbers as
// host/data/log_mel.h's log_mel() up to float rounding. The DFT is a GEMM, so a GPU computes a
// whole batch of utterances in five launches:
//   stft_frames  waves [B, n] -> windowed frames [B*F, n_fft]        (F = 1 + n / hop)
//   gemm         frames x DFT basis [n_fft, 2*bins] (cos | -sin) -> [B*F, 2*bins]
//   power_spectrum                                   -> [B*F, bins]
//   gemm         power x filterbank^T [bins, n_mels] -> [B*F, n_mels]
//   log_mel_transpose  log(mel + log_floor)          -> [B, n_mels, F]
// A direct DFT costs n_fft / log2(n_fft) times the FFT's arithmetic, which a GPU GEMM absorbs
// (256-point frames: ~0.5 MFLOP per frame) and which spares a cuFFT dependency and plan cache.
//
// Padding policy for utterances of different lengths: each is zero-padded at its end to the
// batch's longest length n. Frame t of an utterance of L samples only reads samples
// [t*hop - n_fft/2, t*hop + n_fft/2), which lie in [0, L) or are zeros either way, so its first
// 1 + L / hop frames equal those of log_mel() on the unpadded utterance; the frames after them
// see the padding and are dropped (compute() on host vectors does both).
#include <vector>

#include "host/backend/backend.h"
#include "host/data/log_mel.h"

namespace tessera {

class LogMelBatch {
 public:
  // Validates c (as mel_filterbank() does) and puts the window, DFT basis and filterbank on be.
  LogMelBatch(Backend& be, const MelConfig& c);

  const MelConfig& config() const { return c_; }
  Backend& backend() const { return be_; }

  // waves [B, n] on the backend (n >= 0) -> [B, n_mels, 1 + n / hop] on the backend.
  Tensor compute(const Tensor& waves);

  // Host waveforms of any lengths -> one host [n_mels, 1 + L_i / hop] image per waveform, as
  // log_mel() lays it out (padding policy above). One batch: the caller bounds its size.
  std::vector<std::vector<float>> compute(const std::vector<std::vector<float>>& waves);
  // The same for any number of waveforms: sorted by length and cut into batches of similar
  // lengths (little padding) whose frames tensor [B*F, n_fft] holds at most max_frame_floats
  // floats (at least one waveform per batch). Results in the input order.
  std::vector<std::vector<float>> compute_all(const std::vector<std::vector<float>>& waves,
                                              int64_t max_frame_floats = int64_t{1} << 25);

 private:
  Backend& be_;
  MelConfig c_;
  Tensor window_;      // [n_fft]
  Tensor basis_;       // [n_fft, 2 * bins]
  Tensor filterbank_;  // [n_mels, bins]
};

// The [n_fft, 2 * bins] real DFT basis: column k is cos(2 pi k i / n_fft), column bins + k is
// -sin(2 pi k i / n_fft) (i the row). Angles reduced exactly ((k * i) mod n_fft) in double.
std::vector<float> dft_basis(int n_fft);

}  // namespace tessera
