// Fuzz target: raw clip tensor files (".tclip", host/data/clip_data.h: read_clip_tensor, u8 or
// f32 values after a 24-byte header) as `tessera predict` reads them for a video model, then fit
// to the model's input (video::clip_input: the frame count must match, frames are resized).
//
// Input: 1 option byte, then the file's bytes.
//   bits 0-1   the model's frame count: 1, 2, 4 or 8
//   bits 2-4   the model's frame size: 1 + 4 * value pixels square
// Invariants checked: frames x height x width pixels (each dimension >= 1), u8 pixels in
// [0, 1], f32 pixels finite; the model input has frames x size x size values.
#include <cmath>
#include <cstdint>
#include <string>

#include "host/data/clip_data.h"
#include "pipelines/video/video.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  static fuzz::TempFile tmp("tclip");
  fuzz::ByteReader in(data, size);
  const uint8_t flags = in.byte();
  const int64_t frames = int64_t{1} << (flags & 3);
  const int64_t side = 1 + 4 * ((flags >> 2) & 7);
  const std::string& path = tmp.write(in.rest());
  fuzz::expect_input_errors([&] {
    const Clip c = read_clip_tensor(path);
    fuzz::check(c.frames >= 1 && c.height >= 1 && c.width >= 1, "clip dimensions");
    fuzz::check(c.pixels.size() == static_cast<size_t>(c.size()), "pixel count");
    for (float p : c.pixels) fuzz::check(std::isfinite(p), "a pixel is not finite");
    const std::vector<float> x = video::clip_input(c, frames, side, side, path);
    fuzz::check(static_cast<int64_t>(x.size()) == frames * side * side, "model input size");
  });
  return 0;
}
