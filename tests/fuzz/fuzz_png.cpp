// Fuzz target: single PNG images as `tessera predict` reads them for an image model
// (host/data/image_data.h: decode_image, libpng's simplified API, any colour type to grey), then
// resized to the model's input (resize_bilinear) as predict does.
//
// Input: 1 option byte, then the file's bytes.
//   bit 0      recompute every chunk's CRC (libpng refuses a chunk whose CRC is wrong, which
//              mutated inputs almost always have), so the fuzzer reaches the decoder
//   bits 1-3   the size resized to: 1 + 4 * value pixels square
// Invariants checked: width x height pixels in [0, 1], at most kMaxImagePixels; the resized
// image has the size asked for and its pixels stay in [0, 1].
#include <zlib.h>

#include <cstdint>
#include <string>

#include "host/data/image_data.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;

uint32_t be32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Rewrites the CRC of every whole chunk after the 8-byte signature.
void fix_chunk_crcs(std::string& png) {
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint64_t len = be32(png, at);
    if (len > png.size() - at - 12) break;
    const uLong crc =
        crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), static_cast<uInt>(len + 4));
    for (int i = 0; i < 4; ++i)
      png[at + 8 + len + i] = static_cast<char>((crc >> (24 - 8 * i)) & 255);
    at += 12 + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  std::string bytes(in.rest());
  if (flags & 1) fix_chunk_crcs(bytes);
  const int64_t side = 1 + 4 * ((flags >> 1) & 7);
  fuzz::expect_input_errors([&] {
    const GrayImage g = decode_image(bytes, "fuzz.png");
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
