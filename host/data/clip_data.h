#pragma once
// Video clips for the CNN: T grey frames of H x W in [0, 1], fed to the image CNN with the frames
// as its input channels ([T, H, W] = [C, H, W]).
//
// Readers:
//   - a folder of frames: every *.png / *.pgm in it, in name order (zero-pad the numbers:
//     frame_0001.png ...), all the same size (host/data/image_data.h reads them);
//   - a raw clip tensor file (".tclip"), little-endian:
//       bytes 0-7    magic "TSCLIP1\n"
//       bytes 8-11   u32 dtype: 1 = u8 (pixel = value / 255), 2 = f32 (pixel = value)
//       bytes 12-23  u32 T, u32 H, u32 W (each >= 1)
//       bytes 24-    T * H * W values, frame by frame, each frame row-major
//     and nothing else: a size that disagrees with the header is an error.
// Malformed input is an Error(Data) naming the file and the fault.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

struct Clip {
  int64_t frames = 0, height = 0, width = 0;
  std::vector<float> pixels;  // [frames, height, width]
  int64_t size() const { return frames * height * width; }
};

enum class ClipDType : uint32_t { U8 = 1, F32 = 2 };

Clip read_frame_folder(const std::string& dir);
Clip read_clip_tensor(const std::string& path);
// Written atomically; U8 rounds pixels (clamped to [0, 1]) to value * 255.
void write_clip_tensor(const std::string& path, const Clip& clip, ClipDType dtype = ClipDType::F32);
// A frame folder or a .tclip file, told apart by what `path` is.
Clip read_clip(const std::string& path);

}  // namespace tessera
