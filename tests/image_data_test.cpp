// Image readers: IDX (plain and gzip), the sklearn digits CSV, PGM (P2/P5) and PNG, bilinear
// resizing; malformed files fail with errors naming the file and the problem.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "host/data/image_data.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class ImageData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera_image_data_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  void write_bytes(const std::string& p, const std::string& bytes, bool gzip) {
    if (gzip) {
      gzFile f = gzopen(p.c_str(), "wb");
      ASSERT_NE(f, nullptr);
      gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
      gzclose(f);
    } else {
      std::ofstream(p, std::ios::binary) << bytes;
    }
  }
  static std::string be32(uint32_t v) {
    return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
  }
  // n images of h x w whose pixel (i, y, x) is (i * 7 + y * w + x) % 256; label i % 10.
  void write_idx_pair(const std::string& img, const std::string& lab, int n, int h, int w,
                      bool gzip, int label_count = -1) {
    std::string a = std::string("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w);
    for (int i = 0; i < n; ++i)
      for (int p = 0; p < h * w; ++p) a += char((i * 7 + p) % 256);
    const int nl = label_count < 0 ? n : label_count;
    std::string b = std::string("\0\0\x08\x01", 4) + be32(nl);
    for (int i = 0; i < nl; ++i) b += char(i % 10);
    write_bytes(img, a, gzip);
    write_bytes(lab, b, gzip);
  }
  fs::path dir_;
};

TEST_F(ImageData, ReadsIdxPlainAndGzip) {
  for (bool gzip : {false, true}) {
    const std::string img = path(gzip ? "i.gz" : "i"), lab = path(gzip ? "l.gz" : "l");
    write_idx_pair(img, lab, 3, 4, 5, gzip);
    const ImageSet s = read_idx(img, lab);
    EXPECT_EQ(s.n, 3);
    EXPECT_EQ(s.channels, 1);
    EXPECT_EQ(s.height, 4);
    EXPECT_EQ(s.width, 5);
    ASSERT_EQ(s.pixels.size(), 60u);
    EXPECT_FLOAT_EQ(s.pixels[20 + 6], (7 + 6) / 255.f);  // image 1, pixel 6
    EXPECT_EQ(s.labels, (std::vector<int32_t>{0, 1, 2}));
  }
}

TEST_F(ImageData, IdxErrorsNameTheFile) {
  const std::string img = path("i"), lab = path("l");
  write_idx_pair(img, lab, 3, 2, 2, false, 4);
  try {
    read_idx(img, lab);
    FAIL() << "count mismatch accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("3 images"), std::string::npos) << e.what();
  }
  write_bytes(img, std::string("\x01\x02\x08\x03", 4), false);
  try {
    read_idx(img, lab);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an IDX file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(img), std::string::npos);
  }
  // Truncated data.
  write_bytes(img, std::string("\0\0\x08\x03", 4) + be32(2) + be32(2) + be32(2) + "abc", false);
  try {
    read_idx(img, lab);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_idx(path("missing"), lab), Error);
}

TEST_F(ImageData, IdxDimensionsAreCheckedBeforeAnythingIsAllocated) {
  const std::string img = path("i"), lab = path("l");
  const std::string lab4 = std::string("\0\0\x08\x01", 4) + be32(4) + std::string(4, '\0');
  write_bytes(lab, lab4, false);
  // 4 x 2^31 x 2^31 bytes is 2^64: wrapped round to 0 it matched a file with no pixels at all.
  write_bytes(img, std::string("\0\0\x08\x03", 4) + be32(4) + be32(1u << 31) + be32(1u << 31),
              false);
  try {
    read_idx(img, lab);
    FAIL() << "dimensions whose product overflows were accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("multiply to more than"), std::string::npos) << e.what();
  }
  // Empty images are refused.
  write_bytes(img, std::string("\0\0\x08\x03", 4) + be32(4) + be32(0) + be32(7), false);
  EXPECT_THROW(read_idx(img, lab), Error);
  // A gzip that decompresses far beyond its header's promise is read only as far as the promise:
  // 64 MiB of zeros after a header promising 4 x 2 x 2 bytes.
  write_bytes(
      img,
      std::string("\0\0\x08\x03", 4) + be32(4) + be32(2) + be32(2) + std::string(64 << 20, '\0'),
      true);
  try {
    read_idx(img, lab);
    FAIL() << "data beyond the header's promise was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("file has more"), std::string::npos) << e.what();
  }
}

