// The video pipeline ("task": "video", pipelines/video): config validation, train -> evaluate ->
// predict through the pipeline functions on a tiny generated Moving Fashion-MNIST set (seconds),
// predict on a .tclip round trip and on a frame folder, training from a folder of class
// subfolders, and clear errors for bad clips.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "host/core/error.h"
#include "host/data/clip_data.h"
#include "host/data/image_data.h"
#include "host/data/moving_clips.h"
#include "pipelines/image/cnn_task.h"
#include "pipelines/video/video.h"
#include "pipelines/video/video_config.h"
#include "tests/data_test_util.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

// "" when Debian's dataset-fashion-mnist is installed, else what is missing.
std::string missing_fashion() {
  return test::missing_files(kFashionDir,
                             {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
                             "Debian's dataset-fashion-mnist");
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const char* kLayers = R"("model": {"layers": [
    {"type": "conv", "filters": 8, "kernel": 5, "stride": 2, "padding": 2, "activation": "relu"},
    {"type": "conv", "filters": 16, "kernel": 3, "stride": 2, "padding": 1, "activation": "relu"},
    {"type": "global_avgpool"},
    {"type": "dense", "units": 32, "activation": "relu"}]})";

std::string generated_config(const std::string& runs_dir, int64_t clips, int epochs) {
  return std::string(R"({"task": "video", "name": "tiny-moving", "seed": 3,
  "data": {"generate": {"kind": "moving-fashion-mnist", "label": "direction", "clips": )") +
         std::to_string(clips) + R"(, "test_clips": 160, "source_dir": ")" + kFashionDir +
         R"("}, "frames": 4, "height": 64, "width": 64, "validation_fraction": 0.1},
  )" + kLayers +
         R"(,
  "train": {"epochs": )" +
         std::to_string(epochs) +
         R"(, "batch_size": 16, "eval_batch_size": 64,
            "optimizer": {"type": "adam", "lr": 0.003}, "runs_dir": ")" +
         runs_dir + R"("}})";
}

std::string config_error(const std::string& text) {
  return error_of([&] { parse_video_config(text, "v.json"); });
}

TEST(VideoPipeline, ConfigErrorsNamePathExpectedAndChoices) {
  const std::string ok = generated_config("runs", 400, 2);
  const VideoConfig c = parse_video_config(ok, "v.json");
  EXPECT_TRUE(c.data.generated);
  EXPECT_EQ(c.data.generate.label, VideoGenLabel::Direction);
  EXPECT_EQ(c.data.frames, 4);
  EXPECT_EQ(c.layers.size(), 4u);
  // The resolved config reads back to the same settings.
  const VideoConfig back = parse_video_config(to_json(c), "resolved.json");
  EXPECT_EQ(back.data.generate.clips, 400);
  EXPECT_EQ(back.data.generate.test_clips, 160);
  EXPECT_EQ(back.train.epochs, 2);
  EXPECT_EQ(back.layers.size(), 4u);

  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = ok;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  std::string m = config_error(with("\"frames\"", "\"frame\""));
  EXPECT_NE(m.find("v.json:"), std::string::npos) << m;
  EXPECT_NE(m.find("$.data.frame"), std::string::npos) << m;
  EXPECT_NE(m.find("frames"), std::string::npos) << m;  // the suggestion
  m = config_error(with("moving-fashion-mnist", "moving-mnist"));
  EXPECT_NE(m.find("$.data.generate.kind"), std::string::npos) << m;
  EXPECT_NE(m.find("\"moving-fashion-mnist\""), std::string::npos) << m;
  m = config_error(with("\"direction\"", "\"speed\""));
  EXPECT_NE(m.find("$.data.generate.label"), std::string::npos) << m;
  EXPECT_NE(m.find("\"class\""), std::string::npos) << m;
  EXPECT_NE(m.find("\"direction\""), std::string::npos) << m;
  m = config_error(with("\"frames\": 4", "\"frames\": 0"));
  EXPECT_NE(m.find("$.data.frames"), std::string::npos) << m;
  m = config_error(with("\"width\": 64", "\"width\": 48"));
  EXPECT_NE(m.find("$.data.width"), std::string::npos) << m;
  m = config_error(with("\"frames\": 4", "\"frames\": 4, \"dir\": \"clips\""));
  EXPECT_NE(m.find("not both"), std::string::npos) << m;
  m = config_error(with("\"frames\": 4", "\"frames\": 4, \"classes\": 10"));
  EXPECT_NE(m.find("4 classes"), std::string::npos) << m;
  m = config_error(with("\"task\": \"video\"", "\"task\": \"vidoe\""));
  EXPECT_NE(m.find("\"video\""), std::string::npos) << m;
  // Neither data source.
  m = config_error(R"({"task": "video", "data": {"frames": 4}, )" + std::string(kLayers) + "}");
  EXPECT_NE(m.find("give \"dir\""), std::string::npos) << m;
  // Several mistakes are reported together.
  m = config_error(with("\"frames\": 4", "\"frames\": -1, \"heigth\": 3"));
  EXPECT_NE(m.find("$.data.frames"), std::string::npos) << m;
  EXPECT_NE(m.find("$.data.heigth"), std::string::npos) << m;

  // The shipped default is valid and detected as a video config.
  const std::string def =
      std::string(TESSERA_SOURCE_DIR) + "/pipelines/video/moving-fashion-mnist.json";
  EXPECT_NO_THROW(load_video_config(def));
  EXPECT_TRUE(json::file_has_task(def, "video"));
  EXPECT_FALSE(json::file_has_task(
      std::string(TESSERA_SOURCE_DIR) + "/pipelines/image/sklearn-digits.json", "video"));
}

