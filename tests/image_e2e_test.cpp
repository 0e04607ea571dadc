// The image pipeline end to end on the sklearn digits (seconds): train into a run directory,
// evaluate the saved model, predict single PGM / PNG files (library and CLI), config errors.
#include <gtest/gtest.h>
#include <png.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "host/core/error.h"
#include "host/data/image_data.h"
#include "pipelines/image/image.h"
#include "pipelines/image/image_config.h"
#include "pipelines/image/stages.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

// The digits file, "" when it is not on this machine.
const std::string& digits_file() {
  static const std::string path = [] {
    ::setenv("TESSERA_SOURCE_DIR", TESSERA_SOURCE_DIR, /*overwrite=*/0);
    return scheduler::find_local_dataset_file("sklearn-digits", "digits.csv.gz");
  }();
  return path;
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

// One model trained once per process (3 epochs: a few seconds). ctest runs each TEST in its own
// process, so the pipeline checks are one TEST that trains once.
class ImagePipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    missing_ = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
    if (!missing_.empty()) return;
    // Recorded, and failed in SetUp: a failure here would show up in ctest as skipped tests.
    setup_error_ = test::suite_setup_error(train_once);
  }
  static void train_once() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("tessera_image_e2e_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    // The shipped config, with the data file given by absolute path.
    std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/pipelines/image/sklearn-digits.json");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string cfg = ss.str();
    const std::string from = "\"train\": \"digits.csv.gz\"";
    cfg.replace(cfg.find(from), from.size(), "\"train\": \"" + digits_file() + "\"");
    std::ofstream(*dir_ / "digits.json") << cfg;
    image::TrainOptions o;
    o.device = "cpu";
    o.quiet = true;
    o.epochs = 3;
    o.run_dir = (*dir_ / "run").string();
    result_ = new image::Result(image::train((*dir_ / "digits.json").string(), o));
  }
  static void TearDownTestSuite() {
    if (dir_) fs::remove_all(*dir_);
    delete dir_;
    delete result_;
    dir_ = nullptr;
    result_ = nullptr;
  }
  void SetUp() override {
    if (!missing_.empty()) TESSERA_SKIP_OR_FAIL(missing_);
    ASSERT_TRUE(setup_error_.empty()) << "training failed: " << setup_error_;
    ASSERT_NE(result_, nullptr);
  }
  static std::string model() { return (*dir_ / "run" / "model.tsm").string(); }
  static fs::path* dir_;
  static image::Result* result_;
  static std::string missing_, setup_error_;
};
fs::path* ImagePipeline::dir_ = nullptr;
image::Result* ImagePipeline::result_ = nullptr;
std::string ImagePipeline::missing_, ImagePipeline::setup_error_;

