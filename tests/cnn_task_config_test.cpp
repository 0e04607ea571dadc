// The image, audio and video configs, declared once (pipelines/*/..._config.h over
// host/config/declare.h): each task's example reads back as the values it shows, every shipped
// config parses and round-trips through its resolved form, the schema is JSON naming every
// section, and the rules the old hand-written readers had still hold.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "host/core/error.h"
#include "pipelines/audio/audio_config.h"
#include "pipelines/image/image_config.h"
#include "pipelines/video/video_config.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

// Whether a JSON file is a pipeline spec (it has "stages"), not a task config.
bool is_pipeline_spec(const std::string& path) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  rapidjson::Document d;
  d.Parse<rapidjson::kParseCommentsFlag>(text.c_str());
  return !d.HasParseError() && d.IsObject() && d.HasMember("stages");
}

// The task configs (not pipeline specs) shipped in pipelines/<task>/.
std::vector<std::string> shipped(const std::string& task) {
  std::vector<std::string> out;
  for (const auto& e :
       fs::directory_iterator(std::string(TESSERA_SOURCE_DIR) + "/pipelines/" + task)) {
    const std::string p = e.path().string();
    if (e.path().extension() == ".json" && json::file_has_task(p, task) && !is_pipeline_spec(p))
      out.push_back(p);
  }
  return out;
}

template <typename C>
void expect_round_trip(const C& c, C (*parse)(const std::string&, const std::string&),
                       const std::string& what) {
  const std::string text = to_json(c);
  const C back = parse(text, "resolved.json");
  EXPECT_TRUE(back == c) << what << "\n" << text;
  EXPECT_EQ(to_json(back), text) << what;
}

void expect_schema(const std::string& schema, const std::vector<const char*>& sections) {
  rapidjson::Document d;
  d.Parse(schema.c_str());
  ASSERT_FALSE(d.HasParseError()) << schema;
  ASSERT_TRUE(d.IsObject() && d.HasMember("properties")) << schema;
  for (const char* s : sections) EXPECT_TRUE(d["properties"].HasMember(s)) << s;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(CnnTaskConfig, ExamplesReadBackAsTheirValues) {
  const ImageConfig image = parse_image_config(image_config_example(), "example.json");
  EXPECT_TRUE(image == example_image_config()) << image_config_example();
  EXPECT_EQ(image.train.optimizer.lr, ImageConfig{}.train.optimizer.lr);  // a default, unset
  const AudioConfig audio = parse_audio_config(audio_config_example(), "example.json");
  EXPECT_TRUE(audio == example_audio_config()) << audio_config_example();
  EXPECT_EQ(audio.features.mel.window(), MelConfig{}.window());
  const VideoConfig video = parse_video_config(video_config_example(), "example.json");
  EXPECT_TRUE(video == example_video_config()) << video_config_example();
  EXPECT_TRUE(video.data.generated);
  // The sections that do not apply to the example are there, commented out with why.
  EXPECT_NE(image_config_example().find("// (only applies to format \"digits_csv\")"),
            std::string::npos)
      << image_config_example();
}

TEST(CnnTaskConfig, SchemasAreJsonNamingEverySection) {
  expect_schema(image_config_schema(), {"task", "name", "data", "augment", "model", "train"});
  expect_schema(audio_config_schema(), {"data", "features", "augment", "model", "train"});
  expect_schema(video_config_schema(), {"data", "model", "train"});
}

TEST(CnnTaskConfig, ShippedConfigsParseAndRoundTrip) {
  size_t n = 0;
  for (const std::string& p : shipped("image")) {
    expect_round_trip(load_image_config(p), parse_image_config, p);
    ++n;
  }
  for (const std::string& p : shipped("audio")) {
    expect_round_trip(load_audio_config(p), parse_audio_config, p);
    ++n;
  }
  for (const std::string& p : shipped("video")) {
    expect_round_trip(load_video_config(p), parse_video_config, p);
    ++n;
  }
  EXPECT_GE(n, 6u);  // 3 image, 1 audio, 2 video
}

TEST(CnnTaskConfig, ResolvedFormFillsTheDerivedDefaults) {
  const ImageConfig c = parse_image_config(R"({"task": "image",
    "data": {"format": "idx", "train_images": "a", "train_labels": "b"},
    "model": {"layers": [{"type": "maxpool", "kernel": 3}, {"type": "dropout"},
                         {"type": "conv", "filters": 8}]}})",
                                           "c.json");
  ASSERT_EQ(c.layers.size(), 3u);
  EXPECT_EQ(c.layers[0].stride, 3);  // a pool's stride defaults to its window
  EXPECT_FLOAT_EQ(c.layers[1].p, 0.5f);
  EXPECT_EQ(c.layers[2].kernel, 3);
  const std::string text = to_json(c);
  EXPECT_EQ(text.find("\"test_fraction\""), std::string::npos) << text;  // digits_csv only
  const AudioConfig a = parse_audio_config(
      R"({"task": "audio", "data": {"dir": "wav"}, "features": {"n_fft": 512},
          "model": {"layers": []}})",
      "a.json");
  const std::string audio = to_json(a);
  EXPECT_NE(audio.find("\"win_length\": 512"), std::string::npos) << audio;
  EXPECT_NE(audio.find("\"fmax\": 4000"), std::string::npos) << audio;
  AudioConfig b = a;
  b.features.mel.n_mels = 64;
  EXPECT_FALSE(a == b);
}

