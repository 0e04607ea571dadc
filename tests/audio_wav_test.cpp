// WAV reading and resampling: every supported encoding written here byte by byte (independently
// of the reader) and read back; stereo mix-down; WAVE_FORMAT_EXTENSIBLE; odd sample rates
// resampled with the tone's frequency kept and out-of-band tones removed; malformed and
// truncated files rejected with errors that name the file and the fault.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/data/resample.h"
#include "host/data/wav.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

void put16(std::string& s, uint32_t v) {
  s += char(v & 255);
  s += char((v >> 8) & 255);
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xFFFF);
  put16(s, v >> 16);
}

struct Fixture {
  uint16_t format = 1;  // 1 PCM, 3 float, 0xFFFE extensible
  uint16_t sub_format = 1;
  int channels = 1, rate = 8000, bits = 16;
};

// One encoded sample of value v in [-1, 1).
void put_sample(std::string& s, double v, const Fixture& f) {
  const uint16_t fmt = f.format == 0xFFFE ? f.sub_format : f.format;
  if (fmt == 3) {
    if (f.bits == 32) {
      float x = static_cast<float>(v);
      uint32_t u;
      std::memcpy(&u, &x, 4);
      put32(s, u);
    } else {
      uint64_t u;
      std::memcpy(&u, &v, 8);
      put32(s, static_cast<uint32_t>(u));
      put32(s, static_cast<uint32_t>(u >> 32));
    }
    return;
  }
  const double scale = std::ldexp(1.0, f.bits - 1);
  const int64_t q = std::llround(std::min(v * scale, scale - 1));
  if (f.bits == 8) {
    s += char(static_cast<uint8_t>(q + 128));
    return;
  }
  for (int b = 0; b < f.bits / 8; ++b) s += char((static_cast<uint64_t>(q) >> (8 * b)) & 255);
}

// A complete WAV file; chans[c][i] is channel c's sample i. A LIST chunk of odd size sits
// between fmt and data to exercise chunk skipping and padding.
std::string wav(const Fixture& f, const std::vector<std::vector<double>>& chans) {
  std::string fmt;
  const int block = f.channels * f.bits / 8;
  put16(fmt, f.format);
  put16(fmt, f.channels);
  put32(fmt, f.rate);
  put32(fmt, f.rate * block);
  put16(fmt, block);
  put16(fmt, f.bits);
  if (f.format == 0xFFFE) {
    put16(fmt, 22);
    put16(fmt, f.bits);                   // valid bits
    put32(fmt, f.channels == 2 ? 3 : 4);  // channel mask
    put16(fmt, f.sub_format);
    const uint8_t tail[14] = {0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    fmt.append(reinterpret_cast<const char*>(tail), 14);
  }
  std::string data;
  for (size_t i = 0; i < chans[0].size(); ++i)
    for (int c = 0; c < f.channels; ++c) put_sample(data, chans[c][i], f);
  std::string body = "WAVE";
  body += "fmt ";
  put32(body, static_cast<uint32_t>(fmt.size()));
  body += fmt;
  body += "LIST";
  put32(body, 5);
  body += std::string("INFOx") + '\0';  // odd size: one pad byte
  body += "data";
  put32(body, static_cast<uint32_t>(data.size()));
  body += data;
  std::string out = "RIFF";
  put32(out, static_cast<uint32_t>(body.size()));
  return out + body;
}

std::vector<double> tone(double hz, int rate, int n, double amp = 0.5) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[i] = amp * std::sin(2 * M_PI * hz * i / rate);
  return x;
}

