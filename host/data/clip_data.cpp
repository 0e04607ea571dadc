// Clip readers: frame folders (through the image readers) and the raw .tclip tensor format.
#include "host/data/clip_data.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

#include "host/core/atomic_file.h"
#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/data/image_data.h"

namespace tessera {

namespace {

constexpr char kMagic[8] = {'T', 'S', 'C', 'L', 'I', 'P', '1', '\n'};
constexpr size_t kHeader = 24;

uint32_t u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // the build targets little-endian x86-64 / CUDA hosts
  return v;
}
void put32(std::string& s, uint32_t v) {
  s.append(reinterpret_cast<const char*>(&v), 4);
}

bool is_frame_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".png" || ext == ".pgm";
}

}  // namespace

Clip read_frame_folder(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->is_regular_file() && is_frame_file(it->path())) files.push_back(it->path().string());
  if (ec) TESSERA_THROW(Io, "cannot list frame folder '" << dir << "': " << ec.message());
  if (files.empty())
    TESSERA_THROW(Data, "frame folder '" << dir << "' holds no .png or .pgm frames");
  std::sort(files.begin(), files.end());
  Clip c;
  c.frames = static_cast<int64_t>(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const GrayImage img = read_image_file(files[i]);
    if (i == 0) {
      c.height = img.height;
      c.width = img.width;
      c.pixels.reserve(static_cast<size_t>(c.frames * c.height * c.width));
    } else if (img.height != c.height || img.width != c.width) {
      TESSERA_THROW(Data, "frame '" << files[i] << "' is " << img.width << "x" << img.height
                                    << ", the clip's first frame '" << files[0] << "' is "
                                    << c.width << "x" << c.height);
    }
    c.pixels.insert(c.pixels.end(), img.pixels.begin(), img.pixels.end());
  }
  return c;
}

Clip read_clip_tensor(const std::string& path) {
  const std::string b = read_file(path);
  auto bad = [&](const std::string& why) { TESSERA_THROW(Data, "'" << path << "': " << why); };
  if (b.size() < kHeader)
    bad("truncated: " + std::to_string(b.size()) + " bytes, the header alone is 24");
  if (std::memcmp(b.data(), kMagic, 8) != 0) bad("not a clip tensor (no TSCLIP1 magic)");
  const uint32_t dtype = u32(b.data() + 8);
  if (dtype != 1 && dtype != 2) bad("dtype " + std::to_string(dtype) + " is not 1 (u8) or 2 (f32)");
  Clip c;
  c.frames = u32(b.data() + 12);
  c.height = u32(b.data() + 16);
  c.width = u32(b.data() + 20);
  if (c.frames < 1 || c.height < 1 || c.width < 1)
    bad("shape " + std::to_string(c.frames) + "x" + std::to_string(c.height) + "x" +
        std::to_string(c.width) + " has an empty dimension");
  const uint64_t elem = dtype == 1 ? 1 : 4;
  // T x H x W x elem in checked arithmetic: three u32 dims can wrap round to the file's size.
  const std::optional<uint64_t> values = checked_product({c.frames, c.height, c.width});
  const std::optional<uint64_t> data = values ? checked_mul(*values, elem) : std::nullopt;
  const std::string shape = std::to_string(c.frames) + "x" + std::to_string(c.height) + "x" +
                            std::to_string(c.width) + (dtype == 1 ? " u8" : " f32");
  if (!data || *data > b.size() - kHeader)
    bad("holds " + std::to_string(b.size()) + " bytes, its header (" + shape + ") says " +
        (data ? std::to_string(kHeader + *data) : std::string("more than 2^64")) + " (truncated)");
  if (*data != b.size() - kHeader)
    bad("holds " + std::to_string(b.size()) + " bytes, its header (" + shape + ") says " +
        std::to_string(kHeader + *data));
  c.pixels.resize(static_cast<size_t>(c.size()));
  const char* p = b.data() + kHeader;
  for (int64_t i = 0; i < c.size(); ++i) {
    if (dtype == 1) {
      c.pixels[i] = static_cast<float>(static_cast<uint8_t>(p[i])) / 255.f;
    } else {
      std::memcpy(&c.pixels[i], p + 4 * i, 4);
      if (!std::isfinite(c.pixels[i])) bad("value " + std::to_string(i) + " is not finite");
    }
  }
  return c;
}

void write_clip_tensor(const std::string& path, const Clip& c, ClipDType dtype) {
  TESSERA_CHECK(static_cast<int64_t>(c.pixels.size()) == c.size(), "clip pixel count");
  std::string out(kMagic, 8);
  put32(out, static_cast<uint32_t>(dtype));
  put32(out, static_cast<uint32_t>(c.frames));
  put32(out, static_cast<uint32_t>(c.height));
  put32(out, static_cast<uint32_t>(c.width));
  for (float v : c.pixels) {
    if (dtype == ClipDType::U8) {
      out += static_cast<char>(static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)));
    } else {
      out.append(reinterpret_cast<const char*>(&v), 4);
    }
  }
  write_file_atomic(path, out);
}

Clip read_clip(const std::string& path) {
  return std::filesystem::is_directory(path) ? read_frame_folder(path) : read_clip_tensor(path);
}

}  // namespace tessera
