// The log-mel front end against analytic signals: a bin-centred tone's Hann-windowed STFT power
// (peak (A N / 4)^2, neighbours (A N / 8)^2, nothing further out), Parseval's theorem on noise,
// a tone landing in the mel filter centred nearest to it, the filterbank's partition of unity;
// and the fixed-length / normalisation / SpecAugment pieces.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "host/data/log_mel.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

std::vector<float> tone(double hz, int rate, int n, double amp) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(amp * std::cos(2 * M_PI * hz * i / rate));
  return x;
}

TEST(AudioStft, BinCentredToneMatchesTheHannWindowAnalytically) {
  for (const int n_fft : {256, 200}) {  // radix-2 FFT and the direct DFT
    SCOPED_TRACE(n_fft);
    MelConfig c;
    c.n_fft = n_fft;
    c.hop_length = 64;
    const int k = n_fft / 8;  // 1000 Hz at n_fft 256
    const double hz = static_cast<double>(k) * c.sample_rate / n_fft, amp = 0.5;
    const std::vector<float> x = tone(hz, c.sample_rate, 4000, amp);
    const std::vector<float> p = stft_power(x, c);
    const int bins = c.bins();
    ASSERT_EQ(p.size(), static_cast<size_t>(stft_frames(4000, c) * bins));
    const float* f = &p[static_cast<size_t>(20) * bins];  // a frame well inside the signal
    const double peak = amp * n_fft / 4, side = amp * n_fft / 8;
    EXPECT_NEAR(f[k], peak * peak, peak * peak * 1e-4);
    EXPECT_NEAR(f[k - 1], side * side, side * side * 1e-3);
    EXPECT_NEAR(f[k + 1], side * side, side * side * 1e-3);
    for (int b = 0; b < bins; ++b)
      if (std::abs(b - k) > 1) EXPECT_LT(f[b], peak * peak * 1e-6) << "bin " << b;
  }
}

TEST(AudioStft, ParsevalOnNoise) {
  MelConfig c;
  c.hop_length = 100;
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 0.3f);
  std::vector<float> x(3000);
  for (float& v : x) v = g(rng);
  const std::vector<float> p = stft_power(x, c), w = stft_window(c);
  const int bins = c.bins(), t = 10;  // frame 10 is centred on sample 1000
  double energy = 0;
  for (int i = 0; i < c.n_fft; ++i) {
    const double v = x[static_cast<size_t>(t * c.hop_length - c.n_fft / 2 + i)] * w[i];
    energy += v * v;
  }
  double spec = 0;
  for (int b = 0; b < bins; ++b)
    spec += (b == 0 || b == bins - 1 ? 1 : 2) * p[static_cast<size_t>(t) * bins + b];
  EXPECT_NEAR(spec / c.n_fft, energy, energy * 1e-5);
}

TEST(AudioMel, ToneLandsInTheNearestFilterAndFiltersPartitionUnity) {
  MelConfig c;
  c.n_mels = 40;
  c.fmin = 20;
  const std::vector<double> centres = mel_centers(c);
  ASSERT_EQ(centres.size(), 40u);
  for (size_t i = 1; i < centres.size(); ++i) EXPECT_GT(centres[i], centres[i - 1]);
  EXPECT_NEAR(hz_to_mel(1000), 1000, 0.5);  // the HTK scale's anchor
  EXPECT_NEAR(mel_to_hz(hz_to_mel(1234.5)), 1234.5, 1e-9);
  for (const double hz : {250.0, 700.0, 1500.0, 3100.0}) {
    SCOPED_TRACE(hz);
    const std::vector<float> lm = log_mel(tone(hz, c.sample_rate, 8000, 0.5), c);
    const int64_t frames = static_cast<int64_t>(lm.size()) / c.n_mels;
    int best = 0;
    for (int m = 1; m < c.n_mels; ++m)
      if (lm[m * frames + 50] > lm[best * frames + 50]) best = m;
    int nearest = 0;
    for (int m = 1; m < c.n_mels; ++m)
      if (std::abs(centres[m] - hz) < std::abs(centres[nearest] - hz)) nearest = m;
    // A Hann window smears a tone over ~ +-2 bins (62.5 Hz here): at low frequencies, where
    // filters are narrower than that, the neighbour may win.
    EXPECT_LE(std::abs(best - nearest), hz < 500 ? 1 : 0) << "best " << centres[best] << " Hz";
  }
  const std::vector<float> fb = mel_filterbank(c);
  for (int b = 0; b < c.bins(); ++b) {
    const double hz = static_cast<double>(b) * c.sample_rate / c.n_fft;
    double s = 0;
    for (int m = 0; m < c.n_mels; ++m) s += fb[static_cast<size_t>(m) * c.bins() + b];
    if (hz >= centres.front() && hz <= centres.back()) EXPECT_NEAR(s, 1.0, 1e-5) << hz;
  }
}

