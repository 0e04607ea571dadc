#include "host/data/image_data.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "host/core/atomic_file.h"
#include "host/core/checked_size.h"
#include "host/core/error.h"
#include "host/data/gather_rows.h"

namespace tessera {

namespace {

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

uint32_t be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A file read through zlib (gzip decompressed, plain files passed through), a piece at a time.
class GzInput {
 public:
  explicit GzInput(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) TESSERA_THROW(Io, "cannot open '" << path << "': " << std::strerror(errno));
  }
  ~GzInput() { gzclose(f_); }
  GzInput(const GzInput&) = delete;
  GzInput& operator=(const GzInput&) = delete;
  // Appends up to `n` more bytes to `out` (fewer at the end of the file). The string grows only
  // by what was actually read, so a header's promise allocates nothing by itself.
  void read_up_to(uint64_t n, std::string& out) {
    char buf[1 << 16];
    while (n > 0) {
      const int got = gzread(f_, buf, static_cast<unsigned>(std::min<uint64_t>(n, sizeof(buf))));
      if (got < 0) {
        int code = 0;
        TESSERA_THROW(Data, "'" << path_ << "' is not readable (corrupt or truncated gzip?): "
                                << gzerror(f_, &code));
      }
      if (got == 0) return;
      out.append(buf, static_cast<size_t>(got));
      n -= static_cast<uint64_t>(got);
    }
  }