TEST_F(ImageData, PgmHeaderIsCheckedAgainstTheFileBeforeAllocation) {
  auto error_of = [&](const std::string& bytes) -> std::string {
    write_bytes(path("h.pgm"), bytes, false);
    try {
      read_image_file(path("h.pgm"));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data) << e.what();
      return e.what();
    }
    return "";
  };
  // 10^18 pixels: the pixels were resized before the size was checked (std::length_error).
  EXPECT_NE(error_of("P5 999999999 999999999 255\n").find("larger than"), std::string::npos);
  // 16 M pixels promised by a text PGM of 20 bytes.
  EXPECT_NE(error_of("P2 4000 4000 255\n0 0").find("truncated"), std::string::npos);
  EXPECT_NE(error_of("P5 4000 4000 65535\nab").find("truncated"), std::string::npos);
  EXPECT_EQ(error_of("P2 2 1 255\n0 9"), "");
}

// A PNG signature and IHDR of width x height (8-bit grey) and one small IDAT, CRCs right.
std::string png_header(uint32_t width, uint32_t height) {
  auto be = [](uint32_t v) {
    return std::string{char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
  };
  auto chunk = [&](const std::string& type, const std::string& body) {
    const std::string tb = type + body;
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(tb.data()), tb.size());
    return be(static_cast<uint32_t>(body.size())) + tb + be(static_cast<uint32_t>(crc));
  };
  std::string idat(64, '\0');
  uLongf n = idat.size();
  const std::string row(3, '\0');
  compress(reinterpret_cast<Bytef*>(&idat[0]), &n, reinterpret_cast<const Bytef*>(row.data()),
           row.size());
  idat.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) +
         chunk("IHDR", be(width) + be(height) + std::string{8, 0, 0, 0, 0}) + chunk("IDAT", idat) +
         chunk("IEND", "");
}

TEST_F(ImageData, PngSizeIsBoundedByTheLimitAndByTheFileBeforeAllocation) {
  auto error_of = [&](const std::string& bytes) -> std::string {
    write_bytes(path("h.png"), bytes, false);
    try {
      read_image_file(path("h.png"));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Data) << e.what();
      return e.what();
    }
    return "";
  };
  // 81 M pixels: over the documented limit (libpng alone would allow 10^6 x 10^6).
  std::string e = error_of(png_header(9000, 9000));
  EXPECT_NE(e.find("largest image read"), std::string::npos) << e;
  // 4 M pixels cannot come out of ~80 bytes of deflate data.
  e = error_of(png_header(2000, 2000));
  EXPECT_NE(e.find("bytes can encode"), std::string::npos) << e;
  // A small header that fits goes on to decoding (and fails there: its data is short).
  e = error_of(png_header(30, 30));
  EXPECT_NE(e.find("PNG decoding failed"), std::string::npos) << e;
}

TEST_F(ImageData, ReadsTheSharedDigitsCsv) {
  const std::string missing = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string p = scheduler::find_local_dataset_file("sklearn-digits", "digits.csv.gz");
  const ImageSet s = read_digits_csv(p);
  EXPECT_EQ(s.n, 1797);
  EXPECT_EQ(s.height, 8);
  EXPECT_EQ(s.width, 8);
  EXPECT_EQ(s.labels[0], 0);
  EXPECT_FLOAT_EQ(s.pixels[2], 5.f / 16.f);  // first row: 0,0,5,13,...
  for (float v : s.pixels) ASSERT_TRUE(v >= 0.f && v <= 1.f);
}