void check_train(const image::Result* result_, const fs::path* dir_,
                 const std::string& model_path) {
  const auto d = parse(result_->json);
  EXPECT_STREQ(d["task"].GetString(), "image");
  EXPECT_EQ(d["epochs"].GetInt(), 3);
  EXPECT_EQ(
      d["train_images"].GetInt() + d["validation_images"].GetInt() + d["test_images"].GetInt(),
      1797);
  const double acc = d["test"]["accuracy"].GetDouble();
  EXPECT_GT(acc, 0.85) << result_->summary;
  EXPECT_EQ(d["test"]["confusion_matrix"].Size(), 10u);
  ASSERT_TRUE(d.HasMember("class_names"));  // the report labels the confusion table with them
  EXPECT_EQ(d["class_names"].Size(), 10u);
  EXPECT_EQ(d["test"]["per_class_accuracy"].Size(), 10u);
  for (const char* f : {"model.tsm", "config.json", "metrics.jsonl", "result.json"})
    EXPECT_TRUE(fs::exists(*dir_ / "run" / f)) << f;
  std::ifstream m(*dir_ / "run" / "metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(m, l);) lines += !l.empty();
  EXPECT_EQ(lines, 3);
  // The resolved config parses back.
  EXPECT_NO_THROW(load_image_config((*dir_ / "run" / "config.json").string()));
  EXPECT_TRUE(image::is_image_model_file(model_path));
  EXPECT_FALSE(image::is_image_model_file(digits_file()));
}

void check_evaluate(const image::Result* result_, const fs::path* dir_,
                    const std::string& model_path) {
  const image::Result r = image::evaluate(model_path, digits_file(), {"cpu", true, true});
  const auto d = parse(r.json);
  EXPECT_EQ(d["images"].GetInt(), 1797);
  // All digits, most of them seen in training: at least the held-out test accuracy.
  const double test_acc = parse(result_->json)["test"]["accuracy"].GetDouble();
  EXPECT_GT(d["metrics"]["accuracy"].GetDouble(), test_acc - 0.02) << r.summary;
  EXPECT_THROW(
      image::evaluate(model_path, (*dir_ / "nope-images.bin").string(), {"cpu", true, true}),
      Error);
}

// Writes digits image `row` as an 8x8 PGM (P5) or PNG; returns its label.
int write_digit(const std::string& path, int row, bool png) {
  const ImageSet s = read_digits_csv(digits_file());
  unsigned char px[64];
  for (int i = 0; i < 64; ++i)
    px[i] = static_cast<unsigned char>(std::lround(s.pixels[row * 64 + i] * 255));
  if (png) {
    png_image img{};
    img.version = PNG_IMAGE_VERSION;
    img.width = img.height = 8;
    img.format = PNG_FORMAT_GRAY;
    png_image_write_to_file(&img, path.c_str(), 0, px, 0, nullptr);
  } else {
    std::ofstream f(path, std::ios::binary);
    f << "P5\n8 8\n255\n";
    f.write(reinterpret_cast<const char*>(px), 64);
  }
  return s.labels[row];
}

void check_predict(const fs::path* dir_, const std::string& model_path) {
  int correct = 0;
  for (int row = 0; row < 20; ++row) {
    const bool png = row % 2 == 0;
    const std::string p = (*dir_ / ("d" + std::to_string(row) + (png ? ".png" : ".pgm"))).string();
    const int label = write_digit(p, row, png);
    const image::Result r = image::predict(model_path, p, {"cpu", true, true});
    const auto d = parse(r.json);
    ASSERT_EQ(d["top"].Size(), 3u);
    double prev = 2, sum = 0;
    for (const auto& t : d["top"].GetArray()) {
      const double pr = t["probability"].GetDouble();
      EXPECT_LE(pr, prev);
      prev = pr;
      sum += pr;
    }
    EXPECT_LE(sum, 1.0 + 1e-9);
    correct += d["top"][0]["index"].GetInt() == label;
  }
  EXPECT_GE(correct, 17);
}

void check_cli_predict(const fs::path* dir_, const std::string& model_path) {
  const std::string bin = std::string(TESSERA_BINARY_DIR) + "/tessera";
  if (const std::string no_cli = test::missing_cli(bin); !no_cli.empty())
    TESSERA_SKIP_OR_FAIL(no_cli);
  const std::string img = (*dir_ / "cli.pgm").string();
  write_digit(img, 3, false);
  const test::ProgramResult r =
      test::run_program({bin, "predict", model_path, img, "--device", "cpu", "--json"});
  const std::string& out = r.out;
  EXPECT_EQ(r.status, 0) << out << r.err;
  EXPECT_NE(out.find("1. "), std::string::npos) << out;
  EXPECT_NE(out.find("3. "), std::string::npos) << out;
  std::string trimmed = out;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  const std::string last = trimmed.substr(trimmed.rfind('\n') + 1);  // --json: the last line
  EXPECT_EQ(parse(last)["top"].Size(), 3u) << out;
}

TEST_F(ImagePipeline, TrainEvaluatePredict) {
  {
    SCOPED_TRACE("train");
    check_train(result_, dir_, model());
  }
  {
    SCOPED_TRACE("evaluate");
    check_evaluate(result_, dir_, model());
  }
  {
    SCOPED_TRACE("predict");
    check_predict(dir_, model());
  }
  {
    SCOPED_TRACE("cli predict");
    check_cli_predict(dir_, model());
  }
}

// A digits CSV given as "test" is the whole test split, and all of "train" is for training (and
// its validation share): one file trains, another tests.
TEST(ImageDataFiles, ADigitsTestFileIsTheTestSplit) {
  const std::string missing = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const fs::path dir =
      fs::temp_directory_path() / ("tessera_image_test_file_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "c.json") << R"({"task": "image", "seed": 3, "data": {"format": "digits_csv",
    "train": ")" + digits_file() + R"(", "test": ")" +
                                       digits_file() +
                                       R"(", "max_train_images": 300, "validation_fraction": 0.1},
    "model": {"layers": [{"type": "flatten"}, {"type": "dense", "units": 16}]},
    "train": {"epochs": 1, "batch_size": 32}})";
  image::TrainOptions o;
  o.device = "cpu";
  o.quiet = true;
  o.run_dir = (dir / "run").string();
  const std::string json = image::train((dir / "c.json").string(), o).json;
  const auto d = parse(json);
  const int64_t all = read_digits_csv(digits_file()).n;
  ASSERT_TRUE(d.HasMember("test_images") && d.HasMember("test")) << json;
  EXPECT_EQ(d["test_images"].GetInt64(), all) << json;
  EXPECT_EQ(d["test"]["count"].GetInt64(), all) << json;
  EXPECT_EQ(d["train_images"].GetInt64() + d["validation_images"].GetInt64(), 300) << json;
  EXPECT_EQ(d["validation_images"].GetInt64(), 30) << json;

  // A pipeline's prep stage keys its cache on the test file too, so replacing it reruns training.
  fs::copy_file(digits_file(), dir / "other.csv.gz");
  std::string cfg;
  {
    std::ifstream in(dir / "c.json");
    std::stringstream ss;
    ss << in.rdbuf();
    cfg = ss.str();
  }
  const std::string other = (dir / "other.csv.gz").string();
  cfg.replace(cfg.rfind(digits_file()), digits_file().size(), other);
  std::ofstream(dir / "c2.json") << cfg;
  const scheduler::PipelineSpec spec = scheduler::parse_pipeline_spec(
      R"({"name": "p", "task": "image", "stages": [{"name": "prep", "kind": "prep",
      "config": {"config": "c2.json"}}]})",
      "p.json", dir.string());
  scheduler::StageRegistry registry;
  image::register_stages(registry);
  const std::vector<std::string> inputs =
      registry.find("image", spec.stages[0]).input_files(spec, spec.stages[0]);
  EXPECT_NE(std::find(inputs.begin(), inputs.end(), other), inputs.end())
      << "prep inputs lack the test file " << other;
  EXPECT_NE(std::find(inputs.begin(), inputs.end(), digits_file()), inputs.end());
  fs::remove_all(dir);
}

