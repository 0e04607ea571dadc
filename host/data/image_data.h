#pragma once
// Image data for the CNN pipeline, as float NCHW in [0, 1] with i32 class labels:
//   - IDX files (MNIST / Fashion-MNIST layout), gzipped or not: images u8 [N, H, W] and labels
//     u8 [N];
//   - the scikit-learn digits CSV (gzipped or not): 64 pixel values in [0, 16] then the label;
//   - single image files for prediction: PNG (libpng; any colour type, converted to grey) and
//     PGM (P2 text or P5 binary, maxval up to 65535).
// Every malformed input is an Error(Data) naming the file and what is wrong (and where).
//
// Sizes come from the file and are trusted only once checked: IDX dimensions are multiplied in
// checked arithmetic and must match the bytes the file actually holds (a gzipped file is
// decompressed only as far as its header promises); a PNG or PGM may hold at most
// kMaxImagePixels pixels, and no more than its bytes can encode, before any pixel is allocated.
#include <cstdint>
#include <string>
#include <vector>

namespace tessera {

struct ImageSet {
  int64_t n = 0, channels = 1, height = 0, width = 0;
  std::vector<float> pixels;    // [n, channels, height, width], in [0, 1]
  std::vector<int32_t> labels;  // [n]
  int64_t image_size() const { return channels * height * width; }
};

// Images and labels from an IDX pair; the counts must agree.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);
// The scikit-learn digits CSV: 1 x 8 x 8 images.
ImageSet read_digits_csv(const std::string& path);

// Rows `index` of `set`, in that order.
ImageSet take_images(const ImageSet& set, const std::vector<int64_t>& index);

// A single grey image in [0, 1], row-major [height, width].
struct GrayImage {
  int64_t height = 0, width = 0;
  std::vector<float> pixels;
};
// PNG or PGM, told apart by the file's signature (not its name).
GrayImage read_image_file(const std::string& path);
// The same from the file's bytes; `name` is used in error messages.
GrayImage decode_image(const std::string& bytes, const std::string& name);
// The largest single image read_image_file accepts (8192 x 8192).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
// Bilinear resampling (pixel centres aligned), for a model trained at another size.
GrayImage resize_bilinear(const GrayImage& image, int64_t height, int64_t width);

}  // namespace tessera
