// Fuzz target: WAV files as the audio task reads them (host/data/wav.h): parse_wav (the RIFF
// chunk walk, every PCM / float / extensible encoding, the mono mix-down), resampled to the
// front end's rate (resample_to: the polyphase resampler, with the 256:1 limit on the rates),
// then, at the default front end's rate, the log-mel image predict feeds the model (features_of).
//
// Input: 1 option byte, then the file's bytes.
//   bits 0-2   the rate resampled to: 8000, 16000, 11025, 22050, 44100, 48000, 100 or 1 Hz
//   bit 3      fix the RIFF size field to the file's length (mutations rarely keep it right)
// Invariants checked: the sample count is the data chunk's frames; after resampling the rate is
// the one asked for and the length ceil(frames x out / in); the log-mel image is
// n_mels x frames of finite values.
#include <cmath>
#include <cstdint>
#include <string>

#include "host/data/wav.h"
#include "pipelines/audio/audio.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static const int kRates[] = {8000, 16000, 11025, 22050, 44100, 48000, 100, 1};
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const int rate = kRates[flags & 7];
  std::string bytes(in.rest());
  if ((flags & 8) != 0 && bytes.size() >= 8) {
    const uint32_t riff = static_cast<uint32_t>(bytes.size() - 8);
    for (int i = 0; i < 4; ++i) bytes[4 + i] = static_cast<char>((riff >> (8 * i)) & 255);
  }
  fuzz::expect_input_errors([&] {
    Audio a = parse_wav(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "fuzz.wav");
    fuzz::check(a.samples.size() == static_cast<size_t>(a.info.frames), "one sample per frame");
    const int64_t in_rate = a.sample_rate;
    resample_to(a, rate, "fuzz.wav");
    fuzz::check(a.sample_rate == rate, "resampled rate");
    const int64_t want =
        in_rate == rate ? a.info.frames : (a.info.frames * rate + in_rate - 1) / in_rate;
    fuzz::check(static_cast<int64_t>(a.samples.size()) == want, "resampled length");
    const AudioFeatureConfig f;
    if (rate == f.mel.sample_rate) {
      const std::vector<float> x = audio::features_of(a.samples, f);
      fuzz::check(static_cast<int64_t>(x.size()) == f.mel.n_mels * f.frames, "log-mel size");
      for (float v : x) fuzz::check(std::isfinite(v), "a log-mel value is not finite");
    }
  });
  return 0;
}
