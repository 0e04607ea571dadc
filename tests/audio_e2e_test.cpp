// The audio pipeline end to end on a slice of fsdd (seconds): train a small CNN on log-mel
// images of the files with index 5-7 (test: the official split, index 0-4), evaluate the saved
// model on "fsdd:test" (must reproduce the training run's test accuracy), predict single WAV
// files, including a 16 kHz stereo copy (resampled back to 8 kHz by the reader), via the
// library and the CLI; config errors.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "host/core/error.h"
#include "host/data/registry.h"
#include "host/data/resample.h"
#include "host/data/wav.h"
#include "pipelines/audio/audio.h"
#include "pipelines/audio/audio_config.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

const char* kConfig = R"({
  "task": "audio", "name": "fsdd-slice", "seed": 3,
  "data": {"dataset": "fsdd", "max_index": 7, "validation_fraction": 0.0, "classes": 10},
  "features": {"sample_rate": 8000, "n_fft": 256, "win_length": 200, "hop_length": 80,
               "n_mels": 32, "fmin": 20, "frames": 64},
  "augment": {"time_masks": 1, "time_mask_width": 4, "freq_masks": 1, "freq_mask_width": 3},
  "model": {"layers": [
    {"type": "conv", "filters": 16, "kernel": 3, "padding": 1, "bias": false},
    {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
    {"type": "conv", "filters": 32, "kernel": 3, "padding": 1, "bias": false},
    {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
    {"type": "flatten"}, {"type": "dense", "units": 64, "activation": "relu"}]},
  "train": {"epochs": 6, "batch_size": 16, "eval_batch_size": 100, "optimizer": {"type": "adam", "lr": 0.002}}
})";

// A 16-bit PCM WAV written here (independently of the reader).
void write_wav16(const std::string& path, const std::vector<std::vector<float>>& chans, int rate) {
  std::string d;
  auto put16 = [&](std::string& s, uint32_t v) {
    s += char(v & 255);
    s += char((v >> 8) & 255);
  };
  auto put32 = [&](std::string& s, uint32_t v) {
    put16(s, v & 0xFFFF);
    put16(s, v >> 16);
  };
  const int ch = static_cast<int>(chans.size());
  for (size_t i = 0; i < chans[0].size(); ++i)
    for (int c = 0; c < ch; ++c)
      put16(d, static_cast<uint16_t>(static_cast<int16_t>(
                   std::lround(std::clamp(chans[c][i], -1.f, 0.9999f) * 32767))));
  std::string h = "RIFF";
  put32(h, static_cast<uint32_t>(36 + d.size()));
  h += "WAVEfmt ";
  put32(h, 16);
  put16(h, 1);
  put16(h, ch);
  put32(h, rate);
  put32(h, rate * ch * 2);
  put16(h, ch * 2);
  put16(h, 16);
  h += "data";
  put32(h, static_cast<uint32_t>(d.size()));
  std::ofstream(path, std::ios::binary) << h << d;
}

