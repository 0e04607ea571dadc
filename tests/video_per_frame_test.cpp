// The video task's per-frame CNN ("frames_to_batch" ... "temporal_avgpool"): config validation
// naming the JSON path (per-frame layers outside a video task, out of order, unpooled, pooled
// twice), and train -> reload -> evaluate / batch-score / predict on a small generated Moving
// Fashion-MNIST slice labelled by the item's class (seconds).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "host/core/error.h"
#include "host/data/clip_data.h"
#include "host/data/moving_clips.h"
#include "pipelines/image/cnn_task.h"
#include "pipelines/image/image_config.h"
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

const char* kFold = R"({"type": "frames_to_batch"})";
const char* kConv =
    R"({"type": "conv", "filters": 8, "kernel": 3, "stride": 2, "padding": 1, "activation": "relu"})";
const char* kConv5 =
    R"({"type": "conv", "filters": 16, "kernel": 5, "stride": 2, "padding": 2, "activation": "relu"})";
const char* kConvBn = R"({"type": "conv", "filters": 32, "kernel": 3, "stride": 2, "padding": 1,
                          "bias": false}, {"type": "batchnorm"}, {"type": "relu"})";
const char* kGap = R"({"type": "global_avgpool"})";
const char* kPool = R"({"type": "temporal_avgpool"})";

std::string config(const std::vector<std::string>& layers, const std::string& runs_dir = "runs",
                   int64_t clips = 400, int epochs = 2) {
  std::string l;
  for (const std::string& s : layers) l += (l.empty() ? "" : ",\n      ") + s;
  return R"({"task": "video", "name": "per-frame", "seed": 4,
    "data": {"generate": {"kind": "moving-fashion-mnist", "label": "class", "clips": )" +
         std::to_string(clips) + R"(, "test_clips": 100, "source_dir": ")" + kFashionDir + R"("},
             "frames": 4, "height": 32, "width": 32, "validation_fraction": 0.1},
    "model": {"layers": [
      )" +
         l + R"(]},
    "train": {"epochs": )" +
         std::to_string(epochs) + R"(, "batch_size": 16, "eval_batch_size": 64,
              "optimizer": {"type": "adam", "lr": 0.003}, "runs_dir": ")" +
         runs_dir + R"("}})";
}

std::string video_error(const std::vector<std::string>& layers) {
  return error_of([&] { parse_video_config(config(layers), "v.json"); });
}

TEST(VideoPerFrame, ConfigErrorsNameTheLayerPath) {
  const VideoConfig ok = parse_video_config(config({kFold, kConv, kGap, kPool}), "v.json");
  ASSERT_EQ(ok.layers.size(), 4u);
  EXPECT_EQ(ok.layers[0].type, CnnLayerType::FramesToBatch);
  EXPECT_EQ(ok.layers[3].type, CnnLayerType::TemporalAvgPool);
  // The resolved config reads back the same.
  EXPECT_EQ(parse_video_config(to_json(ok), "resolved.json").layers[3].type,
            CnnLayerType::TemporalAvgPool);

  std::string m = video_error({kConv, kFold, kGap, kPool});
  EXPECT_NE(m.find("v.json:"), std::string::npos) << m;
  EXPECT_NE(m.find("$.model.layers[1].type"), std::string::npos) << m;
  EXPECT_NE(m.find("first layer"), std::string::npos) << m;
  m = video_error({kFold, kConv, kGap});
  EXPECT_NE(m.find("$.model.layers[0].type"), std::string::npos) << m;
  EXPECT_NE(m.find("temporal_avgpool"), std::string::npos) << m;
  m = video_error({kConv, kGap, kPool});
  EXPECT_NE(m.find("$.model.layers[2].type"), std::string::npos) << m;
  EXPECT_NE(m.find("frames_to_batch"), std::string::npos) << m;
  m = video_error({kFold, kConv, kGap, kPool, R"({"type": "temporal_maxpool"})"});
  EXPECT_NE(m.find("$.model.layers[4].type"), std::string::npos) << m;
  EXPECT_NE(m.find("already pooled by layers[3]"), std::string::npos) << m;
  m = video_error({kFold, kConv, kGap, R"({"type": "temporal_minpool"})"});
  EXPECT_NE(m.find("\"temporal_maxpool\""), std::string::npos) << m;  // the valid choices

  // An image task has no frames.
  const std::string image = R"({"task": "image", "data": {"format": "idx",
      "train_images": "a", "train_labels": "b"},
      "model": {"layers": [{"type": "frames_to_batch"}, {"type": "flatten"}]}})";
  m = error_of([&] { parse_image_config(image, "i.json"); });
  EXPECT_NE(m.find("$.model.layers[0].type"), std::string::npos) << m;
  EXPECT_NE(m.find("\"task\": \"video\""), std::string::npos) << m;

  const std::string shipped =
      std::string(TESSERA_SOURCE_DIR) + "/pipelines/video/moving-fashion-mnist-per-frame.json";
  const VideoConfig s = load_video_config(shipped);
  EXPECT_EQ(s.layers.front().type, CnnLayerType::FramesToBatch);
}