TEST(CnnTaskConfig, KeysOfAnotherLayerTypeOrFormatAreErrors) {
  const std::string data = R"("data": {"format": "idx", "train_images": "a", "train_labels": "b")";
  std::string m = error_of([&] {
    parse_image_config(R"({"task": "image", )" + data +
                           R"(, "train": "t.csv"}, "model": {"layers": [{"type": "dense",
                           "units": 4, "kernel": 3}]}})",
                       "c.json");
  });
  EXPECT_NE(m.find("$.data.train: only applies to format \"digits_csv\""), std::string::npos) << m;
  EXPECT_NE(m.find("$.model.layers[0].kernel"), std::string::npos) << m;
  // A digits CSV test file is the test split: a test_fraction beside it is refused.
  m = error_of([&] {
    parse_image_config(R"({"task": "image", "data": {"format": "digits_csv", "train": "a.csv",
      "test": "b.csv", "test_fraction": 0.3}, "model": {"layers": []}})",
                       "d.json");
  });
  EXPECT_NE(m.find("d.json:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("$.data.test_fraction: only applies without a \"test\" file"), std::string::npos)
      << m;
  const ImageConfig two_files = parse_image_config(
      R"({"task": "image", "data": {"format": "digits_csv", "train": "a.csv", "test": "b.csv"},
      "model": {"layers": []}})",
      "d.json");
  EXPECT_EQ(two_files.data.test, "b.csv");
  EXPECT_EQ(parse_image_config(to_json(two_files), "resolved.json"), two_files);
  EXPECT_EQ(to_json(two_files).find("test_fraction"), std::string::npos) << to_json(two_files);
  m = error_of([&] {
    parse_video_config(R"({"task": "video", "data": {"generate": {"kind": "moving-fashion-mnist"},
      "test_dir": "t", "frames": 4}, "model": {"layers": []}})",
                       "v.json");
  });
  EXPECT_NE(m.find("$.data.test_dir: applies to \"dir\" only"), std::string::npos) << m;
  m = error_of([&] {
    parse_audio_config(R"({"task": "audio", "data": {"speakers": ["x"]},
      "train": {"optimizer": {"lr": 0.01}, "lr_schedule": {"type": "cosine", "min_lr": 0.1}},
      "model": {"layers": []}})",
                       "a.json");
  });
  EXPECT_NE(m.find("$.data.dir: give \"dir\" or \"dataset\""), std::string::npos) << m;
  EXPECT_NE(m.find("$.train.lr_schedule.min_lr: must not exceed the optimizer's lr"),
            std::string::npos)
      << m;
}

}  // namespace
}  // namespace tessera
