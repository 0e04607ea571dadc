// Fuzz target: single PGM images (P2 text, P5 binary, maxval up to 65535) as `tessera predict`
// reads them for an image model and as the frames of a clip folder (host/data/image_data.h:
// decode_image), then resized to the model's input (resize_bilinear) as predict does.
//
// Input: 1 option byte, then the file's bytes.
//   bits 0-2   the size resized to: 1 + 4 * value pixels square
//   bit 3      put "P5" in front of the bytes (bit 4: "P2"), so most inputs reach the PGM reader
// Invariants checked: width x height pixels in [0, 1], at most kMaxImagePixels; the resized
// image has the size asked for and its pixels stay in [0, 1].
#include <cstdint>
#include <string>

#include "host/data/image_data.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const int64_t side = 1 + 4 * (flags & 7);
  const std::string prefix = (flags & 8) != 0 ? "P5" : (flags & 16) != 0 ? "P2" : "";
  const std::string bytes = prefix + std::string(in.rest());
  fuzz::expect_input_errors([&] {
    const GrayImage g = decode_image(bytes, "fuzz.pgm");
    fuzz::check(g.height >= 1 && g.width >= 1 && g.height * g.width <= kMaxImagePixels,
                "image dimensions");
    fuzz::check(g.pixels.size() == static_cast<size_t>(g.height * g.width), "pixel count");
    for (float p : g.pixels) fuzz::check(p >= 0.f && p <= 1.f, "a pixel outside [0, 1]");
    const GrayImage r = resize_bilinear(g, side, side);
    fuzz::check(
        r.height == side && r.width == side && r.pixels.size() == static_cast<size_t>(side * side),
        "resized size");
    for (float p : r.pixels) fuzz::check(p >= -1e-6f && p <= 1.f + 1e-6f, "resized pixel range");
  });
  return 0;
}
