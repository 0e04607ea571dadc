#include "host/data/image_data.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "host/core/error.h"

namespace tessera {

namespace {

// The whole file, decompressed when it is gzip (zlib passes plain files through).
std::string read_all(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, &gzclose);
  std::string out;
  char buf[1 << 16];
  while (true) {
    const int got = gzread(f, buf, sizeof(buf));
    if (got < 0) {
      int code = 0;
      TESSERA_THROW(Data, "'" << path << "' is not readable (corrupt or truncated gzip?): "
                              << gzerror(f, &code));
    }
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// An IDX file of unsigned bytes with `rank` dimensions: returns the dims and the data offset.
std::vector<int64_t> idx_header(const std::string& bytes, int rank, const std::string& path) {
  if (bytes.size() < 4)
    TESSERA_THROW(Data,
                  "'" << path << "' is " << bytes.size() << " bytes: too short for an IDX header");
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (p[0] != 0 || p[1] != 0)
    TESSERA_THROW(Data, "'" << path << "' is not an IDX file (magic bytes " << int(p[0]) << " "
                            << int(p[1]) << ", expected 0 0)");
  if (p[2] != 0x08)
    TESSERA_THROW(Data, "'" << path << "': IDX element type 0x" << std::hex << int(p[2])
                            << " is not unsigned byte (0x08)");
  if (p[3] != rank)
    TESSERA_THROW(
        Data, "'" << path << "': IDX file has " << int(p[3]) << " dimensions, expected " << rank);
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header) TESSERA_THROW(Data, "'" << path << "' ends inside its IDX header");
  std::vector<int64_t> dims;
  size_t total = 1;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(be32(bytes, 4 + 4 * i));
    total *= static_cast<size_t>(dims.back());
  }
  if (bytes.size() != header + total)
    TESSERA_THROW(Data, "'" << path << "': header promises " << total << " bytes of data, file has "
                            << bytes.size() - header
                            << (bytes.size() < header + total ? " (truncated)" : ""));
  return dims;
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  const std::string img = read_all(images_path);
  const std::string lab = read_all(labels_path);
  const std::vector<int64_t> d = idx_header(img, 3, images_path);
  const std::vector<int64_t> l = idx_header(lab, 1, labels_path);
  if (d[0] != l[0])
    TESSERA_THROW(Data, "'" << images_path << "' holds " << d[0] << " images but '" << labels_path
                            << "' holds " << l[0] << " labels");
  ImageSet s;
  s.n = d[0];
  s.height = d[1];
  s.width = d[2];
  s.pixels.resize(static_cast<size_t>(s.n * s.image_size()));
  const auto* px = reinterpret_cast<const unsigned char*>(img.data() + 16);
  for (size_t i = 0; i < s.pixels.size(); ++i) s.pixels[i] = px[i] * (1.f / 255.f);
  const auto* lb = reinterpret_cast<const unsigned char*>(lab.data() + 8);
  s.labels.assign(lb, lb + s.n);
  return s;
}

ImageSet read_digits_csv(const std::string& path) {
  const std::string text = read_all(path);
  ImageSet s;
  s.height = s.width = 8;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string row = text.substr(pos, end - pos);
    pos = end + 1;
    if (!row.empty() && row.back() == '\r') row.pop_back();
    if (row.empty()) continue;
    std::vector<long> values;
    const char* p = row.c_str();
    while (true) {
      char* stop = nullptr;
      const long v = std::strtol(p, &stop, 10);
      if (stop == p || (*stop != ',' && *stop != '\0'))
        TESSERA_THROW(
            Data, path << ":" << line << ": field " << values.size() + 1 << " is not an integer");
      values.push_back(v);
      if (*stop == '\0') break;
      p = stop + 1;
    }
    if (values.size() != 65)
      TESSERA_THROW(Data, path << ":" << line << ": " << values.size()
                               << " fields, expected 65 (64 pixels and a label)");
    for (int i = 0; i < 64; ++i) {
      if (values[i] < 0 || values[i] > 16)
        TESSERA_THROW(Data, path << ":" << line << ": pixel " << i + 1 << " is " << values[i]
                                 << ", outside [0, 16]");
      s.pixels.push_back(static_cast<float>(values[i]) / 16.f);
    }
    if (values[64] < 0 || values[64] > 9)
      TESSERA_THROW(Data, path << ":" << line << ": label " << values[64] << " is outside [0, 9]");
    s.labels.push_back(static_cast<int32_t>(values[64]));
    ++s.n;
  }
  if (s.n == 0) TESSERA_THROW(Data, "'" << path << "' holds no rows");
  return s;
}

ImageSet take_images(const ImageSet& set, const std::vector<int64_t>& index) {
  ImageSet out;
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  out.n = static_cast<int64_t>(index.size());
  const int64_t sz = set.image_size();
  out.pixels.resize(static_cast<size_t>(out.n * sz));
  out.labels.resize(index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    const int64_t r = index[i];
    TESSERA_CHECK(r >= 0 && r < set.n, "image index " << r << " outside [0, " << set.n << ")");
    std::copy_n(set.pixels.begin() + r * sz, sz, out.pixels.begin() + static_cast<int64_t>(i) * sz);
    out.labels[i] = set.labels[r];
  }
  return out;
}

