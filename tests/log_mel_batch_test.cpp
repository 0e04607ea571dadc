// The batched backend log-mel front end (host/data/log_mel_batch.h) on the host backend against
// the host specification log_mel() (host/data/log_mel.cpp: FFT / direct DFT in double), and the
// edge checks of its three ops. The emulated-CUDA parity of the same ops lives in
// tests/emu_backend_test.cpp (EmuBackend.LogMelFrontEndMatchesHost).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/data/log_mel.h"
#include "host/data/log_mel_batch.h"
#include "host/data/registry.h"
#include "pipelines/audio/audio.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

// A speech-like test signal: two tones and noise, with a silent stretch in the middle (frames
// whose power is exactly zero, i.e. the log floor, and frames straddling the edge).
std::vector<float> signal(size_t n, std::mt19937& gen, double f1, double f2) {
  std::normal_distribution<float> noise(0.f, 0.05f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    const bool silent = i > n / 3 && i < n / 3 + 300;
    x[i] = silent ? 0.f
                  : static_cast<float>(0.4 * std::sin(2 * M_PI * f1 * i / 8000.0) +
                                       0.2 * std::sin(2 * M_PI * f2 * i / 8000.0)) +
                        noise(gen);
  }
  return x;
}

// The float32 GEMM DFT rounds each re/im sum of n_fft terms; by Parseval its error on a mel
// power is a small multiple of n_fft * 2^-24 (~1.5e-5 for 256 points, ~1e-6 typically) times the
// frame's total power sum_b |X_b|^2, so that is the scale of the tolerance (1e-5 of it), plus
// 1e-5 of the floor for the float rounding of log() near it (silent frames). In the log domain
// every band holding >= 1% of its frame's power must agree to 1e-3 (0.1 %).
void expect_matches_spec(const std::vector<float>& x, const std::vector<float>& got,
                         const MelConfig& c, const std::string& what) {
  const std::vector<float> want = log_mel(x, c);
  ASSERT_EQ(got.size(), want.size()) << what;
  const std::vector<float> p = stft_power(x, c);
  const int64_t frames = static_cast<int64_t>(want.size()) / c.n_mels, bins = c.bins();
  int checked_log = 0;
  double worst_power = 0, worst_log = 0;  // printed: the margin under the tolerances
  for (int64_t t = 0; t < frames; ++t) {
    double total = 0;
    for (int64_t b = 0; b < bins; ++b) total += p[t * bins + b];
    for (int64_t m = 0; m < c.n_mels; ++m) {
      const size_t i = static_cast<size_t>(m * frames + t);
      const double mw = std::exp(static_cast<double>(want[i])) - c.log_floor;
      const double mg = std::exp(static_cast<double>(got[i])) - c.log_floor;
      ASSERT_LE(std::fabs(mg - mw), 1e-5 * total + 1e-5 * c.log_floor)
          << what << ": mel " << m << " frame " << t << " of " << frames << ": spec " << want[i]
          << ", backend " << got[i] << " (frame power " << total << ")";
      if (total > 0) worst_power = std::max(worst_power, std::fabs(mg - mw) / total);
      if (mw >= 1e-2 * total && total > 0) {
        ++checked_log;
        worst_log = std::max(worst_log, std::fabs(static_cast<double>(got[i]) - want[i]));
        ASSERT_NEAR(got[i], want[i], 1e-3) << what << ": mel " << m << " frame " << t;
      }
    }
  }
  std::printf(
      "%s: worst |d mel| / frame power %.2e (tolerance 1e-5), worst |d log| %.2e "
      "(tolerance 1e-3)\n",
      what.c_str(), worst_power, worst_log);
  if (!x.empty()) EXPECT_GT(checked_log, 0) << what << ": no band carried 1% of a frame's power";
}