void write_pgm(const std::string& path, int64_t w, int64_t h, const float* px) {
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << w << " " << h << "\n255\n";
  for (int64_t i = 0; i < w * h; ++i)
    out.put(static_cast<char>(static_cast<unsigned char>(std::lround(px[i] * 255.f))));
}

void write_frame_folder(const std::string& dir, const Clip& c) {
  std::filesystem::create_directories(dir);
  for (int64_t t = 0; t < c.frames; ++t) {
    char name[32];
    std::snprintf(name, sizeof(name), "/frame_%03lld.pgm", static_cast<long long>(t));
    write_pgm(dir + name, c.width, c.height, c.pixels.data() + t * c.height * c.width);
  }
}

// Clips of `set` written as DIR/<class name>/: even ones as .tclip (u8), odd ones as frame folders.
void write_clip_dir(const std::string& dir, const ImageSet& set,
                    const std::vector<std::string>& names) {
  for (int64_t i = 0; i < set.n; ++i) {
    const std::string cdir = dir + "/" + names[set.labels[i]];
    std::filesystem::create_directories(cdir);
    char name[32];
    std::snprintf(name, sizeof(name), "/clip_%04lld", static_cast<long long>(i));
    if (i % 2 == 0)
      write_clip_tensor(cdir + name + ".tclip", clip_of(set, i), ClipDType::U8);
    else
      write_frame_folder(cdir + name, clip_of(set, i));
  }
}

rapidjson::Document parse_json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