TEST(AudioPipeline, TrainEvaluatePredictOnAnFsddSlice) {
  const std::string missing = test::missing_dataset("fsdd", {"recordings/0_george_0.wav"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const fs::path dir =
      fs::temp_directory_path() / ("tessera_audio_e2e_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "fsdd.json") << kConfig;
  audio::TrainOptions o;
  o.device = "cpu";
  o.quiet = true;
  o.run_dir = (dir / "run").string();
  const audio::Result r = audio::train((dir / "fsdd.json").string(), o);
  const rapidjson::Document d = parse(r.json);
  EXPECT_STREQ(d["task"].GetString(), "audio");
  EXPECT_EQ(d["train_images"].GetInt64(), 180);  // 6 speakers x 10 digits x index 5-7
  EXPECT_EQ(d["test_images"].GetInt64(), 300);   // index 0-4: the official test split
  const double acc = d["test"]["accuracy"].GetDouble();
  std::printf("fsdd slice: test accuracy %.3f (chance 0.1)\n", acc);
  EXPECT_GT(acc, 0.5) << r.summary;  // chance 0.1; the full config reaches > 0.98
  const std::string model = (dir / "run" / "model.tsm").string();
  ASSERT_TRUE(audio::is_audio_model_file(model));
  EXPECT_TRUE(fs::exists(dir / "run" / "config.json"));

  audio::Options eo;
  eo.device = "cpu";
  const rapidjson::Document e = parse(audio::evaluate(model, "fsdd:test", eo).json);
  EXPECT_EQ(e["recordings"].GetInt64(), 300);
  EXPECT_DOUBLE_EQ(e["metrics"]["accuracy"].GetDouble(), acc);

  // Predict: the 8 kHz originals and 16 kHz stereo copies agree on the top class.
  int agree = 0;
  for (int digit = 0; digit < 10; ++digit) {
    const std::string f =
        resolve_dataset_file("fsdd", "recordings/" + std::to_string(digit) + "_theo_0.wav");
    const rapidjson::Document p = parse(audio::predict(model, f, eo).json);
    ASSERT_EQ(p["top"].Size(), 3u);
    double sum = 0, prev = 1;
    for (const auto& t : p["top"].GetArray()) {
      EXPECT_LE(t["probability"].GetDouble(), prev);
      prev = t["probability"].GetDouble();
      sum += prev;
    }
    EXPECT_LE(sum, 1 + 1e-9);
    const Audio a = read_wav(f);
    const std::vector<float> up = resample(a.samples, 8000, 16000);
    std::vector<float> quiet(up);
    for (float& v : quiet) v *= 0.5f;
    const std::string copy = (dir / ("copy" + std::to_string(digit) + ".wav")).string();
    write_wav16(copy, {up, quiet}, 16000);  // mono mix = 0.75 x the signal: normalisation undoes it
    const rapidjson::Document q = parse(audio::predict(model, copy, eo).json);
    agree += q["top"][0]["index"].GetInt() == p["top"][0]["index"].GetInt();
  }
  EXPECT_GE(agree, 8);

  const std::string bin = std::string(TESSERA_BINARY_DIR) + "/tessera";
  const std::string no_cli = test::missing_cli(bin);
  if (no_cli.empty()) {
    const std::string wav = resolve_dataset_file("fsdd", "recordings/7_lucas_1.wav");
    const test::ProgramResult r =
        test::run_program({bin, "predict", model, wav, "--device", "cpu", "--json"});
    std::string out = r.out;
    EXPECT_EQ(r.status, 0) << out << r.err;
    EXPECT_NE(out.find("3. "), std::string::npos) << out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    EXPECT_EQ(parse(out.substr(out.rfind('\n') + 1))["top"].Size(), 3u) << out;
  }
  fs::remove_all(dir);
  if (!no_cli.empty()) TESSERA_SKIP_OR_FAIL(no_cli);
}

TEST(AudioConfigErrors, NameThePathAndTheFault) {
  auto msg = [](const std::string& text) {
    try {
      parse_audio_config(text, "cfg.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string head =
      R"({"task": "audio", "data": {"dataset": "fsdd"}, "model": {"layers": []}, )";
  std::string m = msg(head + R"("features": {"sample_rate": 8000, "fmax": 6000}})");
  EXPECT_NE(m.find("features.fmax"), std::string::npos) << m;
  EXPECT_NE(m.find("Nyquist"), std::string::npos) << m;
  m = msg(head + R"("features": {"n_mel": 40}})");
  EXPECT_NE(m.find("n_mels"), std::string::npos) << m;  // the closest valid key
  m = msg(head + R"("features": {"fit": "middle"}})");
  EXPECT_NE(m.find("center"), std::string::npos) << m;
  m = msg(head + R"("augment": {"freq_mask_width": 80}})");
  EXPECT_NE(m.find("augment.freq_mask_width"), std::string::npos) << m;
  EXPECT_EQ(msg(head + R"("train": {"epochs": 1}})"), "no error");
  // The shipped default config is valid.
  EXPECT_NO_THROW(
      load_audio_config(std::string(TESSERA_SOURCE_DIR) + "/pipelines/audio/fsdd.json"));
}

TEST(AudioPipeline, RecordingNamesAreCheckedAndFoldersListed) {
  const std::vector<std::string> names = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  const audio::Recording r = audio::parse_recording_name("/x/7_theo_12.wav", names);
  EXPECT_EQ(r.label, 7);
  EXPECT_EQ(r.speaker, "theo");
  EXPECT_EQ(r.index, 12);
  for (const char* bad :
       {"/x/7_theo.wav", "/x/x_theo_1.wav", "/x/7_theo_a.wav", "/x/7_theo_1.mp3"}) {
    try {
      audio::parse_recording_name(bad, names);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace tessera