TEST_F(ImageData, DigitsCsvErrorsNameFileAndLine) {
  std::string row;
  for (int i = 0; i < 64; ++i) row += "1,";
  write_bytes(path("d.csv"), row + "3\n" + row + "x\n", false);
  try {
    read_digits_csv(path("d.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d.csv:2"), std::string::npos) << e.what();
  }
  write_bytes(path("e.csv"), "1,2,3\n", false);
  try {
    read_digits_csv(path("e.csv"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 65"), std::string::npos) << e.what();
  }
}

TEST_F(ImageData, ReadsPgmTextAndBinary) {
  write_bytes(path("a.pgm"), "P2\n# comment\n3 2\n255\n0 51 102\n153 204 255\n", false);
  GrayImage a = read_image_file(path("a.pgm"));
  EXPECT_EQ(a.width, 3);
  EXPECT_EQ(a.height, 2);
  EXPECT_FLOAT_EQ(a.pixels[1], 0.2f);
  EXPECT_FLOAT_EQ(a.pixels[5], 1.f);
  write_bytes(path("b.pgm"),
              std::string("P5 2 2 255\n") + char(0) + char(255) + char(51) + char(102), false);
  GrayImage b = read_image_file(path("b.pgm"));
  EXPECT_EQ(b.width, 2);
  EXPECT_FLOAT_EQ(b.pixels[1], 1.f);
  EXPECT_FLOAT_EQ(b.pixels[2], 0.2f);
  write_bytes(path("c.pgm"), std::string("P5 4 4 255\n") + "ab", false);
  EXPECT_THROW(read_image_file(path("c.pgm")), Error);
  write_bytes(path("d.txt"), "hello", false);
  try {
    read_image_file(path("d.txt"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither a PNG nor a PGM"), std::string::npos);
  }
}

TEST_F(ImageData, ReadsPngAndConvertsColourToGrey) {
  // A 2x1 RGB PNG: black, white.
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = 2;
  img.height = 1;
  img.format = PNG_FORMAT_RGB;
  const unsigned char px[6] = {0, 0, 0, 255, 255, 255};
  ASSERT_TRUE(png_image_write_to_file(&img, path("x.png").c_str(), 0, px, 0, nullptr));
  GrayImage g = read_image_file(path("x.png"));
  EXPECT_EQ(g.width, 2);
  EXPECT_EQ(g.height, 1);
  EXPECT_NEAR(g.pixels[0], 0.f, 1e-6);
  EXPECT_NEAR(g.pixels[1], 1.f, 1e-6);
  // A truncated PNG fails with the file's name.
  std::ifstream in(path("x.png"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_bytes(path("t.png"), bytes.substr(0, 20), false);
  try {
    read_image_file(path("t.png"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.png"), std::string::npos) << e.what();
  }
}

TEST_F(ImageData, BilinearResize) {
  GrayImage g;
  g.height = 2;
  g.width = 2;
  g.pixels = {0.f, 1.f, 0.f, 1.f};
  const GrayImage same = resize_bilinear(g, 2, 2);
  EXPECT_EQ(same.pixels, g.pixels);
  const GrayImage up = resize_bilinear(g, 2, 4);
  ASSERT_EQ(up.pixels.size(), 8u);
  EXPECT_FLOAT_EQ(up.pixels[0], 0.f);    // clamped at the left edge
  EXPECT_FLOAT_EQ(up.pixels[1], 0.25f);  // between the two columns
  EXPECT_FLOAT_EQ(up.pixels[3], 1.f);
}

TEST_F(ImageData, TakeImagesPicksRowsInOrder) {
  ImageSet s;
  s.n = 3;
  s.height = s.width = 1;
  s.pixels = {0.1f, 0.2f, 0.3f};
  s.labels = {1, 2, 3};
  const ImageSet t = take_images(s, {2, 0});
  EXPECT_EQ(t.n, 2);
  EXPECT_EQ(t.pixels, (std::vector<float>{0.3f, 0.1f}));
  EXPECT_EQ(t.labels, (std::vector<int32_t>{3, 1}));
}

}  // namespace
}  // namespace tessera
