// Fuzz target: the IDX image/label pair reader (host/data/image_data.h, read_idx) as the image
// and video tasks read MNIST-layout files, gzipped or not, then take_images over the set (how
// the splits are cut).
//
// Input: 3 option bytes, then the two files' bytes.
//   0      flags: bit 0 gzip the images file, bit 1 gzip the labels file (the bytes as given
//          otherwise, which may themselves be gzip)
//   1, 2   the images file's length, little-endian u16 (clamped to what is left); the labels
//          file is the rest
// Invariants checked: n x height x width pixels in [0, 1] and n labels; take_images returns the
// rows asked for.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "host/data/image_data.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

// Writes `bytes` to `path` through zlib's gzip writer.
void write_gzip(const std::string& path, std::string_view bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) fuzz::finding("cannot create " + path);
  if (!bytes.empty() && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) <= 0)
    fuzz::finding("cannot write " + path);
  if (gzclose(f) != Z_OK) fuzz::finding("cannot close " + path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::TempFile images("idx-images"), labels("idx-labels");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const size_t low = in.byte();
  const size_t n_images = low | (size_t{in.byte()} << 8);
  const std::string_view rest = in.rest();
  const std::string_view img = rest.substr(0, std::min(n_images, rest.size()));
  const std::string_view lab = rest.substr(img.size());
  if (flags & 1)
    write_gzip(images.path(), img);
  else
    images.write(img);
  if (flags & 2)
    write_gzip(labels.path(), lab);
  else
    labels.write(lab);
  fuzz::expect_input_errors([&] {
    const ImageSet s = read_idx(images.path(), labels.path());
    fuzz::check(s.n >= 0 && s.height >= 1 && s.width >= 1 && s.channels == 1, "set dimensions");
    fuzz::check(s.pixels.size() == static_cast<size_t>(s.n * s.image_size()), "pixel count");
    fuzz::check(s.labels.size() == static_cast<size_t>(s.n), "label count");
    for (float p : s.pixels) fuzz::check(p >= 0.f && p <= 1.f, "a pixel outside [0, 1]");
    if (s.n > 0) {
      const ImageSet t = take_images(s, {s.n - 1, 0});
      fuzz::check(t.n == 2 && t.labels[0] == s.labels.back() && t.labels[1] == s.labels[0],
                  "take_images rows");
    }
  });
  return 0;
}