TEST(AudioFeatures, FitNormaliseAndMask) {
  // 2 mels x 5 frames, values 0..9.
  std::vector<float> img(10);
  std::iota(img.begin(), img.end(), 0.f);
  const std::vector<float> crop = fit_frames(img, 2, 5, 3, FitMode::Center);
  EXPECT_EQ(crop, (std::vector<float>{1, 2, 3, 6, 7, 8}));
  const std::vector<float> start = fit_frames(img, 2, 5, 3, FitMode::Start);
  EXPECT_EQ(start, (std::vector<float>{0, 1, 2, 5, 6, 7}));
  const std::vector<float> pad = fit_frames(img, 2, 5, 8, FitMode::Center);  // 1 before, 2 after
  EXPECT_EQ(pad, (std::vector<float>{0, 0, 1, 2, 3, 4, 0, 0, 0, 5, 6, 7, 8, 9, 0, 0}));
  std::vector<float> n = img;
  normalize_utterance(n);
  double mean = 0, var = 0;
  for (float v : n) mean += v;
  mean /= n.size();
  for (float v : n) var += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0, 1e-6);
  EXPECT_NEAR(var / n.size(), 1, 1e-5);

  SpecAugmentConfig a;
  a.time_masks = 2;
  a.time_mask_width = 5;
  a.freq_masks = 1;
  a.freq_mask_width = 3;
  std::vector<float> x(20 * 50, 1.f), y(20 * 50, 1.f);
  std::mt19937_64 r1(3), r2(3);
  spec_augment(x.data(), 20, 50, a, r1);
  spec_augment(y.data(), 20, 50, a, r2);
  EXPECT_EQ(x, y);  // seeded: reproducible
  const auto zeros = std::count(x.begin(), x.end(), 0.f);
  EXPECT_LE(zeros, 2 * 5 * 20 + 3 * 50);
  // Masks are whole columns / rows.
  for (int t = 0; t < 50; ++t) {
    int z = 0;
    for (int m = 0; m < 20; ++m) z += x[m * 50 + t] == 0.f;
    int full_rows = 0;
    for (int m = 0; m < 20; ++m) {
      bool row = true;
      for (int u = 0; u < 50; ++u) row &= x[m * 50 + u] == 0.f;
      full_rows += row;
    }
    EXPECT_TRUE(z == full_rows || z == 20) << t;
  }
  // Over many draws, masks do appear.
  std::mt19937_64 r3(11);
  int64_t total = 0;
  for (int i = 0; i < 20; ++i) {
    std::vector<float> z(20 * 50, 1.f);
    spec_augment(z.data(), 20, 50, a, r3);
    total += std::count(z.begin(), z.end(), 0.f);
  }
  EXPECT_GT(total, 0);
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Against numpy (tests/support/log_mel_reference.py: np.fft.rfft and the filterbank from its
// formulas) on a chirp plus noise, when a python3 with numpy is available.
TEST(AudioMel, MatchesNumpyReference) {
  std::string py;
  if (const std::string missing = test::missing_numpy(&py); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  MelConfig c;
  c.n_fft = 256;
  c.win_length = 200;
  c.hop_length = 80;
  c.n_mels = 40;
  c.fmin = 20;
  c.fmax = 3800;
  std::vector<float> x(5000);
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0.f, 0.05f);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / c.sample_rate;
    x[i] = static_cast<float>(0.4 * std::sin(2 * M_PI * (200 * t + 1500 * t * t))) + g(rng);
  }
  char dir_tmpl[] = "/tmp/tessera_mel_ref_XXXXXX";
  const std::string dir = ::mkdtemp(dir_tmpl);
  const std::string in = dir + "/x.f32", out = dir + "/y.f32";
  std::FILE* f = std::fopen(in.c_str(), "wb");
  std::fwrite(x.data(), 4, x.size(), f);
  std::fclose(f);
  const test::ProgramResult ran = test::run_program(
      {py, std::string(TESSERA_SOURCE_DIR) + "/tests/support/log_mel_reference.py", in, out, "8000",
       "256", "200", "80", "40", "20", "3800", "1e-6"});
  ASSERT_EQ(ran.status, 0) << ran.out << ran.err;
  const std::vector<float> mine = log_mel(x, c);
  std::vector<float> ref(mine.size());
  f = std::fopen(out.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(std::fread(ref.data(), 4, ref.size(), f), ref.size());
  EXPECT_EQ(std::fgetc(f), EOF);  // same frame count
  std::fclose(f);
  std::remove(in.c_str());
  std::remove(out.c_str());
  ::rmdir(dir.c_str());
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    worst = std::max(worst, double(std::abs(mine[i] - ref[i])));
  EXPECT_LT(worst, 1e-3);  // log domain: relative 0.1% on the mel power
}

}  // namespace
}  // namespace tessera