Audio parse(const std::string& bytes, const std::string& name = "fixture.wav") {
  return parse_wav(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

std::string error_of(const std::string& bytes) {
  try {
    parse(bytes, "broken.wav");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(AudioWav, EveryEncodingReadsBack) {
  const std::vector<double> x = tone(440, 8000, 400);
  struct Case {
    uint16_t format;
    int bits;
    double tol;
  };
  for (const Case c : {Case{1, 8, 1.0 / 128}, Case{1, 16, 1.0 / 32768}, Case{1, 24, 1.0 / 8388608},
                       Case{1, 32, 1e-7}, Case{3, 32, 1e-7}, Case{3, 64, 1e-7}}) {
    Fixture f;
    f.format = c.format;
    f.bits = c.bits;
    const Audio a = parse(wav(f, {x}));
    SCOPED_TRACE("format " + std::to_string(c.format) + ", " + std::to_string(c.bits) + " bits");
    EXPECT_EQ(a.sample_rate, 8000);
    EXPECT_EQ(a.info.bits, c.bits);
    EXPECT_EQ(a.info.encoding, c.format == 3 ? WavEncoding::Float : WavEncoding::Pcm);
    ASSERT_EQ(a.samples.size(), x.size());
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(a.samples[i] - x[i]));
    EXPECT_LE(worst, c.tol);
  }
}

TEST(AudioWav, StereoIsMixedToMonoAndExtensibleIsRead) {
  const std::vector<double> l = tone(300, 16000, 256), r = tone(500, 16000, 256, 0.25);
  for (const uint16_t sub : {uint16_t(1), uint16_t(3)}) {
    Fixture f;
    f.format = 0xFFFE;
    f.sub_format = sub;
    f.bits = sub == 1 ? 24 : 32;
    f.channels = 2;
    f.rate = 16000;
    const Audio a = parse(wav(f, {l, r}));
    EXPECT_TRUE(a.info.extensible);
    EXPECT_EQ(a.info.channels, 2);
    ASSERT_EQ(a.samples.size(), l.size());
    for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(a.samples[i], (l[i] + r[i]) / 2, 1e-6) << i;
  }
}

TEST(AudioWav, ReadsFromDiskAndResamplesOddRates) {
  testing::TempDir dir;
  Fixture f;
  f.rate = 11025;
  const std::string path =
      testing::write_file(dir.file("odd.wav"), wav(f, {tone(1000, 11025, 11025)}));
  const Audio a = read_wav_at(path, 8000);
  EXPECT_EQ(a.sample_rate, 8000);
  EXPECT_EQ(a.samples.size(), 8000u);
  EXPECT_EQ(read_wav(path).sample_rate, 11025);
}

TEST(AudioWav, RatesFarFromTheTargetAreRefusedBeforeResampling) {
  testing::TempDir dir;
  // 100 samples at 1 Hz would become 1.6 M samples at 16 kHz (and 4000 samples, 64 M).
  Fixture slow;
  slow.rate = 1;
  const std::string one_hz =
      testing::write_file(dir.file("1hz.wav"), wav(slow, {tone(0.1, 1, 100)}));
  // At 2^31 - 1 Hz the low-pass filter to 8 kHz would have 9 M taps per output sample.
  Fixture fast;
  fast.rate = 2147483647;
  fast.bits = 8;
  const std::string two_ghz =
      testing::write_file(dir.file("2ghz.wav"), wav(fast, {tone(1000, 8000, 100)}));
  for (const auto& [path, target] : {std::pair{one_hz, 16000}, std::pair{two_ghz, 8000}}) {
    try {
      read_wav_at(path, target);
      ADD_FAILURE() << path << " resampled to " << target;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cannot be resampled"), std::string::npos) << e.what();
    }
  }
  // Within 256:1 they resample; the resampler itself refuses the rest as a usage error.
  EXPECT_EQ(read_wav_at(one_hz, 256).samples.size(), 25600u);
  EXPECT_THROW(resample(std::vector<float>(10, 0.f), 1, 257), Error);
  EXPECT_NO_THROW(resample(std::vector<float>(10, 0.f), 256, 1));
  EXPECT_FALSE(resample_rates_supported(257, 1));
  // A rate beyond a signed int is named as it is, not as 0.
  Fixture huge = fast;
  huge.rate = static_cast<int>(4000000000u);  // wraps: put32 writes the u32 4000000000
  const std::string m = error_of(wav(huge, {tone(1000, 8000, 10)}));
  EXPECT_NE(m.find("4000000000"), std::string::npos) << m;
}

// Float samples are whatever the file stored: NaN, infinity and values far beyond full scale
// are refused by name (they came through and made the log-mel image infinite).
TEST(AudioWav, FloatSamplesMustBeFiniteAndWithinRange) {
  for (const int bits : {32, 64}) {
    Fixture f;
    f.format = 3;
    f.bits = bits;
    f.channels = 2;
    const double big = std::ldexp(1.0, 20);
    EXPECT_EQ(parse(wav(f, {{0.5, -big}, {big, 0.25}})).samples.size(), 2u);
    for (const double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, 6e34, big * 1.01}) {
      const std::string m = error_of(wav(f, {{0.5, 0.5}, {0.25, bad}}));
      EXPECT_NE(m.find("sample 1 of channel 1"), std::string::npos)
          << bits << " " << bad << ": " << m;
    }
  }
}

// Frequency of a sinusoid from its positive-going zero crossings (interpolated), over the
// middle of the signal (away from the edges' zero padding).
double measured_hz(const std::vector<float>& y, int rate) {
  std::vector<double> at;
  for (size_t i = y.size() / 8; i + 1 < y.size() * 7 / 8; ++i)
    if (y[i] <= 0 && y[i + 1] > 0) at.push_back(i + y[i] / (y[i] - y[i + 1]));
  return (at.size() - 1) * rate / (at.back() - at.front());
}

double rms_mid(const std::vector<float>& y) {
  double s = 0;
  size_t n = 0;
  for (size_t i = y.size() / 8; i < y.size() * 7 / 8; ++i, ++n) s += double(y[i]) * y[i];
  return std::sqrt(s / n);
}

TEST(AudioResample, ToneFrequencyAndLevelPreservedAliasesRemoved) {
  struct Case {
    int in, out;
    double hz;
  };
  for (const Case c : {Case{44100, 8000, 1000}, Case{11025, 8000, 440}, Case{8000, 22050, 1234},
                       Case{48000, 16000, 3000}, Case{8000, 7999, 700}}) {
    SCOPED_TRACE(std::to_string(c.in) + " -> " + std::to_string(c.out));
    const std::vector<double> xd = tone(c.hz, c.in, c.in / 2);
    const std::vector<float> x(xd.begin(), xd.end());
    const std::vector<float> y = resample(x, c.in, c.out);
    EXPECT_EQ(y.size(), size_t((int64_t(x.size()) * c.out + c.in - 1) / c.in));
    EXPECT_NEAR(measured_hz(y, c.out), c.hz, c.hz * 1e-3);
    EXPECT_NEAR(rms_mid(y), 0.5 / std::sqrt(2.0), 0.01);  // pass band: level kept
    // Against the analytic tone at the output rate, sample by sample.
    double worst = 0;
    for (size_t i = y.size() / 8; i < y.size() * 7 / 8; ++i)
      worst = std::max(worst, std::abs(y[i] - 0.5 * std::sin(2 * M_PI * c.hz * i / c.out)));
    EXPECT_LT(worst, 0.01);
  }
  // A 6 kHz tone cannot exist at 8 kHz: the low-pass removes it instead of aliasing it to 2 kHz.
  const std::vector<double> hi = tone(6000, 44100, 22050);
  const std::vector<float> y = resample(std::vector<float>(hi.begin(), hi.end()), 44100, 8000);
  EXPECT_LT(rms_mid(y), 1e-3);
}

TEST(AudioWav, MalformedFilesAreRejectedNamingTheFault) {
  Fixture f;
  const std::string good = wav(f, {tone(440, 8000, 100)});
  EXPECT_NO_THROW(parse(good));
  const auto has = [](const std::string& msg, const char* what) {
    EXPECT_NE(msg.find("broken.wav"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  };
  has(error_of(good.substr(0, 8)), "truncated");
  has(error_of(good.substr(0, 30)), "truncated");               // inside the fmt chunk
  has(error_of(good.substr(0, good.size() - 7)), "truncated");  // short data
  std::string lying = good;                                     // RIFF size fixed, data size not
  lying.resize(good.size() - 50);
  lying.replace(4, 4, std::string("\0\0\0\0", 4));
  {
    const uint32_t sz = static_cast<uint32_t>(lying.size() - 8);
    std::string le;
    put32(le, sz);
    lying.replace(4, 4, le);
  }
  has(error_of(lying), "chunk 'data'");
  has(error_of("RIFX" + good.substr(4)), "RIFX");
  has(error_of("JUNK" + good.substr(4)), "not a WAV file");
  has(error_of(good.substr(0, 8) + "AVI " + good.substr(12)), "WAVE");
  Fixture adpcm = f;
  adpcm.format = 2;
  has(error_of(wav(adpcm, {tone(440, 8000, 10)})), "audio format 2");
  Fixture twelve = f;
  twelve.bits = 12;
  has(error_of(wav(twelve, {tone(440, 8000, 10)})), "12 bits");
  std::string bad_align = good;
  bad_align[12 + 8 + 12] = 3;  // block align field of fmt
  has(error_of(bad_align), "block align");
  // No fmt chunk at all: the data chunk comes first.
  std::string no_fmt = "WAVEdata";
  put32(no_fmt, 2);
  no_fmt += std::string(2, '\0');
  std::string riff = "RIFF";
  put32(riff, static_cast<uint32_t>(no_fmt.size()));
  has(error_of(riff + no_fmt), "before the fmt chunk");
  // A partial frame in the data chunk.
  Fixture st = f;
  st.channels = 2;
  std::string partial = wav(st, {tone(1, 8000, 4), tone(1, 8000, 4)});
  partial.resize(partial.size() - 2);  // drop half a frame, and say so in both sizes
  {
    std::string le;
    put32(le, static_cast<uint32_t>(partial.size() - 8));
    partial.replace(4, 4, le);
    std::string dle;
    put32(dle, 14);
    partial.replace(partial.size() - 14 - 4, 4, dle);
  }
  has(error_of(partial), "whole number");
  // Through the file API the error names the path.
  testing::TempDir dir;
  const std::string path = testing::write_file(dir.file("cut.wav"), good.substr(0, 40));
  try {
    read_wav(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