struct Case {
  const char* name;
  MelConfig c;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  MelConfig a;  // the audio pipeline's defaults: 256-point FFT, hop 80, 40 mels
  out.push_back({"pow2_default", a});
  MelConfig b;
  b.n_fft = 200;  // not a power of two (the spec takes its direct-DFT path)
  b.win_length = 160;
  b.hop_length = 64;
  b.n_mels = 23;
  b.fmin = 50;
  b.fmax = 3500;
  out.push_back({"n200_win160", b});
  MelConfig d;
  d.n_fft = 255;  // odd n_fft: odd padding, bins = 128
  d.win_length = 201;
  d.hop_length = 37;
  d.n_mels = 16;
  out.push_back({"odd255_win201_hop37", d});
  MelConfig e;
  e.sample_rate = 16000;
  e.n_fft = 64;
  e.win_length = 50;
  e.hop_length = 17;
  e.n_mels = 12;
  e.log_floor = 1e-3;
  out.push_back({"n64_win50_sr16k", e});
  return out;
}

TEST(LogMelBatch, HostBackendMatchesTheHostSpecification) {
  std::unique_ptr<Backend> be = make_host_backend();
  std::mt19937 gen(11);
  for (const Case& k : cases()) {
    LogMelBatch fe(*be, k.c);
    // Different true lengths in one batch (padded by compute() to the longest), including
    // odd ones, one shorter than half a frame and an empty one.
    const std::vector<size_t> lengths{1537, 1000, 7, 0, 2048};
    std::vector<std::vector<float>> waves;
    for (size_t n : lengths) waves.push_back(signal(n, gen, 440 + 3 * n % 200, 1210));
    const std::vector<std::vector<float>> got = fe.compute(waves);
    ASSERT_EQ(got.size(), waves.size());
    for (size_t i = 0; i < waves.size(); ++i)
      expect_matches_spec(waves[i], got[i], k.c,
                          std::string(k.name) + " length " + std::to_string(lengths[i]));
  }
}

TEST(LogMelBatch, DeviceTensorApiReturnsBatchMelsFrames) {
  std::unique_ptr<Backend> be = make_host_backend();
  MelConfig c;
  c.n_fft = 32;
  c.hop_length = 10;
  c.n_mels = 5;
  LogMelBatch fe(*be, c);
  std::mt19937 gen(3);
  const std::vector<float> x0 = signal(95, gen, 300, 900), x1 = signal(95, gen, 700, 2100);
  std::vector<float> both(x0);
  both.insert(both.end(), x1.begin(), x1.end());
  const Tensor out = fe.compute(be->to_device(Tensor::host_from<float>({2, 95}, both)));
  ASSERT_EQ(out.shape(), (Shape{2, 5, 10}));  // F = 1 + 95 / 10
  const float* o = out.data<float>();
  expect_matches_spec(x0, std::vector<float>(o, o + 50), c, "row 0");
  expect_matches_spec(x1, std::vector<float>(o + 50, o + 100), c, "row 1");
}

TEST(LogMelBatch, ComputeAllKeepsInputOrderAcrossBatches) {
  std::unique_ptr<Backend> be = make_host_backend();
  MelConfig c;
  c.n_fft = 64;
  c.hop_length = 16;
  c.n_mels = 8;
  LogMelBatch fe(*be, c);
  std::mt19937 gen(4);
  std::vector<std::vector<float>> waves;
  for (size_t n : {300, 20, 700, 0, 301, 64}) waves.push_back(signal(n, gen, 500, 1500));
  // A budget of ~2 waveforms of 700 samples per batch: several batches, sorted by length.
  const auto all = fe.compute_all(waves, 2 * 45 * 64);
  ASSERT_EQ(all.size(), waves.size());
  for (size_t i = 0; i < waves.size(); ++i)
    expect_matches_spec(waves[i], all[i], c, "compute_all item " + std::to_string(i));
}

