#pragma once
// WAV (RIFF/WAVE) reading for the audio pipeline, written here (no libsndfile):
//   - PCM 8 (unsigned), 16, 24 and 32-bit integer samples, IEEE float 32 and 64-bit;
//   - WAVE_FORMAT_EXTENSIBLE (0xFFFE) whose sub-format GUID is PCM or IEEE float;
//   - any channel count (mixed to mono by averaging), any sample rate;
//   - float samples must be finite and within +-kMaxFloatSample (2^20, far beyond full scale:
//     room for files stored at integer scale); NaN, infinity or larger values are refused rather
//     than turned into infinite spectra downstream.
// Chunks are walked in order (unknown chunks such as LIST or fact are skipped, odd sizes padded
// as RIFF requires). Everything malformed is an Error(Data) naming the file and what is wrong:
// not RIFF/WAVE, a chunk running past the end of the file, a missing or short fmt chunk, data
// before fmt, an unsupported encoding, inconsistent block align / byte rate, a partial frame.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

enum class WavEncoding : uint8_t { Pcm, Float };

constexpr float kMaxFloatSample = 1 << 20;

struct WavInfo {
  WavEncoding encoding = WavEncoding::Pcm;
  int channels = 0;
  int sample_rate = 0;
  int bits = 0;  // container bits per sample: 8/16/24/32 (PCM) or 32/64 (float)
  bool extensible = false;
  int64_t frames = 0;  // samples per channel
};

struct Audio {
  int sample_rate = 0;
  std::vector<float> samples;  // mono, nominally in [-1, 1]
  WavInfo info;                // what the file held
  double seconds() const { return sample_rate ? double(samples.size()) / sample_rate : 0.0; }
};

// Parses a whole WAV file image; `name` is used in error messages.
Audio parse_wav(const uint8_t* data, size_t size, const std::string& name);
Audio read_wav(const std::string& path);
// read_wav, then resampled to `sample_rate` when the file's rate differs (host/data/resample.h).
// A file whose rate is more than kMaxResampleRatio from `sample_rate` is an Error(Data).
Audio read_wav_at(const std::string& path, int sample_rate);
// The resampling step of read_wav_at, on audio already parsed from `name`.
void resample_to(Audio& audio, int sample_rate, const std::string& name);

}  // namespace tessera