rapidjson::Document parse_json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

TEST(VideoPerFrame, TrainsReloadsEvaluatesScoresAndPredicts) {
  if (const std::string missing = missing_fashion(); !missing.empty())
    TESSERA_SKIP_OR_FAIL(missing);
  testing::TempDir dir;
  const std::string cfg = testing::write_file(
      dir.file("v.json"), config({kFold, kConv5, kConvBn, kGap, kPool}, dir.path(), 400, 3));
  video::TrainOptions opt;
  opt.device = "cpu";
  opt.quiet = true;
  video::Options verbs;
  verbs.device = "cpu";
  verbs.quiet = true;
  opt.run_dir = dir.file("run");
  const video::Result tr = video::train(cfg, opt);
  rapidjson::Document d = parse_json(tr.json);
  EXPECT_EQ(d["test_images"].GetInt64(), 100);
  const double acc = d["test"]["accuracy"].GetDouble();
  std::printf("tiny moving fashion-mnist class, per-frame CNN: test accuracy %.3f (chance 0.1)\n",
              acc);
  EXPECT_GT(acc, 0.22) << tr.summary;  // 0.33 on 200 test clips in a trial run

  // The artefact stores the per-frame layers; the reloaded model takes [T, H, W] clips.
  const std::string model = dir.file("run/model.tsm");
  const image::LoadedModel m = image::load_model(model, "video");
  ASSERT_EQ(m.spec.layers.size(), 7u);
  EXPECT_EQ(m.spec.layers[0].type, CnnLayerType::FramesToBatch);
  EXPECT_EQ(m.spec.layers[6].type, CnnLayerType::TemporalAvgPool);
  EXPECT_EQ(m.spec.channels, 4);

  // Evaluate and batch-score the very test clips training reported on, written as u8 .tclip
  // files (lossless for these pixels) under class folders ("T-shirt/top" as "T-shirt_top").
  VideoConfig vc = load_video_config(cfg);
  const ImageSet test = video::generated_test_clips(vc);
  ASSERT_EQ(test.n, 100);
  const std::vector<std::string> names = video::generated_class_names(vc.data.generate);
  for (int64_t i = 0; i < test.n; ++i) {
    const std::string cdir = dir.file("test/" + video::class_folder_name(names[test.labels[i]]));
    std::filesystem::create_directories(cdir);
    write_clip_tensor(cdir + "/c" + std::to_string(i) + ".tclip", clip_of(test, i), ClipDType::U8);
  }
  const rapidjson::Document e = parse_json(video::evaluate(model, dir.file("test"), verbs).json);
  EXPECT_EQ(e["clips"].GetInt64(), 100);
  EXPECT_DOUBLE_EQ(e["metrics"]["accuracy"].GetDouble(), acc);
  const rapidjson::Document s =
      parse_json(video::batch_predict(model, dir.file("test"), dir.file("scores.tsv"), verbs).json);
  EXPECT_EQ(s["clips"].GetInt64(), 100);
  std::ifstream rows(dir.file("scores.tsv"));
  std::string line;
  int64_t n = -1;
  while (std::getline(rows, line)) ++n;
  EXPECT_EQ(n, 100);

  // predict: the reloaded model's probabilities of the clip in memory.
  const Clip c0 = clip_of(test, 0);
  write_clip_tensor(dir.file("x.tclip"), c0, ClipDType::F32);
  const rapidjson::Document p = parse_json(video::predict(model, dir.file("x.tclip"), verbs).json);
  image::ReadyModel ready = image::instantiate(m, "cpu", 1);
  const std::vector<double> want = image::class_probabilities(*ready.model, c0.pixels);
  const int64_t best = image::top_k(want, 1)[0];
  EXPECT_EQ(p["top"][0]["index"].GetInt64(), best);
  EXPECT_NEAR(p["top"][0]["probability"].GetDouble(), want[best], 1e-6);
}

}  // namespace
}  // namespace tessera