// The audio pipeline's featurize() with the batched backend front end equals the per-utterance
// host path on real recordings (FSDD, one speaker's index-0 files), after fitting and
// per-utterance normalisation (unit variance, so 1e-3 is ~100x the log-domain rounding above).
TEST(LogMelBatch, PipelineFeaturizeOnABackendMatchesTheHostPath) {
  AudioDataConfig d;
  d.dataset = "fsdd";
  d.max_index = 0;
  d.speakers = {"george"};
  const std::string missing = test::missing_dataset("fsdd", {"recordings/0_george_0.wav"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  // The data is here: a checksum mismatch or a reader error is a failure.
  ResolveOptions o;
  o.download = DownloadPolicy::Never;
  resolve_dataset_file("fsdd", "recordings/0_george_0.wav", o);
  const std::vector<audio::Recording> recs =
      audio::list_data(d, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
  ASSERT_EQ(recs.size(), 10u);
  AudioFeatureConfig f;
  f.mel.win_length = 200;
  f.mel.n_mels = 32;
  f.mel.fmin = 20;
  f.frames = 64;
  std::unique_ptr<Backend> be = make_host_backend();
  const ImageSet host = audio::featurize(recs, f);
  const ImageSet batched = audio::featurize(recs, f, be.get());
  ASSERT_EQ(host.pixels.size(), batched.pixels.size());
  EXPECT_EQ(host.labels, batched.labels);
  double worst = 0;
  for (size_t i = 0; i < host.pixels.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(host.pixels[i] - batched.pixels[i])));
  EXPECT_LT(worst, 1e-3);
  std::printf("featurize: worst |host - batched| %.2e over %zu features\n", worst,
              host.pixels.size());
#if defined(TESSERA_HAVE_CUDA_EMULATION) && TESSERA_HAVE_CUDA_EMULATION
  // In the emulation build, the same through the CUDA kernels (emulated; gemm on the host).
  std::unique_ptr<Backend> emu = make_backend("cuda-emu");
  const ImageSet on_emu = audio::featurize(recs, f, emu.get());
  ASSERT_EQ(on_emu.pixels.size(), host.pixels.size());
  for (size_t i = 0; i < host.pixels.size(); ++i)
    ASSERT_NEAR(on_emu.pixels[i], batched.pixels[i], 1e-5) << "feature " << i;
#endif
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LogMelBatch, BadShapesAreRejectedWithClearErrors) {
  std::unique_ptr<Backend> be = make_host_backend();
  Tensor waves = be->empty({2, 100}), window = be->empty({16});
  Tensor frames_ok = be->empty({2 * 11, 16});
  be->stft_frames(waves, window, 10, frames_ok);  // the valid call, for contrast
  Tensor frames_bad = be->empty({2 * 10, 16});
  expect_error([&] { be->stft_frames(waves, window, 10, frames_bad); },
               "must be [22, 16] (F = 1 + n / hop = 11)");
  expect_error([&] { be->stft_frames(waves, window, 0, frames_ok); }, "hop 0 must be >= 1");
  Tensor flat = be->empty({200});
  expect_error([&] { be->stft_frames(flat, window, 10, frames_ok); },
               "stft_frames: waves must be f32 [B, n]");
  Tensor one = be->empty({1});
  Tensor frames_one = be->empty({22, 1});
  expect_error([&] { be->stft_frames(waves, one, 10, frames_one); }, "n_fft) 1 must be >= 2");

  Tensor spec = be->empty({4, 9}), power = be->empty({4, 4});
  expect_error([&] { be->power_spectrum(spec, power); }, "must be [R, 2*bins] and [R, bins]");
  Tensor spec_i = be->empty({4, 8}, DType::I32);
  expect_error([&] { be->power_spectrum(spec_i, power); }, "spectrum must be f32 [R, 2*bins]");

  Tensor mel = be->empty({2 * 7, 5}), out = be->empty({2, 5, 6});
  expect_error([&] { be->log_mel_transpose(mel, 1e-6f, out); },
               "must be [B*F, n_mels] and [B, n_mels, F]");
  Tensor out_ok = be->empty({2, 5, 7});
  expect_error([&] { be->log_mel_transpose(mel, -1.f, out_ok); }, "log_floor -1 must be");

  MelConfig c;
  c.win_length = 300;  // > n_fft
  expect_error([&] { LogMelBatch fe(*be, c); }, "win_length exceeds n_fft");
  LogMelBatch fe(*be, MelConfig{});
  expect_error([&] { fe.compute(flat); }, "log-mel front end: waves must be f32 [B, n]");
}

}  // namespace
}  // namespace tessera