TEST(ImageConfigErrors, NameThePathAndTheChoices) {
  auto msg = [](const std::string& text) {
    try {
      parse_image_config(text, "cfg.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string data = R"("data": {"format": "idx", "train_images": "a", "train_labels": "b"})";
  std::string m =
      msg(R"({"task": "image", )" + data + R"(, "model": {"layers": [{"type": "convv"}]}})");
  EXPECT_NE(m.find("layers[0].type"), std::string::npos) << m;
  EXPECT_NE(m.find("conv"), std::string::npos) << m;
  m = msg(R"({"task": "image", "data": {"format": "idx"}, "model": {"layers": []}})");
  EXPECT_NE(m.find("train_images"), std::string::npos) << m;
  m = msg(R"({"task": "image", )" + data + R"(, "model": {"layers": [{"type": "conv"}]}})");
  EXPECT_NE(m.find("filters"), std::string::npos) << m;
  m = msg(
      R"({"task": "image", "data": {"format": "idx", "train_images": "a", "train_labels": "b", "classes": 3, "class_names": ["x"]}, "model": {"layers": []}})");
  EXPECT_NE(m.find("class_names"), std::string::npos) << m;
  // Every shipped config parses.
  for (const char* f : {"fashion-mnist.json", "fashion-mnist-baseline.json", "sklearn-digits.json"})
    EXPECT_NO_THROW(load_image_config(std::string(TESSERA_SOURCE_DIR) + "/pipelines/image/" + f))
        << f;
}

}  // namespace
}  // namespace tessera
