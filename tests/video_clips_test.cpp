// Video clips: the .tclip tensor format and frame-folder readers (round trips and rejected
// input), the Moving-Fashion-MNIST generator's geometry, and the CNN (frames as channels,
// through the image pipeline's trainer) learning the direction of motion of generated clips
// end to end in seconds.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "host/core/error.h"
#include "host/data/clip_data.h"
#include "host/data/image_data.h"
#include "host/data/moving_clips.h"
#include "pipelines/image/cnn_task.h"
#include "tests/data_test_util.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

Clip ramp_clip(int64_t t, int64_t h, int64_t w) {
  Clip c;
  c.frames = t;
  c.height = h;
  c.width = w;
  for (int64_t i = 0; i < c.size(); ++i) c.pixels.push_back(static_cast<float>(i % 256) / 255.f);
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(VideoClips, TensorFileRoundTripsAndRejectsBadFiles) {
  testing::TempDir dir;
  const Clip c = ramp_clip(3, 5, 7);
  for (const ClipDType dt : {ClipDType::U8, ClipDType::F32}) {
    const std::string path = dir.file("c.tclip");
    write_clip_tensor(path, c, dt);
    const Clip r = read_clip(path);
    EXPECT_EQ(r.frames, 3);
    EXPECT_EQ(r.height, 5);
    EXPECT_EQ(r.width, 7);
    ASSERT_EQ(r.pixels.size(), c.pixels.size());
    for (size_t i = 0; i < c.pixels.size(); ++i) EXPECT_NEAR(r.pixels[i], c.pixels[i], 1e-6) << i;
  }
  const std::string path = dir.file("c.tclip");
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  testing::write_file(dir.file("cut.tclip"), bytes.substr(0, bytes.size() - 4));
  std::string m = error_of([&] { read_clip_tensor(dir.file("cut.tclip")); });
  EXPECT_NE(m.find("cut.tclip"), std::string::npos) << m;
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  testing::write_file(dir.file("hdr.tclip"), bytes.substr(0, 10));
  m = error_of([&] { read_clip_tensor(dir.file("hdr.tclip")); });
  EXPECT_NE(m.find("header"), std::string::npos) << m;
  testing::write_file(dir.file("magic.tclip"), "XSCLIP1\n" + bytes.substr(8));
  m = error_of([&] { read_clip_tensor(dir.file("magic.tclip")); });
  EXPECT_NE(m.find("magic"), std::string::npos) << m;
  std::string dtype = bytes;
  dtype[8] = 9;
  testing::write_file(dir.file("dtype.tclip"), dtype);
  m = error_of([&] { read_clip_tensor(dir.file("dtype.tclip")); });
  EXPECT_NE(m.find("dtype 9"), std::string::npos) << m;
}

// A .tclip header of the given dtype and shape, then `data`.
std::string tclip_bytes(uint32_t dtype, uint32_t t, uint32_t h, uint32_t w,
                        const std::string& data) {
  std::string b = "TSCLIP1\n";
  for (uint32_t v : {dtype, t, h, w}) b.append(reinterpret_cast<const char*>(&v), 4);
  return b + data;
}

TEST(VideoClips, TensorShapeIsMultipliedInCheckedArithmetic) {
  testing::TempDir dir;
  const std::string path = dir.file("wrap.tclip");
  // 2^21 x 2^21 x 2^22 = 2^64 values: wrapped round to 0 they matched a header-only file.
  testing::write_file(path, tclip_bytes(2, 1u << 21, 1u << 21, 1u << 22, ""));
  std::string m = error_of([&] { read_clip_tensor(path); });
  EXPECT_NE(m.find("more than 2^64"), std::string::npos) << m;
  // 2^31 x 2^31 x 4 u8 values is 2^64 too; 2^62 f32 values is 2^64 bytes.
  testing::write_file(path, tclip_bytes(1, 1u << 31, 1u << 31, 4, ""));
  m = error_of([&] { read_clip_tensor(path); });
  EXPECT_NE(m.find("more than 2^64"), std::string::npos) << m;
  testing::write_file(path, tclip_bytes(2, 1u << 31, 1u << 31, 1, std::string(16, '\0')));
  m = error_of([&] { read_clip_tensor(path); });
  EXPECT_NE(m.find("more than 2^64"), std::string::npos) << m;
  // A plausible header over too few bytes is truncated, over too many is refused too.
  testing::write_file(path, tclip_bytes(1, 2, 2, 2, std::string(7, '\0')));
  m = error_of([&] { read_clip_tensor(path); });
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  testing::write_file(path, tclip_bytes(1, 2, 2, 2, std::string(9, '\0')));
  m = error_of([&] { read_clip_tensor(path); });
  EXPECT_NE(m.find("says 32"), std::string::npos) << m;
  testing::write_file(path, tclip_bytes(1, 2, 2, 2, std::string(8, '\0')));
  EXPECT_EQ(error_of([&] { read_clip_tensor(path); }), "no error");
}

void write_pgm(const std::string& path, int w, int h, int value) {
  std::ofstream out(path, std::ios::binary);
  out << "P5\n"
      << w << " " << h << "\n255\n"
      << std::string(static_cast<size_t>(w * h), static_cast<char>(value));
}

TEST(VideoClips, FrameFolderIsReadInNameOrder) {
  testing::TempDir dir;
  // Written out of order; the value says the intended position.
  write_pgm(dir.file("frame_03.pgm"), 4, 3, 30);
  write_pgm(dir.file("frame_01.pgm"), 4, 3, 10);
  write_pgm(dir.file("frame_02.pgm"), 4, 3, 20);
  testing::write_file(dir.file("notes.txt"), "ignored");
  const Clip c = read_clip(dir.path());
  ASSERT_EQ(c.frames, 3);
  EXPECT_EQ(c.height, 3);
  EXPECT_EQ(c.width, 4);
  for (int t = 0; t < 3; ++t) EXPECT_NEAR(c.pixels[t * 12], (t + 1) * 10 / 255.f, 1e-6);
  write_pgm(dir.file("frame_04.pgm"), 5, 3, 40);
  const std::string m = error_of([&] { read_frame_folder(dir.path()); });
  EXPECT_NE(m.find("frame_04.pgm"), std::string::npos) << m;
  testing::TempDir empty;
  EXPECT_NE(error_of([&] { read_frame_folder(empty.path()); }).find("no .png or .pgm"),
            std::string::npos);
}

ImageSet squares(int n) {  // 28x28 items: a bright 6x6 square, label = index % 10
  ImageSet s;
  s.n = n;
  s.height = s.width = 28;
  s.pixels.assign(static_cast<size_t>(n * 28 * 28), 0.f);
  for (int i = 0; i < n; ++i) {
    s.labels.push_back(i % 10);
    for (int y = 11; y < 17; ++y)
      for (int x = 11; x < 17; ++x) s.pixels[i * 784 + y * 28 + x] = 1.f;
  }
  return s;
}

TEST(VideoClips, MovingClipsBounceInsideTheCanvasAndMoveAsLabelled) {
  MovingClipOptions o;
  o.clips = 200;
  o.frames = 6;
  o.label = ClipLabel::Direction;
  o.seed = 5;
  const ImageSet src = squares(10);
  const ImageSet a = make_moving_clips(src, o), b = make_moving_clips(src, o);
  EXPECT_EQ(a.pixels, b.pixels);  // deterministic
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.channels, 6);
  int agree = 0;
  for (int64_t i = 0; i < a.n; ++i) {
    const Clip c = clip_of(a, i);
    double cy[2] = {0, 0}, cx[2] = {0, 0};
    for (int t = 0; t < c.frames; ++t) {
      double sum = 0, sy = 0, sx = 0;
      for (int64_t y = 0; y < 64; ++y)
        for (int64_t x = 0; x < 64; ++x) {
          const float v = c.pixels[(t * 64 + y) * 64 + x];
          sum += v;
          sy += v * y;
          sx += v * x;
        }
      EXPECT_EQ(sum, 36.0) << "clip " << i << " frame " << t;  // the whole square, every frame
      if (t < 2) {
        cy[t] = sy / sum;
        cx[t] = sx / sum;
      }
    }
    // Heading of the first step: right, down, left, up.
    const double dy = cy[1] - cy[0], dx = cx[1] - cx[0];
    const int dir = std::abs(dx) >= std::abs(dy) ? (dx > 0 ? 0 : 2) : (dy > 0 ? 1 : 3);
    agree += dir == a.labels[i];
  }
  EXPECT_GE(agree, 180);  // all but clips that bounce on the first step
  MovingClipOptions two = o;
  two.items = 2;
  two.label = ClipLabel::ItemClass;
  const ImageSet t = make_moving_clips(src, two);
  for (float v : t.pixels) ASSERT_LE(v, 1.f);  // combined by maximum, not summed
}