 private:
  std::string path_;
  gzFile f_;
};

// The whole file, decompressed when it is gzip (zlib passes plain files through).
std::string read_all(const std::string& path) {
  std::string out;
  GzInput(path).read_up_to(std::numeric_limits<uint64_t>::max(), out);
  return out;
}

// An IDX file of unsigned bytes with `rank` dimensions: its dims, and its data in `data`.
std::vector<int64_t> read_idx_file(const std::string& path, int rank, std::string& data) {
  GzInput in(path);
  std::string head;
  in.read_up_to(4, head);
  if (head.size() < 4)
    TESSERA_THROW(Data,
                  "'" << path << "' is " << head.size() << " bytes: too short for an IDX header");
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
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
  in.read_up_to(header - 4, head);
  if (head.size() < header) TESSERA_THROW(Data, "'" << path << "' ends inside its IDX header");
  std::vector<int64_t> dims;
  for (int i = 0; i < rank; ++i) dims.push_back(be32(head, 4 + 4 * i));
  const std::optional<uint64_t> total = checked_product(dims);
  if (!total)
    TESSERA_THROW(Data, "'" << path << "': IDX dimensions " << shape_text(dims)
                            << " multiply to more than 2^63 bytes");
  // One byte beyond the promise tells a file with extra data from an exact one.
  data.clear();
  in.read_up_to(*total + 1, data);
  if (data.size() != *total)
    TESSERA_THROW(Data, "'" << path << "': header promises " << *total
                            << " bytes of data, file has "
                            << (data.size() > *total ? "more" : std::to_string(data.size()))
                            << (data.size() < *total ? " (truncated)" : ""));
  return dims;
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  std::string img, lab;
  const std::vector<int64_t> d = read_idx_file(images_path, 3, img);
  const std::vector<int64_t> l = read_idx_file(labels_path, 1, lab);
  if (d[0] != l[0])
    TESSERA_THROW(Data, "'" << images_path << "' holds " << d[0] << " images but '" << labels_path
                            << "' holds " << l[0] << " labels");
  if (d[1] < 1 || d[2] < 1)
    TESSERA_THROW(
        Data, "'" << images_path << "': images of " << d[1] << "x" << d[2] << " pixels are empty");
  ImageSet s;
  s.n = d[0];
  s.height = d[1];
  s.width = d[2];
  s.pixels.resize(img.size());  // n x height x width, as read_idx_file checked
  const auto* px = reinterpret_cast<const unsigned char*>(img.data());
  for (size_t i = 0; i < s.pixels.size(); ++i) s.pixels[i] = px[i] * (1.f / 255.f);
  const auto* lb = reinterpret_cast<const unsigned char*>(lab.data());
  s.labels.assign(lb, lb + lab.size());
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
  for (const int64_t r : index)
    TESSERA_CHECK(r >= 0 && r < set.n, "image index " << r << " outside [0, " << set.n << ")");
  ImageSet out;
  out.channels = set.channels;
  out.height = set.height;
  out.width = set.width;
  out.n = static_cast<int64_t>(index.size());
  out.pixels = gather_rows(set.pixels, set.image_size(), index);
  out.labels = gather_rows(set.labels, 1, index);
  return out;
}

// ---- single image files ------------------------------------------------------------------------

namespace {

// The most pixels `bytes` of compressed PNG can hold: deflate expands at most 1032:1, and a
// pixel takes at least one bit of the decompressed rows.
int64_t png_pixel_bound(size_t bytes) {
  const std::optional<uint64_t> bound = checked_mul(bytes, 1032 * 8);
  return bound && *bound < static_cast<uint64_t>(kMaxImagePixels) ? static_cast<int64_t>(*bound)
                                                                  : kMaxImagePixels;
}

GrayImage read_png(const std::string& name, const std::string& bytes) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    TESSERA_THROW(Data, "'" << name << "' is not a readable PNG: " << image.message);
  std::unique_ptr<png_image, void (*)(png_image*)> guard(&image, &png_image_free);
  const int64_t pixels = int64_t{image.width} * image.height;
  if (pixels > png_pixel_bound(bytes.size()))
    TESSERA_THROW(Data, "'" << name << "': a PNG of " << image.width << "x" << image.height
                            << " pixels is larger than "
                            << (pixels > kMaxImagePixels
                                    ? "the largest image read ("
                                    : "its " + std::to_string(bytes.size()) + " bytes can encode (")
                            << png_pixel_bound(bytes.size()) << " pixels)");
  image.format = PNG_FORMAT_GRAY;  // libpng converts colour (and drops alpha) to grey
  std::vector<unsigned char> buf(static_cast<size_t>(pixels));
  if (!png_image_finish_read(&image, nullptr, buf.data(), 0, nullptr))
    TESSERA_THROW(Data, "'" << name << "': PNG decoding failed: " << image.message);
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
  const int64_t count = g.width * g.height;  // each at most 9 digits: no overflow
  if (count > kMaxImagePixels)
    TESSERA_THROW(Data, "'" << path << "': a PGM of " << g.width << "x" << g.height
                            << " pixels is larger than the largest image read (" << kMaxImagePixels
                            << " pixels)");
  // Every pixel takes at least one byte (binary) or one digit and a separator (text): a header
  // promising more than the file holds is refused before the pixels are allocated.
  if (binary) ++pos;  // exactly one whitespace byte after maxval
  const int64_t bpp = maxval < 256 ? 1 : 2;
  const int64_t left = static_cast<int64_t>(bytes.size() - std::min(pos, bytes.size()));
  if (binary ? left < count * bpp : left < 2 * count - 1)
    TESSERA_THROW(Data, "'" << path << "': PGM data truncated: " << g.width << "x" << g.height
                            << " pixels need at least " << (binary ? count * bpp : 2 * count - 1)
                            << " bytes, " << left << " remain");
  g.pixels.resize(static_cast<size_t>(count));
  const float scale = 1.f / static_cast<float>(maxval);
  if (binary) {
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

GrayImage decode_image(const std::string& bytes, const std::string& name) {
  const auto* sig = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 8 && png_sig_cmp(sig, 0, 8) == 0) return read_png(name, bytes);
  if (bytes.size() >= 2 && sig[0] == 'P' && (sig[1] == '2' || sig[1] == '5'))
    return read_pgm(name, bytes);
  TESSERA_THROW(Data, "'" << name << "' is neither a PNG nor a PGM (P2/P5) image");
}

GrayImage read_image_file(const std::string& path) {
  return decode_image(read_file(path), path);
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