TEST(VideoPipeline, TrainEvaluatePredictOnGeneratedMovingFashionMnist) {
  if (const std::string missing = missing_fashion(); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  testing::TempDir dir;
  const std::string cfg =
      testing::write_file(dir.file("v.json"), generated_config(dir.path(), 480, 8));
  video::TrainOptions opt;
  opt.device = "cpu";
  opt.quiet = true;
  video::Options verbs;
  verbs.device = "cpu";
  verbs.quiet = true;
  opt.run_dir = dir.file("run");
  const video::Result tr = video::train(cfg, opt);
  rapidjson::Document d = parse_json(tr.json);
  EXPECT_STREQ(d["task"].GetString(), "video");
  EXPECT_EQ(d["train_images"].GetInt64() + d["validation_images"].GetInt64(), 480);
  EXPECT_EQ(d["test_images"].GetInt64(), 160);
  const double acc = d["test"]["accuracy"].GetDouble();
  std::printf("tiny moving fashion-mnist direction: test accuracy %.3f (chance 0.25)\n", acc);
  EXPECT_GT(acc, 0.6) << tr.summary;
  const std::string model = dir.file("run/model.tsm");
  EXPECT_TRUE(video::is_video_model_file(model));
  EXPECT_FALSE(image::is_model_file(model, "image"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("run/config.json")));

  // Evaluate on fresh clips (t10k items, another seed) written as .tclip files and frame folders.
  MovingClipOptions o;
  o.frames = 4;
  o.label = ClipLabel::Direction;
  o.clips = 48;
  o.seed = 99;
  const ImageSet fresh = make_moving_clips(read_idx(kFashionDir + "/t10k-images-idx3-ubyte.gz",
                                                    kFashionDir + "/t10k-labels-idx1-ubyte.gz"),
                                           o);
  const std::vector<std::string> names = {"right", "down", "left", "up"};
  write_clip_dir(dir.file("eval"), fresh, names);
  const video::Result ev = video::evaluate(model, dir.file("eval"), verbs);
  rapidjson::Document e = parse_json(ev.json);
  EXPECT_EQ(e["clips"].GetInt64(), 48);
  EXPECT_GT(e["metrics"]["accuracy"].GetDouble(), 0.5) << ev.summary;
  EXPECT_EQ(e["metrics"]["confusion_matrix"].Size(), 4u);

  // Predict on a .tclip round trip: the same probabilities as the model on the clip in memory.
  const Clip c0 = clip_of(fresh, 0);
  write_clip_tensor(dir.file("x.tclip"), c0, ClipDType::F32);
  const video::Result pr = video::predict(model, dir.file("x.tclip"), verbs);
  rapidjson::Document p = parse_json(pr.json);
  ASSERT_EQ(p["top"].Size(), 3u);
  const image::LoadedModel m = image::load_model(model, "video");
  image::ReadyModel ready = image::instantiate(m, "cpu", 1);
  const std::vector<double> want = image::class_probabilities(*ready.model, c0.pixels);
  const int64_t best = image::top_k(want, 1)[0];
  EXPECT_EQ(p["top"][0]["index"].GetInt64(), best);
  EXPECT_STREQ(p["top"][0]["class"].GetString(), names[best].c_str());
  EXPECT_NEAR(p["top"][0]["probability"].GetDouble(), want[best], 1e-6);
  EXPECT_GE(p["top"][0]["probability"].GetDouble(), p["top"][1]["probability"].GetDouble());
  EXPECT_NE(pr.summary.find("1. " + names[best]), std::string::npos) << pr.summary;
  // The same clip as a frame folder (8-bit frames) gives the same top class.
  write_frame_folder(dir.file("x_frames"), c0);
  rapidjson::Document pf = parse_json(video::predict(model, dir.file("x_frames"), verbs).json);
  EXPECT_EQ(pf["top"][0]["index"].GetInt64(), best);
  EXPECT_NEAR(pf["top"][0]["probability"].GetDouble(), want[best], 0.05);

  // Bad clips: clear errors naming the clip.
  std::filesystem::create_directories(dir.file("empty_clip"));
  std::string msg = error_of([&] { video::predict(model, dir.file("empty_clip"), verbs); });
  EXPECT_NE(msg.find("empty_clip"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no .png or .pgm"), std::string::npos) << msg;
  Clip three = c0;
  three.frames = 3;
  three.pixels.resize(static_cast<size_t>(three.size()));
  write_clip_tensor(dir.file("eval/left/short.tclip"), three, ClipDType::U8);
  msg = error_of([&] { video::evaluate(model, dir.file("eval"), verbs); });
  EXPECT_NE(msg.find("short.tclip"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 frames"), std::string::npos) << msg;
  std::filesystem::remove(dir.file("eval/left/short.tclip"));
  std::filesystem::create_directories(dir.file("eval/sideways"));
  msg = error_of([&] { video::evaluate(model, dir.file("eval"), verbs); });
  EXPECT_NE(msg.find("sideways"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not one of the model's classes"), std::string::npos) << msg;
}

// Synthetic clips with no dataset needed: a bright bar that moves 2 pixels a frame right (class
// "r") or left ("l"), frames of 20x20 resized to the config's 16x16. A 5-wide kernel sees two
// frames' bars at once, so the direction is learnable after global average pooling.
Clip bar_clip(bool right, int shift) {
  Clip c;
  c.frames = 3;
  c.height = c.width = 20;
  c.pixels.assign(static_cast<size_t>(c.size()), 0.f);
  for (int t = 0; t < 3; ++t) {
    const int x = (right ? 6 + 2 * t : 13 - 2 * t) + shift;
    for (int y = 0; y < 20; ++y) c.pixels[(t * 20 + y) * 20 + x] = 1.f;
  }
  return c;
}

TEST(VideoPipeline, TrainsFromAFolderOfClassSubfoldersAndReportsBadClips) {
  testing::TempDir dir;
  for (int i = 0; i < 40; ++i) {
    const bool right = i % 2 == 0;
    const std::string cdir = dir.file(std::string("clips/") + (right ? "r" : "l"));
    std::filesystem::create_directories(cdir);
    const Clip c = bar_clip(right, (i / 2) % 3 - 1);
    if (i % 4 < 2)
      write_clip_tensor(cdir + "/c" + std::to_string(i) + ".tclip", c);
    else
      write_frame_folder(cdir + "/c" + std::to_string(i), c);
  }
  testing::write_file(dir.file("clips/r/README.txt"), "ignored: not a clip");
  const std::string text = R"({"task": "video", "name": "bars", "seed": 1,
    "data": {"dir": ")" + dir.file("clips") +
                           R"(", "test_fraction": 0.25,
             "validation_fraction": 0, "frames": 3, "height": 16, "width": 16},
    "model": {"layers": [{"type": "conv", "filters": 4, "kernel": 5, "padding": 2,
                          "activation": "relu"}, {"type": "global_avgpool"}]},
    "train": {"epochs": 12, "batch_size": 8, "optimizer": {"type": "adam", "lr": 0.03},
              "runs_dir": ")" +
                           dir.path() + R"("}})";
  const std::string cfg = testing::write_file(dir.file("bars.json"), text);
  video::TrainOptions opt;
  opt.device = "cpu";
  opt.quiet = true;
  video::Options verbs;
  verbs.device = "cpu";
  verbs.quiet = true;
  opt.run_dir = dir.file("run");
  rapidjson::Document d = parse_json(video::train(cfg, opt).json);
  EXPECT_EQ(d["train_images"].GetInt64(), 30);
  EXPECT_EQ(d["test_images"].GetInt64(), 10);
  EXPECT_GE(d["test"]["accuracy"].GetDouble(), 0.8);
  const std::string model = dir.file("run/model.tsm");
  write_clip_tensor(dir.file("one.tclip"), bar_clip(true, 0));
  rapidjson::Document p = parse_json(video::predict(model, dir.file("one.tclip"), verbs).json);
  ASSERT_EQ(p["top"].Size(), 2u);                       // top 3 of a 2-class model
  EXPECT_STREQ(p["top"][0]["class"].GetString(), "r");  // folder names, sorted: l, r

  // A clip folder whose frames disagree in size stops training with the frame's name.
  const std::string bad = dir.file("clips/l/broken");
  write_frame_folder(bad, bar_clip(false, 0));
  Clip small = bar_clip(false, 0);
  small.width = 10;
  small.pixels.resize(static_cast<size_t>(small.size()));
  write_pgm(bad + "/frame_009.pgm", 10, 20, small.pixels.data());
  opt.run_dir = dir.file("run2");
  std::string msg = error_of([&] { video::train(cfg, opt); });
  EXPECT_NE(msg.find("broken/frame_009.pgm"), std::string::npos) << msg;
  std::filesystem::remove_all(bad);
  // A config naming a class folder that does not exist.
  testing::write_file(
      dir.file("bars2.json"),
      std::string(text).replace(text.find("\"frames\""), 0, "\"class_names\": [\"l\", \"up\"], "));
  msg = error_of([&] { video::train(dir.file("bars2.json"), opt); });
  EXPECT_NE(msg.find("clips/up"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tessera
