// The WAV reader: a RIFF chunk walk, then per-encoding sample decoding and a mono mix-down.
#include "host/data/wav.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/resample.h"

namespace tessera {

namespace {

uint16_t u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

constexpr uint16_t kFormatPcm = 1, kFormatFloat = 3, kFormatExtensible = 0xFFFE;
// KSDATAFORMAT_SUBTYPE_* GUIDs share these 14 bytes after the 2-byte format tag.
constexpr uint8_t kGuidTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                   0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

[[noreturn]] void bad(const std::string& name, const std::string& why) {
  TESSERA_THROW(Data, "'" << name << "': " << why);
}

std::string tag(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(p[i]);
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

WavInfo parse_fmt(const uint8_t* p, uint32_t size, const std::string& name) {
  if (size < 16) bad(name, "fmt chunk is " + std::to_string(size) + " bytes, at least 16 needed");
  WavInfo info;
  uint16_t format = u16(p);
  info.channels = u16(p + 2);
  const uint32_t rate = u32(p + 4);
  if (rate < 1 || rate > static_cast<uint32_t>(std::numeric_limits<int>::max()))
    bad(name, "the fmt chunk declares a sample rate of " + std::to_string(rate) + " Hz");
  info.sample_rate = static_cast<int>(rate);
  const uint32_t byte_rate = u32(p + 8);
  const uint16_t block_align = u16(p + 12);
  info.bits = u16(p + 14);
  if (format == kFormatExtensible) {
    info.extensible = true;
    if (size < 40)
      bad(name,
          "WAVE_FORMAT_EXTENSIBLE fmt chunk is " + std::to_string(size) + " bytes, 40 needed");
    const uint16_t cb = u16(p + 16);
    if (cb < 22)
      bad(name, "WAVE_FORMAT_EXTENSIBLE extension is " + std::to_string(cb) + " bytes, 22 needed");
    const uint16_t valid_bits = u16(p + 18);
    if (valid_bits > info.bits)
      bad(name, std::to_string(valid_bits) + " valid bits in a " + std::to_string(info.bits) +
                    "-bit container");
    if (std::memcmp(p + 26, kGuidTail, sizeof(kGuidTail)) != 0)
      bad(name, "WAVE_FORMAT_EXTENSIBLE sub-format is not a standard KSDATAFORMAT GUID");
    format = u16(p + 24);
  }
  if (format == kFormatPcm) {
    info.encoding = WavEncoding::Pcm;
    if (info.bits != 8 && info.bits != 16 && info.bits != 24 && info.bits != 32)
      bad(name, "PCM with " + std::to_string(info.bits) +
                    " bits per sample is not supported (8, 16, 24 or 32)");
  } else if (format == kFormatFloat) {
    info.encoding = WavEncoding::Float;
    if (info.bits != 32 && info.bits != 64)
      bad(name, "IEEE float with " + std::to_string(info.bits) +
                    " bits per sample is not supported (32 or 64)");
  } else {
    bad(name, "audio format " + std::to_string(format) +
                  " is not supported (1 PCM, 3 IEEE float, or 0xFFFE extensible of those)");
  }
  if (info.channels < 1) bad(name, "the fmt chunk declares 0 channels");
  const uint32_t want_align = static_cast<uint32_t>(info.channels) * (info.bits / 8);
  if (block_align != want_align)
    bad(name, "block align is " + std::to_string(block_align) + ", expected " +
                  std::to_string(want_align) + " (" + std::to_string(info.channels) +
                  " channels x " + std::to_string(info.bits / 8) + " bytes)");
  if (byte_rate != static_cast<uint64_t>(info.sample_rate) * block_align)
    bad(name, "byte rate is " + std::to_string(byte_rate) +
                  ", expected sample rate x block align = " +
                  std::to_string(static_cast<uint64_t>(info.sample_rate) * block_align));
  return info;
}

// One sample of `bits` at p, scaled to [-1, 1).
float decode(const uint8_t* p, const WavInfo& info) {
  if (info.encoding == WavEncoding::Float) {
    if (info.bits == 32) {
      float f;
      uint32_t v = u32(p);
      std::memcpy(&f, &v, 4);
      return f;
    }
    const uint64_t v = static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
    double d;
    std::memcpy(&d, &v, 8);
    return static_cast<float>(d);
  }
  switch (info.bits) {
    case 8:
      return (static_cast<float>(p[0]) - 128.f) / 128.f;  // 8-bit WAV is unsigned
    case 16:
      return static_cast<float>(static_cast<int16_t>(u16(p))) / 32768.f;
    case 24: {
      // Sign-extend the 24-bit value through the top of a 32-bit word.
      const int32_t v = static_cast<int32_t>(static_cast<uint32_t>(p[0]) << 8 |
                                             static_cast<uint32_t>(p[1]) << 16 |
                                             static_cast<uint32_t>(p[2]) << 24) >>
                        8;
      return static_cast<float>(v) / 8388608.f;
    }
    default:
      return static_cast<float>(static_cast<double>(static_cast<int32_t>(u32(p))) / 2147483648.0);
  }
}

}  // namespace

Audio parse_wav(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 12)
    bad(name, "truncated: " + std::to_string(size) + " bytes, shorter than a RIFF header");
  if (std::memcmp(data, "RIFF", 4) != 0) {
    if (std::memcmp(data, "RIFX", 4) == 0 || std::memcmp(data, "RF64", 4) == 0)
      bad(name, "'" + tag(data) + "' WAV files are not supported (little-endian RIFF only)");
    bad(name, "not a WAV file (starts with '" + tag(data) + "', expected 'RIFF')");
  }
  if (std::memcmp(data + 8, "WAVE", 4) != 0)
    bad(name, "RIFF form type is '" + tag(data + 8) + "', expected 'WAVE'");
  const uint64_t riff_end = 8 + static_cast<uint64_t>(u32(data + 4));
  if (riff_end > size)
    bad(name, "truncated: the RIFF header declares " + std::to_string(riff_end) +
                  " bytes, the file has " + std::to_string(size));
  bool have_fmt = false;
  WavInfo info;
  const uint8_t* samples = nullptr;
  uint64_t data_bytes = 0;
  for (uint64_t at = 12; at < riff_end;) {
    if (riff_end - at < 8)
      bad(name, "truncated chunk header at byte " + std::to_string(at) + " (" +
                    std::to_string(riff_end - at) + " bytes left, 8 needed)");
    const std::string id = tag(data + at);
    const uint64_t len = u32(data + at + 4);
    const uint64_t body = at + 8;
    if (body + len > riff_end)
      bad(name, "chunk '" + id + "' at byte " + std::to_string(at) + " declares " +
                    std::to_string(len) + " bytes but only " + std::to_string(riff_end - body) +
                    " remain (truncated file?)");
    if (id == "fmt ") {
      if (have_fmt) bad(name, "two fmt chunks");
      info = parse_fmt(data + body, static_cast<uint32_t>(len), name);
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt) bad(name, "the data chunk comes before the fmt chunk");
      if (samples) bad(name, "two data chunks");
      samples = data + body;
      data_bytes = len;
    }
    at = body + len + (len & 1);  // chunks are padded to an even size
  }
  if (!have_fmt) bad(name, "no fmt chunk");
  if (!samples) bad(name, "no data chunk");
  const uint64_t frame_bytes = static_cast<uint64_t>(info.channels) * (info.bits / 8);
  if (data_bytes % frame_bytes != 0)
    bad(name, "the data chunk holds " + std::to_string(data_bytes) +
                  " bytes, not a whole number of " + std::to_string(frame_bytes) + "-byte frames");
  info.frames = static_cast<int64_t>(data_bytes / frame_bytes);
  Audio a;
  a.sample_rate = info.sample_rate;
  a.info = info;
  a.samples.resize(static_cast<size_t>(info.frames));
  const int bytes = info.bits / 8;
  const float inv_channels = 1.f / static_cast<float>(info.channels);
  for (int64_t i = 0; i < info.frames; ++i) {
    const uint8_t* f = samples + i * frame_bytes;
    float sum = 0;
    for (int c = 0; c < info.channels; ++c) {
      const float v = decode(f + c * bytes, info);
      // Integer samples are in [-1, 1) by construction; float ones are whatever was stored.
      if (info.encoding == WavEncoding::Float && !(std::fabs(v) <= kMaxFloatSample))
        bad(name, "sample " + std::to_string(i) + " of channel " + std::to_string(c) + " is " +
                      std::to_string(v) + ", not a finite value within +-2^20");
      sum += v;
    }
    a.samples[static_cast<size_t>(i)] = info.channels == 1 ? sum : sum * inv_channels;
  }
  return a;
}

Audio read_wav(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_wav(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

void resample_to(Audio& a, int sample_rate, const std::string& name) {
  if (a.sample_rate == sample_rate) return;
  if (!resample_rates_supported(a.sample_rate, sample_rate))
    bad(name, "its sample rate of " + std::to_string(a.sample_rate) +
                  " Hz cannot be resampled to " + std::to_string(sample_rate) + " Hz (at most " +
                  std::to_string(kMaxResampleRatio) + ":1 either way)");
  a.samples = resample(a.samples, a.sample_rate, sample_rate);
  a.sample_rate = sample_rate;
}

Audio read_wav_at(const std::string& path, int sample_rate) {
  Audio a = read_wav(path);
  resample_to(a, sample_rate, path);
  return a;
}

}  // namespace tessera