// ---- single image files ------------------------------------------------------------------------

namespace {

GrayImage read_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str()))
    TESSERA_THROW(Data, "'" << path << "' is not a readable PNG: " << image.message);
  image.format = PNG_FORMAT_GRAY;  // libpng converts colour (and drops alpha) to grey
  std::vector<unsigned char> buf(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buf.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    TESSERA_THROW(Data, "'" << path << "': PNG decoding failed: " << why);
  }
  GrayImage g;
  g.height = image.height;
  g.width = image.width;
  g.pixels.resize(buf.size());
  for (size_t i = 0; i < buf.size(); ++i) g.pixels[i] = buf[i] * (1.f / 255.f);
  return g;
}

// PGM header token: skips whitespace and '#' comments.
int64_t pgm_number(const std::string& s, size_t& pos, const std::string& path, const char* what) {
  while (pos < s.size()) {
    if (s[pos] == '#') {
      while (pos < s.size() && s[pos] != '\n') ++pos;
    } else if (std::isspace(static_cast<unsigned char>(s[pos]))) {
      ++pos;
    } else {
      break;
    }
  }
  size_t start = pos;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
  if (start == pos || pos - start > 9)
    TESSERA_THROW(Data, "'" << path << "': PGM " << what << " is missing or not a number (byte "
                            << start << ")");
  return std::stoll(s.substr(start, pos - start));
}

GrayImage read_pgm(const std::string& path, const std::string& bytes) {
  const bool binary = bytes[1] == '5';
  size_t pos = 2;
  GrayImage g;
  g.width = pgm_number(bytes, pos, path, "width");
  g.height = pgm_number(bytes, pos, path, "height");
  const int64_t maxval = pgm_number(bytes, pos, path, "maxval");
  if (g.width < 1 || g.height < 1 || maxval < 1 || maxval > 65535)
    TESSERA_THROW(Data, "'" << path << "': PGM size " << g.width << "x" << g.height << " / maxval "
                            << maxval << " out of range");
  const int64_t count = g.width * g.height;
  g.pixels.resize(static_cast<size_t>(count));
  const float scale = 1.f / static_cast<float>(maxval);
  if (binary) {
    ++pos;  // exactly one whitespace byte after maxval
    const int64_t bpp = maxval < 256 ? 1 : 2;
    if (static_cast<int64_t>(bytes.size() - std::min(pos, bytes.size())) < count * bpp)
      TESSERA_THROW(Data, "'" << path << "': PGM data truncated: " << count * bpp
                              << " bytes needed for " << g.width << "x" << g.height);
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t v = bpp == 1 ? p[i] : (p[2 * i] << 8) | p[2 * i + 1];
      g.pixels[i] = std::min<float>(1.f, v * scale);
    }
  } else {
    for (int64_t i = 0; i < count; ++i)
      g.pixels[i] = std::min<float>(1.f, pgm_number(bytes, pos, path, "pixel") * scale);
  }
  return g;
}

}  // namespace

GrayImage read_image_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  unsigned char sig[8] = {};
  const size_t got = std::fread(sig, 1, sizeof(sig), f);
  std::fclose(f);
  if (got == 8 && png_sig_cmp(sig, 0, 8) == 0) return read_png(path);
  if (got >= 2 && sig[0] == 'P' && (sig[1] == '2' || sig[1] == '5'))
    return read_pgm(path, read_all(path));
  TESSERA_THROW(Data, "'" << path << "' is neither a PNG nor a PGM (P2/P5) image");
}

GrayImage resize_bilinear(const GrayImage& in, int64_t height, int64_t width) {
  if (in.height == height && in.width == width) return in;
  GrayImage out;
  out.height = height;
  out.width = width;
  out.pixels.resize(static_cast<size_t>(height * width));
  const double sy = static_cast<double>(in.height) / height,
               sx = static_cast<double>(in.width) / width;
  for (int64_t y = 0; y < height; ++y) {
    const double fy = std::clamp((y + 0.5) * sy - 0.5, 0.0, static_cast<double>(in.height - 1));
    const int64_t y0 = static_cast<int64_t>(fy), y1 = std::min(y0 + 1, in.height - 1);
    const double wy = fy - y0;
    for (int64_t x = 0; x < width; ++x) {
      const double fx = std::clamp((x + 0.5) * sx - 0.5, 0.0, static_cast<double>(in.width - 1));
      const int64_t x0 = static_cast<int64_t>(fx), x1 = std::min(x0 + 1, in.width - 1);
      const double wx = fx - x0;
      const auto at = [&](int64_t yy, int64_t xx) { return in.pixels[yy * in.width + xx]; };
      out.pixels[y * width + x] =
          static_cast<float>((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) +
                             wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1)));
    }
  }
  return out;
}

}  // namespace tessera