TEST(VideoClips, CnnLearnsDirectionOfMotionOnMovingFashionMnist) {
  const std::string missing = test::missing_files(
      "/usr/share/datasets/fashion-mnist",
      {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}, "Debian's dataset-fashion-mnist");
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const ImageSet fashion =
      read_idx(kFashion, "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  MovingClipOptions o;
  o.frames = 4;
  o.label = ClipLabel::Direction;
  o.clips = 480;
  o.seed = 1;
  image::Splits data;
  data.train = make_moving_clips(fashion, o);
  o.clips = 160;
  o.seed = 2;
  data.test = make_moving_clips(fashion, o);
  ImageConfig cfg;
  cfg.name = "moving-fashion";
  cfg.data.classes = 4;
  cfg.data.class_names = {"right", "down", "left", "up"};
  auto layer = [](CnnLayerType t, int64_t units = 0, int64_t kernel = 2, int64_t stride = 1,
                  int64_t padding = 0) {
    CnnLayerSpec l;
    l.type = t;
    l.units = units;
    l.kernel = kernel;
    l.stride = t == CnnLayerType::MaxPool ? kernel : stride;
    l.padding = padding;
    l.activation = t == CnnLayerType::Dense ? Activation::Relu : Activation::None;
    return l;
  };
  // Motion is the same everywhere in the frame: local detectors (the frames are the first
  // conv's channels) averaged over the whole frame.
  cfg.layers = {layer(CnnLayerType::Conv, 8, 5, 2, 2),  layer(CnnLayerType::Relu),
                layer(CnnLayerType::Conv, 16, 3, 2, 1), layer(CnnLayerType::Relu),
                layer(CnnLayerType::GlobalAvgPool),     layer(CnnLayerType::Dense, 32)};
  cfg.train.epochs = 4;
  cfg.train.batch_size = 16;
  cfg.train.eval_batch_size = 64;
  cfg.train.optimizer.lr = 3e-3;
  testing::TempDir dir;
  image::TrainOptions opt;
  opt.device = "cpu";
  opt.quiet = true;
  opt.run_dir = dir.file("run");
  image::TaskHooks hooks;
  hooks.task = "video";
  const image::Result r = image::train_on(cfg, data, 0.0, "", opt, hooks);
  rapidjson::Document d;
  d.Parse(r.json.c_str());
  ASSERT_FALSE(d.HasParseError()) << r.json;
  const double acc = d["test"]["accuracy"].GetDouble();
  std::printf("moving-fashion direction: test accuracy %.3f (chance 0.25)\n", acc);
  EXPECT_GT(acc, 0.6) << r.summary;
  EXPECT_STREQ(d["task"].GetString(), "video");
  const std::string model = dir.file("run/model.tsm");
  EXPECT_TRUE(image::is_model_file(model, "video"));
  EXPECT_FALSE(image::is_model_file(model, "image"));
  // The saved model classifies a clip read back from a .tclip file like the trained one did.
  const image::LoadedModel m = image::load_model(model, "video");
  image::ReadyModel ready = image::instantiate(m, "cpu", 1);
  write_clip_tensor(dir.file("x.tclip"), clip_of(data.test, 0), ClipDType::F32);
  const Clip back = read_clip(dir.file("x.tclip"));
  const std::vector<double> p = image::class_probabilities(*ready.model, back.pixels);
  ASSERT_EQ(p.size(), 4u);
  double sum = 0;
  for (double v : p) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-9);
}

}  // namespace
}  // namespace tessera
